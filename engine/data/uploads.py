"""User uploads: CSV / JSONL tables of labelled architectures, and folders of ONNX files.

Every valid row loads; every bad row is reported as a :class:`RowError` (row, field, reason)
and nothing is dropped silently.  User data is never unpickled.

Table format
------------
One architecture per row, columns (names are case-insensitive):

* ``family``: a registered family (``engine.families.names()``); optional for ``cg`` rows
  (default ``"custom"``) or when ``parse_table(..., family=...)`` gives a default;
* ``spec``: the family's spec (text; JSON text for list/dict specs; in JSONL any JSON value), or
* ``cg``: a CG JSON object (or JSON text) as written by ``CG.to_json()``;
* the label column, auto-detected as the first of :data:`LABEL_COLUMNS` present (or named with
  ``label_column=``).  An empty cell means "unlabelled";
* optional ``id``; ``flops`` / ``params`` (kept as ``src_flops`` / ``src_params``);
  ``zc_*`` / ``label_seed*`` numeric extras; any other column is kept as text;
* optional constant ``dataset`` / ``split`` / ``epochs`` / ``metric`` columns fill the provenance.

Row numbers
-----------
Rows are numbered as the lines of the file a user sees in an editor: in a CSV the header is
row 1 and the first data row is row 2; in JSONL the first line is row 1.

Label scale (``label_scale="auto"``)
-----------------------------------
Labels are accuracy in percent.  If **every** label of the file lies in [0, 1] the column is
read as fractions and multiplied by 100 (a warning says so); otherwise values are percent and
must lie in [0, 100].  Pass ``label_scale="percent"`` or ``"fraction"`` to decide explicitly.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from engine.data.cgstore import CGStore
from engine.data.dataset import CORE_COLUMNS, ArchDataset, build_store
from engine.data.provenance import Provenance
from engine.graphs.cg import CG

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_ROWS = 100_000
MAX_ONNX_FILES = 2_000
MAX_ONNX_BYTES = 256 * 1024 * 1024
MAX_ONNX_TOTAL_BYTES = 1024 * 1024 * 1024
#: label column names tried in order (case-insensitive)
LABEL_COLUMNS = ("label", "accuracy", "acc", "val_acc", "test_acc", "val_accuracy", "test_accuracy")
_FILE_COLUMNS = ("file", "filename", "onnx", "path", "name")
_NUMERIC_PREFIXES = ("zc_", "label_seed")
_PROVENANCE_COLUMNS = ("dataset", "split", "epochs", "metric")
ROW_CONVENTION = "rows are numbered as lines of the file: in a CSV the header is row 1 and the first data row is row 2"


class UploadError(ValueError):
    """The whole upload is unusable (too large, undecodable, missing required columns)."""


@dataclass(frozen=True)
class RowError:
    """One rejected row: ``row`` as the user sees it (see :data:`ROW_CONVENTION`; None when a
    problem concerns a file rather than a row), the ``field`` (column) at fault and why."""

    row: int | None
    field: str
    reason: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        where += f"row {self.row}" if self.row is not None else "file"
        return f"{where}, field {self.field!r}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UploadResult:
    """The loaded rows (``dataset``), the rejected ones (``errors``) and notices (``warnings``)."""

    dataset: ArchDataset
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_frame(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.errors], columns=["row", "field", "reason", "file"])

    def summary(self) -> str:
        text = f"loaded {len(self.dataset)} of {self.rows_read} rows"
        if self.errors:
            text += f"; {len(self.errors)} problem(s) ({ROW_CONVENTION})"
        return text


# ------------------------------------------------------------------------------------------------
# reading tables
# ------------------------------------------------------------------------------------------------

def _decode(raw: bytes, filename: str) -> str:
    if len(raw) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{filename}: {len(raw):,} bytes exceeds the upload limit of {MAX_UPLOAD_BYTES:,} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"{filename}: not UTF-8 text (byte {exc.start}); save the table as UTF-8 CSV or JSONL"
                          ) from None


def _table_kind(text: str, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    head = text.lstrip()[:1]
    return {"{": "jsonl", "[": "json"}.get(head, "csv")


def _read_csv(text: str, filename: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[RowError]]:
    delim = "\t" if PurePath(filename).suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
        header = next(reader)
    except StopIteration:
        raise UploadError(f"{filename}: the file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise UploadError(f"{filename}: row 1: {exc}") from None
    cols = [h.strip().lower() for h in header]
    if len(set(cols)) != len(cols):
        dup = sorted({c for c in cols if cols.count(c) > 1})
        raise UploadError(f"{filename}: row 1 (header) repeats column(s) {dup}")
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    prev_line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(prev_line + 1, "", f"unreadable CSV row: {exc}"))
            prev_line = reader.line_num
            continue
        row_no = prev_line + 1
        prev_line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue  # blank line: not a data row
        if len(values) != len(cols):
            errors.append(RowError(row_no, "", f"has {len(values)} fields but the header has {len(cols)}"))
            continue
        rows.append((row_no, dict(zip(cols, values))))
    return cols, rows, errors


def _read_jsonl(text: str, filename: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[RowError]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    cols: dict[str, None] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            errors.append(RowError(line_no, "", f"not valid JSON ({exc.msg} at column {getattr(exc, 'colno', '?')})"))
            continue
        if not isinstance(obj, dict):
            errors.append(RowError(line_no, "", f"expected a JSON object per line, got {type(obj).__name__}"))
            continue
        obj = {str(k).strip().lower(): v for k, v in obj.items()}
        cols.update(dict.fromkeys(obj))
        rows.append((line_no, obj))
    return list(cols), rows, errors


def _read_json_array(text: str, filename: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[RowError]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UploadError(f"{filename}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise UploadError(f"{filename}: expected a JSON array of row objects (or JSONL, one object per line)")
    rows, errors, cols = [], [], {}
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            errors.append(RowError(i, "", f"expected an object, got {type(obj).__name__}"))
            continue
        obj = {str(k).strip().lower(): v for k, v in obj.items()}
        cols.update(dict.fromkeys(obj))
        rows.append((i, obj))
    return list(cols), rows, errors


# ------------------------------------------------------------------------------------------------
# cell parsing
# ------------------------------------------------------------------------------------------------

def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _number(v: Any) -> float:
    """Finite float from a cell; ``ValueError`` with a user-facing reason otherwise."""
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    if isinstance(v, (int, float)):
        x = float(v)
    else:
        s = str(v).strip()
        try:  # a trailing "%" is allowed ("93.2%" is percent already)
            x = float(s.removesuffix("%").strip())
        except ValueError:
            raise ValueError(f"{s[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


def _cg_value(value: Any) -> CG:
    from engine.graphs.cg import load_json

    if isinstance(value, dict):
        return CG.from_dict(value, source="cg")
    if isinstance(value, (str, bytes)):
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and not text.startswith("{"):
            raise ValueError("expected a CG JSON object (text starting with '{')")
        return load_json(text)
    raise ValueError(f"expected a CG JSON object, got {type(value).__name__}")


def _label_column(cols: list[str], wanted: str | None, filename: str) -> str | None:
    if wanted is not None:
        key = wanted.strip().lower()
        if key not in cols:
            raise UploadError(f"{filename}: label column {wanted!r} not found; columns are {cols}")
        return key
    return next((c for c in LABEL_COLUMNS if c in cols), None)


def _metric_of(col: str | None) -> str:
    if col is None:
        return "no label"
    if col.startswith("val"):
        return "validation accuracy"
    if col.startswith("test"):
        return "test accuracy"
    return "accuracy"


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------

def parse_table(raw: bytes | str, filename: str = "upload.csv", *, family: str | None = None,
                label_column: str | None = None, label_scale: str = "auto",
                provenance: Provenance | None = None, name: str | None = None,
                build_cgs: bool = True, labels: bool = True, allow_duplicates: bool = False) -> UploadResult:
    """Parse an uploaded CSV / JSONL / JSON-array table (see module docstring).

    ``labels=False`` reads architectures only: label columns are neither read nor checked (for
    ``python -m engine predict``, where a bad label must not reject an architecture).

    Raises :class:`UploadError` only when the whole file is unusable; row problems become
    ``result.errors``.  ``build_cgs`` builds the spec rows' CGs now (rows with a ``cg`` cell
    always carry theirs).  A row repeating an earlier row's architecture is an error unless
    ``allow_duplicates`` (``predict`` scores every id it is given, as for JSONL).
    """
    from engine.families import get

    if label_scale not in ("auto", "percent", "fraction"):
        raise ValueError(f"label_scale must be 'auto', 'percent' or 'fraction', got {label_scale!r}")
    text = _decode(raw.encode() if isinstance(raw, str) else raw, filename)
    kind = _table_kind(text, filename)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_json_array}[kind]
    cols, rows, errors = reader(text, filename)
    warnings: list[str] = []
    if not rows and not errors:
        raise UploadError(f"{filename}: no data rows")
    if "spec" not in cols and "cg" not in cols:
        hint = ""
        if file_column(cols) is not None or _label_column(cols, None, filename) is not None:
            hint = ("; labels of ONNX networks go in a CSV with 'file' and 'label' columns, uploaded together with "
                    "the .onnx files (or zipped with them)")
        raise UploadError(f"{filename}: needs a 'spec' column (with 'family') or a 'cg' column; columns are {cols}"
                          + hint)
    if "spec" in cols and "family" not in cols and family is None:
        raise UploadError(f"{filename}: a 'spec' column needs a 'family' column (or a default family)")
    if len(rows) > MAX_ROWS:
        first_cut = rows[MAX_ROWS][0]
        errors.append(RowError(first_cut, "", f"row limit of {MAX_ROWS:,} reached: this row and the "
                                              f"{len(rows) - MAX_ROWS - 1:,} after it were not loaded"))
        rows = rows[:MAX_ROWS]
    rows_read = len(rows) + sum(1 for e in errors if e.row is not None)
    lab_col = _label_column(cols, label_column, filename) if labels else None
    if lab_col is None and labels:
        warnings.append(f"no label column (looked for {', '.join(LABEL_COLUMNS)}): rows load unlabelled")
    ignored = () if labels else (*LABEL_COLUMNS, *([label_column.strip().lower()] if label_column else []))
    extra_cols = [c for c in cols if c not in ("family", "spec", "cg", "id", lab_col, *ignored)]

    candidates: list[dict[str, Any]] = []
    for row_no, rec in rows:
        row_errors: list[RowError] = []
        fam_name = rec.get("family")
        fam_name = family if _blank(fam_name) else str(fam_name).strip()
        spec_cell, cg_cell = rec.get("spec"), rec.get("cg")
        out: dict[str, Any] = {"row": row_no, "extras": {}}
        if not _blank(spec_cell):
            if fam_name is None:
                row_errors.append(RowError(row_no, "family", "empty; a spec needs its family"))
            else:
                try:
                    fam = get(fam_name)
                except KeyError as exc:
                    row_errors.append(RowError(row_no, "family", str(exc).strip("\"'")))
                else:
                    try:
                        spec = fam.parse(spec_cell)
                        out.update(family=fam.name, spec=spec, canon=fam.canonical(spec), cg=None)
                    except Exception as exc:  # noqa: BLE001 - a family's error about one row stays that row's
                        row_errors.append(RowError(row_no, "spec", f"invalid {fam.name} spec: {exc}"))
        elif not _blank(cg_cell):
            try:
                cg = _cg_value(cg_cell)
                out.update(family=fam_name or "custom", spec=None, canon=None, cg=cg)
            except Exception as exc:  # noqa: BLE001 - CGError and any malformed structure
                row_errors.append(RowError(row_no, "cg", f"invalid CG: {exc}"))
        else:
            row_errors.append(RowError(row_no, "spec" if "spec" in cols else "cg",
                                       "empty; each row needs a spec (or a cg)"))
        # label
        label = math.nan
        if lab_col is not None and not _blank(rec.get(lab_col)):
            try:
                label = _number(rec.get(lab_col))
                if label < 0:
                    raise ValueError(f"{label:g} is negative; accuracy must lie in 0-100 (percent) or 0-1")
            except ValueError as exc:
                row_errors.append(RowError(row_no, lab_col, str(exc)))
        out["label"] = label
        # numeric extras
        for c in extra_cols:
            v = rec.get(c)
            if c in ("flops", "params") or c.startswith(_NUMERIC_PREFIXES):
                if _blank(v):
                    out["extras"][c] = math.nan
                else:
                    try:
                        out["extras"][c] = _number(v)
                    except ValueError as exc:
                        row_errors.append(RowError(row_no, c, str(exc)))
            else:
                out["extras"][c] = v if (v is None or isinstance(v, (str, int, float, bool))) else json.dumps(v)
        rid = rec.get("id")
        out["id"] = str(row_no) if _blank(rid) else str(rid).strip()
        if row_errors:
            errors.extend(row_errors)
        else:
            candidates.append(out)

    # label scale, decided over the whole file, then range, id and duplicate checks in row order
    labels = np.array([g["label"] for g in candidates], dtype=float)
    finite = labels[np.isfinite(labels)]
    fraction, scale_note, scale_warnings = _decide_scale(finite, label_scale)
    warnings.extend(scale_warnings)
    limit = 1.0 if fraction else 100.0
    good: list[dict[str, Any]] = []
    seen_spec: dict[tuple[str, str], int] = {}
    seen_fp: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    for g in candidates:
        row_no, lab = g["row"], g["label"]
        if np.isfinite(lab) and lab > limit:
            unit = "0-1 (fraction)" if label_scale == "fraction" else "0-100 (percent)"
            errors.append(RowError(row_no, lab_col or "label", f"{lab:g} is outside {unit}"))
            continue
        if g["id"] in seen_id:
            errors.append(RowError(row_no, "id", f"id {g['id']!r} already used by row {seen_id[g['id']]}"))
            continue
        if allow_duplicates:
            pass
        elif g.get("canon") is not None:
            key = (g["family"], g["canon"])
            if key in seen_spec:
                errors.append(RowError(row_no, "spec", f"duplicate architecture: same {g['family']} spec "
                                                       f"as row {seen_spec[key]} (the first row is kept)"))
                continue
            seen_spec[key] = row_no
        else:
            fp = g["cg"].fingerprint()
            if fp in seen_fp:
                errors.append(RowError(row_no, "cg", f"duplicate architecture: same graph as row {seen_fp[fp]} "
                                                     "(the first row is kept)"))
                continue
            seen_fp[fp] = row_no
        seen_id[g["id"]] = row_no
        if np.isfinite(lab) and fraction:
            g["label"] = lab * 100.0
        good.append(g)
    unlabelled = sum(1 for g in good if not np.isfinite(g["label"]))
    if lab_col is not None and unlabelled:
        warnings.append(f"{unlabelled} row(s) have an empty label and load unlabelled")

    prov = provenance or _upload_provenance(filename, lab_col, good, scale_note)
    dataset = _assemble(name or PurePath(filename).stem, good, extra_cols, prov, filename, build_cgs)
    errors.sort(key=lambda e: (e.row is None, e.row or 0))
    return UploadResult(dataset, errors, warnings, rows_read=rows_read)


def _decide_scale(finite: np.ndarray, label_scale: str) -> tuple[bool, str, list[str]]:
    """``(fraction?, provenance note, warnings)`` for the file's finite labels (module docstring)."""
    fraction = label_scale == "fraction" or (label_scale == "auto" and finite.size > 0 and finite.max() <= 1.0)
    note, warnings = "", []
    if fraction and finite.size:
        note = "labels given as fractions (0-1) were multiplied by 100"
        if label_scale == "auto":
            warnings.append("all labels lie in 0-1, so they were read as fractions and multiplied by 100; "
                            "pass label_scale='percent' if they really are percentages")
    elif label_scale == "auto" and finite.size and (finite <= 1.0).any():
        warnings.append(f"{int((finite <= 1.0).sum())} label(s) <= 1 were read as percent because other labels "
                        "exceed 1; check for mixed fraction / percent values")
    return fraction, note, warnings


