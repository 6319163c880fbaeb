"""``python -m engine predict``: predicted accuracy of architectures, written as CSV.

Input (``--input``):

* a JSONL file, one object per line: ``{"id": ..., "family": "nb201", "spec": ...}`` or
  ``{"id": ..., "cg": <CG JSON object>}`` (``id`` optional: the line number);
* an ``.onnx`` file, or a folder of ``.onnx`` files (id = file name);
* a ``.csv`` table in the upload format (:mod:`engine.data.uploads`: ``family`` + ``spec`` or a
  ``cg`` column, optional ``id``; a label column may be present and is not used);
* one CG file: a ``.json`` CG (as ``python -m engine cg --output`` writes it) or a GENNAPE-format
  ``.pkl`` / ``.json`` (id = the file name).

Output CSV columns, exactly: ``id, score, flops, params, cluster, membership_0 ...
membership_{C-1}``, then one column per ensemble member (``engine.model.config.MEMBERS``).
``score`` is the GENNAPE ensemble (higher = more accurate, in accuracy units relative to the
predicted set; see ``engine.model.ensemble``; with an in-domain ensemble, the architectures inside
the training domain are scored by its members, and the command says how many).  Because the
members are standardised on the predicted set, predict the architectures you want to rank
**together**; ``--reference FILE`` (the same formats as ``--input``) standardises them on a fixed
population instead, so that scores of separate calls with the same reference can be compared.
A single architecture without a reference gets the anchor member's prediction (the command
says so).  An invalid entry (a JSONL line, an ONNX file) stops the command with an error naming
it, and nothing is written; ``--skip-invalid`` predicts the valid entries and lists the others.  ``--novelty`` appends one more column, ``novelty``
(:mod:`engine.model.domain`: > 1 = outside the checkpoint's training domain, where the learned
members extrapolate), and prints how many architectures are outside.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli._args import check_output
from engine.train.callbacks import notify

HELP = "predict accuracy for architectures in a JSONL or CSV file, an .onnx file or a folder of them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="JSONL ({id, family, spec} or {id, cg}), CSV (family + spec or "
                                                      "cg columns), .onnx or a folder of them, or one CG .json / "
                                                      "GENNAPE .pkl file")
    parser.add_argument("--output", required=True, help="CSV file to write")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: assets/checkpoint)")
    parser.add_argument("--novelty", action="store_true",
                        help="append a `novelty` column (> 1 = outside the checkpoint's training domain)")
    parser.add_argument("--reference", default=None,
                        help="score against this fixed population (JSONL, CSV, .onnx or a folder, like --input) "
                             "instead of the predicted set: scores of calls with the same reference are comparable")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="predict the valid entries of --input and list the invalid ones (default: stop at the "
                             "first invalid entry and write nothing)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_predictor(checkpoint: str | None):
    from engine.model import load_default
    from engine.model.predictor import GennapePredictor

    return GennapePredictor.load(checkpoint) if checkpoint else load_default()


def _cg_from_record(rec: Any, where: str):
    from engine.graphs.cg import CG, CGError

    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    if "cg" in rec:
        raw = rec["cg"]
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: field 'cg' is not valid JSON ({exc})") from None
        try:
            return CG.from_dict(raw, source=f"{where}: field 'cg'")
        except CGError as exc:
            raise ValueError(str(exc)) from None
    if "family" in rec and "spec" in rec:
        from engine.families import get

        try:
            fam = get(str(rec["family"]))
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if exc.args else exc
            raise ValueError(f"{where}: field 'family': {msg}") from None
        try:
            return fam.to_cg(fam.parse(rec["spec"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{where}: field 'spec': {exc}") from None
    raise ValueError(f"{where}: needs 'cg' or both 'family' and 'spec' (keys: {sorted(rec)})")


class EntryError(ValueError):
    """One bad entry (a JSONL line, an ONNX file) of an otherwise readable input."""


def _entry_error(errors: list[str] | None, message: str) -> None:
    """Collect ``message`` when ``errors`` is a list (``--skip-invalid``), else raise it."""
    if errors is None:
        raise EntryError(message)
    errors.append(message)


def read_jsonl(path: Path, errors: list[str] | None = None, callback=None) -> tuple[list[str], list]:
    """``(ids, cgs)`` of a JSONL input; raises ``ValueError`` naming the file and line -- or, with
    an ``errors`` list, skips bad lines and repeated ids and appends one message per entry."""
    ids, cgs = [], []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    seen: dict[str, int] = {}
    entries = 0
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if lineno % 500 == 0:
            notify(callback, "read", lineno, len(lines))
        if not line.strip():
            continue
        entries += 1
        where = f"{path}: line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            _entry_error(errors, f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            cg = _cg_from_record(rec, where)
        except ValueError as exc:
            _entry_error(errors, str(exc))
            continue
        raw_id = rec.get("id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float)):
            _entry_error(errors, f"{where}: field 'id' must be a string or a number, got {json.dumps(raw_id)[:60]}")
            continue
        key = str(lineno if raw_id is None else raw_id)  # no id (or null): the line number
        if key in seen:
            _entry_error(errors, f"{where}: id {key!r} appears twice (entries {seen[key]} and {entries})")
            continue
        seen[key] = entries
        cgs.append(cg)
        ids.append(key)
    notify(callback, "read", len(lines), len(lines))
    if not cgs:
        raise ValueError(f"{path}: no architectures (empty file)" if not entries
                         else f"{path}: none of its {entries} entries is valid")
    return ids, cgs


def read_onnx(path: Path, errors: list[str] | None = None, callback=None) -> tuple[list[str], list]:
    from engine.cg import CGError, from_onnx

    files = sorted(path.glob("*.onnx")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path}: folder holds no .onnx files")
    ids, cgs = [], []
    for i, f in enumerate(files):
        notify(callback, "import ONNX", i, len(files))
        try:
            cgs.append(from_onnx(f))  # a path, not bytes: the file's bytes are freed once parsed
        except CGError as exc:  # the importer's message names the file
            _entry_error(errors, f"cannot import ONNX model: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - importer errors of any kind are input errors here
            _entry_error(errors, f"{f}: cannot import ONNX model ({exc})")
            continue
        ids.append(f.name)
    notify(callback, "import ONNX", len(files), len(files))
    if not cgs:
        raise ValueError(f"{path}: none of its {len(files)} ONNX file(s) could be imported")
    from engine.graphs.onnx_import import bn_folding_note

    note = bn_folding_note(cgs)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return ids, cgs


def read_csv(path: Path, errors: list[str] | None = None, callback=None) -> tuple[list[str], list]:
    """``(ids, cgs)`` of a CSV table in the upload format (:mod:`engine.data.uploads`: ``family`` +
    ``spec`` or ``cg`` columns, optional ``id``; label columns are ignored).  A bad
    row raises ``ValueError`` naming it -- or, with an ``errors`` list, is skipped and listed."""
    from engine.data.uploads import UploadError, parse_table
    from engine.graphs.cg import at_path

    try:
        result = parse_table(path.read_bytes(), path.name, labels=False, allow_duplicates=True)
    except UploadError as exc:  # its message starts with the file name: give the path instead
        raise ValueError(at_path(path, str(exc))) from None
    for e in result.errors:
        _entry_error(errors, f"{path}: {e}")
    if result.dataset is None or len(result.dataset) == 0:
        raise ValueError(f"{path}: none of its rows is valid")
    notify(callback, "read", 1, 1)
    ids = [str(v) for v in result.dataset.frame["id"]]
    return ids, list(result.dataset.cgs)


def read_input(path_str: str, errors: list[str] | None = None, callback=None) -> tuple[list[str], list]:
    """``(ids, cgs)`` of ``--input`` (see the module docstring); ``errors``: see :func:`read_jsonl`;
    ``callback``: progress (``engine.train.callbacks``)."""
    from engine.data.uploads import conversion_hint

    path = Path(path_str)
    if not path.exists():
        raise FileNotFoundError(f"{path}: input not found")
    hint = conversion_hint(path.suffix) if path.is_file() else ""
    if hint:
        raise ValueError(f"{path}: not an input format (JSONL, CSV, .onnx or a folder of them). {hint}")
    if path.is_dir() or path.suffix.lower() == ".onnx":
        return read_onnx(path, errors, callback)
    if path.suffix.lower() == ".csv":
        return read_csv(path, errors, callback)
    if _is_graph_file(path):
        return read_graph_file(path, callback)
    return read_jsonl(path, errors, callback)


def _is_graph_file(path: Path) -> bool:
    """A GENNAPE pickle, or a ``.json`` file holding one CG JSON object (as ``engine cg --output``
    and the app's downloads write, pretty-printed or not) rather than JSONL records."""
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        return True
    if suffix != ".json":
        return False
    try:
        whole = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(whole, dict) and not ({"cg", "family", "spec"} & set(whole))


def read_graph_file(path: Path, callback=None) -> tuple[list[str], list]:
    """``(ids, cgs)`` of one CG file (:func:`engine.cg.load_any`: CG JSON or a GENNAPE file; id =
    the file name, ``#i`` appended when a GENNAPE file holds several records)."""
    from engine.cg import load_any
    from engine.graphs.cg import CGError, at_path

    try:
        got = load_any(path)
    except CGError as exc:
        raise ValueError(at_path(path, str(exc))) from None
    cgs = got if isinstance(got, list) else [got]
    notify(callback, "read", 1, 1)
    ids = [path.name] if len(cgs) == 1 else [f"{path.name}#{i}" for i in range(len(cgs))]
    return ids, cgs


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.model.ensemble import DegenerateReference
    from engine.train.callbacks import TextProgress

    check_output(args.output, folder=False)
    skipped: list[str] | None = [] if args.skip_invalid else None
    try:
        ids, cgs = read_input(args.input, skipped, None if args.quiet else TextProgress())
    except EntryError as exc:
        raise EntryError(f"{exc} (--skip-invalid predicts the valid entries and lists the invalid ones)") from None
    if skipped:
        print(f"skipped {len(skipped)} invalid input(s):", file=sys.stderr)
        for message in skipped:
            print(f"  {message}", file=sys.stderr)
    ref_cgs = None
    if args.reference:
        try:
            ref_cgs = read_input(args.reference)[1]
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"--reference: {exc}") from None
    pred = load_predictor(args.checkpoint)
    try:
        reference = pred.reference(ref_cgs) if ref_cgs is not None else None
    except DegenerateReference as exc:
        raise ValueError(f"--reference {args.reference}: {exc}") from None
    df = pred.predict(cgs, callback=None if args.quiet else TextProgress(), reference=reference)
    if reference is not None:
        print(f"score: standardised on the {len(ref_cgs)} architectures of {args.reference}", file=sys.stderr)
    elif len(cgs) == 1:
        print(f"score: a single architecture has no set to be ranked in, so its score is the "
              f"{pred.config.ensemble.anchor} member's prediction; predict the architectures to compare together "
              "or pass --reference", file=sys.stderr)
    inside = df.attrs.get("in_domain_rows")
    df.insert(0, "id", ids)
    if inside is not None and (reference is not None or len(cgs) > 1):  # one alone: the anchor, said above
        print(f"score: {inside} of {len(df)} architectures lie inside the training domain and are scored with "
              f"{', '.join(pred.inside_weights)}; the others with {', '.join(pred.weights)}", file=sys.stderr)
    from engine.studio import family_task, member_range_note, score_scale_note

    families = [f if isinstance(f := (cg.meta or {}).get("family"), str) else "" for cg in cgs]
    untasked = [cg for cg, f in zip(cgs, families) if family_task(f) is None]
    note = score_scale_note({f for f in families if f}, pred.model_card, untasked)
    if note:
        print(f"note: {note.replace('`', '')}", file=sys.stderr)
    note = member_range_note({m: df[m] for m in df.columns})
    if note:
        print(f"note: {note.replace('`', '')}", file=sys.stderr)
    if args.novelty:
        nov = pred.novelty(cgs)
        df["novelty"] = nov
        if np.isfinite(nov).any():
            print(f"{int((nov > 1).sum())} of {len(nov)} architectures lie outside the checkpoint's training domain "
                  "(novelty > 1): the learned members extrapolate there", file=sys.stderr)
        else:
            print("the checkpoint has no training-domain reference: novelty is empty "
                  "(python -m engine calibrate-domain adds one)", file=sys.stderr)
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(f"wrote {len(df)} prediction{'s' if len(df) != 1 else ''} to {out}", file=sys.stderr)
    return 0
