"""Progress output: a bar on a terminal; on a log file (a scheduler's, a pipe) a few lines per clip,
never a line per bar refresh."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest
from conftest import REPO, clips_folder

from infvsr_bench.progress import Lines, progress_bar

# Every update refreshes a tqdm bar, as on a clip slow enough that each chunk outlasts tqdm's
# refresh interval (tqdm reads TQDM_* overrides from the environment).
EVERY_REFRESH = {"TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two real clips of 24 frames: 12 chunks each at chunk_size 2."""
    return clips_folder(tmp_path_factory.mktemp("progress") / "data", {"a": 24, "b": 24})


def _run(data, out, stderr) -> subprocess.Popen:
    env = {**os.environ, **EVERY_REFRESH, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "infvsr_bench", "run", "dataset=folder", f"dataset.root={data}",
           "method.chunk_size=2", "metrics=[psnr]", f"output_root={out}"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO, env=env)


def test_a_log_file_gets_a_line_at_the_start_and_end_of_each_clip(data, tmp_path):
    log = tmp_path / "stderr.log"
    with log.open("wb") as f:
        assert _run(data, tmp_path / "runs", f).wait(timeout=300) == 0
    text = log.read_text()
    lines = [ln for ln in re.split(r"[\r\n]+", text) if ln.strip()]  # a bar refresh is a line in a log viewer
    assert "\r" not in text and len(lines) <= 3 * 2 + 2, lines  # 2 clips of 12 chunks: a bar would be >= 24
    for clip in ("a", "b"):
        assert f"clip {clip}: started, 24 frames" in lines
        assert any(re.fullmatch(rf"clip {clip}: 24/24 frames in [\d.]+ s, [\d.]+ frame/s", ln) for ln in lines), lines
    assert any(re.fullmatch(r"bicubic: 2/2 clips in [\d.]+ s, [\d.]+ clip/s", ln) for ln in lines), lines


def test_a_terminal_gets_the_bar(data, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    proc = _run(data, tmp_path / "runs", slave)
    os.close(slave)
    received = b""
    while select.select([master], [], [], 300)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the run ended and closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = received.decode(errors="replace")
    assert "\r" in text and re.search(r"clip a: +\d+%\|", text), text[-2000:]  # tqdm redraws its bar in place
    assert "started," not in text


def test_lines_every_interval_carry_the_count_and_postfix(capsys):
    # every_s=0: every update is past the interval (the default, EVERY_S, is a minute)
    bar = Lines(None, 3, "train", "step", initial=1, every_s=0)
    bar.update(1)
    bar.set_postfix({"loss": "0.5"})
    bar.update(1)
    bar.close()
    bar.close()  # once only
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and lines[0] == "train: started, 3 steps at 1"
    assert re.fullmatch(r"train: 2/3 steps in [\d.]+ s, \S+ step/s", lines[1]), lines
    assert re.fullmatch(r"train: 3/3 steps in [\d.]+ s, \S+ step/s \(loss=0.5\)", lines[2]), lines
    assert lines[3].startswith("train: 3/3 steps in ") and lines[3].endswith("(loss=0.5)")


def test_no_output_when_disabled(capsys):
    assert list(progress_bar(range(3), desc="x", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
