"""Full-reference perceptual metrics through pyiqa: LPIPS (AlexNet, v0.1) and DISTS (VGG16)."""

from __future__ import annotations

from infvsr_bench.metrics.base import MetricKind
from infvsr_bench.metrics.pyiqa_backend import Backbone, PyiqaMetric, PyiqaSpec, torchvision_trunk
from infvsr_bench.metrics.settings import NoSettings
from infvsr_bench.weights import CATALOGUE

ALEXNET = CATALOGUE["torchvision/alexnet-owt-7be5be79.pth"]
VGG16 = CATALOGUE["torchvision/vgg16-397923af.pth"]

LPIPS_SPEC = PyiqaSpec(
    "lpips",
    model=CATALOGUE["pyiqa/LPIPS_v0.1_alex-df73285e.pth"],
    backbones=(Backbone("pyiqa.archs.lpips_arch", "models", ALEXNET, torchvision_trunk("alexnet")),),
    strict=False,
)
DISTS_SPEC = PyiqaSpec(
    "dists",
    model=CATALOGUE["pyiqa/DISTS_weights-f5e65c96.pth"],
    backbones=(Backbone("pyiqa.archs.dists_arch", "models", VGG16, torchvision_trunk("vgg16", init_weights=False)),),
    strict=False,
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
