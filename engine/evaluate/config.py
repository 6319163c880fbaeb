"""Evaluation-run configuration: frozen dataclasses loaded from JSON with path-precise errors.

A config file (see ``configs/evaluate_default.json``) has these sections; every key is
optional except where noted, unknown keys are rejected with their path::

    {
      "name": "default",                       # run folder name under runs/ (required)
      "seed": 0,                               # model-training seed (one per experiment)
      "threads": 1,                            # torch threads (fixed: results depend on it; 2 is much slower here)
      "data_dir": null,                        # reference data folder (default engine.paths.data_dir())
      "model": {"preset": "default", "overrides": {"contrastive.epochs": 10}},
      "datasets": {                            # labelled datasets by key
        "nb101": {"load": "nb101_naslib", "unlabelled": 2000},
        "nb201": {"load": "nb201_cifar10", "max_train": 3000,
                  "shifts": ["nb201_c100", "nb201_in16"]},
        "nb201_c100": {"load": "nb201_cifar100", "shift_of": "nb201"}
      },
      "finetune": {"k": 50, "seeds": [0, 1, 2, 3, 4]},
      "experiments": [{"name": "paper", "source": ["nb101"], "targets": ["nb201", "nb301"]}],
      "lofo": {"families": ["nb101", "nb201", "nb301"]},      # or null
      "k_sweep": {"experiment": "paper", "ks": [0, 10, 20, 50, 100], "seeds": [0, 1, 2]},
      "source_test_fraction": 0.2,
      "table1": {"datasets": ["nb101_naslib", "nb201_naslib_cifar10", "nb301_naslib"]},
      "perf": {"cg_build_sample": 200},
      "plots": true
    }

``load_config(path)`` returns an :class:`EvalConfig`; ``EvalConfig.from_dict`` does the same
for an in-memory dict.  Errors are :class:`ValueError` (``FileNotFoundError`` for a missing
file) whose message names the file and the key path, e.g.
``configs/x.json: config.finetune.k: expected an integer >= 0, got "50"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: every source loader name a dataset may use (``engine.data.load`` names)
LOADERS = ("nb201_cifar10", "nb201_cifar100", "nb201_imagenet", "nb201_test_cifar10", "nb201_test_cifar100",
           "nb201_test_imagenet", "nb201_naslib_cifar10", "nb201_naslib_cifar100", "nb201_naslib_imagenet",
           "nb101_naslib", "nb301_naslib")
#: loaders that need the reference data folder (the rest are embedded in the product)
SHARED_LOADERS = tuple(n for n in LOADERS if not n.startswith("nb201_c") and not n.startswith("nb201_imagenet"))


class ConfigError(ValueError):
    """A bad evaluation config (message names the key path)."""


@dataclass(frozen=True)
class DatasetConfig:
    """One labelled dataset.

    ``load``: the ``engine.data.load`` name.  ``max_rows``: a seeded subsample of the labelled rows
    taken before anything else (CGs are then built for those rows only; smoke runs).  ``max_train`` / ``max_test``: seeded caps on the
    rows used for training / in-family testing when the dataset is a *source*; ``max_eval``: cap
    on the rows evaluated when it is a *target* (None = all).  ``unlabelled``: extra sampled,
    unlabelled CGs of the family added to the contrastive / FCM stage when it is a source.
    ``shifts``: other dataset keys (same architectures, other labels) evaluated whenever this one
    is a target.  ``shift_of``: marks a shift dataset (never a source, never a LOFO family)."""

    load: str
    max_rows: int | None = None
    max_train: int | None = None
    max_test: int | None = None
    max_eval: int | None = None
    unlabelled: int = 0
    shifts: tuple[str, ...] = ()
    shift_of: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The predictor's config: a ``GennapeConfig`` preset plus dotted overrides."""

    preset: str = "default"                       # "default" | "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int, threads: int | None):
        from engine.model.config import GennapeConfig

        base = GennapeConfig.tiny() if self.preset == "tiny" else GennapeConfig()
        updates = dict(self.overrides)
        updates["train.seed"] = seed
        if threads:
            updates["train.threads"] = threads
        return base.override(updates)


@dataclass(frozen=True)
class FinetuneProtocol:
    k: int = 50
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


#: protocols an experiment may name: "paper" (the paper's transfer table), "custom", "shift" (a label
#: for input-shift targets); "lofo" is
#: generated from ``config.lofo``
PROTOCOLS = ("paper", "custom", "shift")