def _upload_provenance(filename: str, lab_col: str | None, good: list[dict[str, Any]], scale_note: str) -> Provenance:
    fields: dict[str, Any] = {}
    varying = []
    for c in _PROVENANCE_COLUMNS:
        vals = {str(g["extras"][c]).strip() for g in good if not _blank(g["extras"].get(c))}
        if len(vals) == 1:
            fields[c] = vals.pop()
        elif len(vals) > 1:
            varying.append(c)
    epochs = None
    if "epochs" in fields:
        try:
            epochs = int(float(fields["epochs"]))
        except ValueError:
            varying.append("epochs")
    metric = fields.get("metric") or _metric_of(lab_col)
    split = fields.get("split") or {"validation accuracy": "validation", "test accuracy": "test"}.get(metric, "unknown")
    notes = [f"label column {lab_col!r}" if lab_col else "no label column"]
    if scale_note:
        notes.append(scale_note)
    if varying:
        notes.append(f"{', '.join(varying)} vary per row (see the columns)")
    if "dataset" not in fields:
        notes.append("dataset, split and epochs not stated in the upload")
    return Provenance(dataset=fields.get("dataset", "unknown"), metric=metric, split=split, epochs=epochs,
                      source=f"user upload {PurePath(filename).name}", notes="; ".join(notes))


