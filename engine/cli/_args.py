"""Argument types shared by the subcommands: numbers checked when the command line is parsed, so a
bad value is a usage error naming the option (``argument --epochs: expected an int >= 1, got -5``)
instead of a failure deep inside training."""

from __future__ import annotations

import argparse
import math


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def _float_above(low: float, inclusive: bool):
    bound = f"{'>=' if inclusive else '>'} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    parse.__name__ = f"number {bound}"
    return parse


positive_float = _float_above(0.0, inclusive=False)
non_negative_float = _float_above(0.0, inclusive=True)


def check_output(path: str, folder: bool) -> None:
    """Refuse, before any work, an ``--output`` that cannot be written: an existing folder where
    a file is wanted, or an existing file where a folder is wanted."""
    from pathlib import Path

    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise ValueError(f"--output {p}: exists and is not a folder")
    if not folder and p.is_dir():
        raise ValueError(f"--output {p}: is a folder; give a file name (e.g. {p / 'predictions.csv'})")
    parent = p if folder else p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"--output {p}: {parent} is a file, not a folder")
