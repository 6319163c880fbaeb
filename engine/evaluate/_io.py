"""Writing a check's result (``python -m engine.evaluate.zoo`` / ``.shift`` ``--output``)."""

from __future__ import annotations

import json
import sys
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
