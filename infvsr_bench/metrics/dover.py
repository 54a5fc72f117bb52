"""DOVER video quality through the user's installed official DOVER code (never vendored: S-Lab licence).

The official pipeline (``evaluate_one_video.py``): the technical branch sees a 7x7 grid of 32x32
fragments over 3 segments of 32 frames at stride 2, the aesthetic branch 32 frames resized to
224x224; both samplers draw random offsets, seeded here. A clip is scored in windows of
``window`` frames (bounded memory): a clip no longer than one window is scored exactly as the
official script scores the whole video; a longer one gives a curve of window scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import numpy as np
import pandas as pd

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.weights import CATALOGUE, WeightsMissingError, group_dir, resolve, summary

INSTALL = (
    "install the official DOVER code: `git clone https://github.com/VQAssessment/DOVER && pip install -e DOVER` "
    "(S-Lab licence, not on PyPI; the PyPI package named 'dover' is an unrelated versioning tool)"
)
WEIGHTS = CATALOGUE["dover/DOVER.pth"]

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


def fuse(technical: float, aesthetic: float) -> float:
    """DOVER's overall score: sigmoid(0.6104 t + 0.3896 a) of the branch scores normalised as in the official script."""
    t = (technical - 0.1107) / 0.07355
    a = (aesthetic + 0.08285) / 0.03774
    return 1.0 / (1.0 + math.exp(-(0.6104 * t + 0.3896 * a)))


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
def hub_files_only(folder: Path, allow_download: bool) -> Iterator[None]:
    """Serve torch.hub checkpoints (DOVER's ImageNet initialisations) from local files; download only when allowed.

    ``load_state_dict_from_url`` takes a file from ``folder``, else torch's hub cache; any download
    that would follow (through ``download_url_to_file``) raises WeightsMissingError unless
    ``allow_download``. The values are overwritten by DOVER.pth anyway.
    """
    import torch

    original = torch.hub.load_state_dict_from_url

    def local(url: str, *args: Any, **kwargs: Any) -> Any:
        path = folder / url.rsplit("/", 1)[-1].split("?")[0]
        return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else original(url, *args, **kwargs)

    def refuse(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
        raise WeightsMissingError(
            f"DOVER builds a backbone from {Path(dst).name} ({url}): put it in {folder} or {Path(dst).parent}, "
            "or pass allow_download=true"
        )

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch.hub, "load_state_dict_from_url", local))
        if not allow_download:
            stack.enter_context(mock.patch.object(torch.hub, "download_url_to_file", refuse))
        yield


@dataclasses.dataclass
class DoverSettings:
    """Options that change a DOVER value."""

    report: Literal["fused", "technical", "aesthetic"] = "fused"  # the metric's main value (leaderboard column)
    window: int = 128  # frames per scored window (a clip this short is scored whole, as officially)
    seed: int = 0  # seeds the random fragment and frame offsets (window k uses seed + k)

    def __post_init__(self) -> None:
        if self.report not in ("fused", "technical", "aesthetic"):
            raise ValueError(f"report must be 'fused', 'technical' or 'aesthetic', got {self.report!r}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")


class DOVER(Metric):
    """DOVER technical, aesthetic and fused scores per window of frames; the clip value is the frame-weighted mean."""

    name = "dover"
    version = "dover-official-1.0"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = DoverSettings
    runtime_options = ("device", "weights_dir", "allow_download")

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        require_dover()
        allow_download = bool(runtime.get("allow_download", False))
        found = resolve([WEIGHTS], runtime.get("weights_dir"), allow_download)
        import_dover()
        import torch
        from dover.models import DOVER as Evaluator

        self.device = resolve_device(runtime.get("device", "auto"))
        with hub_files_only(group_dir(WEIGHTS.group, runtime.get("weights_dir")), allow_download):
            evaluator = Evaluator(**MODEL_ARGS)
        evaluator.load_state_dict(torch.load(found[WEIGHTS.filename].path, map_location="cpu"))
        self.evaluator = evaluator.to(self.device).eval()
        self.weights, self.weights_sha256 = summary(found)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "backend": {"backend": "dover (official)", "model_args": MODEL_ARGS, "sample_types": SAMPLE_TYPES}}

    def reset(self) -> None:
        self._window: list[np.ndarray] = []
        self._start = 0
        self._rows: list[dict[str, float]] = []

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        for frame in sr:
            if not self._window:
                self._start = frame_index
            self._window.append(frame.copy())
            frame_index += 1
            if len(self._window) == self.settings.window:
                self._score_window()

    def _views(self, frames: np.ndarray, seed: int) -> dict[str, Any]:
        """The official view decomposition of one window: all frame samplers first, then the spatial views."""
        import torch
        from dover.datasets import UnifiedFrameSampler, get_single_view

        video = torch.from_numpy(frames)  # T,H,W,C uint8
        with seeded(seed):
            indices = {}
            for stype, opt in SAMPLE_TYPES.items():
                if "t_frag" in opt:
                    sampler = UnifiedFrameSampler(opt["clip_len"] // opt["t_frag"], opt["t_frag"], opt["frame_interval"], opt["num_clips"])
                else:
                    sampler = UnifiedFrameSampler(opt["clip_len"], opt["num_clips"], opt["frame_interval"])
                indices[stype] = sampler(len(frames), False)
            views = {s: get_single_view(video[indices[s]].permute(3, 0, 1, 2), s, **opt) for s, opt in SAMPLE_TYPES.items()}
        mean, std = torch.tensor(MEAN), torch.tensor(STD)
        for s, v in views.items():
            clips = SAMPLE_TYPES[s].get("num_clips", 1)
            v = ((v.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2)
            views[s] = v.reshape(v.shape[0], clips, -1, *v.shape[2:]).transpose(0, 1).to(self.device)
        return views

    def _score_window(self) -> None:
        import torch

        frames = np.stack(self._window)
        views = self._views(frames, self.settings.seed + len(self._rows))
        with torch.no_grad():
            scores = dict(zip(views, (float(r.mean()) for r in self.evaluator(views))))
        scores["fused"] = fuse(scores["technical"], scores["aesthetic"])
        self._rows.append({"x": self._start, "count": len(frames), **scores})
        self._window = []

    def compute(self) -> MetricResult:
        if self._window:
            self._score_window()
        rows = pd.DataFrame(self._rows, columns=["x", "count", "technical", "aesthetic", "fused"])
        weights = rows["count"].to_numpy(dtype=np.float64)
        scalars = {}
        for part in ("technical", "aesthetic", "fused"):
            value = float(np.average(rows[part], weights=weights)) if len(rows) else float("nan")
            scalars[f"{self.column}_{part}"] = value
        scalars[self.column] = scalars[f"{self.column}_{self.settings.report}"]
        curves = pd.concat(
            [pd.DataFrame({"curve": part, "x": rows["x"], "value": rows[part], "count": rows["count"]}) for part in ("technical", "aesthetic", "fused")],
            ignore_index=True,
        )
        return MetricResult(frames=pd.DataFrame({"frame": np.array([], dtype=np.int64)}), scalars=scalars, curves=curves)
