"""Writing a check's result (``python -m engine.evaluate.zoo`` / ``.shift`` ``--output``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON at ``path`` (parent folders created); raises ``OSError``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    return out
