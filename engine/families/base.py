"""The interface every architecture family implements, and the family registry.

A *family* is a search space (GENNAPE Table 2): a spec format, a sampler, a PyTorch network
builder and a CG builder.  Specs are plain JSON-able Python values (str, list, dict) so they
can travel through CSV/JSONL uploads and checkpoints.

Register a family with ``@register`` on a ``Family`` subclass *instance factory*::

    @register
    class NB201(Family):
        name = "nb201"
        ...

Public access: :func:`names` and :func:`get` (re-exported by ``engine.families``).
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from engine.graphs.cg import CG


class SpecError(ValueError):
    """Invalid family spec.  The message names the field, the bad value and what is allowed."""


class Family(ABC):
    #: registry key, e.g. "nb201"
    name: ClassVar[str]
    #: human label for the UI, e.g. "NAS-Bench-201"
    title: ClassVar[str] = ""
    #: dataset the family's networks are built for ("cifar10" / "imagenet")
    dataset: ClassVar[str] = "cifar10"
    #: default (H, W, C) input and class count of the network
    input_hwc: ClassVar[tuple[int, int, int]] = (32, 32, 3)
    num_classes: ClassVar[int] = 10
    #: short description of the spec format (shown in errors and the UI)
    spec_help: ClassVar[str] = ""

    # --- required ------------------------------------------------------------------------
    @abstractmethod
    def sample(self, n: int, seed: int = 0) -> list[Any]:
        """``n`` specs drawn (uniformly over the space unless documented) and deterministically
        from ``seed``."""

    @abstractmethod
    def validate(self, spec: Any) -> Any:
        """Return the *normalised* spec (accepting every documented alternative encoding) or
        raise :class:`SpecError`."""

    @abstractmethod
    def build_module(self, spec: Any):
        """A real ``torch.nn.Module`` for ``spec`` (forward works on a real input tensor of
        shape ``(1, C, H, W)`` given by :meth:`input_shape`)."""

    @abstractmethod
    def to_cg(self, spec: Any) -> CG:
        """The spec's computation graph (validated).  Must equal, up to node numbering
        (``CG.fingerprint()``), ``from_module(build_module(spec), input_shape(spec))``."""

    # --- defaults --------------------------------------------------------------------------
    def parse(self, value: Any) -> Any:
        """:meth:`validate`, also accepting the spec as JSON text (a text box, a CSV cell, a
        command-line argument).  The family's own format is tried first (NB-201's arch string,
        NB-101's tuple text), then the decoded JSON; the error is the family's."""
        try:
            return self.validate(value)
        except (SpecError, ValueError, TypeError, KeyError, IndexError) as first:
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if isinstance(value, str) and value.strip()[:1] in ("[", "{", '"'):
                try:
                    decoded = json.loads(value)
                except ValueError:
                    raise SpecError(str(first)) from None
                return self.validate(decoded)
            if isinstance(first, SpecError):
                raise
            raise SpecError(str(first)) from None

    def input_shape(self, spec: Any) -> tuple[int, int, int, int]:
        """``(1, C, H, W)`` of the network's input (OFA specs carry their resolution)."""
        h, w, c = self.input_hwc
        return (1, c, h, w)

    def canonical(self, spec: Any) -> str:
        """A canonical string of the (normalised) spec; equal architectures share it."""
        return json.dumps(self.validate(spec), sort_keys=True, separators=(",", ":"))

    def spec_text(self, spec: Any, normalised: bool = False) -> str:
        """The normalised spec as text that :meth:`validate` (or ``engine.data.dataset.decode_spec``)
        turns back into the *same* spec: the family's own string form, else sorted-key JSON.

        Unlike :meth:`canonical`, it keeps the spec's numbering, so it rebuilds exactly the
        network :meth:`to_cg` builds from ``spec``.  (Two numberings of one NB-101 cell share a
        canonical form but split the cell's channels differently: NAS-Bench-101's network, and its
        params, follow the given numbering.)  ``normalised``: ``spec`` is :meth:`validate`'s output."""
        v = spec if normalised else self.validate(spec)
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))

    def spec_hash(self, spec: Any) -> str:
        return hashlib.sha256(self.canonical(spec).encode()).hexdigest()[:16]

    def _distinct(self, n: int, seed: int, draw: Callable[[random.Random], Any], max_draws: int | None = None
                  ) -> list[Any]:
        """``n`` specs from ``draw(rng)`` with ``rng = random.Random(seed)``, in draw order,
        skipping rejected draws (``draw`` returns None) and specs whose :meth:`canonical` form
        was drawn before (for the samplers of :meth:`sample`).  RuntimeError after ``max_draws``
        draws without ``n`` distinct specs."""
        if n < 0:
            raise ValueError(f"{self.name} sample: n must be >= 0, got {n}")
        rng = random.Random(seed)
        seen: set[str] = set()
        out: list[Any] = []
        draws = 0
        while len(out) < n:
            draws += 1
            if max_draws is not None and draws > max_draws:
                raise RuntimeError(f"{self.name} sample: only {len(out)} distinct valid specs after {max_draws} draws")
            spec = draw(rng)
            if spec is None:
                continue
            key = self.canonical(spec)
            if key not in seen:
                seen.add(key)
                out.append(spec)
        return out

    def enumerate(self) -> Iterator[Any]:
        """Every spec of the space, where that is small enough; else ``NotImplementedError``."""
        raise NotImplementedError(f"family {self.name!r} is too large to enumerate")

    def space_size(self) -> int | None:
        """Number of architectures in the space if known."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "dataset": self.dataset,
                "input_hwc": list(self.input_hwc), "num_classes": self.num_classes,
                "space_size": self.space_size(), "spec_help": self.spec_help}

    def __repr__(self) -> str:
        return f"<family {self.name}>"


_REGISTRY: dict[str, Family] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: instantiate and register; refuses duplicate names."""
    inst = cls()
    if inst.name in _REGISTRY:
        raise KeyError(f"family {inst.name!r} already registered")
    _REGISTRY[inst.name] = inst
    return cls


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def names() -> list[str]:
    from engine.families import _load_all

    _load_all()
    return list(_REGISTRY)


def get(name: str) -> Family:
    from engine.families import _load_all

    _load_all()
    key = _normalise(str(name))
    if key not in _REGISTRY:
        raise KeyError(f"unknown family {name!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]