def _assemble(name: str, good: list[dict[str, Any]], extra_cols: list[str], prov: Provenance, location: str,
              build_cgs: bool) -> ArchDataset:
    from engine.families import get

    n = len(good)
    frame = pd.DataFrame({
        "id": [g["id"] for g in good],
        "family": [g["family"] for g in good],
        # the spec as given (Family.spec_text), so it rebuilds the network scored; "canon" only keys duplicates
        "spec": [get(g["family"]).spec_text(g["spec"]) if g["spec"] is not None else None for g in good],
        "label": np.array([g["label"] for g in good], dtype=float),
    })
    for c in extra_cols:
        target = {"flops": "src_flops", "params": "src_params"}.get(c, c)
        if target in CORE_COLUMNS:
            target = f"user_{target}"
        frame[target] = [g["extras"].get(c) for g in good]
    specs = [g["spec"] for g in good]
    given = [g["cg"] for g in good]
    store = None
    if any(cg is not None for cg in given):
        # rows with a CG carry it; spec rows of the same upload get theirs built now (in order)
        spec_idx = [i for i, cg in enumerate(given) if cg is None]
        built = build_store([good[i]["family"] for i in spec_idx], [specs[i] for i in spec_idx]) if spec_idx else None
        cgs: list[CG] = []
        k = 0
        for cg in given:
            if cg is None:
                assert built is not None
                cgs.append(built.get(k))
                k += 1
            else:
                cgs.append(cg)
        store = CGStore.from_cgs(cgs)
    ds = ArchDataset(name, frame, prov, specs=specs if n else [], store=store, location=location)
    if build_cgs and store is None and n:
        ds.build_cgs(cache=False)
    return ds


