"""DOVER video quality through the user's installed official DOVER code (never vendored: S-Lab licence).

The official pipeline (``evaluate_one_video.py``): the technical branch sees a 7x7 grid of 32x32
fragments over 3 segments of 32 frames at stride 2, the aesthetic branch 32 frames resized to
224x224; both samplers draw random offsets, seeded here. ``sampling: official`` (default, protocol
``dover_official``) samples the views over the whole clip in one pass as that script does: the
frame indices follow from the clip's length (``begin_clip``) and the seed, so only the <= 128
sampled frames are kept while streaming. ``sampling: windows`` (protocol ``dover_windows``) scores
each ``window`` frames as a video of its own: a curve along the clip (drift), not the official number.

Scales: ``<col>_technical`` / ``_aesthetic`` are the raw branch means, ``<col>_fused`` the fused [0,1] score
(``evaluate_one_video.py -f``); ``<col>_set_technical`` / ``_set_aesthetic`` / ``_set_overall`` are the 0-100
scale ``evaluate_a_set_of_videos.py`` writes (``fuse_results`` x 100), applied to the views sampled here
(that script's own dataset sampling is unseeded, so its random offsets are not reproducible anyway).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ClipError, ConfigError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.metrics.settings import DoverSettings
from infvsr_bench.weights import (CATALOGUE, WeightsMissingError, group_dir, load_into, load_tensors, locate, reading,
                                  resolve_weights)

INSTALL = (
    "install the official DOVER code: `git clone https://github.com/VQAssessment/DOVER && pip install -e DOVER` "
    "(S-Lab licence, not on PyPI; the PyPI package named 'dover' is an unrelated versioning tool)"
)
WEIGHTS = CATALOGUE["dover/DOVER.pth"]
INIT = CATALOGUE["dover/convnext_tiny_1k_224_ema.pth"]  # what the official code fetches through torch.hub

# dover.yml of the official repository: model arguments and the two views' sampling.
MODEL_ARGS: dict[str, Any] = {
    "backbone": {
        "technical": {"type": "swin_tiny_grpb", "checkpoint": True, "pretrained": None},
        "aesthetic": {"type": "conv_tiny"},
    },
    "backbone_preserve_keys": "technical,aesthetic",
    "divide_head": True,
    "vqa_head": {"in_channels": 768, "hidden_channels": 64},
}
SAMPLE_TYPES: dict[str, dict[str, Any]] = {
    "technical": {
        "fragments_h": 7, "fragments_w": 7, "fsize_h": 32, "fsize_w": 32, "aligned": 32,
        "clip_len": 32, "frame_interval": 2, "num_clips": 3,
    },
    "aesthetic": {"size_h": 224, "size_w": 224, "clip_len": 32, "frame_interval": 2, "t_frag": 32, "num_clips": 1},
}
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
# The set evaluator's scale (0-100), declared as report columns; PARTS: every per-video score, scalar and curve.
SET_PARTS = ("set_technical", "set_aesthetic", "set_overall")
PARTS = ("technical", "aesthetic", "fused", *SET_PARTS)


def sampler_indices(num_frames: int, fsize_t: int, fragments_t: int, frame_interval: int = 1,
                    num_clips: int = 1) -> np.ndarray:
    """DOVER's ``UnifiedFrameSampler(fsize_t, fragments_t, frame_interval, num_clips)(num_frames)``, drawing
    from numpy's global RNG exactly as it does.

    Per clip: the video is cut into ``fragments_t`` equal segments; in each, ``fsize_t`` frames
    ``frame_interval`` apart start at a random offset (``np.random.randint(0, segment - fsize_t *
    frame_interval, size=fragments_t)``, no draw and offset 0 when the segment is not longer than
    that); indices wrap modulo the frame count. Its ``drop_rate`` is 0 in DOVER, so nothing is dropped
    (``random.sample`` of 0 items draws nothing).
    """
    clips = []
    for _ in range(num_clips):
        segment = num_frames // fragments_t
        starts = np.array([segment * i for i in range(fragments_t)], dtype=np.int32)
        if segment > fsize_t * frame_interval:
            offsets = np.random.randint(0, segment - fsize_t * frame_interval, size=fragments_t)
        else:
            offsets = np.zeros(fragments_t, dtype=np.int32)
        clips.append((np.arange(fsize_t)[None, :] * frame_interval + offsets[:, None] + starts[:, None]).ravel())
    return np.mod(np.concatenate(clips), num_frames).astype(np.int32)


def view_indices(num_frames: int) -> dict[str, np.ndarray]:
    """The frames each view samples from a video of ``num_frames``, samplers built and called in
    SAMPLE_TYPES order as ``evaluate_one_video.py`` does (call inside ``seeded``)."""
    out = {}
    for stype, opt in SAMPLE_TYPES.items():
        if "t_frag" in opt:  # the aesthetic view: t_frag segments of clip_len // t_frag frames
            out[stype] = sampler_indices(num_frames, opt["clip_len"] // opt["t_frag"], opt["t_frag"],
                                         opt["frame_interval"], opt["num_clips"])
        else:  # the technical view: num_clips segments of clip_len frames (num_clips is the sampler's fragments_t)
            out[stype] = sampler_indices(num_frames, opt["clip_len"], opt["num_clips"], opt["frame_interval"])
    return out


def _normalised(technical: float, aesthetic: float) -> tuple[float, float]:
    """The raw branch scores in the official scripts' standard units (their constants, ``fuse_results``)."""
    return (technical - 0.1107) / 0.07355, (aesthetic + 0.08285) / 0.03774


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def fuse(technical: float, aesthetic: float) -> float:
    """DOVER's overall score: sigmoid(0.6104 t + 0.3896 a) of the branch scores normalised as in the official script."""
    t, a = _normalised(technical, aesthetic)
    return _sigmoid(0.6104 * t + 0.3896 * a)


