"""The metric conformance test: every registered metric through the shared tester (tests/metric_tester.py).

Random chunk splits give the one-chunk result (the caller overwriting its buffers), reset forgets, a
one-frame and a flat clip score without error in the same columns, and ``info()`` records the name,
version, protocol, settings and weights, enough to rebuild the metric. Metrics are built offline with
``offline_options`` (CPU, seeded random weights where they take them); ``RECIPES`` adds what a few need,
so a newly registered metric is covered without editing this file, unless ``LEFT_OUT`` says why not. Their
per-frame networks are memoised (``_PerSampleMemo``): the metrics' streaming logic is checked exactly, fast.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from conftest import real_frames
from metric_tester import (
    Clip,
    StandInDover,
    check_degenerate,
    check_record,
    check_reset,
    check_streaming,
    offline_options,
    random_split,
)

import infvsr_bench.metrics.dover as dover_module
from infvsr_bench.metrics import METRICS, Metric, MetricKind, MetricResult, PerFrameMetric, build_metric
from infvsr_bench.metrics.features import FeatureBank
from infvsr_bench.metrics.flow import RAFT
from infvsr_bench.metrics.pyiqa_backend import PyiqaMetric

# 13 frames: a multiple of no batch size. 96x96: NIQE scores whole 96x96 blocks, and square frames
# cost the backbones that resize to 224 pixels least.
FRAMES, SIZE = 13, (96, 96)
SPLITS = [random_split(FRAMES, seed=0), random_split(FRAMES, seed=1, longest=8)]
# A tighter drift set-up than the defaults, so 13 frames exercise the ring, the anchors and a closed reference window.
SMALL_DRIFT = {"gaps": [1, 2, 3, 5, 8], "ring_size": 4, "anchor_stride": 2, "reference_frames": 6}
# Registered metrics this test does not run, each with the reason (none today).
LEFT_OUT: dict[str, str] = {}
COVERED = [name for name in METRICS.names() if name not in LEFT_OUT]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one metric is tested here, beyond ``offline_options``."""

    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    size: tuple[int, int] = SIZE  # frame size (H, W) of its clips


RECIPES: dict[str, Recipe] = {
    "niqe": Recipe({"weights": "auto"}),  # no random mode: the pristine parameters infvsr-bench ships
    "niqe_basicsr": Recipe(size=(96, 192)),  # BasicSR's NIQE needs two 96x96 blocks (a covariance)
    "semantic_offline": Recipe({"weights": "auto", "stride": 2, **SMALL_DRIFT}),  # shipped weights; strided
    # DINO, the costliest backbone, scores every other frame (CLIP's metrics cover stride 1)
    "subject_consistency": Recipe({"stride": 2}),
    "semantic_drift_dino": Recipe({"stride": 2, **SMALL_DRIFT}),
    "semantic_drift_clip": Recipe(SMALL_DRIFT),
    "clipiqa": Recipe({"batch_size": 8}),  # it encodes its text prompts at every batch: fewer, larger batches
    "ewarp": Recipe({"flow_options": {"iters": 1}}),  # chunking does not interact with RAFT's iteration count
}


def degrade(frames: np.ndarray) -> np.ndarray:
    """An SR-like output: x2 area down, bicubic up (OpenCV), so full-reference values are finite and non-trivial."""
    h, w = frames.shape[1:3]
    return np.stack([cv2.resize(cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_CUBIC) for f in frames])


@functools.cache
def clips_of_size(size: tuple[int, int]) -> dict[str, Clip]:
    """The clip, and clips A and B of the reset check cut from it at even frames (memoised networks, strided or not, reuse them)."""
    gt = real_frames(FRAMES, size, seed=3)
    clip = Clip(degrade(gt), gt)
    return {"clip": clip, "a": Clip(clip.sr[::-1][:3], clip.gt[::-1][:3]), "b": Clip(clip.sr[4:10], clip.gt[4:10])}


def clips_for(name: str) -> dict[str, Clip]:
    """The clips of ``clips_of_size`` at the frame size ``name`` is tested at."""
    return clips_of_size(RECIPES.get(name, Recipe()).size)


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return clips_of_size(SIZE)


