"""``ArchDataset``: labelled architectures of one or several families, with label provenance.

A dataset is a pandas ``frame`` (one row per architecture) plus the CGs of its rows:

========== ==================================================================================
column     meaning
========== ==================================================================================
id         row identifier from the source (benchmark key, upload id or row number)
family     family registry name (``engine.families.get``)
spec       the normalised spec as text (``Family.spec_text``: rebuilds the very network the row's CG is),
           None for CG-only rows; :meth:`ArchDataset.identity_keys` tells equal architectures apart
label      accuracy in percent, NaN when unlabelled (what it is: ``provenance``)
flops      FLOPs of *our* CG (authoritative; NaN until the CGs are built)
params     trainable parameters of *our* CG (NaN until the CGs are built)
provenance one-line :meth:`Provenance.label` of the row's label
extras     optional: ``label_seed0..`` per-seed labels, ``zc_<name>`` zero-cost proxy scores,
           ``src_flops`` / ``src_params`` (the source's own numbers), anything else a source gives
========== ==================================================================================

CGs are built lazily (:attr:`ArchDataset.cgs`) and kept in a compact :class:`CGStore`; a
cold build is saved to ``engine.paths.cache_dir()/data`` so the next load is fast.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.cgstore import STORE_VERSION, CGStore, CGStoreBuilder
from engine.data.provenance import Provenance
from engine.graphs.cg import CG

CORE_COLUMNS = ("id", "family", "spec", "label", "flops", "params", "provenance")
#: CGs built per call of the family builder / family CG cache (bounds the full CG objects alive at
#: once during a cold build; the cache call is larger so it can build in worker processes)
BUILD_CHUNK = 256
CACHE_CHUNK = 2048

Callback = Callable[[str, int, int, dict], None]


def _notify(callback: Callback | None, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
    if callback is not None:
        callback(stage, step, total, metrics or {})


def decode_spec(family: str, text: Any) -> Any:
    """Normalised spec of ``family`` from its text (``Family.spec_text``, ``Family.canonical`` or
    any accepted encoding): the family's own text format (e.g. an NB-201 arch string) or JSON.
    """
    from engine.families import SpecError, get

    fam = get(family)
    try:
        return fam.validate(text)
    except (SpecError, ValueError, TypeError) as first:
        if isinstance(text, str):
            try:
                decoded = json.loads(text)
            except ValueError:
                raise first from None
            return fam.validate(decoded)
        raise


class ArchDataset:
    """Labelled architectures (see module docstring).

    Build one with a source (``engine.data.load_default``, ``load_shared``, ``parse_table``...)
    or :meth:`from_specs` / :meth:`from_cgs`.
    """

    def __init__(self, name: str, frame: pd.DataFrame, provenance: Provenance, *,
                 specs: Sequence[Any] | None = None, store: CGStore | None = None, location: str = "",
                 provenances: dict[str, Provenance] | None = None, cg_options: dict[str, Any] | None = None
                 ) -> None:
        missing = [c for c in ("id", "family", "spec", "label") if c not in frame.columns]
        if missing:
            raise ValueError(f"dataset frame lacks required column(s) {missing}")
        frame = frame.reset_index(drop=True)
        for col in ("flops", "params"):
            if col not in frame.columns:
                frame[col] = np.nan
        frame["label"] = pd.to_numeric(frame["label"], errors="coerce").astype(float)
        if "provenance" not in frame.columns:
            frame["provenance"] = provenance.label()
        frame["provenance"] = frame["provenance"].astype("category")
        order = [c for c in CORE_COLUMNS] + [c for c in frame.columns if c not in CORE_COLUMNS]
        self.frame: pd.DataFrame = frame[order]
        self.name = name
        self.provenance = provenance
        self.provenances: dict[str, Provenance] = dict(provenances or {provenance.label(): provenance})
        self.location = location
        #: keyword arguments for the family's ``to_cg`` (e.g. NB-201's CIFAR-100 head ``num_classes=100``)
        self.cg_options: dict[str, Any] = dict(cg_options or {})
        self._specs: list[Any] | None = list(specs) if specs is not None else None
        if self._specs is not None and len(self._specs) != len(frame):
            raise ValueError(f"{len(self._specs)} specs for {len(frame)} rows")
        self._store: CGStore | None = None
        if store is not None:
            self._attach_store(store)
        self.frame.attrs["provenance"] = provenance.to_dict()
        self.frame.attrs["dataset"] = name

    # --- constructors --------------------------------------------------------------------------------
    @classmethod
    def from_specs(cls, name: str, family: str, specs: Sequence[Any], labels: Sequence[float] | None,
                   provenance: Provenance, *, ids: Sequence[Any] | None = None,
                   extras: dict[str, Sequence[Any]] | None = None, location: str = "",
                   normalised: bool = False, cg_options: dict[str, Any] | None = None) -> ArchDataset:
        """Rows from family specs (validated here unless ``normalised``; a bad spec raises
        ``SpecError`` naming its row — uploads use :mod:`engine.data.uploads` for per-row errors)."""
        from engine.families import SpecError, get

        fam = get(family)
        norm = []
        for i, s in enumerate(specs):
            try:
                norm.append(s if normalised else fam.validate(s))
            except (SpecError, ValueError) as exc:
                raise SpecError(f"{name}: row {i}: {exc}") from None
        n = len(norm)
        frame = pd.DataFrame({
            "id": [str(v) for v in ids] if ids is not None else [str(i) for i in range(n)],
            "family": fam.name,
            "spec": [fam.spec_text(v, normalised=True) for v in norm],
            "label": np.asarray(labels, dtype=float) if labels is not None else np.full(n, np.nan),
        })
        for key, col in (extras or {}).items():
            frame[key] = list(col)
        return cls(name, frame, provenance, specs=norm, location=location, cg_options=cg_options)

    @classmethod
    def from_cgs(cls, name: str, cgs: Sequence[CG] | CGStore, labels: Sequence[float] | None,
                 provenance: Provenance, *, family: str | Sequence[str] = "custom",
                 ids: Sequence[Any] | None = None, extras: dict[str, Sequence[Any]] | None = None,
                 location: str = "") -> ArchDataset:
        """Rows that carry their CGs directly (imported graphs, ONNX uploads); ``spec`` is None."""
        store = cgs if isinstance(cgs, CGStore) else CGStore.from_cgs(cgs)
        n = len(store)
        frame = pd.DataFrame({
            "id": [str(v) for v in ids] if ids is not None else [str(i) for i in range(n)],
            "family": [family] * n if isinstance(family, str) else list(family),
            "spec": [None] * n,
            "label": np.asarray(labels, dtype=float) if labels is not None else np.full(n, np.nan),
        })
        for key, col in (extras or {}).items():
            frame[key] = list(col)
        return cls(name, frame, provenance, specs=[None] * n, store=store, location=location)

    # --- basic access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        built = "built" if self._store is not None else "not built"
        return (f"ArchDataset({self.name!r}, family={self.family!r}, {len(self)} rows, "
                f"{self.num_labelled} labelled, CGs {built}; {self.provenance.label()})")

    @property
    def family(self) -> str:
        fams = self.frame["family"].unique().tolist() if len(self.frame) else []
        return fams[0] if len(fams) == 1 else ("mixed" if fams else "none")

    @property
    def families(self) -> list[str]:
        return self.frame["family"].unique().tolist()

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=float)

    @property
    def num_labelled(self) -> int:
        return int(np.isfinite(self.labels).sum())

    @property
    def specs(self) -> list[Any]:
        """Normalised specs (None for CG-only rows), decoded from ``frame.spec`` on first use."""
        if self._specs is None:
            self._specs = [None if (s is None or (isinstance(s, float) and math.isnan(s))) else decode_spec(f, s)
                           for f, s in zip(self.frame["family"], self.frame["spec"])]
        return self._specs

    @property
    def cgs_built(self) -> bool:
        return self._store is not None

    @property
    def cgs(self) -> CGStore:
        """The rows' CGs as a compact read-only sequence (built on first access)."""
        if self._store is None:
            self.build_cgs()
        assert self._store is not None
        return self._store

    def cg(self, i: int) -> CG:
        return self.cgs[i]

    # --- CG construction -----------------------------------------------------------------------------
    def build_cgs(self, callback: Callback | None = None, cache: bool = True) -> CGStore:
        """Build (or load from the on-disk cache) every row's CG and fill ``flops`` / ``params``.

        ``callback(stage, step, total, metrics)`` reports progress (stage ``"cgs"``).
        """
        if self._store is not None:
            return self._store
        specs = self.specs
        fams = self.frame["family"].tolist()
        if any(s is None for s in specs):
            bad = next(i for i, s in enumerate(specs) if s is None)
            raise ValueError(f"{self.name}: row {bad} has neither a spec nor a CG")
        path = _store_cache_path(fams, self.frame["spec"].tolist(), self.cg_options) if cache else None
        store = None
        if path is not None and path.exists():
            try:
                store = CGStore.load(path)
                if len(store) != len(self):
                    store = None
            except ValueError:
                store = None
        if store is None:
            store = build_store(fams, specs, callback, options=self.cg_options)
            if path is not None:
                try:
                    store.save(path)
                except OSError:  # a read-only cache must not break loading
                    pass
        else:
            _notify(callback, "cgs", len(self), len(self), {"cached": 1})
        self._attach_store(store)
        return store

    def _attach_store(self, store: CGStore) -> None:
        if len(store) != len(self.frame):
            raise ValueError(f"{len(store)} CGs for {len(self.frame)} rows")
        self._store = store
        self.frame["flops"] = store.flops.astype(float)
        self.frame["params"] = store.params.astype(float)

    # --- subsets ---------------------------------------------------------------------------------------
    def subset(self, idx: Iterable[int] | np.ndarray, name: str | None = None) -> ArchDataset:
        """Rows ``idx`` (positions, in that order; a boolean mask is accepted too)."""
        idx = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx)
        if idx.dtype == bool:
            if len(idx) != len(self):
                raise ValueError(f"mask has {len(idx)} entries for {len(self)} rows")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row indices must lie in 0..{len(self) - 1}")
        frame = self.frame.iloc[idx].reset_index(drop=True).copy()
        frame["provenance"] = frame["provenance"].astype(str)
        specs = [self._specs[i] for i in idx.tolist()] if self._specs is not None else None
        store = self._store.take(idx) if self._store is not None else None
        provs = {k: v for k, v in self.provenances.items() if k in set(frame["provenance"])} or self.provenances
        return ArchDataset(name or self.name, frame, self.provenance, specs=specs, store=store,
                           location=self.location, provenances=provs, cg_options=self.cg_options)

    def canonical_specs(self) -> list[str | None]:
        """Each row's ``Family.canonical`` form (two numberings of one NB-101 cell share it; the
        ``spec`` column keeps the given one), None for CG-only rows."""
        from engine.families import get

        return [get(f).canonical(spec) if spec is not None else None for f, spec in zip(self.frame["family"], self.specs)]

    def identity_keys(self) -> list[str]:
        """One key per row, equal for rows holding the same architecture: ``family|canonical
        spec`` (:meth:`canonical_specs`), or ``family|id:<id>`` for CG-only rows."""
        return [f"{f}|{c}" if c is not None else f"{f}|id:{rid}"
                for f, c, rid in zip(self.frame["family"], self.canonical_specs(), self.frame["id"])]

    def labelled(self) -> ArchDataset:
        """Rows whose label is a finite number."""
        return self.subset(np.flatnonzero(np.isfinite(self.labels)))

    def split(self, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)
              ) -> tuple[ArchDataset, ArchDataset, ArchDataset]:
        """Deterministic train / validation / test split.

        Rows are grouped by ``(family, spec)`` (rows without a spec by ``id``) and groups are
        ordered by a hash of ``(seed, group)``, so a row's split does not depend on the order of
        the rows nor on the platform, and repeated architectures (a benchmark's duplicate
        entries) never straddle two splits.  Validation and test take groups until they hold
        ``round(fraction * n)`` rows (one group may overshoot by its size - 1); train takes the rest.
        """
        fr = [float(f) for f in fractions]
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
        n = len(self)
        members: dict[str, list[int]] = {}
        for i, key in enumerate(self.identity_keys()):
            members.setdefault(key, []).append(i)
        order = sorted(members, key=lambda k: hashlib.blake2b(f"{seed}|{k}".encode(), digest_size=8).digest())
        n_val, n_test = int(round(fr[1] * n)), int(round(fr[2] * n))
        parts: tuple[list[int], list[int], list[int]] = ([], [], [])
        for key in order:
            rows = members[key]
            if len(parts[0]) < n_val:
                parts[0].extend(rows)
            elif len(parts[1]) < n_test:
                parts[1].extend(rows)
            else:
                parts[2].extend(rows)
        val, test, train = (np.array(p, dtype=np.int64) for p in parts)
        return (self.subset(np.sort(train), f"{self.name}/train"), self.subset(np.sort(val), f"{self.name}/val"),
                self.subset(np.sort(test), f"{self.name}/test"))

    @staticmethod
    def concat(datasets: Sequence[ArchDataset], name: str | None = None) -> ArchDataset:
        """Rows of several datasets; each row keeps its own provenance (``frame.provenance``)."""
        datasets = list(datasets)
        if not datasets:
            raise ValueError("concat needs at least one dataset")
        frames = []
        for d in datasets:
            f = d.frame.copy()
            f["provenance"] = f["provenance"].astype(str)
            frames.append(f)
        frame = pd.concat(frames, ignore_index=True, sort=False)
        provs: dict[str, Provenance] = {}
        for d in datasets:
            provs.update(d.provenances)
        if len(provs) == 1:
            prov = next(iter(provs.values()))
        else:
            prov = Provenance(dataset="mixed", metric="accuracy", split="mixed", source="several sources",
                              notes="rows carry their own provenance (column 'provenance'): "
                                    + " | ".join(provs))
        specs = [s for d in datasets for s in (d._specs if d._specs is not None else [None] * len(d))]
        have_specs = all(d._specs is not None for d in datasets)
        options = [d.cg_options for d in datasets]
        if all(d._store is not None for d in datasets):
            store = CGStore.concat([d._store for d in datasets])  # type: ignore[misc]
        elif any(d._store is not None for d in datasets) or any(o != options[0] for o in options):
            store = CGStore.concat([d.cgs for d in datasets])  # parts build their own CGs (own options)
        else:
            store = None
        return ArchDataset(name or "+".join(d.name for d in datasets), frame, prov,
                           specs=specs if have_specs else None, store=store,
                           location="; ".join(dict.fromkeys(d.location for d in datasets if d.location)),
                           provenances=provs, cg_options=options[0] if store is None else None)

    # --- conversions -----------------------------------------------------------------------------------
    def to_pyg(self, y_scale: float = 1.0, callback: Callback | None = None) -> list:
        """``torch_geometric.data.Data`` per row (``CG.to_pyg``), ``y = label * y_scale`` when
        labelled (labels are %, so ``y_scale=0.01`` gives the authors' fractions), plus
        ``row`` (position in this dataset)."""
        import torch

        store = self.cgs
        labels = self.labels
        out = []
        n = len(self)
        for i in range(n):
            lab = labels[i]
            data = store.get(i).to_pyg(y=float(lab) * y_scale if np.isfinite(lab) else None)
            data.row = torch.tensor([i], dtype=torch.long)
            out.append(data)
            if callback is not None and (i % 500 == 0 or i == n - 1):
                _notify(callback, "pyg", i + 1, n)
        return out

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        """Metadata (name, family, count, provenance, location, columns) for reports and
        checkpoints; ``rows=True`` adds the frame records (and CG JSON for CG-only rows)."""
        d: dict[str, Any] = {
            "name": self.name, "family": self.family, "families": self.families, "count": len(self),
            "labelled": self.num_labelled, "provenance": self.provenance.to_dict(),
            "provenances": [p.to_dict() for p in self.provenances.values()],
            "location": self.location, "columns": list(self.frame.columns), "cg_options": self.cg_options,
        }
        if rows:
            frame = self.frame.copy()
            frame["provenance"] = frame["provenance"].astype(str)
            recs = json.loads(frame.to_json(orient="records"))
            if self.frame["spec"].isna().any():
                store = self.cgs
                for i, rec in enumerate(recs):
                    if rec.get("spec") is None:
                        rec["cg"] = store.get(i).to_dict()
            d["rows"] = recs
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchDataset:
        """Inverse of ``to_dict(rows=True)``."""
        if not isinstance(data, dict) or "rows" not in data:
            raise ValueError("dataset dict needs 'rows' (write it with to_dict(rows=True))")
        provs = {p["label"]: Provenance.from_dict(p) for p in data.get("provenances", [])}
        prov = Provenance.from_dict(data["provenance"])
        rows = data["rows"]
        cg_rows = [r.get("cg") for r in rows]
        frame = pd.DataFrame([{k: v for k, v in r.items() if k != "cg"} for r in rows])
        if len(frame) == 0:
            frame = pd.DataFrame(columns=list(CORE_COLUMNS))
        store = None
        if any(c is not None for c in cg_rows):
            from engine.families import get

            opts = data.get("cg_options") or {}
            cgs = [CG.from_dict(c) if c is not None else get(f).to_cg(decode_spec(f, s), **opts)
                   for c, f, s in zip(cg_rows, frame["family"], frame["spec"])]
            store = CGStore.from_cgs(cgs)
        return cls(data.get("name", "dataset"), frame, prov, store=store, location=data.get("location", ""),
                   provenances=provs or None, cg_options=data.get("cg_options"))


