"""Full-reference perceptual metrics through pyiqa: LPIPS (AlexNet, v0.1) and DISTS (VGG16)."""

from __future__ import annotations

from infvsr_bench.metrics.base import MetricKind
from infvsr_bench.metrics.pyiqa_backend import (
    PYIQA_URL,
    TORCHVISION_URL,
    Backbone,
    NoSettings,
    PyiqaFile,
    PyiqaMetric,
    PyiqaSpec,
    torchvision_trunk,
)

ALEXNET = PyiqaFile("alexnet-owt-7be5be79.pth", TORCHVISION_URL, "checkpoints", "torchvision AlexNet IMAGENET1K_V1, the LPIPS trunk")
VGG16 = PyiqaFile("vgg16-397923af.pth", TORCHVISION_URL, "checkpoints", "torchvision VGG16 IMAGENET1K_V1, the DISTS trunk")

LPIPS_SPEC = PyiqaSpec(
    "lpips",
    model=PyiqaFile("LPIPS_v0.1_alex-df73285e.pth", PYIQA_URL, "pyiqa", "LPIPS v0.1 linear layers for AlexNet"),
    backbones=(Backbone("pyiqa.archs.lpips_arch", "models", ALEXNET, torchvision_trunk("alexnet")),),
)
DISTS_SPEC = PyiqaSpec(
    "dists",
    model=PyiqaFile("DISTS_weights-f5e65c96.pth", PYIQA_URL, "pyiqa", "DISTS alpha/beta weights"),
    backbones=(Backbone("pyiqa.archs.dists_arch", "models", VGG16, torchvision_trunk("vgg16", init_weights=False)),),
)


class LPIPS(PyiqaMetric):
    """LPIPS v0.1 on AlexNet features, inputs [0,1] mapped to [-1,1] (pyiqa ``lpips``); lower is better."""

    name = "lpips"
    version = "pyiqa-lpips-alex-v0.1"
    kind = MetricKind.FULL_REFERENCE
    higher_is_better = False
    Settings = NoSettings
    spec = LPIPS_SPEC


class DISTS(PyiqaMetric):
    """DISTS structure/texture similarity on VGG16 features (pyiqa ``dists``); lower is better."""

    name = "dists"
    version = "pyiqa-dists"
    kind = MetricKind.FULL_REFERENCE
    higher_is_better = False
    Settings = NoSettings
    spec = DISTS_SPEC