class _PerSampleMemo(torch.nn.Module):
    """A batched per-frame network whose output for one sample (a frame, or an output/GT pair) is computed once.

    Outputs then do not depend on the batch a frame comes in (float32 kernels may block differently
    by batch size), so a metric's own streaming logic is checked exactly; and a network costs one
    forward per distinct frame, not one per frame fed (clips A and B are cut from the clip).
    """

    def __init__(self, net: Callable[..., torch.Tensor], memo: dict[bytes, torch.Tensor]) -> None:
        super().__init__()
        self.net = net
        self.device = getattr(net, "device", None)  # pyiqa's InferenceModel says where it runs
        self.memo = memo  # shared by the instances of one metric: they are built from the same seed

    def forward(self, *batches: torch.Tensor) -> torch.Tensor:
        keys = []
        for i in range(len(batches[0])):
            digest = hashlib.blake2b(digest_size=16)
            for b in batches:
                digest.update(b[i].contiguous().cpu().numpy().tobytes())
            keys.append(digest.digest())
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        if todo:
            outputs = self.net(*(b[todo] for b in batches))
            outputs = outputs.reshape(1) if outputs.dim() == 0 else outputs  # pyiqa squeezes a batch of one
            for i, out in zip(todo, outputs):
                self.memo[keys[i]] = out.clone()
        return torch.stack([self.memo[k] for k in keys])


def _memoise(name: str, metric: Metric, memos: dict[tuple[str, str], dict], banks: dict[FeatureBank, Any]) -> None:
    """Wrap the per-frame networks of ``metric`` (pyiqa model, RAFT encoders, feature backbones) in ``_PerSampleMemo``."""
    if isinstance(metric, PyiqaMetric):
        metric.model = _PerSampleMemo(metric.model, memos.setdefault((name, "pyiqa"), {}))
    if isinstance(getattr(metric, "flow", None), RAFT):
        raft = metric.flow.model
        for part in ("feature_encoder", "context_encoder"):
            setattr(raft, part, _PerSampleMemo(getattr(raft, part), memos.setdefault((name, part), {})))
    for bank in FeatureBank._banks.values():  # process-wide: put back when the module is done
        if bank not in banks:
            banks[bank] = bank.net
            bank.net = _PerSampleMemo(bank.net, {})


@pytest.fixture(scope="module", autouse=True)
def stand_in_dover() -> Iterator[None]:
    """DOVER's network is the official code (not a dependency): a stand-in scores its views, its sampling is DOVER's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dover_module, "OfficialDover", StandInDover)
        yield


def offline(name: str) -> Metric:
    """``name`` built as this module tests it (``offline_options`` and its recipe), its networks as they are."""
    return build_metric(name, offline_options(METRICS.get(name), RECIPES.get(name, Recipe()).options))


@pytest.fixture(scope="module")
def built() -> Iterator[Callable[..., Metric]]:
    """Metrics built offline once per module (or ``fresh``), their per-frame networks memoised."""
    cache: dict[str, Metric] = {}
    memos: dict[tuple[str, str], dict] = {}
    banks: dict[FeatureBank, Any] = {}

    def get(name: str, fresh: bool = False) -> Metric:
        if fresh or name not in cache:
            metric = offline(name)
            _memoise(name, metric, memos, banks)
            if fresh:
                return metric
            cache[name] = metric
        return cache[name]

    yield get
    for bank, net in banks.items():
        bank.net = net


@pytest.mark.parametrize("name", COVERED)
def test_random_chunk_splits_give_the_one_chunk_result(name, built):
    """Splits with 1-frame chunks, fed as copies the caller then overwrites, equal one chunk (same layout)."""
    check_streaming(built(name), clips_for(name)["clip"], SPLITS)


@pytest.mark.parametrize("name", COVERED)
def test_reset_forgets_the_previous_clip(name, built):
    """Clip A, reset(), clip B: the result of a freshly built metric on B alone."""
    clips = clips_for(name)
    check_reset(built(name), built(name, fresh=True), clips["a"], clips["b"])


@pytest.mark.parametrize("name", COVERED)
def test_one_frame_and_flat_clips_score_in_the_same_columns(name, built):
    """A one-frame clip and a flat grey clip: no error, the columns of a real clip, NaN where nothing was scored."""
    check_degenerate(built(name), clips_for(name)["clip"])


@pytest.mark.parametrize("name", COVERED)
def test_info_records_the_metric_and_rebuilds_it(name):
    """Name, version, protocol, every setting, runtime options, weights kind and checksums; the recorded options
    build a metric that records and scores alike (real networks, not memoised: a missed setting shows)."""
    metric = offline(name)
    assert type(metric) is METRICS.get(name)
    check_record(name, metric, lambda options: build_metric(name, options), clips_for(name)["a"])


def test_left_out_metrics_are_registered_and_say_why():
    for name, reason in LEFT_OUT.items():
        assert name in METRICS and reason.strip(), name
    assert COVERED and set(COVERED) | set(LEFT_OUT) == set(METRICS.names())


# The tester itself: five broken toy metrics it must catch, and a correct one it must pass.


class _Mean(PerFrameMetric):
    """Mean grey level per frame: a correct streaming metric."""

    name, version, kind, higher_is_better = "toy_mean", "1", MetricKind.NO_REFERENCE, True

    @dataclasses.dataclass
    class Settings:
        pass

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return float(sr.mean())


class _KeepsBuffers(_Mean):
    """Keeps the caller's chunks and scores them only in ``compute``."""

    def reset(self) -> None:
        super().reset()
        self._chunks: list[tuple[int, np.ndarray]] = []

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        self._chunks.append((frame_index, sr))

    def compute(self) -> MetricResult:
        for start, sr in self._chunks:
            super().update(sr, None, start)
        self._chunks = []
        return super().compute()


