"""Issue #20, points 4, 9 and 13: one run identity per folder, checked and written atomically; every
clip row carries the fingerprint it was computed under; options that pick a subset never shrink what
the folder holds; a full disk is one line naming the file."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, clips_folder

from infvsr_bench.app.cli import main
from infvsr_bench.errors import ConfigError
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import (FORMAT_VERSION, DatasetRecord, RunKey, RunRecord, RunStatus, fingerprint,
                                         read_run_record, run_identity, write_clip_row, write_table)
from infvsr_bench.results.store import RunStore, build_tables, clip_folder_name

# A ``run`` that waits, once its run identity is known, until the test releases every racer at once.
RACER = """
import os, pathlib, sys, time
import infvsr_bench.app.job as job
from infvsr_bench.app.cli import main
barrier = pathlib.Path(sys.argv[1])
identity = job.run_identity

def at_the_barrier(*args, **kwargs):
    (barrier / f"ready-{os.getpid()}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.002)
    return identity(*args, **kwargs)

job.run_identity = at_the_barrier
sys.exit(main(sys.argv[2:]))
"""


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["dataset=folder", f"dataset.root={root}", f"output_root={out}", "progress=false", *extra]


@pytest.mark.slow
def test_two_runs_with_different_metrics_started_together_on_one_folder_one_is_refused(tmp_path):
    # Before: both were accepted (4 of 10 tries): the record listed ssim, half the clips had none.
    root = clips_folder(tmp_path / "data", {"c0": 4, "c1": 5})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(barrier), "run",
                                *_args(root, tmp_path / "runs", f"metrics={metrics}")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for metrics in ("[psnr]", "[psnr,ssim]")]
    deadline = time.time() + 300
    while len(list(barrier.glob("ready-*"))) < 2 and time.time() < deadline and all(r.poll() is None for r in racers):
        time.sleep(0.01)
    assert len(list(barrier.glob("ready-*"))) == 2, [r.communicate() for r in racers]
    (barrier / "go").touch()
    outputs = [r.communicate(timeout=300) for r in racers]
    codes = [r.returncode for r in racers]
    assert sorted(codes) == [0, 2], outputs
    refused_err = outputs[codes.index(2)][1]
    assert len(refused_err.strip().splitlines()) == 1, refused_err
    assert refused_err.startswith("error: ") and "holds results of a different run" in refused_err
    winner_metrics = (["psnr"], ["psnr", "ssim"])[codes.index(0)]
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    record = read_run_record(run_dir)
    assert [m["column"] for m in record.metrics] == winner_metrics
    clips = pd.read_parquet(run_dir / "clips.parquet")
    assert list(clips["clip"]) == ["c0", "c1"] and set(clips["fingerprint"]) == {record.fingerprint}
    assert all(clips[m].notna().all() for m in winner_metrics)
    assert record.status == RunStatus.COMPLETE


def _record(clips: list[str], fingerprint: str = "f" * 64) -> RunRecord:
    return RunRecord(config={}, identity={}, fingerprint=fingerprint, method={}, metrics=[],
                     dataset=DatasetRecord("d", 4, clips), environment={}, started="2020-01-01T00:00:00")


def _plant(store: RunStore, clip: str, psnr: float, fingerprint: str) -> None:
    """A finished clip's files as a worker computing under ``fingerprint`` leaves them."""
    folder = store.clips_dir / clip_folder_name(clip)
    folder.mkdir(parents=True)
    write_table(pd.DataFrame({"clip": clip, "frame": [0, 1], "psnr": [psnr, psnr]}), folder / "frames.parquet",
                csv=False)
    write_clip_row(folder, {"clip": clip, "status": "ok", "reason": None, "frames": 2, "psnr": psnr,
                            "method_seconds": 1.0, "method_peak_rss_mib": 1.0, "process_peak_rss_mib": 1.0},
                   RunKey(FORMAT_VERSION, fingerprint))


def test_a_clip_row_of_another_run_fingerprint_is_not_merged(tmp_path, capsys):
    store = RunStore(tmp_path / "run")
    store.write_record(_record(["a", "b"]))
    _plant(store, "a", 30.0, "f" * 64)
    _plant(store, "b", 99.0, "0" * 64)  # a worker of another run (other metrics) wrote b
    summary = store.merge()
    assert summary.ok == ["a"] and summary.status == RunStatus.INCOMPLETE
    assert list(summary.foreign) == ["b"] and "0000000000" in summary.foreign["b"]
    assert list(pd.read_parquet(store.dir / "clips.parquet")["clip"]) == ["a"]
    assert set(pd.read_parquet(store.dir / "frames.parquet")["clip"]) == {"a"}
    assert main(["merge", str(store.dir)]) == 1
    out = capsys.readouterr().out
    assert "1/2 clips ok, 0 failed, 1 missing" in out
    assert "not this run's: b: computed under run fingerprint 0000000000" in out
    assert not RunStore(store.dir).is_finished("b")  # a worker of this run redoes it
    worker = RunStore(store.dir)
    worker.begin(_record(["a", "b"]), overwrite=False)
    assert worker.is_finished("a") and not worker.is_finished("b")


def test_every_clip_row_carries_the_fingerprint_it_was_computed_under(tmp_path):
    store = RunStore(tmp_path / "run")
    store.begin(_record(["a"], "1" * 64), overwrite=False)
    store.write_clip("a", None, {"clip": "a", "status": "ok", "reason": None, "frames": 1})
    assert json.loads((store.clips_dir / "a" / "clip.json").read_text())["fingerprint"] == "1" * 64
    assert build_tables(store.dir, ["a"], store.key).clips["fingerprint"].tolist() == ["1" * 64]


def test_begin_refuses_another_identity_in_one_line_and_keeps_the_start_of_the_same_run(tmp_path):
    store = RunStore(tmp_path / "run")
    first = _record(["a"], "1" * 64)
    first.identity = {"metrics": {"psnr": {}}}
    store.begin(first, overwrite=False)
    other = _record(["a"], "2" * 64)
    other.identity = {"metrics": {"psnr": {}, "ssim": {}}}
    with pytest.raises(ConfigError, match=r"holds results of a different run \(differs in metrics.ssim\)"):
        RunStore(store.dir).begin(other, overwrite=False)
    again = _record(["a"], "1" * 64)
    again.started = "2030-01-01T00:00:00"
    assert RunStore(store.dir).begin(again, overwrite=False).started == first.started  # the run began then
    assert read_run_record(store.dir).started == first.started


def test_merge_and_resume_agree_on_which_runs_are_the_same(tmp_path):
    """#22 point 3: two folders of one run identity, named apart only by ``run_name`` (which decides no
    value): resume takes either record as the same run, so merge keeps one of them (the other a re-run)."""
    data = DatasetRecord("d", 4, ["a"])
    method = {"name": "bicubic", "version": "1", "weights": "none", "weights_sha256": None, "config": {}}
    records = []
    for i, name in enumerate(("first", "second")):
        config = {"method": {"name": "bicubic"}, "dataset": {"name": "d"}, "run_name": name, "max_frames": 2}
        identity = run_identity(config, method, [], data)
        record = RunRecord(config=config, identity=identity, fingerprint=fingerprint(identity), method=method,
                           metrics=[], dataset=data, environment={}, started=f"2020-01-0{i + 1}T00:00:00")
        store = RunStore(tmp_path / "runs" / "d" / name)
        store.begin(record, overwrite=False)
        store.write_clip("a", pd.DataFrame({"clip": "a", "frame": [0, 1], "psnr": [30.0, 30.0]}),
                         {"clip": "a", "status": "ok", "reason": None, "frames": 2, "psnr": 30.0, "method_seconds": 1.0,
                          "method_peak_rss_mib": 1.0, "process_peak_rss_mib": 1.0})
        store.merge()
        records.append(record)
    merged = load_runs([str(tmp_path / "runs")])
    # Before: 2 runs, the same experiment shown twice (merge keyed re-runs by display name too).
    assert [r.path.name for r in merged.runs] == ["second"], [r.path.name for r in merged.runs]
    assert any(n.startswith(f"{(tmp_path / 'runs' / 'd' / 'first').resolve()}: superseded by") for n in merged.notes)
    resumed = RunStore(tmp_path / "runs" / "d" / "first").begin(records[1], overwrite=False)  # resume: no refusal
    assert resumed.started == records[0].started and resumed.key == records[0].key


# -- point 9: max_clips selects what this invocation does, never what the folder holds --------------------

def test_max_clips_on_a_finished_run_keeps_every_clip_and_a_fresh_one_lists_the_rest_missing(tmp_path, capsys):
    root = clips_folder(tmp_path / "data", {"c0": 3, "c1": 4, "c2": 3})
    args = _args(root, tmp_path / "runs", "metrics=[psnr]")
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    assert main(["run", *args]) == 0
    full = pd.read_parquet(run_dir / "clips.parquet")
    assert main(["run", *args, "max_clips=1"]) == 0  # before: the tables held c0 alone, merge said 1/1 complete
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "clips.parquet"), full)
    capsys.readouterr()
    assert main(["merge", str(run_dir)]) == 0
    assert "3/3 clips ok, 0 failed, 0 missing; status complete" in capsys.readouterr().out

    fresh = tmp_path / "fresh" / "folder" / "bicubic"
    assert main(["run", *_args(root, tmp_path / "fresh", "metrics=[psnr]", "max_clips=1")]) == 0
    record = read_run_record(fresh)
    assert record.dataset.clips == ["c0", "c1", "c2"] and record.status == RunStatus.INCOMPLETE
    capsys.readouterr()
    assert main(["merge", str(fresh)]) == 1
    out = capsys.readouterr().out
    assert "1/3 clips ok, 0 failed, 2 missing; status incomplete" in out and "missing: c2" in out
    assert main(["run", *_args(root, tmp_path / "fresh", "metrics=[psnr]")]) == 0  # the rest, c0 kept
    assert "clip c0: already finished, skipped" in (fresh / "run.log").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(fresh / "clips.parquet").drop(columns=MEASURED),
                                  full.drop(columns=MEASURED))


