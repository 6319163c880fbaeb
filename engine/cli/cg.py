"""``python -m engine cg``: extract a computation graph and print a one-line summary.

Examples::

    python -m engine cg model.onnx --output cg.json          # ONNX
    python -m engine cg graph.json                           # our CG JSON (validated)
    python -m engine cg nb201_best_cg.pkl --output cg.json   # GENNAPE pickle / JSON
    python -m engine cg --family nb201 --spec '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'
    python -m engine cg --family nb201 --spec '303121' --check   # builder CG == traced CG?

A file with several GENNAPE records prints how many it holds and uses ``--index`` (default 0).
Bad input exits with code 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli._args import non_negative_int

HELP = "extract a CG from an .onnx / CG .json / GENNAPE .pkl|.json file or a family spec; print a summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="an .onnx file, our CG .json, or a GENNAPE .pkl / .json file")
    parser.add_argument("--family", help="family name (e.g. nb201) to build from --spec instead of a file")
    parser.add_argument("--spec", help="the family spec: JSON, or a plain string such as an NB-201 arch string")
    parser.add_argument("--via", choices=("builder", "trace"), default="builder",
                        help="family CG from the direct builder (to_cg, default) or by tracing build_module")
    parser.add_argument("--check", action="store_true",
                        help="with --family: also trace the module and report whether both CGs agree (exit 1 if not)")
    parser.add_argument("--index", type=non_negative_int, default=0, help="record to use when a GENNAPE file holds several")
    parser.add_argument("--output", help="write the CG as JSON here")


def summary(cg) -> str:
    return (f"{cg.name or 'cg'}: {cg.num_nodes} nodes, {cg.num_edges} edges, {cg.flops:,} FLOPs "
            f"({cg.flops / 1e6:.2f} M), {cg.params:,} params")


def _family_cgs(args) -> tuple[object, object | None]:
    from engine.families import get
    from engine.graphs.fx_import import from_module

    if args.spec is None:
        raise ValueError("--family needs --spec")
    try:
        fam = get(args.family)
    except KeyError as exc:
        raise ValueError(f"family {args.family!r} is not available: {exc.args[0] if exc.args else exc}") from None
    spec = fam.parse(args.spec)

    def traced():
        return from_module(fam.build_module(spec), fam.input_shape(spec), name=f"{fam.name}-traced")

    cg = fam.to_cg(spec) if args.via == "builder" else traced()
    other = None
    if args.check:
        other = traced() if args.via == "builder" else fam.to_cg(spec)
    return cg, other


def run(args: argparse.Namespace) -> int:
    from engine.cg import load_any

    if args.family and args.model:
        raise ValueError("give either MODEL or --family/--spec, not both")
    if not args.family and not args.model:
        raise ValueError("give a MODEL file (.onnx, .json, .pkl) or --family NAME --spec SPEC")
    status = 0
    if args.family:
        cg, other = _family_cgs(args)
        print(summary(cg))
        if other is not None:
            same = (cg.fingerprint() == other.fingerprint(), cg.flops == other.flops, cg.params == other.params)
            print(f"check: fingerprint {'equal' if same[0] else 'DIFFERENT'}, flops "
                  f"{'equal' if same[1] else f'{cg.flops} vs {other.flops}'}, params "
                  f"{'equal' if same[2] else f'{cg.params} vs {other.params}'}")
            status = 0 if all(same) else 1
    else:
        result = load_any(args.model)
        if isinstance(result, list):
            if not 0 <= args.index < len(result):
                raise ValueError(f"{args.model}: --index {args.index} out of range (the file holds {len(result)} graphs)")
            print(f"{args.model}: {len(result)} graphs; record {args.index}:")
            cg = result[args.index]
        else:
            cg = result
        print(summary(cg))
    if args.output:
        Path(args.output).write_text(cg.to_json())
        print(f"wrote {args.output}")
    return status
