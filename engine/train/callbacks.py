"""Progress callbacks: the seam between engine loops and the UI / CLI.

Engine loops accept ``callback: Callback | None`` and call
``callback(stage, step, total, metrics)``; the app turns it into ``st.progress`` and the CLI
into a text progress bar.  Any callable with that signature works.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Callback(Protocol):
    def __call__(self, stage: str, step: int, total: int, metrics: dict | None = None) -> None: ...


def notify(callback: Callback | None, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
    """Call ``callback`` if given (engine code uses this instead of ``if callback: ...``)."""
    if callback is not None:
        callback(stage, step, total, metrics or {})


class History:
    """Records every event (tests and loss curves)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int, dict]] = []

    def __call__(self, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
        self.events.append((stage, step, total, dict(metrics or {})))

    def series(self, stage: str, key: str) -> list[float]:
        return [m[key] for s, _, _, m in self.events if s == stage and key in m]


class TextProgress:
    """A one-line text progress bar on stderr for the CLI."""

    def __init__(self, width: int = 30, stream=None) -> None:
        self.width = width
        self.stream = stream or sys.stderr
        self._t0 = time.perf_counter()
        self._last_stage = None

    def __call__(self, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
        total = max(total, 1)
        frac = min(max(step / total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (metrics or {}).items())
        line = (f"\r{stage:<12} [{'#' * filled}{'.' * (self.width - filled)}] {step}/{total} "
                f"{time.perf_counter() - self._t0:6.1f}s {extra}")
        self.stream.write(line[:160])
        if step >= total:
            self.stream.write("\n")
        self.stream.flush()
