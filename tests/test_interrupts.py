"""Ctrl-C and SIGTERM unwind a run alike, and leftovers of killed processes are cleared.

A real ``python -m infvsr_bench run method=command`` is stopped while its stand-in tool sleeps (the
tool writes its pid first): the tool's process group must be gone within seconds (not left under
PID 1), the finished clip kept, the clip in progress dropped, ``run.json`` saying ``interrupted``
and the exit code the shell's for the signal. A build killed with kill -9 leaves its
``.<name>.building-<host>-<pid>-*`` folder; the next build removes it once that pid is gone, and
nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, clips_folder
from test_baselines import _alive
from test_builder_safety import _tiny

from infvsr_bench.app.cli import main
from infvsr_bench.results.merge import Run
from infvsr_bench.results.record import read_run_record
from infvsr_bench.run.leases import HOST
from vsr_datasets.benchmark import load_dataset

# clip0 is upscaled at once; clip1 writes the tool's pid and sleeps until it is killed.
SLEEPER = """\
import os, sys, time
from pathlib import Path
from PIL import Image
src, dst, clip, pidfile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
if clip == "clip1":
    pidfile.write_text(str(os.getpid()))
    time.sleep(300)
for f in sorted(src.glob("*.png")):
    im = Image.open(f)
    im.resize((im.width * 4, im.height * 4)).save(dst / f.name)
"""


def _wait_for(what, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def stopped_run(tmp_path, request):
    """A run stopped by ``request.param`` (a signal) while the tool sleeps on its second clip."""
    root = clips_folder(tmp_path / "data", {"clip0": 3, "clip1": 3})
    tool, pidfile, tmp = tmp_path / "sleeper.py", tmp_path / "tool.pid", tmp_path / "tmp"
    tool.write_text(SLEEPER)
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "infvsr_bench", "run", "dataset=folder", f"dataset.root={root}",
         f"output_root={tmp_path / 'runs'}", "progress=false", "method=command", "metrics=[psnr]",
         f"method.command='{{python}} {tool} {{lr_dir}} {{out_dir}} {{clip}} {pidfile}'"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, even under CI
    )
    try:
        assert _wait_for(pidfile.exists, 120), proc.communicate(timeout=60)
        tool_pid = int(pidfile.read_text())
        os.kill(proc.pid, request.param)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return {"code": proc.returncode, "err": err, "tool_pid": tool_pid, "tmp": tmp,
            "run_dir": tmp_path / "runs" / "folder" / "command"}


@pytest.mark.parametrize("stopped_run,code,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")],
                         indirect=["stopped_run"], ids=["sigterm", "sigint"])
def test_a_stopped_run_ends_its_tool_and_records_interrupted(stopped_run, code, name, capsys):
    assert _wait_for(lambda: not _alive(stopped_run["tool_pid"]), 5), "the tool outlived the run"
    assert stopped_run["code"] == code
    assert stopped_run["err"].strip().splitlines()[-1] == (
        f"interrupted ({name}): finished clips are saved; run the same command again to resume")
    run_dir = stopped_run["run_dir"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["finished"] is None
    assert (record["clips_ok"], record["clips_failed"]) == (1, 0)
    assert pd.read_parquet(run_dir / "clips.parquet")["clip"].tolist() == ["clip0"]  # kept; clip1 dropped
    assert sorted(p.name for p in (run_dir / "clips" / "clip1").iterdir()) == []  # no row, no lease
    assert list(stopped_run["tmp"].iterdir()) == []  # the tool's temporary work folder is removed
    # Reports count it as not finished; a later merge recomputes the status from the clip files.
    assert not Run(run_dir, read_run_record(run_dir), pd.read_parquet(run_dir / "clips.parquet")).is_finished
    assert main(["merge", str(run_dir)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{run_dir}: 1/2 clips ok, 0 failed, 1 missing; status incomplete"
    assert read_run_record(run_dir).status.value == "incomplete"


# -- leftovers of a build killed with kill -9 ----------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_build_removes_building_folders_of_gone_processes_of_this_host_only(tmp_path):
    root = tmp_path / "bench"
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f".bench.building-{HOST}-{dead}-0a1b2c3d",
            "live": f".bench.building-{HOST}-{live.pid}-0a1b2c3d",
            "reused": f".bench.building-{HOST}-{live.pid}-4e5f6a7b",  # last written before that pid began
            "other host": f".bench.building-elsewhere.example-{dead}-0a1b2c3d",
            "other dataset": f".benchmark.building-{HOST}-{dead}-0a1b2c3d",
            "not ours": f".bench.building-{HOST}-{dead}-notahexx",
            "a user's": "bench.building-notes",
        }
        for name in names.values():
            (tmp_path / name).mkdir()
            (tmp_path / name / "frame.png").write_bytes(b"partial")
        hour_ago = time.time() - 3600
        os.utime(tmp_path / names["reused"], (hour_ago, hour_ago))
        load_dataset(_tiny(root, name="bench"))
        left = sorted(p.name for p in tmp_path.iterdir())
    finally:
        live.kill()
        live.wait()
    assert left == sorted(["bench", *(v for k, v in names.items() if k not in ("dead", "reused"))])