def set_scale(technical: float, aesthetic: float) -> dict[str, float]:
    """The scores ``evaluate_a_set_of_videos.py`` writes: 100 x sigmoid of each normalised branch score and
    of their fusion (``set_overall`` = 100 x ``fuse``). Float64, as that script computes under NumPy 1.x."""
    t, a = _normalised(technical, aesthetic)
    return {"set_technical": 100 * _sigmoid(t), "set_aesthetic": 100 * _sigmoid(a),
            "set_overall": 100 * fuse(technical, aesthetic)}


def require_dover() -> None:
    """A ConfigError saying how to install DOVER when no ``dover`` package is installed (no import: fast)."""
    if importlib.util.find_spec("dover") is None:
        raise ConfigError(f"metric 'dover' needs the official DOVER code, which is not installed: {INSTALL}")


def import_dover() -> None:
    """Import the official DOVER modules, or say why the installed ``dover`` cannot be used."""
    try:
        importlib.import_module("dover.models")
        importlib.import_module("dover.datasets")
    except ImportError as exc:
        if getattr(exc, "name", None) in ("dover.models", "dover.datasets"):
            where = getattr(sys.modules.get("dover"), "__file__", "?")
            raise ConfigError(f"the installed 'dover' ({where}) is not the official DOVER: {INSTALL}") from None
        raise ConfigError(f"importing the official DOVER failed ({exc}); install its requirements") from None


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the global RNGs DOVER's samplers draw from (numpy, torch, random), restoring them afterwards."""
    import torch

    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


@contextlib.contextmanager
def hub_files_only(weights_dir: str | None, allow_download: bool) -> Iterator[list[Path]]:
    """Serve torch.hub checkpoints (DOVER's ImageNet initialisation, ``INIT``) from local files; download only when allowed.

    ``load_state_dict_from_url`` takes a catalogued file where the catalogue finds it (``<weights>/dover/``,
    else torch's hub cache), read by ``load_tensors`` (torch.hub would unpickle it with ``weights_only=False``);
    the paths served are yielded. A download that would follow (through ``download_url_to_file``) raises
    WeightsMissingError unless ``allow_download``. The values are overwritten by DOVER.pth anyway.
    """
    import torch

    original = torch.hub.load_state_dict_from_url
    served: list[Path] = []
    folder = group_dir(WEIGHTS.group, weights_dir)

    def local(url: str, *args: Any, **kwargs: Any) -> Any:
        file = CATALOGUE.get(f"{WEIGHTS.group}/{url.rsplit('/', 1)[-1].split('?')[0]}")
        if file is not None:
            try:
                path, _ = locate([file], weights_dir)[file.filename]
            except WeightsMissingError:
                pass  # torch.hub's download follows, refused below unless allowed
            else:
                served.append(path)
                return load_tensors(path)
        return original(url, *args, **{**kwargs, "weights_only": True})

    def refuse(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
        raise WeightsMissingError(
            f"DOVER builds a backbone from {Path(dst).name} ({url}): put it in {folder} or {Path(dst).parent}, "
            "or pass allow_download=true"
        )

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch.hub, "load_state_dict_from_url", local))
        if not allow_download:
            stack.enter_context(mock.patch.object(torch.hub, "download_url_to_file", refuse))
        yield served


