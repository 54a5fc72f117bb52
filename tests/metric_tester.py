"""A streaming-metric tester, as torchmetrics' MetricTester: chunking, caller buffers and reset must not change results.

``check_streaming`` feeds a clip as one chunk and as chunk splits, each chunk a fresh copy that is
overwritten once ``update`` returns (a metric must not keep the caller's arrays); ``check_reset``
runs clip A, ``reset``, clip B and compares with a freshly built metric on B alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infvsr_bench.metrics import Metric, MetricResult


@dataclasses.dataclass(frozen=True)
class Clip:
    """Output frames and their ground truth, uint8 (T,H,W,3)."""

    sr: np.ndarray
    gt: np.ndarray

    def __len__(self) -> int:
        return len(self.sr)


def offline_options(cls: type[Metric], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Test build options: the CPU and seeded random weights wherever the metric takes them, then ``overrides``."""
    options: dict[str, Any] = {}
    if "device" in cls.runtime_options:
        options["device"] = "cpu"
    if "random_weights" in cls.runtime_options:
        options["random_weights"] = True
    return {**options, **(overrides or {})}


def random_split(n: int, seed: int, longest: int = 5) -> list[int]:
    """Seeded chunk lengths summing to ``n``: 1 frame first, then 1..``longest``, with two 1-frame chunks in a row."""
    rng = np.random.default_rng(seed)
    while True:
        lengths = [1]
        while sum(lengths) < n:
            lengths.append(int(min(rng.integers(1, longest + 1), n - sum(lengths))))
        if any(a == b == 1 for a, b in zip(lengths[1:], lengths[2:])):
            return lengths


def starts_of(lengths: Sequence[int]) -> list[int]:
    """The first frame of each chunk."""
    return [int(s) for s in np.cumsum([0, *lengths[:-1]])]


def feed(metric: Metric, clip: Clip, lengths: Sequence[int], layout: Sequence[int], scribble: bool) -> MetricResult:
    """``reset`` and ``begin_clip`` as the runner calls them; ``update`` with a fresh copy of each chunk
    (inverted in place afterwards if ``scribble``); ``compute``."""
    metric.reset()
    metric.begin_clip(sum(lengths))
    start = 0
    for n in lengths:
        sr, gt = clip.sr[start:start + n].copy(), clip.gt[start:start + n].copy()
        metric.update(sr, gt, start)
        if scribble:  # the caller reuses its buffers: whatever the metric kept of them is now wrong
            np.bitwise_not(sr, out=sr)
            np.bitwise_not(gt, out=gt)
        start += n
    if metric.needs_chunk_layout:
        metric.set_chunk_starts(list(layout))
    return metric.compute()


def _largest_difference(got: pd.DataFrame, expected: pd.DataFrame) -> str:
    """The largest absolute difference of numeric columns, when both tables have the same shape."""
    if got.shape != expected.shape or list(got.columns) != list(expected.columns):
        return ""
    a, b = (t.select_dtypes("number").to_numpy(np.float64) for t in (got, expected))
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)[~(np.isnan(a) & np.isnan(b))]
    return f" (largest |difference| {np.nanmax(diff):.3g})" if diff.size else ""


def _assert_table(got: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    try:
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    except AssertionError as exc:
        raise AssertionError(f"{what}{_largest_difference(got, expected)}: {exc}") from None


def assert_same_result(got: MetricResult, expected: MetricResult, what: str = "") -> None:
    """Per-frame values, scalars and curves exactly equal (NaN equals NaN): streaming changes no rounding either."""
    _assert_table(got.frames, expected.frames, f"{what} per-frame values")
    scalars = (pd.Series(r.scalars, dtype=np.float64).sort_index() for r in (got, expected))
    _assert_table(*(s.to_frame("scalar") for s in scalars), f"{what} scalars")
    if expected.curves is None or got.curves is None:
        assert got.curves is None and expected.curves is None, f"{what} curves: one result has none"
    else:
        _assert_table(got.curves, expected.curves, f"{what} curves")


def assert_informative(result: MetricResult, column: str) -> None:
    """A check of equal results means something only if the main value is a finite number."""
    value = result.scalars.get(column)
    assert value is not None and np.isfinite(value), f"{column}: clip value {value!r} is not a finite number"


def check_streaming(metric: Metric, clip: Clip, splits: Sequence[Sequence[int]]) -> None:
    """Each split (scribbled buffers) gives the one-chunk result; the chunk layout is each split's own in both runs."""
    wholes: dict[tuple[int, ...], MetricResult] = {}
    for lengths in splits:
        assert sum(lengths) == len(clip), f"split {lengths} does not cover the {len(clip)} frames"
        layout = starts_of(lengths)
        key = tuple(layout) if metric.needs_chunk_layout else ()  # the one-chunk run depends on nothing else
        if key not in wholes:
            wholes[key] = feed(metric, clip, [len(clip)], layout, scribble=False)
            assert_informative(wholes[key], metric.column)
        got = feed(metric, clip, lengths, layout, scribble=True)
        assert_same_result(got, wholes[key], f"{metric.column}, chunks {list(lengths)}:")


def check_reset(metric: Metric, fresh: Metric, a: Clip, b: Clip) -> None:
    """After clip A and ``reset``, clip B gives what the never-used ``fresh`` metric gives on B alone."""
    layout = starts_of(random_split(len(b), seed=1))
    expected = feed(fresh, b, [len(b)], layout, scribble=False)
    feed(metric, a, [len(a)], [0], scribble=False)
    got = feed(metric, b, [len(b)], layout, scribble=False)
    assert_same_result(got, expected, f"{metric.column}, clip B after clip A and reset():")