MEASURED = ["method_seconds", "method_fps", "method_peak_rss_mib", "method_peak_cuda_mib", "metrics_peak_rss_mib",
            "metrics_peak_cuda_mib", "process_peak_rss_mib", "process_peak_cuda_mib"]


# -- point 13: a full disk ----------------------------------------------------------------------------------

def _fill_disk(monkeypatch) -> None:
    """From now on the disk has no free block: files can be created, but data written to them cannot be
    made durable (``fsync`` of a non-empty file fails with ENOSPC, as delayed allocation reports it)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.fstat(fd).st_size > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture
def full_disk(monkeypatch):
    _fill_disk(monkeypatch)


def test_a_full_disk_at_start_is_noticed_by_the_write_probe(tmp_path, full_disk):
    # Before: the probe wrote 0 bytes, so a full disk passed it.
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "run")) + ".* is not writable: No space left"):
        RunStore(tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["clips"]  # no probe left behind


def test_a_full_disk_when_writing_the_record_or_a_clip_is_one_line_naming_the_file(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "run")
    _fill_disk(monkeypatch)
    # Before: OSError [Errno 28] from deep inside write_record.
    with pytest.raises(ConfigError, match=re.escape(f"cannot write {store.dir / 'run.json'}: No space left on device")):
        store.write_record(_record(["a"]))
    frames = pd.DataFrame({"clip": "a", "frame": [0], "psnr": [30.0]})
    with pytest.raises(ConfigError, match=r"cannot write .*/clips/a/frames.parquet: No space left on device$"):
        store.write_clip("a", frames, {"clip": "a", "status": "ok", "reason": None, "frames": 1})
    assert not list(store.dir.rglob(".*tmp-*"))  # no temp file left


def test_a_run_on_a_full_disk_is_one_line(tmp_path, full_disk, capsys):
    root = clips_folder(tmp_path / "data", {"c0": 2})
    assert main(["run", *_args(root, tmp_path / "runs", "metrics=[psnr]")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output folder") and "No space left on device" in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_file_system_that_refuses_locks_still_lets_a_run_begin(tmp_path, monkeypatch, caplog):
    import fcntl

    def refuse(*_):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)
    store = RunStore(tmp_path / "run")
    assert store.begin(_record(["a"]), overwrite=False).fingerprint == "f" * 64
    assert "refuses locks" in caplog.text and read_run_record(store.dir).fingerprint == "f" * 64
