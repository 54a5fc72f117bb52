"""The shared streaming-metric tester, as torchmetrics' MetricTester: one feeding helper (``feed``) and the checks
every registered metric passes (tests/test_metric_conformance.py).

``check_streaming`` feeds a clip as one chunk and as chunk splits, each chunk a fresh copy that is
overwritten once ``update`` returns (a metric must not keep the caller's arrays); ``check_reset``
runs clip A, ``reset``, clip B and compares with a freshly built metric on B alone; ``check_degenerate``
scores a one-frame and a flat clip; ``check_record`` checks what ``info()`` records.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from infvsr_bench.metrics import Metric, MetricResult
from infvsr_bench.weights import WeightsKind


@dataclasses.dataclass(frozen=True)
class Clip:
    """Output frames and their ground truth (None: no GT), uint8 (T,H,W,3)."""

    sr: np.ndarray
    gt: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.sr)


class StandInDover:
    """Stands in for DOVER's official network (not a dependency): records the frames each view gets, scores their mean level."""

    calls: list[dict[str, np.ndarray]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.weights, self.weights_sha256 = WeightsKind.NONE, {}

    def __call__(self, videos: dict[str, np.ndarray]) -> dict[str, float]:
        StandInDover.calls.append({s: v.copy() for s, v in videos.items()})
        return {"technical": float(videos["technical"].mean()) / 255 * 0.2,
                "aesthetic": float(videos["aesthetic"].mean()) / 255 * 0.1}


def offline_options(cls: type[Metric], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Test build options: the CPU and seeded random weights wherever the metric takes them, then ``overrides``."""
    options: dict[str, Any] = {}
    if "device" in cls.runtime_options:
        options["device"] = "cpu"
    if "weights" in cls.runtime_options and "random" in cls.weights_choices:
        options["weights"] = "random"
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


def feed(metric: Metric, sr: np.ndarray, gt: np.ndarray | None = None, lengths: Sequence[int] | None = None,
         layout: Sequence[int] | None = None, scribble: bool = False) -> MetricResult:
    """Score one clip as the runner does: ``reset``, ``begin_clip``, ``update`` with a fresh copy of each chunk of
    ``lengths`` (default: one chunk; inverted in place afterwards if ``scribble``), the chunk ``layout`` if given
    and the metric needs it, ``compute``."""
    lengths = list(lengths or [len(sr)])
    assert sum(lengths) == len(sr), f"chunks {lengths} do not cover the {len(sr)} frames"
    metric.reset()
    metric.begin_clip(len(sr))
    start = 0
    for n in lengths:
        sr_chunk = sr[start:start + n].copy()
        gt_chunk = None if gt is None else gt[start:start + n].copy()
        metric.update(sr_chunk, gt_chunk, start)
        if scribble:  # the caller reuses its buffers: whatever the metric kept of them is now wrong
            for chunk in (sr_chunk, gt_chunk):
                if chunk is not None:
                    np.bitwise_not(chunk, out=chunk)
        start += n
    if layout is not None and metric.needs_chunk_layout:
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
            wholes[key] = feed(metric, clip.sr, clip.gt, layout=layout)
            assert_informative(wholes[key], metric.column)
        got = feed(metric, clip.sr, clip.gt, lengths, layout, scribble=True)
        assert_same_result(got, wholes[key], f"{metric.column}, chunks {list(lengths)}:")


def check_reset(metric: Metric, fresh: Metric, a: Clip, b: Clip) -> None:
    """After clip A and ``reset``, clip B gives what the never-used ``fresh`` metric gives on B alone."""
    layout = starts_of(random_split(len(b), seed=1))
    expected = feed(fresh, b.sr, b.gt, layout=layout)
    feed(metric, a.sr, a.gt, layout=[0])
    got = feed(metric, b.sr, b.gt, layout=layout)
    assert_same_result(got, expected, f"{metric.column}, clip B after clip A and reset():")


def check_degenerate(metric: Metric, clip: Clip) -> None:
    """A one-frame clip and a flat grey clip (a fade to grey, a title card) score without error, in the columns of
    ``clip``'s result; frames are the fed ones; a clip value with no per-frame value behind it is NaN, never 0."""
    expected = feed(metric, clip.sr, clip.gt, layout=[0])
    flat = Clip(np.full_like(clip.sr[:4], 128), None if clip.gt is None else np.full_like(clip.gt[:4], 128))
    for what, degenerate in (("one-frame clip", Clip(clip.sr[:1], None if clip.gt is None else clip.gt[:1])),
                             ("flat clip", flat)):
        got = feed(metric, degenerate.sr, degenerate.gt, layout=[0])
        where = f"{metric.column}, {what}:"
        assert list(got.frames.columns) == list(expected.frames.columns), f"{where} per-frame columns {list(got.frames.columns)}"
        assert set(got.scalars) == set(expected.scalars), f"{where} scalars {sorted(got.scalars)}"
        assert set(got.frames["frame"]) <= set(range(len(degenerate))), f"{where} frames {got.frames['frame'].tolist()}"
        assert all(isinstance(v, float) for v in got.scalars.values()), f"{where} scalars {got.scalars}"
        if metric.column in got.frames and not got.frames[metric.column].notna().any():
            assert np.isnan(got.scalars[metric.column]), f"{where} no frame has a value, yet the clip value is {got.scalars}"


def check_record(name: str, metric: Metric, rebuild: Callable[[dict[str, Any]], Metric], clip: Clip) -> None:
    """``info()`` records the registered name, a version, the protocol, every setting, the runtime options and the
    weights (kind, sha256 of each file); it is JSON; ``rebuild`` of the recorded options scores ``clip`` exactly alike."""
    info = json.loads(json.dumps(metric.info()))
    cls = type(metric)
    assert info["metric"] == name == cls.name and info["column"] == metric.column
    assert isinstance(info["version"], str) and info["version"], f"{name}: version {info['version']!r}"
    assert isinstance(info["protocol"], str) and info["protocol"], f"{name}: protocol {info['protocol']!r}"
    fields = {f.name for f in dataclasses.fields(cls.Settings)}
    assert set(info["settings"]) == fields, f"{name}: settings {sorted(info['settings'])} vs {sorted(fields)}"
    assert set(info["runtime"]) <= set(cls.runtime_options) and not fields & set(cls.runtime_options), name
    kind = WeightsKind(info["weights"])
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in info["weights_sha256"].values()), info["weights_sha256"]
    if kind in (WeightsKind.PRETRAINED, WeightsKind.SHIPPED):
        assert info["weights_sha256"], f"{name}: {kind} weights without a checksum"
    if kind == WeightsKind.NONE:
        assert not info["weights_sha256"], f"{name}: checksums {info['weights_sha256']} for no weights"
    again = rebuild({"metric": info["metric"], **info["settings"], **info["runtime"]})
    assert json.loads(json.dumps(again.info())) == info, f"{name}: the rebuilt metric records otherwise"
    assert_same_result(feed(again, clip.sr, clip.gt, layout=[0]), feed(metric, clip.sr, clip.gt, layout=[0]),
                       f"{name} rebuilt from its record:")