# --- building CGs ------------------------------------------------------------------------------------

def _family_cgs(family: str, specs: list[Any], callback: Callback | None,
                options: dict[str, Any] | None = None) -> list[CG]:
    """CGs of ``specs`` through the family CG cache (directly when ``to_cg`` options are needed:
    the cache keys plain specs)."""
    from engine.families import get
    from engine.families.cache import cached_cgs

    if not options:
        return list(cached_cgs(family, specs, callback))
    fam = get(family)
    return [fam.to_cg(s, **(options or {})) for s in specs]


def build_store(families: Sequence[str], specs: Sequence[Any], callback: Callback | None = None,
                chunk: int = BUILD_CHUNK, options: dict[str, Any] | None = None) -> CGStore:
    """A :class:`CGStore` of ``families[i]``'s CG of ``specs[i]``, built ``chunk`` at a time so
    only ``chunk`` full CG objects are alive at once."""
    n = len(specs)
    builder = CGStoreBuilder()
    i = 0
    if not options:
        chunk = max(chunk, CACHE_CHUNK)
    _notify(callback, "cgs", 0, n)
    while i < n:
        fam = families[i]
        j = i
        while j < n and j - i < chunk and families[j] == fam:
            j += 1
        for cg in _family_cgs(fam, list(specs[i:j]), None, options):
            builder.add(cg)
        i = j
        _notify(callback, "cgs", i, n)
    return builder.build()


def _source_fingerprint() -> str:
    """Hash of the code that decides what a family CG looks like: every family module and the
    CG core (``engine/graphs/cg.py``, ``ops.py``), so an edited builder never reads stale CGs."""
    import engine.families
    import engine.graphs

    h = hashlib.sha256(f"store{STORE_VERSION}".encode())
    graphs = Path(engine.graphs.__file__).parent
    paths = sorted(Path(engine.families.__file__).parent.glob("*.py")) + [graphs / "cg.py", graphs / "ops.py"]
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _store_cache_path(families: Sequence[str], canon_specs: Sequence[Any],
                      options: dict[str, Any] | None = None) -> Path | None:
    from engine.paths import cache_dir

    try:
        h = hashlib.sha256(_source_fingerprint().encode())
        h.update(json.dumps(options or {}, sort_keys=True).encode())
        for f, s in zip(families, canon_specs):
            h.update(f"{f}\x1f{s}\x1e".encode())
        fams = "-".join(sorted(set(families)))[:40] or "empty"
        return cache_dir() / "data" / f"cgs-{fams}-{len(canon_specs)}-{h.hexdigest()[:20]}.npz"
    except OSError:
        return None
