"""Architecture families (the paper's nine search spaces): spec -> nn.Module -> CG.

``names()`` lists the registered families; ``get(name)`` returns one (see
:class:`engine.families.base.Family` for the methods every family has).
"""

from __future__ import annotations

import importlib

from engine.families.base import Family, SpecError, get, names, register

__all__ = ["Family", "SpecError", "get", "names", "register"]

# module per family; a missing module (work in progress) is skipped, any other error raises
_MODULES = ("nb101", "nb201", "nb301", "ofa", "hiaml", "inception", "two_path")
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _MODULES:
        try:
            importlib.import_module(f"engine.families.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"engine.families.{mod}":
                raise
