"""Public entry point for computation graphs: build, import and load CGs.

>>> from engine.cg import from_module, from_onnx, load_any
>>> cg = from_module(net, (1, 3, 32, 32))        # torch.fx, meta device
>>> cg = from_onnx("model.onnx")                 # ONNX (either torch exporter)
>>> cg = load_any("graph.json")                  # our JSON, GENNAPE JSON / pickle, or .onnx

See :mod:`engine.graphs.cg` (data model, builder), :mod:`engine.graphs.fx_import`,
:mod:`engine.graphs.onnx_import` and :mod:`engine.graphs.gennape_format`.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.graphs.cg import CG, MAX_JSON_BYTES, CGBuilder, CGError, load_json
from engine.graphs.fx_import import from_module
from engine.graphs.gennape_format import load_gennape, load_gennape_records
from engine.graphs.onnx_import import from_onnx

__all__ = ["CG", "CGBuilder", "CGError", "from_module", "from_onnx", "load_json", "load_gennape",
           "load_gennape_records", "load_any", "detect_format"]

_PICKLE_EXT = (".pkl", ".pickle")


def detect_format(data: bytes, filename: str = "") -> str:
    """``"cg_json"``, ``"gennape_json"``, ``"gennape_pickle"`` or ``"onnx"`` from the content
    (the file name's extension breaks ties); raises :class:`CGError` if none fits."""
    name = filename.lower()
    head = data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]  # a UTF-8 byte-order mark is allowed
    if data[:1] == b"\x80" or name.endswith(_PICKLE_EXT):
        return "gennape_pickle"
    if head in (b"{", b"["):
        if len(data) > MAX_JSON_BYTES:
            raise CGError(f"{filename or 'input'}: {len(data)} bytes exceeds the limit of {MAX_JSON_BYTES}")
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CGError(f"{filename or 'input'}: not valid JSON ({exc})") from None
        return "cg_json" if isinstance(obj, dict) and "format_version" in obj else "gennape_json"
    if name.endswith(".onnx") or data[:1] == b"\x08":  # ONNX ModelProto starts with ir_version (field 1)
        return "onnx"
    raise CGError(f"{filename or 'input'}: unrecognised CG file (expected .onnx, a CG .json, or a GENNAPE "
                  ".pkl/.json)")


def load_any(source: str | Path | bytes, filename: str = "") -> CG | list[CG]:
    """Load a CG from a path or raw bytes, whatever the format (see :func:`detect_format`).

    A GENNAPE file holding several records returns a list of CGs.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = filename or "uploaded file"
    else:
        path = Path(source)
        label = filename or str(path)
        if not path.exists():
            raise CGError(f"{label}: file not found")
        if path.is_dir():
            raise CGError(f"{label}: is a directory, expected a CG file")
        data = path.read_bytes()
    if not data:
        raise CGError(f"{label}: empty file")
    kind = detect_format(data, label)
    if kind == "onnx":
        return from_onnx(data, name=Path(label).stem, label=label)
    if kind == "cg_json":
        try:
            return load_json(data)
        except CGError as exc:
            raise CGError(f"{label}: {exc}") from None
    try:
        return load_gennape(data)
    except CGError as exc:
        msg = str(exc)
        raise type(exc)(msg.replace("GENNAPE data", label, 1)) from None
