"""Editing nested JSON-like test data: the corrupted-input tests of several files use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: the value that deletes the key instead of setting it
DELETE = object()


def set_in(obj: Any, path: Sequence, value: Any) -> Any:
    """Set (or, with :data:`DELETE`, remove) ``obj[path[0]][path[1]]...`` in place; keys into a list
    are converted to ``int``.  Returns ``obj``."""
    cur = obj
    for key in path[:-1]:
        cur = cur[int(key)] if isinstance(cur, list) else cur[key]
    last = int(path[-1]) if isinstance(cur, list) else path[-1]
    if value is DELETE:
        del cur[last]
    else:
        cur[last] = value
    return obj