@dataclass(frozen=True)
class Experiment:
    """Train on ``source`` dataset keys, evaluate on each of ``targets`` (and their shifts)."""

    name: str
    source: tuple[str, ...]
    targets: tuple[str, ...]
    protocol: str = "custom"


@dataclass(frozen=True)
class LofoConfig:
    families: tuple[str, ...] = ()


@dataclass(frozen=True)
class KSweepConfig:
    experiment: str = "paper"
    ks: tuple[int, ...] = (0, 10, 20, 50, 100)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    targets: tuple[str, ...] = ()                  # empty = every target of the experiment (no shifts)


@dataclass(frozen=True)
class Table1Config:
    datasets: tuple[str, ...] = ("nb101_naslib", "nb201_naslib_cifar10", "nb201_naslib_cifar100",
                                 "nb201_naslib_imagenet", "nb301_naslib")


@dataclass(frozen=True)
class PerfConfig:
    cg_build_sample: int = 200                    # CGs per family built from specs (no cache) to time


@dataclass(frozen=True)
class EvalConfig:
    name: str
    datasets: dict[str, DatasetConfig]
    seed: int = 0
    threads: int | None = 1
    data_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    finetune: FinetuneProtocol = field(default_factory=FinetuneProtocol)
    experiments: tuple[Experiment, ...] = ()
    lofo: LofoConfig | None = None
    k_sweep: KSweepConfig | None = None
    source_test_fraction: float = 0.2
    table1: Table1Config | None = field(default_factory=Table1Config)
    perf: PerfConfig = field(default_factory=PerfConfig)
    plots: bool = True
    description: str = ""

    # --- derived -------------------------------------------------------------------------------
    def all_experiments(self) -> list[Experiment]:
        """Explicit experiments, then one leave-one-family-out experiment per LOFO family."""
        out = list(self.experiments)
        if self.lofo is not None:
            fams = self.lofo.families
            for held in fams:
                out.append(Experiment(f"lofo-{held}", tuple(f for f in fams if f != held), (held,), "lofo"))
        return out

    def targets_of(self, exp: Experiment) -> list[str]:
        """The experiment's targets followed by their shift datasets (no duplicates)."""
        out: list[str] = []
        for t in exp.targets:
            for key in (t, *self.datasets[t].shifts):
                if key not in out:
                    out.append(key)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["experiments"] = [asdict(e) for e in self.experiments]
        return _jsonable(d)

    def needs_shared_data(self) -> list[str]:
        """Dataset keys (used by some experiment) whose loader needs the reference folder."""
        used = set()
        for exp in self.all_experiments():
            used.update(exp.source)
            used.update(self.targets_of(exp))
        return sorted(k for k in used if self.datasets[k].load in SHARED_LOADERS)

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> EvalConfig:
        return _parse(data)


