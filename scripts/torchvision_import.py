"""Check: every torchvision classification model (or 40 timm models, or 24 third-party ones) through ``from_module`` (no labels, no weights).

torchvision is not a dependency of the project; this script is for development. For each model
of ``torchvision.models.list_models(module=torchvision.models)`` (built on the meta device when
its constructor allows, else on CPU with random weights) it builds the CG at 224 px (299 for
Inception v3) and reports nodes, FLOPs, params, ``other`` nodes and whether params equal
``sum(p.numel() for p in model.parameters())`` (auxiliary heads, not on the input -> output path,
are reported by ``from_module`` with a warning and excluded). Exit status 1 when a model fails,
has ``other`` nodes or unexplained params.

    PYTHONPATH=. python scripts/torchvision_import.py [--torchvision-path DIR] [--output F.json] [--only NAME ...]
        [--onnx]

``--onnx`` also exports each model (random weights, eval mode) with the two export settings that
keep BatchNorm -- TorchScript with ``do_constant_folding=False`` and dynamo with
``optimize=False`` -- imports the files with ``from_onnx`` and compares ops, FLOPs and params with
the torch.fx CG (slow for the largest models: pass ``--only``).

``--timm DIR`` instead checks a curated list of 40 ``timm`` models (:data:`TIMM_MODELS`; timm
installed with ``pip install --no-deps --target DIR timm``; it imports torchvision, so pass
``--torchvision-path`` too) at their default input size.

``--extra DIR`` checks 24 models of two widely used third-party code bases instead
(:data:`EXTRA_MODELS`: EfficientNet-PyTorch B0-B7; NASNet, PNASNet, PolyNet, SENet, Inception-ResNet,
Xception, DPN, ... from ``pretrainedmodels``), installed with ``pip install --no-deps --target DIR
efficientnet_pytorch pretrainedmodels munch six``.

``--torchvision-path``: a folder holding a torchvision installed with ``pip install --no-deps
--target DIR torchvision==<the release for the pinned torch>`` (so that the CPU torch stays).
If that torchvision's compiled operators do not match the installed torch, its import fails on
registering them; model definitions do not need them, so the script then skips that
registration (``torchvision._meta_registrations``) and says so.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
import warnings

from engine.evaluate._io import write_output

#: timm models of many designs (CNNs, ViTs, hybrids, MLP-mixers, pooling-formers), all without pretrained weights
TIMM_MODELS = (
    "resnet50d", "efficientnet_b0", "mobilenetv3_large_100", "convnext_tiny", "vit_small_patch16_224",
    "deit_small_patch16_224", "swin_tiny_patch4_window7_224", "regnety_016", "levit_128", "mixer_b16_224",
    "poolformer_s12", "coatnet_0_rw_224", "efficientformer_l1", "mobilevit_s", "ghostnet_100", "rexnet_100",
    "hrnet_w18_small", "dla34", "dpn68", "inception_v4", "xception41", "cspresnet50", "tf_efficientnetv2_s",
    "repvgg_a2", "nfnet_f0", "maxvit_tiny_tf_224", "edgenext_small", "fastvit_t8", "mobilenetv4_conv_small",
    "convnextv2_nano", "pvt_v2_b0", "twins_svt_small", "crossvit_9_240", "cait_xxs24_224", "beit_base_patch16_224",
    "eva02_tiny_patch14_224", "tiny_vit_5m_224", "efficientvit_b0", "resnest14d", "darknet53")


def _trace(name: str, build, size: int, width: int) -> tuple[dict, object, object]:
    """Build one model (``build()``), trace it at ``size`` px and print its line: ``(row, model,
    cg)``, model and cg None when building or tracing failed.  A model is clean without ``other``
    nodes and with exact params (or the warning that some, e.g. auxiliary heads, are unused)."""
    from engine.cg import from_module

    t = time.perf_counter()
    try:
        m = build()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cg = from_module(m, (1, 3, size, size), name=name)
    except Exception as exc:  # noqa: BLE001 - a failure is a result here
        row = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}", "ok": False}
        print(f"{name:{width}s} FAILED {row['error']}")
        return row, None, None
    module_params = sum(p.numel() for p in m.parameters())
    messages = [str(w.message) for w in caught]
    unused = any("not used on the input" in w for w in messages)
    other = cg.op_counts().get("other", 0)
    row = {"input": size, "nodes": cg.num_nodes, "flops": cg.flops, "params": cg.params,
           "module_params": module_params, "other": other, "other_ops": [w for w in messages if "to 'other'" in w],
           "unused_params_warning": unused, "ok": other == 0 and (cg.params == module_params or unused)}
    params_note = ("" if cg.params == module_params else f" (module {module_params:,}: aux heads)" if unused
                   else " MISMATCH")
    other_note = f"  other {other}: {row['other_ops']}" if other else ""
    print(f"{name:{width}s} {size:3d} px  nodes {cg.num_nodes:5d}  GFLOPs {cg.flops / 1e9:8.3f}  params "
          f"{cg.params:>12,}{params_note}{other_note}  {time.perf_counter() - t:.2f} s")
    return row, m, cg


def check_timm(path: str, only: list[str] | None, onnx: bool = False) -> dict:
    """:data:`TIMM_MODELS` (or ``only``) through ``from_module`` at each model's default input size
    (and ONNX with ``onnx``)."""
    sys.path.insert(0, path)
    import timm

    rows, problems = {}, []
    for n in only or TIMM_MODELS:
        cfg = timm.models.get_pretrained_cfg(n)
        size = int((cfg.input_size if cfg is not None else (3, 224, 224))[-1])
        row, m, cg = _trace(n, lambda n=n: timm.create_model(n, pretrained=False).eval(), size, 32)
        rows[n] = row
        if not row["ok"]:
            problems.append(n)
        if onnx and cg is not None:
            _compare_onnx(n, row, m, cg, problems)
    return {"timm": timm.__version__, "models": rows, "problems": problems}


#: models of two widely used third-party code bases (EfficientNet-PyTorch; Cadene's
#: ``pretrainedmodels``: NASNet, PNASNet, PolyNet, SENet, Inception-ResNet, Xception, DPN, ...)
#: at their native input sizes
EXTRA_MODELS = (
    *((f"efficientnet-b{i}", size) for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))),
    ("nasnetamobile", 224), ("nasnetalarge", 331), ("pnasnet5large", 331), ("polynet", 331), ("senet154", 224),
    ("se_resnet50", 224), ("se_resnext50_32x4d", 224), ("inceptionresnetv2", 299), ("inceptionv4", 299),
    ("xception", 299), ("dpn68", 224), ("dpn92", 224), ("bninception", 224), ("fbresnet152", 224),
    ("cafferesnet101", 224), ("resnext101_32x4d", 224))


def check_extra(path: str, only: list[str] | None, onnx: bool = False) -> dict:
    """:data:`EXTRA_MODELS` (or ``only``) through ``from_module`` (and ONNX with ``onnx``);
    ``efficientnet_pytorch`` and ``pretrainedmodels`` (with ``munch``, ``six``) installed in ``path``."""
    sys.path.insert(0, path)
    import pretrainedmodels
    from efficientnet_pytorch import EfficientNet

    def build(n: str):
        if n.startswith("efficientnet-"):
            m = EfficientNet.from_name(n).eval()
            if onnx:  # the package's own advice for exporting: its memory-efficient swish is an autograd.Function
                m.set_swish(memory_efficient=False)
            return m
        return pretrainedmodels.__dict__[n](num_classes=1000, pretrained=None).eval()

    rows, problems = {}, []
    for n, size in EXTRA_MODELS:
        if only and n not in only:
            continue
        row, m, cg = _trace(n, lambda n=n: build(n), size, 24)
        rows[n] = row
        if not row["ok"]:
            problems.append(n)
        if onnx and cg is not None:
            _compare_onnx(n, row, m, cg, problems)
    return {"models": rows, "problems": problems}


def build_torchvision(tv, name: str, **kwargs):
    """A torchvision model in eval mode, on the meta device when its constructor allows (no
    memory for weights), else on CPU with random weights (RegNet computes its widths on tensors)."""
    import torch

    try:
        with torch.device("meta"):
            return tv.models.get_model(name, **kwargs).eval()
    except Exception:  # noqa: BLE001 - some constructors compute on tensors
        return tv.models.get_model(name, **kwargs).eval()


def _import_torchvision(path: str | None):
    if path:
        sys.path.insert(0, path)
    try:
        import torchvision  # noqa: F401
    except RuntimeError as exc:  # compiled ops built for another torch
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        print(f"note: torchvision's compiled operators did not load ({str(exc).splitlines()[0]}); "
              "importing it without them", file=sys.stderr)
    import torchvision

    return torchvision


def _onnx_rows(m, size: int, fx) -> dict:
    """ONNX route vs torch.fx for one model (see ``--onnx``)."""
    import io

    import torch

    from engine.cg import from_onnx

    out = {}
    x = torch.randn(1, 3, size, size)
    for label, kw in (("torchscript", {"dynamo": False, "do_constant_folding": False}),
                      ("dynamo", {"dynamo": True, "optimize": False})):
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if kw["dynamo"]:
                    data = torch.onnx.export(m, (x,), verbose=False, **kw).model_proto.SerializeToString()
                else:
                    buf = io.BytesIO()
                    torch.onnx.export(m, (x,), buf, **kw)
                    data = buf.getvalue()
                cg = from_onnx(data)
        except Exception as exc:  # noqa: BLE001 - a failure is a result here
            out[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
            continue
        a, b = fx.op_counts(), cg.op_counts()
        out[label] = {"same_ops": a == b, "same_flops": cg.flops == fx.flops, "params_ratio": cg.params / fx.params,
                      "op_differences": {k: [a.get(k, 0), b.get(k, 0)] for k in sorted(set(a) | set(b))
                                         if a.get(k, 0) != b.get(k, 0)}}
    return out


def check(only: list[str] | None, tv, onnx: bool = False) -> dict:

    models = tv.models
    rows, problems = {}, []
    for n in only or models.list_models(module=models):
        row, m, cg = _trace(n, lambda n=n: build_torchvision(tv, n), 299 if n == "inception_v3" else 224, 24)
        rows[n] = row
        if not row["ok"]:
            problems.append(n)
        if onnx and cg is not None:
            if any(p.is_meta for p in m.parameters()):
                m = models.get_model(n).eval()  # the exporters run the model: real (random) weights
            _compare_onnx(n, row, m, cg, problems)
    return {"torchvision": tv.__version__, "models": rows, "problems": problems}


def _compare_onnx(name: str, row: dict, m, cg, problems: list[str]) -> None:
    """Add the ONNX rows of one model to ``row`` and print them; failures go to ``problems``."""
    row["onnx"] = _onnx_rows(m, row["input"], cg)
    for label, r in row["onnx"].items():
        status = r.get("error") or (f"ops {'=' if r['same_ops'] else '!= ' + str(r['op_differences'])}, "
                                    f"FLOPs {'=' if r['same_flops'] else '!='}, params x{r['params_ratio']:.4f}")
        print(f"{'':24s} ONNX {label:11s} {status}")
        if "error" in r or not (r["same_ops"] and r["same_flops"]):
            problems.append(f"{name} ({label})")


def _report(result: dict, what: str, output: str | None) -> int:
    n = len(result["models"])
    print(f"{n} {what}; {sum(r['ok'] for r in result['models'].values())} with no 'other' node and exact params; "
          f"problems: {', '.join(result['problems']) or 'none'}")
    if output and write_output(output, result):
        return 2
    return 1 if result["problems"] else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torchvision-path", default=None, help="folder to import torchvision from")
    ap.add_argument("--only", nargs="+", default=None, help="model names (default: all classification models)")
    ap.add_argument("--output", default=None, help="write the rows as JSON here")
    ap.add_argument("--onnx", action="store_true", help="also compare the ONNX route (two exporters) with torch.fx")
    ap.add_argument("--timm", default=None, metavar="DIR", help="check timm models (installed in DIR) instead")
    ap.add_argument("--extra", default=None, metavar="DIR",
                    help="check EfficientNet-PyTorch and pretrainedmodels models (installed in DIR) instead")
    args = ap.parse_args(argv)
    if args.extra or args.timm:
        # both import torchvision (pretrainedmodels; timm's torchvision.ops)
        what, module = ("third-party models", "torchvision") if args.extra else ("timm models", "timm")
        try:
            _import_torchvision(args.torchvision_path)
        except ImportError:
            print(f"error: the {what} need torchvision (see --torchvision-path)", file=sys.stderr)
            return 2
        warnings.filterwarnings("ignore", module=module)
        if args.onnx:
            import logging

            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        result = (check_extra(args.extra, args.only, args.onnx) if args.extra
                  else check_timm(args.timm, args.only, args.onnx))
        return _report(result, what, args.output)
    try:
        tv = _import_torchvision(args.torchvision_path)
    except ImportError:
        print("error: torchvision is not installed (see the docstring: pip install --no-deps --target DIR "
              "torchvision==<release for the pinned torch>, then --torchvision-path DIR)", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", module="torchvision")
    if args.onnx:
        import logging

        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    return _report(check(args.only, tv, args.onnx), "torchvision models", args.output)

if __name__ == "__main__":
    sys.exit(main())
