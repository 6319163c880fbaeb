"""Engine progress callbacks -> a Streamlit progress bar (the engine never imports streamlit)."""

from __future__ import annotations

import time
from typing import Any

STAGE_NAMES = {
    "cgs": "building computation graphs", "score": "scoring", "embed": "embedding", "predict": "predicting",
    "finetune": "fine-tuning", "tsne": "t-SNE projection", "pca": "PCA projection", "pyg": "preparing graphs",
}


class StreamlitProgress:
    """Callable ``(stage, step, total, metrics)`` that updates ``bar`` (an ``st.progress``).

    Updates are throttled (``min_interval`` seconds) because each one is a websocket message;
    the last step of a stage always shows.  ``events`` keeps every call (loss curves, tests).
    """

    def __init__(self, bar: Any, min_interval: float = 0.15) -> None:
        self.bar = bar
        self.min_interval = min_interval
        self._last = 0.0
        self.events: list[tuple[str, int, int, dict]] = []

    def __call__(self, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
        metrics = dict(metrics or {})
        self.events.append((stage, int(step), int(total), metrics))
        now = time.perf_counter()
        done = step >= total
        if not done and now - self._last < self.min_interval:
            return
        self._last = now
        frac = min(max(step / max(total, 1), 0.0), 1.0)
        extra = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, int | float) and k != "cached")
        text = f"{STAGE_NAMES.get(stage, stage)}: {step:,}/{total:,}" + (f" — {extra}" if extra else "")
        self.bar.progress(frac, text=text)
