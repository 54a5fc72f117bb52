"""kill -9 in the middle of a run leaves no torn file; re-running finishes with identical results. The run
writes its tables once, at its end; a killed run's finished clips are reported from its clip folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from conftest import REPO, clips_folder, downscale, real_frames, write_clip

import infvsr_bench.results.store as store_module
from infvsr_bench.app.cli import main
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import DatasetRecord, RunRecord
from infvsr_bench.results.store import RunStore

METRIC_COLUMNS = ["clip", "frame", "psnr", "ssim"]


REBUILT_NOTE = "tables rebuilt from its clip folders: the run did not finish"


def _start(root, out):
    return subprocess.Popen(
        [sys.executable, "-m", "infvsr_bench", "run", "dataset=folder", f"dataset.root={root}",
         f"output_root={out}", "progress=false", "method.chunk_size=4"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_kill_9_mid_clip_then_resume(tmp_path):
    root = tmp_path / "data"
    for i, n in enumerate((8, 400, 8)):  # the long middle clip is where the kill lands
        gt = real_frames(n, (96, 128), seed=i)
        write_clip(root / "GT" / f"clip{i}.mkv", gt)
        write_clip(root / "LR" / f"clip{i}.mkv", downscale(gt))

    run_dir = tmp_path / "killed" / "folder" / "bicubic"
    proc = _start(root, tmp_path / "killed")
    first_done = run_dir / "clips" / "clip0" / "clip.json"
    deadline = time.time() + 120
    while not first_done.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)  # into the middle clip
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_done.exists()
    assert not (run_dir / "clips" / "clip1" / "clip.json").exists(), "kill landed after clip1 finished"
    # No tables yet (written once, at the run's end); the report shows the finished clip, built from its folder.
    assert not (run_dir / "clips.parquet").exists() and not (run_dir / "frames.parquet").exists()
    merged = load_runs([str(run_dir)])
    assert list(merged.clips["clip"]) == ["clip0"] and set(merged.frames["clip"]) == {"clip0"}
    assert f"{run_dir}: {REBUILT_NOTE}" in merged.notes
    first_mtime = first_done.stat().st_mtime_ns

    resumed = _start(root, tmp_path / "killed")
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert "clip clip0: already finished, skipped" in (run_dir / "run.log").read_text()
    assert first_done.stat().st_mtime_ns == first_mtime

    clean = _start(root, tmp_path / "clean")
    log, _ = clean.communicate(timeout=300)
    assert clean.returncode == 0, log
    resumed_frames = pd.read_parquet(run_dir / "frames.parquet")[METRIC_COLUMNS]
    clean_frames = pd.read_parquet(tmp_path / "clean" / "folder" / "bicubic" / "frames.parquet")[METRIC_COLUMNS]
    pd.testing.assert_frame_equal(resumed_frames, clean_frames)
    assert len(clean_frames) == 416


def _record(clips: list[str]) -> RunRecord:
    return RunRecord(config={}, identity={}, fingerprint="f" * 64, method={"name": "m"}, metrics=[],
                     dataset=DatasetRecord("d", 4, clips), environment={}, started="2020-01-01T00:00:00")


def _files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_killed_after_one_of_two_clips_is_reported_with_it_and_a_note_without_writing(tmp_path):
    store = RunStore(tmp_path / "run")
    store.begin(_record(["a", "b"]), overwrite=False)
    store.write_clip("a", pd.DataFrame({"clip": "a", "frame": [0, 1], "psnr": [30.0, 31.0]}),
                     {"clip": "a", "status": "ok", "reason": None, "frames": 2, "psnr": 30.5, "method_seconds": 1.0,
                      "method_peak_rss_mib": 1.0, "process_peak_rss_mib": 1.0})
    before = _files(store.dir)
    killed = load_runs([str(store.dir)])
    assert _files(store.dir) == before  # report never writes into a run folder
    assert f"{store.dir}: {REBUILT_NOTE}" in killed.notes
    assert killed.clips["clip"].tolist() == ["a"] and killed.frames["psnr"].tolist() == [30.0, 31.0]
    store.merge()  # the tables a finished merge writes: read back, the same values, and no note
    merged = load_runs([str(store.dir)])
    assert not any(REBUILT_NOTE in n for n in merged.notes)
    pd.testing.assert_frame_equal(killed.clips, merged.clips)
    pd.testing.assert_frame_equal(killed.frames, merged.frames)
    store.write_clip("b", None, {"clip": "b", "status": "failed", "reason": "x", "frames": 0})  # tables now behind
    later = load_runs([str(store.dir)])
    assert f"{store.dir}: {REBUILT_NOTE}" in later.notes and later.clips["clip"].tolist() == ["a", "b"]


def test_a_run_of_three_clips_writes_its_tables_once(tmp_path, monkeypatch):
    root = clips_folder(tmp_path / "data", {"c0": 3, "c1": 3, "c2": 3})
    writes: list[Path] = []
    write_table = store_module.write_table

    def counted(df, path, csv=True):
        writes.append(path)
        write_table(df, path, csv)

    monkeypatch.setattr(store_module, "write_table", counted)
    assert main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}",
                 "progress=false", "metrics=[psnr]"]) == 0
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    assert sorted(p.name for p in writes if p.parent == run_dir) == ["clips.parquet", "frames.parquet"]
    assert len([p for p in writes if p.parent.parent == run_dir / "clips"]) == 3  # each clip's frames, once
    assert pd.read_parquet(run_dir / "clips.parquet")["clip"].tolist() == ["c0", "c1", "c2"]


def test_tables_are_behind_only_when_a_clip_row_is_newer_than_them(tmp_path):
    """A folder whose tables were written without clip folders (an imported or hand-made run: every report test
    writes them so) is read from its tables; clip rows newer than clips.parquet, or rows with no tables, are behind."""
    from infvsr_bench.results.record import CLIP_FILE, write_table
    from infvsr_bench.results.store import clip_folder_name, tables_behind

    run = tmp_path / "run"
    run.mkdir()
    assert not tables_behind(run, ["a"])  # nothing at all: nothing to rebuild from
    write_table(pd.DataFrame({"clip": ["a"], "status": ["ok"]}), run / "clips.parquet", csv=False)
    assert not tables_behind(run, ["a"])  # tables only (no frames.parquet either): they are all there is
    row = run / "clips" / clip_folder_name("a") / CLIP_FILE
    row.parent.mkdir(parents=True)
    row.write_text("{}")
    os.utime(row, ns=(time.time_ns(), (run / "clips.parquet").stat().st_mtime_ns + 1))
    assert tables_behind(run, ["a"])  # a row the tables do not hold yet
    os.utime(row, ns=(time.time_ns(), (run / "clips.parquet").stat().st_mtime_ns - 10**9))
    assert not tables_behind(run, ["a"])
    (run / "clips.parquet").unlink()
    assert tables_behind(run, ["a"])  # rows and no tables: a killed run