class OfficialDover:
    """The official DOVER network and view decomposition: sampled frames of each view -> branch scores."""

    def __init__(self, device: str = "auto", weights_dir: str | None = None, allow_download: bool = False) -> None:
        require_dover()
        chosen = resolve_weights("auto", [WEIGHTS], weights_dir, allow_download)
        import_dover()
        from dover.models import DOVER as Evaluator

        self.device = resolve_device(device)
        path = chosen.path(WEIGHTS)
        state = load_tensors(path)  # read first: a bad file fails before DOVER builds its backbones
        with hub_files_only(weights_dir, allow_download) as served:
            try:
                evaluator = Evaluator(**MODEL_ARGS)
            except (KeyError, RuntimeError) as exc:  # an initialisation file without DOVER's keys or shapes
                if not served:
                    raise
                with reading(served[-1], "the ImageNet initialisation DOVER expects"):
                    raise exc from None
        load_into(evaluator, state, path)
        self.net = evaluator.to(self.device).eval()
        self.weights, self.weights_sha256 = chosen.kind, chosen.sha256

    def __call__(self, videos: dict[str, np.ndarray]) -> dict[str, float]:
        """Scores of the views' sampled frames (T,H,W,3 uint8 each); spatial sampling draws from the caller's seeded RNGs."""
        import torch
        from dover.datasets import get_single_view

        mean, std = torch.tensor(MEAN), torch.tensor(STD)
        views = {}
        for s, frames in videos.items():
            v = get_single_view(torch.from_numpy(frames).permute(3, 0, 1, 2), s, **SAMPLE_TYPES[s])
            clips = SAMPLE_TYPES[s].get("num_clips", 1)
            v = ((v.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2)
            views[s] = v.reshape(v.shape[0], clips, -1, *v.shape[2:]).transpose(0, 1).to(self.device)
        with torch.no_grad():
            return dict(zip(views, (float(r.mean()) for r in self.net(views))))


class DOVER(Metric):
    """DOVER technical, aesthetic and fused scores, and the set evaluator's 0-100 scale: the official one-pass
    sampling, or per window of frames."""

    name = "dover"
    # 3: the set evaluator's scale as set_* columns; 2: the official whole-clip sampling by default (1: 128-frame windows)
    version = "dover-official-3"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = DoverSettings
    runtime_options = ("device", "weights_dir", "allow_download")

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.evaluator = OfficialDover(str(runtime.get("device", "auto")), runtime.get("weights_dir"),
                                       bool(runtime.get("allow_download", False)))
        self.weights, self.weights_sha256 = self.evaluator.weights, dict(self.evaluator.weights_sha256)

    def protocol(self) -> str:
        return f"dover_{self.settings.sampling}"

    def info(self) -> dict[str, Any]:
        backend = {"backend": "dover (official)", "model_args": MODEL_ARGS, "sample_types": SAMPLE_TYPES}
        columns = {f"{self.column}_{part}": {"higher_is_better": True, "ideal": None} for part in SET_PARTS}
        return {**super().info(), "backend": backend, "columns": columns}

    def reset(self) -> None:
        self._num_frames: int | None = None
        self._needed: set[int] = set()
        self._kept: dict[int, np.ndarray] = {}  # official: the sampled frames; windows: the open window
        self._start = 0
        self._rows: list[dict[str, float]] = []

    def begin_clip(self, num_frames: int) -> None:
        self._num_frames = num_frames
        if self.settings.sampling == "official" and num_frames > 0:
            with seeded(self.settings.seed):
                self._needed = {int(i) for idx in view_indices(num_frames).values() for i in idx}

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        if self.settings.sampling == "official":
            if self._num_frames is None:
                raise ClipError(f"{self.column}: the official sampling needs the clip's frame count before its frames "
                                "(begin_clip); use sampling=windows to score without it")
            self._kept.update({frame_index + i: f.copy() for i, f in enumerate(sr) if frame_index + i in self._needed})
            return
        for frame in sr:
            if not self._kept:
                self._start = frame_index
            self._kept[frame_index] = frame.copy()
            frame_index += 1
            if len(self._kept) == self.settings.window:
                self._score(self._start, len(self._kept), self.settings.seed + len(self._rows))

    def _score(self, start: int, count: int, seed: int) -> None:
        """Score ``count`` frames from ``start`` as one video, as the official script does, and forget them."""
        missing = sorted(self._needed - set(self._kept))
        if missing:
            raise ClipError(f"{self.column}: {count} frames were announced but frame(s) {missing[:5]} never came")
        with seeded(seed):
            indices = view_indices(count)
            scores = self.evaluator({s: np.stack([self._kept[start + int(i)] for i in idx]) for s, idx in indices.items()})
        scores["fused"] = fuse(scores["technical"], scores["aesthetic"])
        scores.update(set_scale(scores["technical"], scores["aesthetic"]))
        self._rows.append({"x": start, "count": count, **scores})
        self._kept = {}

    def compute(self) -> MetricResult:
        if self.settings.sampling == "official" and self._num_frames:
            self._score(0, self._num_frames, self.settings.seed)
        elif self._kept:
            self._score(self._start, len(self._kept), self.settings.seed + len(self._rows))
        rows = pd.DataFrame(self._rows, columns=["x", "count", *PARTS])
        weights = rows["count"].to_numpy(dtype=np.float64)
        scalars = {}
        for part in PARTS:
            value = float(np.average(rows[part], weights=weights)) if len(rows) else float("nan")
            scalars[f"{self.column}_{part}"] = value
        scalars[self.column] = scalars[f"{self.column}_{self.settings.report}"]
        curves = None
        if self.settings.sampling == "windows":  # official: one score for the clip, no curve
            curves = pd.concat(
                [pd.DataFrame({"curve": part, "x": rows["x"], "value": rows[part], "count": rows["count"]})
                 for part in PARTS],
                ignore_index=True,
            )
        return MetricResult(frames=pd.DataFrame({"frame": np.array([], dtype=np.int64)}), scalars=scalars, curves=curves)
