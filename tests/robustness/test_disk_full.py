"""A full disk during `run` (issue #20, "the suite that proves it"): on a size-limited file system (a small
tmpfs, which needs root on Linux; skipped with the reason elsewhere) the user gets one line (exit 2) or the
clips that did not fit marked failed with the reason; every file kept is whole; once there is room again
the same command finishes what is missing and recomputes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clips_folder
from killloop import changed, leftovers, snapshot, start, torn_files

LENGTHS = {f"c{i}": 40 for i in range(4)}  # each saved output (FFV1) is about 150 KB


@pytest.fixture
def small_disk(tmp_path):
    """``mount(size)``: a tmpfs of that size at a fresh folder (unmounted afterwards); ``mount(size)`` again
    resizes it in place."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux to mount a size-limited tmpfs")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = []

    def mount(size: str) -> Path:
        options = f"size={size}" + (",remount" if mounted else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {proc.stderr.strip()}")
        mounted.append(size)
        return folder

    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _args(data: Path, out: Path) -> list[str]:
    return ["run", "dataset=folder", f"dataset.root={data}", f"output_root={out}", "progress=false", "threads=1",
            "save_outputs=true"]


def _rows(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (run_dir / "clips").glob("*/clip.json")}


def _one_line_or_failed_clips(outcome, run_dir: Path) -> None:
    """What the user must see: one line and exit 2, or exit 1 with each clip that did not fit failed, saying why."""
    assert "Traceback" not in outcome.output, outcome.output[-3000:]
    if outcome.returncode == 2:
        errors = [line for line in outcome.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "space" in errors[0].lower(), outcome.output[-3000:]
    else:
        assert outcome.returncode == 1, outcome.output[-3000:]
        failed = {c: r["reason"] for c, r in _rows(run_dir).items() if r["status"] != "ok"}
        assert failed and all("No space left on device" in reason for reason in failed.values()), failed


def test_outputs_filling_the_disk_fail_their_clips_with_the_reason_and_a_re_run_with_room_finishes(
        small_disk, tmp_path):
    data = clips_folder(tmp_path / "data", LENGTHS)
    out = small_disk("400k")  # two clips' outputs fit
    run_dir = out / "folder" / "bicubic"
    full = start(_args(data, out), run_dir)
    _one_line_or_failed_clips(full, run_dir)
    assert torn_files(out, LENGTHS) == [] and leftovers(out) == []
    rows = _rows(run_dir)
    assert sorted(c for c, r in rows.items() if r["status"] == "ok") == ["c0", "c1"], rows

    finished = snapshot([run_dir / "clips" / c / "clip.json" for c in ("c0", "c1")] +
                        [run_dir / "outputs" / f"{c}.mkv" for c in ("c0", "c1")])
    small_disk("4m")
    again = start(_args(data, out), run_dir)
    assert again.returncode == 0, again.output
    assert changed(finished) == []
    assert all(r["status"] == "ok" for r in _rows(run_dir).values()) and len(_rows(run_dir)) == 4
    assert torn_files(out, LENGTHS) == [] and leftovers(out) == []


def test_results_that_no_longer_fit_are_one_line_and_what_is_kept_is_whole(small_disk, tmp_path):
    data = clips_folder(tmp_path / "data", LENGTHS)
    out = small_disk("40k")  # the run starts; the tables no longer fit
    run_dir = out / "folder" / "bicubic"
    full = start(_args(data, out), run_dir)
    assert torn_files(out, LENGTHS) == []
    _one_line_or_failed_clips(full, run_dir)


def test_a_disk_already_full_is_one_line_before_anything_is_written(small_disk, tmp_path):
    data = clips_folder(tmp_path / "data", LENGTHS)
    out = small_disk("64k")
    with open(out / ".filler", "wb", buffering=0) as f:  # fill it to the last page
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    full = start(_args(data, out / "runs"), out)
    assert full.returncode == 2, full.output[-3000:]
    _one_line_or_failed_clips(full, out)
    assert torn_files(out) == []
