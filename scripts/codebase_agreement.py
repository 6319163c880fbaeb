"""Check: does the same network give the same CG whichever code base defines it?

Hand-designed networks reach the predictor from torchvision, timm, EfficientNet-PyTorch or
Cadene's ``pretrainedmodels``.  Where two of them define the same architecture (:data:`PAIRS`),
this traces both with ``from_module`` and compares the isomorphism-invariant
``CG.fingerprint`` (ops, shapes, weights, strides, groups, edges), FLOPs and params, and prints
the op counts that differ.  No labels, no weights.  A difference is either an importer bug
(the same computation written another way) or a real design difference of the two code bases;
the printed op counts tell which (:data:`DESIGN_DIFFERENCES` lists the known ones).

    PYTHONPATH=. python scripts/codebase_agreement.py --timm DIR --extra DIR2 --torchvision-path DIR3 \\
        [--output F.json]

(installed as for ``scripts/torchvision_import.py``: ``pip install --no-deps --target DIR timm``,
``... --target DIR2 efficientnet_pytorch pretrainedmodels munch six``, ``... --target DIR3
torchvision==<release for the pinned torch>``).  About 30 s.  Exit status 1 when a pair outside
:data:`DESIGN_DIFFERENCES` differs.
"""

from __future__ import annotations

import argparse
import sys
import warnings

#: (name, code base A, model A, code base B, model B, input size)
PAIRS = (
    ("resnet18", "torchvision", "resnet18", "timm", "resnet18", 224),
    ("resnet50", "torchvision", "resnet50", "timm", "resnet50", 224),
    ("resnext50_32x4d", "torchvision", "resnext50_32x4d", "timm", "resnext50_32x4d", 224),
    ("wide_resnet50_2", "torchvision", "wide_resnet50_2", "timm", "wide_resnet50_2", 224),
    ("densenet121", "torchvision", "densenet121", "timm", "densenet121", 224),
    ("inception_v3", "torchvision", "inception_v3", "timm", "inception_v3", 299),
    ("vgg16", "torchvision", "vgg16", "timm", "vgg16", 224),
    ("mobilenet_v2", "torchvision", "mobilenet_v2", "timm", "mobilenetv2_100", 224),
    ("mobilenet_v3_large", "torchvision", "mobilenet_v3_large", "timm", "mobilenetv3_large_100", 224),
    ("mnasnet1_0", "torchvision", "mnasnet1_0", "timm", "mnasnet_100", 224),
    ("efficientnet_b0", "torchvision", "efficientnet_b0", "timm", "efficientnet_b0", 224),
    ("efficientnet_b0", "torchvision", "efficientnet_b0", "efficientnet_pytorch", "efficientnet-b0", 224),
    ("efficientnet_b3", "timm", "tf_efficientnet_b3", "efficientnet_pytorch", "efficientnet-b3", 300),
    ("regnet_y_1_6gf", "torchvision", "regnet_y_1_6gf", "timm", "regnety_016", 224),
    ("convnext_tiny", "torchvision", "convnext_tiny", "timm", "convnext_tiny", 224),
    ("vit_b_16", "torchvision", "vit_b_16", "timm", "vit_base_patch16_224", 224),
    ("swin_t", "torchvision", "swin_t", "timm", "swin_tiny_patch4_window7_224", 224),
    ("inception_v4", "pretrainedmodels", "inceptionv4", "timm", "inception_v4", 299),
    ("inception_resnet_v2", "pretrainedmodels", "inceptionresnetv2", "timm", "inception_resnet_v2", 299),
    ("xception", "pretrainedmodels", "xception", "timm", "legacy_xception", 299),
    ("se_resnext50_32x4d", "pretrainedmodels", "se_resnext50_32x4d", "timm", "legacy_seresnext50_32x4d", 224),
    ("nasnetalarge", "pretrainedmodels", "nasnetalarge", "timm", "nasnetalarge", 331),
    ("pnasnet5large", "pretrainedmodels", "pnasnet5large", "timm", "pnasnet5large", 331),
    ("dpn68", "pretrainedmodels", "dpn68", "timm", "dpn68", 224),
)