def _norm_path(value: Any) -> str:
    """A file path as written in a zip or a labels CSV: ``/`` separators, no ``.`` or empty parts."""
    parts = str(value).strip().replace("\\", "/").split("/")
    return "/".join(p for p in parts if p not in ("", "."))


def _display_names(files: dict[str, bytes]) -> dict[str, str]:
    """Each file's id: its base name, or its path when another file has the same base name."""
    paths = {f: _norm_path(f) or f for f in files}
    bases = [PurePath(p).name for p in paths.values()]
    out = {f: (PurePath(p).name if bases.count(PurePath(p).name) == 1 else p) for f, p in paths.items()}
    if len(set(out.values())) < len(out):  # paths equal once normalised ("a//x.onnx", "a/x.onnx"): as given
        out = {f: f for f in files}
    return out


def _matching_files(value: str, paths: dict[str, str]) -> list[str]:
    """The files (keys of ``paths``: key -> normalised path) a labels-CSV value names: the file with
    exactly that path, else every file whose path ends with it (a base name, or a path below a folder);
    a value without the ``.onnx`` suffix is also tried with it."""
    want = _norm_path(value)
    if not want:
        return []
    tries = [want] if want.lower().endswith(".onnx") else [want, want + ".onnx"]
    for v in tries:
        exact = [k for k, p in paths.items() if p == v]
        if exact:
            return exact
        below = [k for k, p in paths.items() if p.endswith("/" + v)]
        if below:
            return below
    return []


