"""Architecture families (the paper's nine search spaces): spec -> nn.Module -> CG.

``names()`` lists the registered families; ``get(name)`` returns one (see
:class:`engine.families.base.Family` for the methods every family has).
"""

from __future__ import annotations

import importlib

from engine.families.base import Family, SpecError, get, names, register

__all__ = ["Family", "SpecError", "get", "names", "register"]

# one module per family, imported (and so registered) on first use of the registry
_MODULES = ("nb101", "nb201", "nb301", "ofa", "hiaml", "inception", "two_path")
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True  # first, so a family module that uses the registry while importing does not recurse
    try:
        for mod in _MODULES:
            importlib.import_module(f"engine.families.{mod}")
    except BaseException:
        _loaded = False  # a failed import fails every call, not just the first
        raise
