"""Issue #15, points 1 and 2: shards balanced by frame count, leases, merge, and sharded runs through
Hydra's launchers giving the unsharded run's tables row for row, surviving kill -9 and duplicate workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, downscale, real_frames, write_clip

from infvsr_bench.app.cli import main
from infvsr_bench.config import ShardConfig
from infvsr_bench.errors import ConfigError
from infvsr_bench.results.record import DatasetRecord, RunRecord, RunStatus, read_run_record
from infvsr_bench.results.store import RunStore
from infvsr_bench.run.leases import HOST, Lease, LeaseLost
from infvsr_bench.run.shards import assign, gpu_for, select

MEASURED = ("method_seconds", "method_fps", "method_peak_rss_mib", "method_peak_cuda_mib", "metrics_peak_rss_mib",
            "metrics_peak_cuda_mib", "process_peak_rss_mib", "process_peak_cuda_mib")


# -- the split ------------------------------------------------------------------------------------------

def test_split_is_longest_first_by_frames_worked_by_hand():
    # Longest first, ties in dataset order, each to the lighter shard (ties: the lower index):
    # 3000 -> 0 [3000, 0]; 2000 -> 1 [3000, 2000]; clip 1 -> 1 [3000, 3000]; clip 2 -> 0 [4000, 3000];
    # clip 3 -> 1 [4000, 4000]; 500 -> 0 [4500, 4000].
    frames = [3000, 1000, 1000, 1000, 2000, 500]
    assert assign(frames, 2) == [0, 1, 0, 1, 1, 0]
    loads = [sum(f for f, s in zip(frames, assign(frames, 2)) if s == k) for k in range(2)]
    assert loads == [4500, 4000]


def test_shards_balance_frames_not_clip_count_and_cover_every_clip_once():
    frames = [1200, 100, 100, 100, 100, 1000, 90, 80]
    names = [f"c{i}" for i in range(len(frames))]
    parts = [select(names, frames, ShardConfig(count=3, index=i)) for i in range(3)]
    assert sorted(c for part in parts for c in part) == sorted(names)  # every clip in exactly one shard
    assert all(p == sorted(p, key=names.index) for p in parts)  # in dataset order
    loads = [sum(frames[names.index(c)] for c in p) for p in parts]
    assert max(loads) == 1200 and min(loads) >= 570  # the long clips alone; the short ones together
    assert parts[0] == ["c0"]
    assert select(names, frames, ShardConfig(count=3, index=1)) == parts[1]  # deterministic


@pytest.mark.parametrize("count,index", [(0, 0), (2, 2), (2, -1)])
def test_an_impossible_shard_is_one_line(count, index):
    with pytest.raises(ConfigError, match="need count >= 1 and 0 <= index < count"):
        select(["a"], [1], ShardConfig(count=count, index=index))


def test_each_launcher_worker_gets_a_gpu_modulo_the_visible_ones():
    env = {"CUDA_VISIBLE_DEVICES": "3,5,7"}
    assert [gpu_for(i, env) for i in range(5)] == ["3", "5", "7", "3", "5"]
    assert gpu_for(4, {"CUDA_VISIBLE_DEVICES": "0"}) is None  # one GPU: nothing to choose
    assert gpu_for(4, {"CUDA_VISIBLE_DEVICES": ""}) is None


def test_slurm_launcher_config_composes_with_one_gpu_per_shard():
    from hydra import compose, initialize_config_dir

    from infvsr_bench.app.cli import conf_dir, register_all_schemas

    register_all_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_task, launcher.mem_gb) == ("gpu", 1, 64)
    assert "shard" not in cfg.hydra.sweep.subdir  # every shard writes into the run's one folder


# -- leases -----------------------------------------------------------------------------------------------

def test_a_lease_is_held_by_one_worker_until_released(tmp_path):
    path = tmp_path / "lease.json"
    first = Lease.acquire(path, 60)
    assert first is not None and json.loads(path.read_text())["pid"] == os.getpid()
    # Another live worker of this host (the test's parent process stands in for it) holds it now.
    data = json.loads(path.read_text())
    from infvsr_bench.run.leases import _process_start

    path.write_text(json.dumps({**data, "pid": os.getppid(), "pid_started": _process_start(os.getppid()),
                                "token": "other"}))
    assert Lease.acquire(path, 60) is None
    path.write_text(json.dumps(data))
    first.release()
    assert not path.exists()
    assert Lease.acquire(path, 60) is not None


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "lease.json"
    path.write_text(json.dumps({"host": HOST, "pid": dead.pid, "heartbeat": time.time(), "timeout_s": 3600,
                                "token": "dead"}))
    lease = Lease.acquire(path, 3600)
    assert lease is not None and json.loads(path.read_text())["pid"] == os.getpid()
    lease.release()


# A worker whose lease heartbeat is killed after writing its temp file, before the rename.
STALLED_BEAT = """
import os, sys, time
from pathlib import Path
from infvsr_bench.run.leases import Lease
lease = Lease.acquire(Path(sys.argv[1]), 3600)
def stall(*args):
    Path(sys.argv[2]).touch()
    time.sleep(3600)