def file_column(cols: list[str]) -> str | None:
    """The column of a labels CSV that names the ONNX files: the first of :data:`_FILE_COLUMNS`, else
    ``id`` (the column ``python -m engine predict`` writes: the file name)."""
    return next((c for c in (*_FILE_COLUMNS, "id") if c in cols), None)


def is_onnx_labels_table(raw: bytes | str, filename: str) -> bool:
    """Whether a CSV reads as labels for ONNX files (a file / id column and a label column, no
    ``spec`` or ``cg`` column) rather than as a table of architectures."""
    if PurePath(filename).suffix.lower() != ".csv":
        return False
    try:
        text = _decode(raw.encode() if isinstance(raw, str) else raw, filename)
        header = next(csv.reader(io.StringIO(text)), [])
    except (UploadError, csv.Error):
        return False
    cols = [h.strip().lower() for h in header]
    return ("spec" not in cols and "cg" not in cols and file_column(cols) is not None
            and _label_column(cols, None, filename) is not None)


def onnx_batch(items: list[tuple[str, bytes]]) -> list[int]:
    """The items (file name, bytes) of one upload batch that belong together as one ONNX upload: its
    ``.onnx`` files and the CSVs that label them (:func:`is_onnx_labels_table`), when the batch has
    both; else ``[]``.  Read together (:func:`zip_files`), they load as a zip of those files would."""
    onnx = [i for i, (n, _) in enumerate(items) if n.lower().endswith(".onnx")]
    tables = [i for i, (n, raw) in enumerate(items) if is_onnx_labels_table(raw, n)]
    return sorted(onnx + tables) if onnx and tables else []


