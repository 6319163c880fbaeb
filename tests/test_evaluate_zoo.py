"""The hand-designed ImageNet check set: our network definitions reproduce the published
parameter counts, their CGs are sane at 224 px, and the check runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.evaluate import zoo
from engine.model import default_checkpoint_dir


@pytest.mark.parametrize("name", zoo.names())
def test_definition_matches_published_parameter_count(name):
    net = zoo.get(name)
    module = zoo.build(name)
    assert all(p.device.type == "meta" for p in module.parameters())  # no weight memory
    assert sum(p.numel() for p in module.parameters()) == net.params
    cg = zoo.to_cg(name)
    assert cg.params == net.params  # the CG owns every parameter exactly once
    assert cg.meta["top1"] == net.top1 and cg.meta["family"] == "zoo"


def test_cgs_have_expected_structure_and_flops():
    cgs = {n: zoo.to_cg(n) for n in ("resnet50", "mobilenet_v2", "vit_b_16", "shufflenet_v2_x1_0")}
    # published multiply-accumulates (x2 = FLOPs): ResNet-50 4.09 G, MobileNetV2 0.30 G, ViT-B/16 17.6 G
    assert cgs["resnet50"].flops / 2e9 == pytest.approx(4.09, rel=0.02)
    assert cgs["mobilenet_v2"].flops / 2e9 == pytest.approx(0.30, rel=0.03)
    assert cgs["vit_b_16"].flops / 2e9 == pytest.approx(17.6, rel=0.02)
    ops = {n: set(cg.op_counts()) for n, cg in cgs.items()}
    assert "depthwise" in ops["mobilenet_v2"] and "relu6" in ops["mobilenet_v2"]
    assert {"matmul", "softmax", "layernorm", "gelu"} <= ops["vit_b_16"]
    assert "other" not in set().union(*ops.values())  # every op maps to the vocabulary
    assert cgs["shufflenet_v2_x1_0"].op_counts()["concat"] == 16  # one per unit
    assert cgs["resnet50"].input_node.out_shape == (224, 224, 3)


def test_published_accuracies_are_plausible_and_unique_names():
    assert len(set(zoo.names())) == len(zoo.ZOO) >= 30
    top1 = np.array([z.top1 for z in zoo.ZOO])
    assert top1.min() > 50 and top1.max() < 90
    with pytest.raises(KeyError, match="unknown zoo network 'resnet9'"):
        zoo.get("resnet9")


def test_network_runs_forward_on_real_tensors():
    torch.manual_seed(0)
    m = zoo.get("squeezenet1_1").build().eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(), reason="no shipped checkpoint")
def test_check_end_to_end(tmp_path, capsys):
    out = tmp_path / "zoo.json"
    rc = zoo.main(["--only", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "resnet18", "--output",
                   str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 5 and len(res["networks"]) == 5  # a name given twice counts once
    methods = {r["method"]: r for r in res["metrics"]}
    assert {"score", "FLOPs", "params", "graph_stats"} <= set(methods)
    # FLOPs ranking on these five is fixed by the published numbers: check the metric wiring
    flops = np.array([n["gflops"] for n in res["networks"]])
    acc = np.array([n["top1"] for n in res["networks"]])
    from engine.metrics.ranking import srcc
    assert methods["FLOPs"]["srcc"] == pytest.approx(srcc(acc, flops))
    assert "SRCC" in capsys.readouterr().out
    assert zoo.main(["--only", "nope"]) == 2
    assert zoo.main(["--only", "alexnet", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


@pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(), reason="no shipped checkpoint")
def test_card_records_the_check_and_keeps_other_keys(tmp_path):
    import shutil

    from engine.model.predictor import GennapePredictor

    ck = tmp_path / "ck"
    shutil.copytree(default_checkpoint_dir(), ck)
    before = json.loads((ck / "model_card.json").read_text())
    assert zoo.main(["--checkpoint", str(ck), "--only", "alexnet", "resnet18", "resnet50", "mobilenet_v2",
                     "--card"]) == 0
    card = json.loads((ck / "model_card.json").read_text())
    assert {k: v for k, v in card.items() if k != "zoo_check"} == {k: v for k, v in before.items() if k != "zoo_check"}
    check = card["zoo_check"]
    assert set(check["metrics"]) >= {"score", "FLOPs", "params"} and "--card" not in check["command"]
    assert GennapePredictor.load(ck).model_card["zoo_check"] == check  # still a loadable checkpoint


def test_zoo_is_a_built_in_dataset_but_not_a_training_source(tmp_path):
    from engine.data import SHARED_NAMES, available, load

    infos = {i.name: i for i in available(tmp_path / "no-data-here")}
    info = infos["zoo_imagenet"]
    assert info.present and info.count == 31 and info.family == "zoo"
    ds = load("zoo_imagenet", tmp_path / "no-data-here")
    assert list(ds.frame["id"][:2]) == ["alexnet", "vgg11"] and ds.num_labelled == 31
    assert ds.provenance.dataset == "ImageNet-1K" and "never used for training" in ds.provenance.notes
    assert (ds.frame["params"].to_numpy() == ds.frame["published_params"].to_numpy()).all()
    # a check set must not be reachable by the training commands' dataset names
    from engine.train.data import FAMILY_DATASETS
    assert "zoo_imagenet" not in SHARED_NAMES and "zoo_imagenet" not in FAMILY_DATASETS


def test_output_to_an_unwritable_place_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert zoo.main(["--only", "alexnet", "resnet18", "--output", str(blocker / "zoo.json")]) == 2
    assert "cannot write" in capsys.readouterr().err