def load_config(path: str | Path) -> EvalConfig:
    """Read and validate a JSON evaluation config (errors name the file and key path)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: evaluation config not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        return _parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# parsing helpers
# ---------------------------------------------------------------------------------------------

def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _obj(v: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: expected an object, got {type(v).__name__}")
    unknown = [k for k in v if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(allowed)}")
    missing = [k for k in required if k not in v]
    if missing:
        raise ConfigError(f"{where}: missing required key {missing[0]!r}")
    return v


def _int(v: Any, where: str, lo: int | None = 0, none: bool = False) -> int | None:
    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        bound = f" >= {lo}" if lo is not None else ""
        raise ConfigError(f"{where}: expected an integer{bound}{' or null' if none else ''}, got {v!r}")
    return v


def _str(v: Any, where: str, none: bool = False) -> str | None:
    if v is None and none:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {v!r}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{where}: expected true or false, got {v!r}")
    return v


def _list(v: Any, where: str, item, nonempty: bool = False) -> tuple:
    if not isinstance(v, list):
        raise ConfigError(f"{where}: expected a list, got {type(v).__name__}")
    if nonempty and not v:
        raise ConfigError(f"{where}: expected a non-empty list")
    out = tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))
    if len(set(out)) != len(out):
        raise ConfigError(f"{where}: duplicate entries in {list(out)}")
    return out


def _dataset(key: str, v: Any) -> DatasetConfig:
    where = f"config.datasets.{key}"
    d = _obj(v, where, ("load", "max_rows", "max_train", "max_test", "max_eval", "unlabelled", "shifts", "shift_of", "title"),
             ("load",))
    load = _str(d["load"], f"{where}.load")
    if load not in LOADERS:
        raise ConfigError(f"{where}.load: unknown dataset {load!r}; expected one of {list(LOADERS)}")
    return DatasetConfig(
        load=load,
        max_rows=_int(d.get("max_rows"), f"{where}.max_rows", 8, none=True),
        max_train=_int(d.get("max_train"), f"{where}.max_train", 4, none=True),
        max_test=_int(d.get("max_test"), f"{where}.max_test", 2, none=True),
        max_eval=_int(d.get("max_eval"), f"{where}.max_eval", 2, none=True),
        unlabelled=_int(d.get("unlabelled", 0), f"{where}.unlabelled"),
        shifts=_list(d.get("shifts", []), f"{where}.shifts", _str),
        shift_of=_str(d.get("shift_of"), f"{where}.shift_of", none=True),
        title=_str(d.get("title"), f"{where}.title", none=True),
    )


def _model(v: Any) -> ModelConfig:
    d = _obj(v, "config.model", ("preset", "overrides"))
    preset = d.get("preset", "default")
    if preset not in ("default", "tiny"):
        raise ConfigError(f"config.model.preset: expected 'default' or 'tiny', got {preset!r}")
    overrides = d.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"config.model.overrides: expected an object of 'section.field': value, "
                          f"got {type(overrides).__name__}")
    for key in ("train.seed", "train.threads"):
        if key in overrides:
            raise ConfigError(f"config.model.overrides: {key!r} is set by the run (use config.seed / config.threads)")
    cfg = ModelConfig(preset, dict(overrides))
    try:
        cfg.build(0, None)
    except ValueError as exc:
        raise ConfigError(f"config.model.overrides: {exc}") from None
    return cfg


_TOP = ("name", "description", "seed", "threads", "data_dir", "model", "datasets", "finetune", "experiments",
        "lofo", "k_sweep", "source_test_fraction", "table1", "perf", "plots")


def _parse(data: Any) -> EvalConfig:
    d = _obj(data, "config", _TOP, ("name", "datasets"))
    name = _str(d["name"], "config.name")
    if any(c in name for c in "/\\") or name.startswith("."):
        raise ConfigError(f"config.name: {name!r} must be a plain folder name (no '/', '\\', leading '.')")
    raw_ds = d["datasets"]
    if not isinstance(raw_ds, dict) or not raw_ds:
        raise ConfigError("config.datasets: expected a non-empty object of dataset key -> {load: ...}")
    datasets = {k: _dataset(k, v) for k, v in raw_ds.items()}
    for k, ds in datasets.items():
        for s in ds.shifts:
            if s not in datasets:
                raise ConfigError(f"config.datasets.{k}.shifts: unknown dataset key {s!r}; "
                                  f"expected one of {sorted(datasets)}")
            if datasets[s].shift_of != k:
                raise ConfigError(f"config.datasets.{s}: listed as a shift of {k!r} but its shift_of is "
                                  f"{datasets[s].shift_of!r} (set \"shift_of\": \"{k}\")")

    def known(key: Any, where: str, allow_shift: bool = True) -> str:
        key = _str(key, where)
        if key not in datasets:
            raise ConfigError(f"{where}: unknown dataset key {key!r}; expected one of {sorted(datasets)}")
        if not allow_shift and datasets[key].shift_of:
            raise ConfigError(f"{where}: {key!r} is a shift dataset (shift_of {datasets[key].shift_of!r}); "
                              "it can only be evaluated as a target")
        return key

    ft = _obj(d.get("finetune", {}), "config.finetune", ("k", "seeds"))
    finetune = FinetuneProtocol(
        k=_int(ft.get("k", 50), "config.finetune.k", 0),
        seeds=_list(ft.get("seeds", [0, 1, 2, 3, 4]), "config.finetune.seeds", lambda x, w: _int(x, w)),
    )
    if finetune.k and finetune.k < 2:
        raise ConfigError(f"config.finetune.k: fine-tuning needs k >= 2 (or 0 for zero-shot only), got {finetune.k}")
    if finetune.k and not finetune.seeds:
        raise ConfigError("config.finetune.seeds: give at least one seed when k > 0")

    experiments = []
    for i, e in enumerate(_list_raw(d.get("experiments", []), "config.experiments")):
        where = f"config.experiments[{i}]"
        o = _obj(e, where, ("name", "source", "targets", "protocol"), ("name", "source", "targets"))
        src = _list(o["source"], f"{where}.source", lambda x, w: known(x, w, False), nonempty=True)
        tgt = _list(o["targets"], f"{where}.targets", lambda x, w: known(x, w), nonempty=True)
        overlap = set(src) & set(tgt)
        if overlap:
            raise ConfigError(f"{where}: {sorted(overlap)} is both a source and a target")
        protocol = _str(o.get("protocol", "paper" if o["name"] == "paper" else "custom"), f"{where}.protocol")
        if protocol not in PROTOCOLS:
            raise ConfigError(f"{where}.protocol: {protocol!r} is not a protocol; expected one of {list(PROTOCOLS)} "
                              "(lofo experiments come from config.lofo)")
        experiments.append(Experiment(_str(o["name"], f"{where}.name"), src, tgt, protocol))

    lofo = None
    if d.get("lofo") is not None:
        o = _obj(d["lofo"], "config.lofo", ("families",), ("families",))
        fams = _list(o["families"], "config.lofo.families", lambda x, w: known(x, w, False))
        if len(fams) < 2:
            raise ConfigError("config.lofo.families: leave-one-family-out needs at least 2 families")
        lofo = LofoConfig(fams)

    names = [e.name for e in experiments] + ([f"lofo-{f}" for f in lofo.families] if lofo else [])
    if len(set(names)) != len(names):
        raise ConfigError(f"config.experiments: experiment names must be unique, got {names}")

    k_sweep = None
    if d.get("k_sweep") is not None:
        o = _obj(d["k_sweep"], "config.k_sweep", ("experiment", "ks", "seeds", "targets"))
        exp_name = _str(o.get("experiment", "paper"), "config.k_sweep.experiment")
        if exp_name not in names:
            raise ConfigError(f"config.k_sweep.experiment: unknown experiment {exp_name!r}; expected one of {names}")
        ks = _list(o.get("ks", [0, 10, 20, 50, 100]), "config.k_sweep.ks", lambda x, w: _int(x, w), nonempty=True)
        if any(k == 1 for k in ks):
            raise ConfigError("config.k_sweep.ks: k = 1 cannot fine-tune (need k = 0 or k >= 2)")
        k_sweep = KSweepConfig(exp_name, tuple(sorted(ks)),
                               _list(o.get("seeds", [0, 1, 2, 3, 4]), "config.k_sweep.seeds",
                                     lambda x, w: _int(x, w), nonempty=True),
                               _list(o.get("targets", []), "config.k_sweep.targets", lambda x, w: known(x, w)))

    frac = d.get("source_test_fraction", 0.2)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < float(frac) < 0.9:
        raise ConfigError(f"config.source_test_fraction: expected a number in (0, 0.9), got {frac!r}")

    table1 = Table1Config()
    if "table1" in d:
        if d["table1"] is None:
            table1 = None
        else:
            o = _obj(d["table1"], "config.table1", ("datasets",))
            table1 = Table1Config(_list(o.get("datasets", list(Table1Config().datasets)), "config.table1.datasets",
                                        _loader_name))
    perf_o = _obj(d.get("perf", {}), "config.perf", ("cg_build_sample",))
    perf = PerfConfig(_int(perf_o.get("cg_build_sample", 200), "config.perf.cg_build_sample"))

    cfg = EvalConfig(
        name=name, datasets=datasets,
        seed=_int(d.get("seed", 0), "config.seed"),
        threads=_int(d.get("threads", 1), "config.threads", 1, none=True),
        data_dir=_str(d.get("data_dir"), "config.data_dir", none=True),
        model=_model(d.get("model", {})),
        finetune=finetune, experiments=tuple(experiments), lofo=lofo, k_sweep=k_sweep,
        source_test_fraction=float(frac), table1=table1, perf=perf,
        plots=_bool(d.get("plots", True), "config.plots"),
        description=str(d.get("description", "")),
    )
    if not cfg.all_experiments() and cfg.table1 is None:
        raise ConfigError("config: nothing to do (no experiments, no lofo, table1 null)")
    return cfg


def _list_raw(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise ConfigError(f"{where}: expected a list, got {type(v).__name__}")
    return v


def _loader_name(v: Any, where: str) -> str:
    v = _str(v, where)
    if v not in LOADERS:
        raise ConfigError(f"{where}: unknown dataset {v!r}; expected one of {list(LOADERS)}")
    return v