def zip_files(items: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``items`` (name, bytes), the same bytes for the same items (a fixed timestamp)."""
    import warnings
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a repeated name: the reader reports it
        for name, raw in items:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), raw)
    return buf.getvalue()


def parse_onnx_folder(files: dict[str, bytes], labels_csv: bytes | str | None = None, *,
                      labels_filename: str = "labels.csv", label_column: str | None = None,
                      label_scale: str = "auto", provenance: Provenance | None = None,
                      family: str = "onnx", name: str = "onnx_upload", callback=None) -> UploadResult:
    """ONNX files (path -> bytes; a path may have folders, as in a zip) plus an optional labels CSV
    with a file column (``file`` / ``filename`` / ``onnx`` / ``path`` / ``name``, or ``id`` when
    none of those is present) and a label column.

    A file-column value names a file by its path (``run1/net.onnx``), or by the end of its path
    (``net.onnx``, the base name) when exactly one file matches; the ``.onnx`` suffix may be left
    out.  A value matching several files is a row error listing them.  Each file's id is its base
    name, or its path when another file has the same base name.

    Each file becomes a CG (``engine.cg.from_onnx``); unreadable files, labels for files that
    were not uploaded, bad labels and duplicate graphs are reported; files without a label row
    load unlabelled (a warning says how many).  ``callback(stage, step, total, metrics)``
    reports progress over the files (``engine.train.callbacks``).
    """
    if len(files) > MAX_ONNX_FILES:
        raise UploadError(f"{len(files):,} files exceeds the limit of {MAX_ONNX_FILES:,} ONNX files per upload")
    total = sum(len(b) for b in files.values())
    if total > MAX_ONNX_TOTAL_BYTES:
        raise UploadError(f"the files total {total:,} bytes; the limit is {MAX_ONNX_TOTAL_BYTES:,}")
    errors: list[RowError] = []
    warnings: list[str] = []
    shown = _display_names(files)
    # labels
    by_file: dict[str, tuple[int, Any, dict[str, Any]]] = {}  # files key -> (row, label cell, record)
    lab_col = None
    if labels_csv is not None:
        text = _decode(labels_csv.encode() if isinstance(labels_csv, str) else labels_csv, labels_filename)
        cols, rows, errs = _read_csv(text, labels_filename)
        errors.extend(RowError(e.row, e.field, e.reason, labels_filename) for e in errs)
        fcol = file_column(cols)
        if fcol is None:
            raise UploadError(f"{labels_filename}: needs a file column (one of {', '.join(_FILE_COLUMNS)}, or id) "
                              f"naming each ONNX file; columns are {cols}")
        lab_col = _label_column(cols, label_column, labels_filename)
        if lab_col is None:
            raise UploadError(f"{labels_filename}: no label column (looked for {', '.join(LABEL_COLUMNS)}); "
                              f"columns are {cols}")
        paths = {f: _norm_path(f) for f in files}
        for row_no, rec in rows:
            value = str(rec[fcol]).strip()
            hits = _matching_files(value, paths)
            if not hits:
                errors.append(RowError(row_no, fcol, f"no uploaded ONNX file named {value!r}", labels_filename))
                continue
            if len(hits) > 1:
                listed = sorted(paths[k] or k for k in hits)
                errors.append(RowError(row_no, fcol, f"{value!r} matches {len(hits)} files ("
                                       + ", ".join(listed[:5]) + (", …" if len(listed) > 5 else "")
                                       + "); give the path within the upload, e.g. " + repr(listed[0]),
                                       labels_filename))
                continue
            key = hits[0]
            if key in by_file:
                errors.append(RowError(row_no, fcol, f"{shown[key]!r} already labelled in row {by_file[key][0]}",
                                       labels_filename))
                continue
            by_file[key] = (row_no, rec.get(lab_col), rec)
    # graphs
    read: list[dict[str, Any]] = []
    for i, fname in enumerate(sorted(files)):
        if callback is not None:
            callback("import ONNX", i, len(files), {})
        base = shown[fname]
        raw = files[fname]
        row_no = by_file.get(fname, (None,))[0]
        if not fname.lower().endswith(".onnx"):
            errors.append(RowError(None, "file", "not an .onnx file", base))
            continue
        if len(raw) > MAX_ONNX_BYTES:
            errors.append(RowError(row_no, "file", f"{len(raw):,} bytes exceeds the per-file limit of "
                                                   f"{MAX_ONNX_BYTES:,}", base))
            continue
        try:
            cg = _onnx_to_cg(raw, base)
        except Exception as exc:  # any importer failure is this file's problem only
            errors.append(RowError(row_no, "file", f"could not import the ONNX model: {exc}", base))
            continue
        label = math.nan
        if fname in by_file and not _blank(by_file[fname][1]):
            try:
                label = _number(by_file[fname][1])
                if label < 0:
                    raise ValueError(f"{label:g} is negative; accuracy must lie in 0-100 (percent) or 0-1")
            except ValueError as exc:
                errors.append(RowError(row_no, lab_col or "label", str(exc), labels_filename))
                continue
        read.append({"file": base, "cg": cg, "label": label, "row": row_no, "fp": cg.fingerprint()})
    # files holding the same graph: the first labelled one is kept, else the first (path order)
    keeper: dict[str, dict[str, Any]] = {}
    for g in read:
        k = keeper.get(g["fp"])
        if k is None or (not np.isfinite(k["label"]) and np.isfinite(g["label"])):
            keeper[g["fp"]] = g
    good = [g for g in read if keeper[g["fp"]] is g]
    for g in read:
        if keeper[g["fp"]] is not g:
            k = keeper[g["fp"]]
            why = "the labelled file is kept" if np.isfinite(k["label"]) and not np.isfinite(g["label"]) else \
                "the first file is kept"
            errors.append(RowError(g["row"], "file", f"duplicate architecture: same graph as {k['file']!r} ({why})",
                                   g["file"]))
    unlabelled = sum(not np.isfinite(g["label"]) for g in good)
    if callback is not None:
        callback("import ONNX", len(files), len(files), {})
    labels = np.array([g["label"] for g in good], dtype=float)
    finite = labels[np.isfinite(labels)]
    fraction, scale_note, scale_warnings = _decide_scale(finite, label_scale)
    warnings.extend(scale_warnings)
    kept = []
    for g in good:
        lab = g["label"]
        if np.isfinite(lab) and lab > (1.0 if fraction else 100.0):
            errors.append(RowError(g["row"], lab_col or "label", f"{lab:g} is outside "
                                   + ("0-1 (fraction)" if fraction else "0-100 (percent)"), labels_filename))
            continue
        if fraction and np.isfinite(lab):
            g["label"] = lab * 100.0
        kept.append(g)
    if unlabelled:
        warnings.append(f"{unlabelled} ONNX file(s) have no label and load unlabelled")
    from engine.graphs.onnx_import import bn_folding_note

    note = bn_folding_note([g["cg"] for g in kept])
    if note:
        warnings.append(note)
    prov = provenance or Provenance(
        metric=_metric_of(lab_col), split="unknown", source=f"user upload {labels_filename if labels_csv else 'ONNX'}",
        notes="ONNX files converted to CGs; dataset, split and epochs not stated in the upload"
              + (f"; {scale_note}" if scale_note else ""))
    ds = ArchDataset.from_cgs(name, [g["cg"] for g in kept], [g["label"] for g in kept], prov, family=family,
                              ids=[g["file"] for g in kept], location="upload")
    errors.sort(key=lambda e: (e.row is None, e.row or 0, e.file))
    return UploadResult(ds, errors, warnings, rows_read=len(files))


@dataclass
class IdLabels:
    """Labels for architectures already loaded (``id -> accuracy %``), the rejected rows and notices."""

    labels: dict[str, float] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0

    def summary(self) -> str:
        text = f"{len(self.labels)} of {self.rows_read} label row(s) read"
        if self.errors:
            text += f"; {len(self.errors)} problem(s) ({ROW_CONVENTION})"
        return text


def parse_id_labels(raw: bytes | str, filename: str, known_ids, *, label_column: str | None = None,
                    label_scale: str = "auto") -> IdLabels:
    """A CSV of labels for architectures already loaded: an ``id`` column and a label column
    (the first of :data:`LABEL_COLUMNS`, or ``label_column``), read with the label-scale rule of
    :func:`parse_table` (module docstring).  Every bad row is a :class:`RowError`: an id not in
    ``known_ids``, a repeated id, an empty, non-numeric, negative or out-of-range label.

    ``known_ids``: the ids, or a mapping of every accepted name to its id (e.g. an uploaded
    network's file name, as ``engine predict`` writes it, to its workspace id); ``labels`` are keyed
    by id."""
    if label_scale not in ("auto", "percent", "fraction"):
        raise ValueError(f"label_scale must be 'auto', 'percent' or 'fraction', got {label_scale!r}")
    text = _decode(raw.encode() if isinstance(raw, str) else raw, filename)
    cols, rows, errs = _read_csv(text, filename)
    out = IdLabels(errors=[RowError(e.row, e.field, e.reason, filename) for e in errs],
                   rows_read=len(rows) + len(errs))
    if "id" not in cols:
        raise UploadError(f"{filename}: needs an 'id' column (the architecture ids of the workspace); columns are {cols}")
    lab_col = _label_column(cols, label_column, filename)
    if lab_col is None:
        raise UploadError(f"{filename}: no label column (looked for {', '.join(LABEL_COLUMNS)}); columns are {cols}")
    known = dict(known_ids) if isinstance(known_ids, dict) else {i: i for i in known_ids}
    first_row: dict[str, int] = {}
    good: list[tuple[int, str, float]] = []
    for row_no, rec in rows:
        given = str(rec["id"]).strip()
        arch = known.get(given)
        if arch is None:
            example = next(iter(known.values()), None)
            out.errors.append(RowError(row_no, "id", f"no architecture {given[:60]!r} in this workspace"
                                       + (f" (ids look like {example[:60]!r}; an uploaded network's file name "
                                          "works too when no other architecture has it)" if example else ""),
                                       filename))
            continue
        if arch in first_row:
            out.errors.append(RowError(row_no, "id", f"{arch!r} already labelled in row {first_row[arch]}", filename))
            continue
        first_row[arch] = row_no
        if _blank(rec[lab_col]):
            out.errors.append(RowError(row_no, lab_col, "empty label", filename))
            continue
        try:
            value = _number(rec[lab_col])
            if value < 0:
                raise ValueError(f"{value:g} is negative; accuracy must lie in 0-100 (percent) or 0-1")
        except ValueError as exc:
            out.errors.append(RowError(row_no, lab_col, str(exc), filename))
            continue
        good.append((row_no, arch, value))
    fraction, _note, warnings = _decide_scale(np.array([v for _, _, v in good], dtype=float), label_scale)
    out.warnings.extend(warnings)
    for row_no, arch, value in good:
        if value > (1.0 if fraction else 100.0):
            out.errors.append(RowError(row_no, lab_col, f"{value:g} is outside "
                                       + ("0-1 (fraction)" if fraction else "0-100 (percent)"), filename))
            continue
        out.labels[arch] = value * 100.0 if fraction else value
    out.errors.sort(key=lambda e: (e.row is None, e.row or 0))
    return out


def _onnx_to_cg(raw: bytes, name: str) -> CG:
    from engine.graphs.onnx_import import from_onnx

    cg = from_onnx(raw)
    if not cg.name:
        cg.name = name
    return cg


_TORCH_HINT = ("A PyTorch checkpoint holds weights, not the network's code, and is never unpickled here: export "
               "the model with torch.onnx.export(model, torch.randn(1, 3, 224, 224), 'model.onnx') and use the "
               ".onnx file (or call engine.cg.from_module(model, (1, 3, 224, 224)) in Python)")
_TF_HINT = "Convert the model to ONNX first (the tf2onnx package converts TensorFlow, Keras and TFLite models)"
_CONVERT_HINTS = {"pt": _TORCH_HINT, "pth": _TORCH_HINT, "ckpt": _TORCH_HINT, "bin": _TORCH_HINT,
                  "safetensors": _TORCH_HINT, "h5": _TF_HINT, "keras": _TF_HINT, "pb": _TF_HINT,
                  "tflite": _TF_HINT}


def conversion_hint(ext: str) -> str:
    """What to do with a model file of another framework (by extension, without the dot), or ""."""
    return _CONVERT_HINTS.get(ext.lower().lstrip("."), "")