class _ResetKeepsFrames(_Mean):
    """``reset`` forgets nothing once the metric exists."""

    def reset(self) -> None:
        if not hasattr(self, "_values"):
            super().reset()


class _ChunkMean(_Mean):
    """Scores each frame with its chunk's mean: depends on the chunking."""

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        self._frames.extend(range(frame_index, frame_index + len(sr)))
        self._values.extend([float(sr.mean())] * len(sr))


class _ZeroWhenUnscored(_Mean):
    """Scores frames after the first only, and reports 0 for a clip with no scored frame."""

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        skip = int(frame_index == 0)
        super().update(sr[skip:], None, frame_index + skip)

    def compute(self) -> MetricResult:
        result = super().compute()
        return MetricResult(result.frames, {self.column: 0.0 if not self._values else result.scalars[self.column]})


class _UnrecordedGain(_Mean):
    """Its value depends on a constructor argument that ``info()`` does not record."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain
        super().__init__()

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return self.gain * super().score(sr, gt)


def test_tester_passes_a_correct_metric_and_catches_broken_ones(clips):
    clip = clips["clip"]
    check_streaming(_Mean(), clip, SPLITS)
    check_reset(_Mean(), _Mean(), clips["a"], clips["b"])
    check_degenerate(_Mean(), clip)
    with pytest.raises(AssertionError, match="one-frame clip: no frame has a value"):
        check_degenerate(_ZeroWhenUnscored(), clip)
    check_record("toy_mean", _Mean(), lambda options: _Mean(), clips["b"])
    with pytest.raises(AssertionError, match="rebuilt from its record"):
        check_record("toy_mean", _UnrecordedGain(2.0), lambda options: _UnrecordedGain(), clips["b"])
    with pytest.raises(AssertionError, match="per-frame values"):
        check_streaming(_KeepsBuffers(), clip, SPLITS)
    with pytest.raises(AssertionError, match="per-frame values"):
        check_streaming(_ChunkMean(), clip, SPLITS)
    with pytest.raises(AssertionError, match="after clip A and reset"):
        check_reset(_ResetKeepsFrames(), _ResetKeepsFrames(), clips["a"], clips["b"])


def test_splits_cover_the_clip_with_single_frame_chunks():
    for lengths in SPLITS:
        assert sum(lengths) == FRAMES and lengths[0] == 1
        assert any(a == b == 1 for a, b in zip(lengths, lengths[1:])) and max(lengths) > 1
    assert SPLITS[0] != SPLITS[1]
