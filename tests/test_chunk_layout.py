"""Methods declare where their seams are (issue #12.14): boundary metrics use the declared layout and
never the runner's feed chunks; without a layout they give no number and the clip row says why."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import downscale, real_frames, write_clip
from test_infvsr_scene_plan import official_plan

from infvsr_bench.contracts import ClipEntry
from infvsr_bench.errors import ConfigError
from infvsr_bench.media.sources import build_source
from infvsr_bench.metrics import build_metric
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.run.runner import RunOptions, run_clip
from methods import ClipInfo, build_method
from methods.chunk_layout import ChunkRule
from methods.classical import Bicubic
from vsr_datasets.benchmark import load_dataset


@pytest.mark.parametrize("n", [1, 9, 10, 21, 40, 100])
def test_first_then_every_is_infvsrs_plan_without_cuts(n):
    rule = ChunkRule.parse({"first": 9, "every": 12})
    assert rule.chunk_starts(n) == [start for start, _, _ in official_plan(n, [])]


def test_periodic_and_listed_layouts():
    assert ChunkRule.parse({"every": 33}).chunk_starts(100) == [0, 33, 66, 99]  # 8n+1 windows of 33 frames
    assert ChunkRule.parse({"starts": [0, 40, 90]}).chunk_starts(60) == [0, 40]  # max_frames cuts the clip
    assert ChunkRule.parse({"starts": [40]}).chunk_starts(60) == [0, 40]  # the first chunk starts at 0
    assert ChunkRule.parse(None) is None


@pytest.mark.parametrize("layout, message", [
    ({"fist": 9, "every": 12}, r"unknown key\(s\) \['fist'\]"),
    ({"first": 9}, "either every"),
    ({"every": 12, "starts": [0]}, "either every"),
    ({"every": 0}, "every must be a whole number of frames >= 1"),
    ({"every": 1.5}, "every must be"),
    ({"every": True}, "every must be"),
    ({"first": 9, "starts": [0, 9]}, "first goes with every"),
    ({"starts": [9, 3]}, "increasing"),
    ({"starts": "0,9"}, "starts must be a list"),
    ("9,12", "must be a mapping"),
])
@pytest.mark.parametrize("method", ["precomputed", "command"])
def test_bad_layouts_fail_in_one_line(tmp_path, method, layout, message):
    options = {"root": str(tmp_path)} if method == "precomputed" else {"command": "true", "work_dir": str(tmp_path)}
    with pytest.raises(ConfigError, match=message) as err:
        build_method({"name": method, **options, "chunk_layout": layout})
    assert "\n" not in str(err.value) and str(err.value).startswith(f"method {method!r}: chunk_layout")


def test_command_reports_its_declared_layout_over_the_fed_frames(tmp_path):
    clip = ClipInfo("c", 30, 16, 24, 25.0)
    declared = build_method({"name": "command", "command": "true", "work_dir": str(tmp_path),
                             "chunk_layout": {"first": 9, "every": 12}})
    declared.reset(clip)
    assert declared.chunk_layout() == [0, 9, 21]
    undeclared = build_method({"name": "command", "command": "true", "work_dir": str(tmp_path)})
    undeclared.reset(clip)
    assert undeclared.chunk_layout() is None


class _Layout(Metric):
    """Records what the runner tells a boundary metric: scene cuts after reset, chunk starts before compute."""

    name, version, kind, higher_is_better = "test_layout", "1", MetricKind.TEMPORAL, True
    Settings = dict
    needs_chunk_layout = True

    def reset(self) -> None:
        self.seen: list[Any] = []

    def set_scene_cuts(self, cuts: list[int] | None) -> None:
        self.seen.append(("cuts", cuts))

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        self.seen.append(("update", frame_index))

    def compute(self) -> MetricResult:
        return MetricResult(pd.DataFrame({"frame": []}), {})


class _FeedChunks(Bicubic):
    name = "test_layout_feed"
    feed_chunks = True


class _Unknown(Bicubic):
    name = "test_layout_unknown"

    def chunk_layout(self) -> list[int] | None:
        return None


def _clip(tmp_path, n: int = 20, cuts=None) -> ClipEntry:
    gt = real_frames(n)
    return ClipEntry("c", write_clip(tmp_path / "lr.mkv", downscale(gt)), write_clip(tmp_path / "gt.mkv", gt), cuts)


@pytest.mark.parametrize("method, starts, note", [
    (Bicubic, [], "none: the method works frame by frame"),
    (_FeedChunks, [0, 8, 16], "feed: one chunk per process() call"),
    (_Unknown, None, "unknown: the method declares no chunk layout"),
])
def test_runner_hands_the_methods_layout_and_never_its_feed_unasked(tmp_path, method, starts, note):
    metric = _Layout()
    outcome = run_clip(_clip(tmp_path, cuts=(7,)), method(method.Config(chunk_size=8)), [metric],
                       RunOptions(progress=False))
    assert metric.chunk_starts == starts
    assert metric.seen[0] == ("cuts", [7]) and metric.seen[1] == ("update", 0)  # cuts come before any frame
    row = outcome.row
    assert row["chunk_starts"] == starts and row["num_chunks"] == (None if starts is None else len(starts))
    assert row["chunk_layout"].startswith(note) and row["scene_cuts"] == [7]


def test_generated_benchmarks_hand_their_recorded_cuts(tmp_path):
    source = {"type": "animated_photos", "photos": ["astronaut", "coffee"], "frames": 12, "size": [48, 64],
              "shot_frames": [3, 5]}
    dataset = load_dataset({"name": "cuts", "kind": "generated", "root": str(tmp_path / "bench"),
                            "clips": [{"name": "a", "source": source}]})
    recorded = json.loads((tmp_path / "bench" / "manifest.json").read_text())["clips"][0]["source"]
    expected = build_source(source, seed=recorded["seed"]).cut_frames()  # the shots the source renders
    assert len(expected) >= 2 and dataset.clips[0].cuts == tuple(expected)
    metric = _Layout()
    outcome = run_clip(dataset.clips[0], build_method({"name": "bicubic"}), [metric], RunOptions(progress=False))
    assert metric.seen[0] == ("cuts", expected) and outcome.row["scene_cuts"] == expected


def test_precomputed_boundary_follows_the_declared_layout_not_chunk_size(tmp_path):
    """The issue's case: one stored output scored 0.68 with chunk_size=4 and 3.23 with 6."""
    n, every = 36, 12
    gt = real_frames(n, (64, 96))
    lr_path = write_clip(tmp_path / "lr.mkv", downscale(gt))
    tool = gt.astype(np.int16)  # the tool's output: a colour cast that changes at each of its own chunks
    for k, start in enumerate(range(0, n, every)):
        tool[start:start + every] += np.array([40, -20, -40] if k % 2 else [-40, 20, 40], np.int16)
    write_clip(tmp_path / "out" / "c.mkv", np.clip(tool, 0, 255).astype(np.uint8))
    clip = ClipEntry("c", lr_path, None, cuts=())  # no GT; no cuts, so none are detected on the output
    metric = build_metric("semantic_offline", {"stride": 2, "anchor_stride": 8})

    def boundary(chunk_size: int, layout: dict | None) -> tuple[float, dict]:
        method = build_method({"name": "precomputed", "root": str(tmp_path / "out"), "chunk_size": chunk_size,
                               "chunk_layout": layout})
        row = run_clip(clip, method, [metric], RunOptions(progress=False)).row
        return row["semantic_offline_boundary"], row

    declared = [boundary(size, {"every": every})[0] for size in (4, 6)]
    assert declared[0] == pytest.approx(declared[1], rel=1e-5) and declared[0] > 3  # its seams, whatever the feed
    value, row = boundary(6, None)  # undeclared: no number from the feed chunks
    assert np.isnan(value) and row["chunk_starts"] is None
    assert row["chunk_layout"].startswith("unknown") and "not applicable" in row["chunk_layout"]
