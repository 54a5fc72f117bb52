"""Issue #15, point 3: the pipelined runner (reader, metrics and writer threads beside the method) gives
the sequential path's results row for row, fails a clip with the same reason whichever stage breaks,
leaves no thread behind, keeps memory bounded, and keeps the method's time and memory its own."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import clips_folder

from infvsr_bench.app.cli import main
from infvsr_bench.contracts import ClipEntry
from infvsr_bench.io.readers import open_video
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.results.store import RunStore
from infvsr_bench.run.pipeline import Stages
from infvsr_bench.run.runner import RunOptions, run_all
from methods import METHODS
from methods.classical import Bicubic, ClassicalConfig

# Columns that measure this machine at this moment (wall time, memory), not the results.
MEASURED = ("method_seconds", "method_fps", "method_peak_rss_mib", "method_peak_cuda_mib", "metrics_peak_rss_mib",
            "metrics_peak_cuda_mib", "process_peak_rss_mib", "process_peak_cuda_mib")


class _Delayed(Bicubic):
    """Returns its frames two calls late, in chunks unlike its input's, and reuses one output buffer:
    the runner must align SR with GT by frame index and not let a reused buffer reach the metrics."""

    name = "test_delayed"

    def reset(self, clip):
        super().reset(clip)
        self.held: list[np.ndarray] = []
        self.buffer = None

    def _out(self, frames: np.ndarray) -> np.ndarray:
        if self.buffer is None or self.buffer.shape != frames.shape:
            self.buffer = np.empty_like(frames)
        self.buffer[...] = frames
        return self.buffer

    def process(self, lr):
        self.held.append(super().process(lr))
        return self._out(self.held.pop(0)) if len(self.held) > 2 else None

    def flush(self):
        rest, self.held = self.held, []
        return np.concatenate(rest) if rest else None


class _Raises(Bicubic):
    """Raises in its third call."""

    name = "test_raises_mid_clip"

    def reset(self, clip):
        super().reset(clip)
        self.calls = 0

    def process(self, lr):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom in call 3")
        return super().process(lr)


for _cls in (_Delayed, _Raises):
    if _cls.name not in METHODS:
        METHODS.register(_cls.name, _cls)




def _run(tmp_path: Path, root: Path, name: str, *extra: str) -> Path:
    code = main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}",
                 f"run_name={name}", "progress=false", *extra])
    assert code in (0, 1)
    return tmp_path / "runs" / "folder" / name


def _results(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = pd.read_parquet(run_dir / "frames.parquet")
    clips = pd.read_parquet(run_dir / "clips.parquet")
    return frames, clips.drop(columns=[c for c in MEASURED if c in clips])


@pytest.mark.parametrize("method", ["bicubic", "test_delayed"])
def test_pipelined_tables_equal_sequential_row_for_row(tmp_path, method):
    root = clips_folder(tmp_path / "data", {"c0": 11, "c1": 7, "c2": 9})
    args = (f"method.name={method}", "method.chunk_size=3", "metrics=[psnr,ssim,tof,ewarp_dis]", "save_outputs=true")
    sequential = _run(tmp_path, root, "sequential", *args, "pipeline=false")
    pipelined = _run(tmp_path, root, "pipelined", *args, "pipeline=true")
    (seq_frames, seq_clips), (pipe_frames, pipe_clips) = _results(sequential), _results(pipelined)
    assert list(seq_clips["status"]) == ["ok"] * 3 and len(seq_frames) == 27
    pd.testing.assert_frame_equal(pipe_frames, seq_frames)
    pd.testing.assert_frame_equal(pipe_clips, seq_clips)
    for clip in ("c0", "c1", "c2"):  # the writer thread stored the same frames
        a = np.stack(list(open_video(sequential / "outputs" / f"{clip}.mkv").iter_frames()))
        b = np.stack(list(open_video(pipelined / "outputs" / f"{clip}.mkv").iter_frames()))
        np.testing.assert_array_equal(a, b)


def test_pipelined_lossy_scoring_equals_sequential(tmp_path):
    root = clips_folder(tmp_path / "data", {"c0": 10})
    args = ("method.chunk_size=4", "metrics=[psnr,ssim]", "score_through=x264_yuv420p_q7")
    seq = _results(_run(tmp_path, root, "sequential", *args, "pipeline=false"))
    pipe = _results(_run(tmp_path, root, "pipelined", *args))
    pd.testing.assert_frame_equal(pipe[0], seq[0])
    pd.testing.assert_frame_equal(pipe[1], seq[1])


def _threads_settle(baseline: int) -> int:
    deadline = time.time() + 5
    while threading.active_count() > baseline and time.time() < deadline:
        time.sleep(0.01)
    return threading.active_count()


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:] = bytes(len(data) - middle)  # the second half of the file zeroed
    path.write_bytes(bytes(data))


def test_a_method_raising_mid_clip_fails_that_clip_and_no_thread_is_left(tmp_path):
    root = clips_folder(tmp_path / "data", {"a_long": 40, "b_short": 4})
    baseline = threading.active_count()
    reasons = {}
    for pipeline in (False, True):
        run_dir = _run(tmp_path, root, f"p{pipeline}", "method.name=test_raises_mid_clip", "method.chunk_size=2",
                       f"pipeline={str(pipeline).lower()}")
        clips = pd.read_parquet(run_dir / "clips.parquet").set_index("clip")
        reasons[pipeline] = clips["reason"].dropna().to_dict()
        assert list(clips["status"]) == ["failed", "ok"]  # b_short needs only two calls
        assert _threads_settle(baseline) == baseline, [t.name for t in threading.enumerate()]
    assert reasons[True] == reasons[False] == {"a_long": "RuntimeError: boom in call 3"}


def test_a_corrupt_gt_or_lr_read_in_a_reader_thread_fails_only_that_clip(tmp_path):
    root = clips_folder(tmp_path / "data", {"a_ok": 12, "b_bad_gt": 60, "c_bad_lr": 60, "d_ok": 8})
    _corrupt(root / "GT" / "b_bad_gt.mkv")
    _corrupt(root / "LR" / "c_bad_lr.mkv")
    baseline = threading.active_count()
    tables = {}
    for pipeline in (False, True):
        run_dir = _run(tmp_path, root, f"p{pipeline}", "method.chunk_size=4", f"pipeline={str(pipeline).lower()}")
        tables[pipeline] = pd.read_parquet(run_dir / "clips.parquet").set_index("clip")
        assert _threads_settle(baseline) == baseline
    pipe, seq = tables[True], tables[False]
    assert list(pipe["status"]) == ["ok", "failed", "failed", "ok"]
    assert pipe["reason"].to_dict() == seq["reason"].to_dict()
    assert "b_bad_gt.mkv" in pipe.loc["b_bad_gt", "reason"] and "c_bad_lr.mkv" in pipe.loc["c_bad_lr", "reason"]


MIB = 2**20


class _Hungry(Bicubic):
    """Each call touches 160 MiB for ``hold`` seconds."""

    name = "test_hungry_calls"
    hold = 0.05
    scratch_mib = 160

    def process(self, lr):
        scratch = np.ones(self.scratch_mib * MIB // 8)
        time.sleep(self.hold)
        del scratch
        return super().process(lr)


class _Sleepy(_Hungry):
    """Each call takes 100 ms and touches little memory."""

    hold, scratch_mib = 0.1, 1


class _Busy(Metric):
    """Each update touches ``scratch_mib`` for ``hold`` seconds: long enough to overlap the method's calls
    unless the runner keeps their windows apart."""

    name, version, kind, higher_is_better = "test_busy", "1", MetricKind.NO_REFERENCE, True

    @dataclasses.dataclass
    class Settings:
        pass

    def __init__(self, hold: float, scratch_mib: int) -> None:
        super().__init__()
        self.hold, self.scratch_mib = hold, scratch_mib

    def reset(self) -> None:
        self.updates = 0

    def update(self, sr, gt, frame_index) -> None:
        scratch = np.ones(self.scratch_mib * MIB // 8)
        time.sleep(self.hold)
        del scratch
        self.updates += 1

    def compute(self) -> MetricResult:
        return MetricResult(pd.DataFrame({"frame": []}), {"test_busy": float(self.updates)})


def _one_clip(tmp_path: Path, method: Bicubic, metric: Metric) -> pd.Series:
    root = clips_folder(tmp_path / "data", {"c0": 12})
    clips = [ClipEntry("c0", root / "LR" / "c0.mkv", root / "GT" / "c0.mkv")]
    store = RunStore(tmp_path / "run")
    run_all(clips, method, [metric], store, RunOptions(progress=False, pipeline=True))
    row = pd.Series(store.clip_row("c0"))
    assert row["status"] == "ok" and row["test_busy"] == 6
    return row


def test_method_time_counts_only_its_calls_beside_a_busy_metric_thread(tmp_path):
    # 6 calls of 100 ms; 6 metric updates of 400 ms, which the method waits for (full queue, exclusive
    # memory windows): those 2.4 s would show if its clock ran outside its calls (slack for a loaded CPU).
    row = _one_clip(tmp_path, _Sleepy(ClassicalConfig(chunk_size=2)), _Busy(hold=0.4, scratch_mib=1))
    assert 0.6 <= row["method_seconds"] < 1.5, row["method_seconds"]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_method_memory_counts_only_its_calls_beside_a_busy_metric_thread(tmp_path):
    # 6 calls touching 160 MiB; 6 metric updates touching 256 MiB for 100 ms each, in another thread.
    row = _one_clip(tmp_path, _Hungry(ClassicalConfig(chunk_size=2)), _Busy(hold=0.1, scratch_mib=256))
    assert 150 <= row["method_peak_rss_mib"] <= 230, row["method_peak_rss_mib"]  # never the metric's 256 MiB
    assert row["metrics_peak_rss_mib"] >= 250


def test_stages_read_ahead_only_as_deep_as_their_queue():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    with Stages(threaded=True) as stages:
        items = stages.prefetch(source(), 3, "test")
        for i, item in enumerate(items):
            assert item == i
            time.sleep(0.002)
            assert len(produced) - (i + 1) <= 3 + 1  # the queue, plus the one item being put
            if i == 20:
                break
    assert len(produced) <= 25  # closing stopped the reader


def test_a_sink_error_surfaces_in_the_caller_and_its_thread_ends():
    baseline = threading.active_count()
    seen = []

    def fn(item):
        if item == 5:
            raise ValueError("bad item 5")
        seen.append(item)

    with pytest.raises(ValueError, match="bad item 5"):
        with Stages(threaded=True) as stages:
            sink = stages.sink(fn, 2, "test")
            for i in range(1000):
                sink.put(i)
            sink.finish()
    assert seen == [0, 1, 2, 3, 4]
    assert _threads_settle(baseline) == baseline