#: pairs whose code bases build different computations, or write the same one with explicit padding
#: (which the CG keeps in the conv's input shape): not importer bugs
DESIGN_DIFFERENCES = {
    "vgg16": "timm's VGG runs the classifier as convolutions (a 7x7 conv and a 1x1 conv on the "
             "feature map: ConvMlp) before a global pool; torchvision flattens into three Linear layers",
    "mobilenet_v3_large": "timm applies the 1280-wide head layer as a 1x1 conv on the pooled map; "
                          "torchvision as a Linear",
    "dpn68": "the two code bases implement the dual-path blocks differently (concatenations)",
    "efficientnet_b0": "EfficientNet-PyTorch pads explicitly (TensorFlow 'same', a ZeroPad2d before each conv): its "
                       "convs read maps 1-2 px larger than torchvision's implicitly padded ones (the CG keeps the "
                       "padded map as the conv's input shape); ops, FLOPs and params are equal",
    "efficientnet_b3": "explicit padding, as for efficientnet_b0 (timm's tf_ variant pads only its stride-2 convs "
                       "explicitly)",
    "swin_t": "torchvision keeps windows as (B, H, W, C) tensors, timm as tokens: the CG shapes differ",
    "nasnetalarge": "pretrainedmodels pads before the stride-2 ops of the first reduction cell and crops "
                    "later, so that cell works on 22x22 maps where timm's 'same' padding gives 21x21 "
                    "(47.62 against 47.57 GFLOPs)",
    "pnasnet5large": "as NASNet-A Large: 22x22 against 21x21 maps in the first reduction cell",
}


def _builders(timm_path: str | None, extra_path: str | None, tv):
    for p in (timm_path, extra_path):
        if p:
            sys.path.insert(0, p)
    import pretrainedmodels
    import timm
    from efficientnet_pytorch import EfficientNet

    return {
        "torchvision": lambda n: tv.models.get_model(n, **({"aux_logits": False, "init_weights": False}
                                                          if n == "inception_v3" else {})),
        "timm": lambda n: timm.create_model(n, pretrained=False),
        "efficientnet_pytorch": lambda n: EfficientNet.from_name(n),
        "pretrainedmodels": lambda n: pretrainedmodels.__dict__[n](num_classes=1000, pretrained=None),
    }


def agreement(builders) -> dict:
    from engine.cg import from_module

    rows = []
    for name, base_a, model_a, base_b, model_b, size in PAIRS:
        row = {"network": name, "a": f"{base_a}:{model_a}", "b": f"{base_b}:{model_b}", "input": size}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = from_module(builders[base_a](model_a).eval(), (1, 3, size, size))
                b = from_module(builders[base_b](model_b).eval(), (1, 3, size, size))
        except Exception as exc:  # noqa: BLE001 - a failure is a result here
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            print(f"{name:22s} {row['a']:>34s} vs {row['b']:<40s} FAILED {row['error']}")
            rows.append(row)
            continue
        ca, cb = a.op_counts(), b.op_counts()
        row.update(same_graph=a.fingerprint() == b.fingerprint(), nodes=[a.num_nodes, b.num_nodes],
                   flops=[a.flops, b.flops], params=[a.params, b.params],
                   op_count_diff={k: [ca.get(k, 0), cb.get(k, 0)] for k in sorted(set(ca) | set(cb))
                                  if ca.get(k, 0) != cb.get(k, 0)})
        note = "same graph" if row["same_graph"] else (
            f"differs {row['op_count_diff'] or '(shapes / wiring)'}"
            + (" [design]" if name in DESIGN_DIFFERENCES else ""))
        print(f"{name:22s} {row['a']:>34s} vs {row['b']:<40s} nodes {a.num_nodes:5d}/{b.num_nodes:<5d} "
              f"FLOPs {'=' if a.flops == b.flops else '!='} params {'=' if a.params == b.params else '!='}  {note}")
        rows.append(row)
    problems = [r["network"] for r in rows if ("error" in r or not r["same_graph"])
                and r["network"] not in DESIGN_DIFFERENCES]
    same = sum(bool(r.get("same_graph")) for r in rows)
    print(f"{same} of {len(rows)} pairs give the same graph; explained differences: "
          f"{sum(not r.get('same_graph') and r['network'] in DESIGN_DIFFERENCES for r in rows)}; unexplained: {', '.join(problems) or 'none'}")
    return {"pairs": rows, "design_differences": DESIGN_DIFFERENCES, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timm", required=True, metavar="DIR", help="folder holding timm")
    ap.add_argument("--extra", required=True, metavar="DIR",
                    help="folder holding efficientnet_pytorch and pretrainedmodels")
    ap.add_argument("--torchvision-path", default=None, metavar="DIR", help="folder holding torchvision")
    ap.add_argument("--output", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    from torchvision_import import _import_torchvision

    from engine.evaluate._io import write_output

    tv = _import_torchvision(args.torchvision_path)
    warnings.filterwarnings("ignore")
    try:
        builders = _builders(args.timm, args.extra, tv)
    except ImportError as exc:
        print(f"error: {exc}: timm must be installed in --timm {args.timm}, and efficientnet_pytorch, "
              f"pretrainedmodels, munch and six in --extra {args.extra} (see the docstring)", file=sys.stderr)
        return 2
    result = agreement(builders)
    if write_output(args.output, result):
        return 2
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
