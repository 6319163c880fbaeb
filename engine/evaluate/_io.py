"""The command lines of the checks (``python -m engine.evaluate.zoo`` / ``.shift`` / ``.domain``):
their shared options, one-line errors and ``--output``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON at ``path`` (parent folders created); raises ``OSError``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    return out


def write_output(path: str | Path | None, data: Any) -> int:
    """A check's ``--output``: write ``data`` there when given; the exit code (2 with a one-line
    error on stderr when the file cannot be written, else 0)."""
    if not path:
        return 0
    try:
        write_json(path, data)
    except OSError as exc:
        print(f"error: cannot write {path}: {exc}", file=sys.stderr)
        return 2
    return 0


def check_parser(prog: str, doc: str, n_default: int | None = None, n_help: str = "") -> argparse.ArgumentParser:
    """``--checkpoint`` and ``--output`` (and ``--n`` / ``--seed`` when ``n_default`` is given)."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    if n_default is not None:
        ap.add_argument("--n", type=int, default=n_default, help=n_help)
        ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    ap.add_argument("--output", default=None, help="write the result as JSON here")
    return ap


def run_check(evaluate: Callable[..., Any], *args: Any) -> Any | None:
    """``evaluate(*args)``, or None after a one-line error on stderr for a bad argument, a missing
    or unreadable checkpoint (``ValueError``, ``FileNotFoundError``, ``KeyError``)."""
    try:
        return evaluate(*args)
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return None