os.replace = stall
lease._write()
"""


def test_a_heartbeat_killed_before_its_rename_leaves_nothing_once_the_lease_is_taken_over(tmp_path):
    # Before (#22 point 3, leases with their own atomic write): '.lease.json.<host>-<pid>-<hex>' stayed for good.
    path, stalled = tmp_path / "clip" / "lease.json", tmp_path / "stalled"
    path.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-c", STALLED_BEAT, str(path), str(stalled)], env=env)
    deadline = time.time() + 60
    while not stalled.exists() and time.time() < deadline and worker.poll() is None:
        time.sleep(0.05)
    assert stalled.exists(), "the worker never reached its heartbeat's rename"
    worker.kill()
    worker.wait()
    assert len(list(path.parent.iterdir())) == 2  # the lease and the killed heartbeat's temp file
    lease = Lease.acquire(path, 3600)  # the holder is dead: taken over at once
    assert lease is not None
    lease.release()
    assert list(path.parent.iterdir()) == []


def test_a_lease_of_another_host_is_taken_over_only_when_its_heartbeat_is_old(tmp_path):
    path = tmp_path / "lease.json"
    other = {"host": HOST + "-elsewhere", "pid": 1, "timeout_s": 5.0, "token": "other"}
    path.write_text(json.dumps({**other, "heartbeat": time.time() - 1}))
    assert Lease.acquire(path, 5.0) is None
    path.write_text(json.dumps({**other, "heartbeat": time.time() - 6}))
    lease = Lease.acquire(path, 5.0)
    assert lease is not None
    lease.release()


def test_a_worker_whose_lease_was_taken_over_notices_within_a_heartbeat(tmp_path):
    path = tmp_path / "lease.json"
    lease = Lease.acquire(path, 0.2)  # heartbeat every 50 ms
    taker = {"host": HOST + "-elsewhere", "pid": 1, "heartbeat": time.time(), "timeout_s": 60, "token": "taker"}
    tmp = tmp_path / "tmp.json"
    tmp.write_text(json.dumps(taker))
    os.replace(tmp, path)  # what another worker's takeover does
    deadline = time.time() + 2
    while not lease.lost and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(LeaseLost, match="taken over by .*-elsewhere:1"):
        lease.check()
    lease.release()
    assert json.loads(path.read_text())["token"] == "taker"  # the new holder's lease is left alone


def test_a_heartbeat_keeps_a_lease_fresh(tmp_path):
    path = tmp_path / "lease.json"
    lease = Lease.acquire(path, 0.4)
    first = json.loads(path.read_text())["heartbeat"]
    time.sleep(0.5)
    assert json.loads(path.read_text())["heartbeat"] > first and not lease.lost
    lease.release()


# -- merge -------------------------------------------------------------------------------------------------

def _store_with_record(run_dir: Path, clips: list[str]) -> RunStore:
    store = RunStore(run_dir)
    store.begin(RunRecord(config={}, identity={}, fingerprint="f", method={}, metrics=[],
                          dataset=DatasetRecord("d", 4, clips), environment={}, started="2020-01-01T00:00:00"),
                overwrite=False)
    return store


def _ok(clip: str, n: int) -> tuple[pd.DataFrame, dict]:
    frames = pd.DataFrame({"clip": clip, "frame": range(n), "psnr": [30.0 + i / 7 for i in range(n)]})
    return frames, {"clip": clip, "status": "ok", "reason": None, "frames": n, "psnr": float(frames["psnr"].mean()),
                    "method_seconds": 1.0, "method_peak_rss_mib": 10.0, "process_peak_rss_mib": 100.0}


def _table_bytes(run_dir: Path) -> dict[str, bytes]:
    return {n: (run_dir / n).read_bytes() for n in ("frames.parquet", "frames.csv", "clips.parquet", "clips.csv")}


def test_merge_twice_or_in_any_order_gives_identical_tables_and_lists_failed_and_missing(tmp_path):
    clips = ["a", "b", "c", "d"]
    units = {"a": _ok("a", 3), "c": _ok("c", 5),
             "b": (None, {"clip": "b", "status": "failed", "reason": "GT has 2 frames but LR has 3", "frames": None})}
    stores = [_store_with_record(tmp_path / name, clips) for name in ("forward", "backward")]
    for store, order in zip(stores, (["a", "b", "c"], ["c", "b", "a"])):
        for clip in order:
            frames, row = units[clip]
            store.write_clip(clip, frames, row)
    summaries = [store.merge() for store in stores]
    first = _table_bytes(stores[0].dir)
    assert _table_bytes(stores[1].dir) == first  # written in another order: the same tables
    record = (stores[0].dir / "run.json").read_bytes()
    stores[0].merge()
    assert _table_bytes(stores[0].dir) == first and (stores[0].dir / "run.json").read_bytes() == record  # twice
    summary = summaries[0]
    assert summary.ok == ["a", "c"] and summary.failed == {"b": "GT has 2 frames but LR has 3"}
    assert summary.missing == ["d"] and summary.status == RunStatus.INCOMPLETE
    assert "missing: d" in summary.describe() and "failed: b: GT has 2 frames" in summary.describe()
    merged = pd.read_parquet(stores[0].dir / "frames.parquet")
    assert list(merged["clip"]) == ["a"] * 3 + ["c"] * 5
    record = read_run_record(stores[0].dir)
    assert (record.status, record.clips_ok, record.clips_failed, record.finished) == (RunStatus.INCOMPLETE, 2, 1, None)
    assert record.timings["frames"] == 8 and record.timings["method_seconds"] == 2.0


def test_merge_status_running_while_a_worker_holds_a_lease_complete_once_all_rows_are_in(tmp_path):
    store = _store_with_record(tmp_path / "run", ["a", "b"])
    store.write_clip("a", *_ok("a", 2))
    store.lease_path("b").parent.mkdir(parents=True)
    store.lease_path("b").write_text(json.dumps({"host": "node7", "pid": 42, "heartbeat": time.time(),
                                                 "timeout_s": 600, "token": "t"}))
    summary = store.merge()
    assert summary.status == RunStatus.RUNNING and summary.running == {"b": "node7:42"}
    assert "missing: b (in progress by node7:42)" in summary.describe()
    store.write_clip("b", *_ok("b", 4))
    store.lease_path("b").unlink()
    assert store.merge().status == RunStatus.COMPLETE
    record = read_run_record(store.dir)
    assert record.status == RunStatus.COMPLETE and record.finished is not None


def test_merge_command_lists_what_is_missing_in_one_run_folder(tmp_path, capsys):
    store = _store_with_record(tmp_path / "run", ["a", "b"])
    store.write_clip("a", *_ok("a", 2))
    assert main(["merge", str(store.dir)]) == 1
    out = capsys.readouterr().out
    assert "1/2 clips ok, 0 failed, 1 missing; status incomplete" in out and "missing: b" in out
    assert main(["merge", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


# -- sharded runs end to end -------------------------------------------------------------------------------

def _dataset(root: Path, lengths: dict[str, int], size: tuple[int, int] = (64, 96)) -> Path:
    for i, (name, n) in enumerate(lengths.items()):
        gt = real_frames(n, size, seed=i)
        write_clip(root / "GT" / f"{name}.mkv", gt)
        write_clip(root / "LR" / f"{name}.mkv", downscale(gt))
    return root


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["dataset=folder", f"dataset.root={root}", f"output_root={out}", "progress=false", *extra]


def _tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    clips = pd.read_parquet(run_dir / "clips.parquet")
    return pd.read_parquet(run_dir / "frames.parquet"), clips.drop(columns=[c for c in MEASURED if c in clips])


def _assert_same_results(run_dir: Path, reference: Path) -> None:
    (frames, clips), (ref_frames, ref_clips) = _tables(run_dir), _tables(reference)
    pd.testing.assert_frame_equal(frames, ref_frames)
    pd.testing.assert_frame_equal(clips, ref_clips)
    assert not frames.duplicated(["clip", "frame"]).any()
    assert read_run_record(run_dir).fingerprint == read_run_record(reference).fingerprint
    assert read_run_record(run_dir).status == RunStatus.COMPLETE


def _processed(run_dir: Path) -> list[tuple[str, str]]:
    """(clip, worker) for every 'processing' line of run.log, in order."""
    found = re.findall(r" (\S+:\d+) clip (\S+): processing", (run_dir / "run.log").read_text())
    return [(clip, worker) for worker, clip in found]


def test_shards_share_the_run_identity_and_folder_and_merge_to_the_unsharded_tables(tmp_path):
    root = _dataset(tmp_path / "data", {"c0": 6, "c1": 10, "c2": 4, "c3": 8})
    assert main(["run", *_args(root, tmp_path / "whole")]) == 0
    for index in (1, 0):  # any order
        assert main(["run", *_args(root, tmp_path / "sharded", "shard.count=2", f"shard.index={index}")]) == 0
    run_dir = tmp_path / "sharded" / "folder" / "bicubic"
    _assert_same_results(run_dir, tmp_path / "whole" / "folder" / "bicubic")
    assert "shard" not in read_run_record(run_dir).config  # the worker's options, not the run's
    assert sorted(c for c, _ in _processed(run_dir)) == ["c0", "c1", "c2", "c3"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher,options", [("joblib", ["hydra.launcher.n_jobs=2"]), ("submitit_local", [])])
def test_four_shards_through_a_launcher_equal_the_unsharded_run(tmp_path, launcher, options):
    root = _dataset(tmp_path / "data", {"c0": 6, "c1": 10, "c2": 4, "c3": 8, "c4": 12})
    assert main(["run", *_args(root, tmp_path / "whole")]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "infvsr_bench", "run", "-m", *_args(root, tmp_path / "sharded"), "shard.count=4",
         "shard.index=range(4)", f"hydra/launcher={launcher}", *options],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "sharded" / "folder" / "bicubic"
    _assert_same_results(run_dir, tmp_path / "whole" / "folder" / "bicubic")
    processed = _processed(run_dir)
    assert sorted(c for c, _ in processed) == ["c0", "c1", "c2", "c3", "c4"]  # each clip once
    assert len({w for _, w in processed}) >= 2  # by more than one worker process
    assert not list(run_dir.glob("clips/*/lease.json"))


# Shard 0 of 2 is [c_long, d_tail] (200 + 10 frames) and shard 1 [a_mid, b_mid] (100 + 100): longest first.
KILL_DATA = {"a_mid": 100, "b_mid": 100, "c_long": 200, "d_tail": 10}
CHUNK = "method.chunk_size=1"  # a frame per call: c_long takes long enough to be killed inside
SHARD0 = ["shard.count=2", "shard.index=0", CHUNK]


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    assert path.exists(), f"{path} never appeared: {proc.poll()}"


@pytest.mark.slow
def test_a_shard_killed_mid_clip_and_launched_again_completes_without_duplicates_or_gaps(tmp_path):
    root = _dataset(tmp_path / "data", KILL_DATA)
    assert main(["run", *_args(root, tmp_path / "whole", CHUNK)]) == 0
    run_dir = tmp_path / "sharded" / "folder" / "bicubic"
    cmd = [sys.executable, "-m", "infvsr_bench", "run", *_args(root, tmp_path / "sharded", *SHARD0)]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lease = run_dir / "clips" / "c_long" / "lease.json"
    _wait_for(lease, first)
    time.sleep(0.3)  # into the clip
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (run_dir / "clips" / "c_long" / "clip.json").exists(), "the kill landed after c_long finished"
    assert json.loads(lease.read_text())["pid"] == first.pid  # left behind by the killed worker

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    log = (run_dir / "run.log").read_text()
    assert "in progress by" not in log  # the dead worker's lease was taken over at once
    assert main(["merge", str(run_dir)]) == 1  # shard 1 has not run: its clips are listed missing
    summary = RunStore(run_dir).merge()
    assert summary.missing == ["a_mid", "b_mid"] and summary.status == RunStatus.INCOMPLETE
    assert main(["run", *_args(root, tmp_path / "sharded", "shard.count=2", "shard.index=1", CHUNK)]) == 0
    _assert_same_results(run_dir, tmp_path / "whole" / "folder" / "bicubic")
    attempts = [w for c, w in _processed(run_dir) if c == "c_long"]
    assert attempts[0] == f"{HOST}:{first.pid}" and len(attempts) == 2 and attempts[1] != attempts[0]
    assert [c for c, _ in _processed(run_dir)].count("d_tail") == 1


WORKER = """
import pathlib, sys, time
import infvsr_bench.app.job  # the heavy imports, before the go signal
from infvsr_bench.app.cli import main
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[2:]))
"""


# Shard 0 of 2 is again [c_long, d_tail] (400 + 10 against 200 + 200): c_long lasts seconds, while the
# two workers, released together, reach it within a fraction of a second of each other.
TWO_DATA = {"a_mid": 200, "b_mid": 200, "c_long": 400, "d_tail": 10}


@pytest.mark.slow
def test_two_workers_started_on_the_same_shard_do_not_both_process_a_clip(tmp_path):
    root = _dataset(tmp_path / "data", TWO_DATA)
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    args = ["run", *_args(root, tmp_path / "runs", *SHARD0)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "go"), *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    time.sleep(1.0)
    (tmp_path / "go").touch()  # both start at once (imports done), and race for c_long
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    processed = dict(_processed(run_dir))
    assert sorted(c for c, _ in _processed(run_dir)) == ["c_long", "d_tail"]  # each clip by one worker only
    winner, other = processed["c_long"], ({f"{HOST}:{w.pid}" for w in workers} - {processed["c_long"]}).pop()
    assert f"{other} clip c_long: in progress by {winner}, skipped" in (run_dir / "run.log").read_text()
    frames = pd.read_parquet(run_dir / "frames.parquet")
    assert frames.groupby("clip")["frame"].apply(list).to_dict() == {"c_long": list(range(400)),
                                                                     "d_tail": list(range(10))}
