"""Benchmark: CG extraction speed of ``from_module`` (``python -m engine.bench cg``).

Two workloads, built from plain ``torch.nn`` layers (torchvision is not a dependency):

* a CIFAR ResNet with basic blocks (4 per stage, about 100 CG nodes): CGs per second;
* a torchvision-style ResNet-50 at 224 x 224: seconds per CG;
* ``from_onnx`` on the same ResNet-50 exported to ONNX (TorchScript exporter, ~100 MB file):
  seconds and peak memory, in a fresh process (peak resident set size from ``/proc``, so Linux
  only, next to that of a process that only imports the importer).

Numbers are medians over a few runs on one CPU thread (tracing is single threaded anyway).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with a 1x1 projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32 x 32 inputs: stem, three stages of ``blocks`` basic blocks, GAP, linear."""

    def __init__(self, blocks: int = 4, width: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, c = [], width
        for stage in range(3):
            c_out = width * 2 ** stage
            for i in range(blocks):
                layers.append(BasicBlock(c, c_out, 2 if (stage > 0 and i == 0) else 1))
                c = c_out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class Bottleneck(nn.Module):
    """torchvision-style ResNet bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 (25,557,032 parameters with 1000 classes, like torchvision's ``resnet50``)."""

    def __init__(self, num_classes: int = 1000, layers: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c = [], 64
        for i, n in enumerate(layers):
            width = 64 * 2 ** i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(c, width, 2 if (i > 0 and j == 0) else 1))
                c = width * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_CHILD = """
import sys, time, warnings
from engine.graphs.onnx_import import from_onnx
if sys.argv[1] != "-":
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    cg = from_onnx(sys.argv[1])
    print(time.perf_counter() - t, cg.num_nodes, cg.flops)
# VmHWM: peak resident set of this process image (ru_maxrss would include the forking parent's)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _child(arg: str) -> list[str]:
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, cwd=root, check=True)
    return res.stdout.split()


def onnx_import() -> dict[str, float]:
    """Export ResNet-50 to a temporary ONNX file and import it in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet50.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(ResNet50().eval(), (torch.randn(1, 3, 224, 224),), str(path), dynamo=False)
        size_mb = path.stat().st_size / 2 ** 20
        runs = [_child(str(path)) for _ in range(3)]
        base_mb = int(_child("-")[0]) / 1024
    seconds = statistics.median(float(r[0]) for r in runs)
    peak_mb = max(int(r[3]) for r in runs) / 1024
    print(f"from_onnx, ResNet-50 file ({size_mb:.0f} MB, {runs[0][1]} nodes): {seconds:.2f} s, peak RSS "
          f"{peak_mb:.0f} MB in a fresh process ({base_mb:.0f} MB for the process alone)")
    return {"onnx_file_mb": round(size_mb, 1), "onnx_import_s": round(seconds, 3), "onnx_peak_rss_mb": round(peak_mb),
            "onnx_process_rss_mb": round(base_mb)}


def run() -> dict[str, float]:
    from engine.graphs.fx_import import from_module

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        small = CifarResNet(blocks=4)
        cg = from_module(small, (1, 3, 32, 32))  # warm-up
        per_cg = _median_seconds(lambda: from_module(small, (1, 3, 32, 32)), 15)
        big = ResNet50()
        cg50 = from_module(big, (1, 3, 224, 224))
        r50 = _median_seconds(lambda: from_module(big, (1, 3, 224, 224)), 5)
    finally:
        torch.set_num_threads(threads)
    out = {
        "cifar_resnet_nodes": cg.num_nodes,
        "cifar_resnet_cgs_per_s": round(1.0 / per_cg, 1),
        "resnet50_nodes": cg50.num_nodes,
        "resnet50_gflops": round(cg50.flops / 1e9, 3),
        "resnet50_params": cg50.params,
        "resnet50_s": round(r50, 4),
    }
    print(f"from_module, CIFAR ResNet ({cg.num_nodes} nodes): {out['cifar_resnet_cgs_per_s']} CGs/s (1 thread)")
    print(f"from_module, ResNet-50 @224 ({cg50.num_nodes} nodes, {out['resnet50_gflops']} GFLOPs, "
          f"{cg50.params:,} params): {r50:.3f} s")
    out.update(onnx_import())
    return out
