"""kill -9 at seeded random moments of `run`, `build`, `merge`, `report` and `train`, and at fixed points just
before work in progress is renamed into place (issue #20, "the suite that proves it"): after every kill each
file the command writes is complete or absent and nothing named like work in progress passes for a result;
a stale lease does not block; the re-run finishes with the uninterrupted command's results, computes
nothing twice (finished clips, stages, checkpoints and builds are left untouched) and removes the killed
one's work in progress; no result is written in place (Python's audit events of each process)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import clips_folder
from killloop import (
    audited,
    changed,
    kill_fractions,
    leftovers,
    snapshot,
    start,
    torn_files,
)
from safetensors.torch import load_file

from infvsr_bench.checksums import sha256_file
from infvsr_bench.io.atomic import write_json
from infvsr_bench.results.store import clip_folder_name
from infvsr_bench.run.leases import HOST, is_stale
from vsr_datasets.builder import verify_benchmark

LENGTHS = {"c0": 24, "c1": 30, "c2": 20, "c3": 26, "c4": 22}
METRICS = ["psnr", "ssim", "tof"]  # tOF (Farneback flow) gives each clip some work for a kill to land in
SEED = 20  # issue #20; each command draws its kill moments from SEED + its index


def _run_args(data: Path, out: Path) -> list[str]:
    return ["run", "dataset=folder", f"dataset.root={data}", f"output_root={out}", "progress=false", "threads=1",
            "save_outputs=true", f"metrics=[{','.join(METRICS)}]"]


def _report(outcomes: list) -> str:
    return "; ".join(f"kill {i}: {o.returncode if o.returncode is not None else 'killed'} after {o.seconds:.2f} s"
                     for i, o in enumerate(outcomes))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The dataset and one uninterrupted run of it (its folder and how it went)."""
    tmp = tmp_path_factory.mktemp("reference")
    data = clips_folder(tmp / "data", LENGTHS)
    outcome = start(_run_args(data, tmp / "runs"), tmp / "runs" / "folder" / "bicubic" / "clips")
    assert outcome.returncode == 0, outcome.output
    return data, tmp / "runs" / "folder" / "bicubic", outcome


def _finished_files(run_dir: Path) -> list[Path]:
    """The files of every finished clip: its row, its per-frame values and its saved output."""
    out = []
    for clip in LENGTHS:
        folder = run_dir / "clips" / clip_folder_name(clip)
        try:
            ok = json.loads((folder / "clip.json").read_text())["status"] == "ok"
        except (OSError, ValueError):
            ok = False
        if ok:
            out += [folder / "clip.json", folder / "frames.parquet",
                    run_dir / "outputs" / f"{clip_folder_name(clip)}.mkv"]
    return out


def _consistent_rows(run_dir: Path) -> list[str]:
    """A clip marked ok has its per-frame values, one row per frame, and its whole output."""
    problems = []
    for clip, n in LENGTHS.items():
        folder = run_dir / "clips" / clip_folder_name(clip)
        if not (folder / "clip.json").is_file():
            continue
        row = json.loads((folder / "clip.json").read_text())
        if row["status"] == "ok":
            if not (folder / "frames.parquet").is_file() or len(pd.read_parquet(folder / "frames.parquet")) != n:
                problems.append(f"{clip}: ok without its {n} per-frame rows")
            if not (run_dir / "outputs" / f"{clip}.mkv").is_file():
                problems.append(f"{clip}: ok without its saved output")
    return problems


def test_run_killed_at_random_moments_resumes_to_the_same_results_computing_nothing_twice(reference, tmp_path):
    """Two kills at fixed points first, just before a whole saved output and then a whole clip row is renamed
    into place (their hidden work in progress is gone once the run is finished), then kills at random moments."""
    data, ref_dir, ref = reference
    out, audit = tmp_path / "runs", tmp_path / "audit.log"
    run_dir = out / "folder" / "bicubic"
    outcomes = []
    for kill in (".mkv.partial-", "clip.json.tmp-", *kill_fractions(SEED, 3)):
        finished = snapshot(_finished_files(run_dir))
        if isinstance(kill, str):
            outcomes.append(start(_run_args(data, out), run_dir / "clips", kill_at_rename=kill, audit=audit,
                                  audit_root=run_dir))
            assert any(kill in name for name in leftovers(out)), leftovers(out)
        else:  # a fraction of the work left
            left = sum(n for c, n in LENGTHS.items() if str(run_dir / "clips" / c / "clip.json") not in finished)
            delay = kill * ref.work_seconds * left / sum(LENGTHS.values())
            outcomes.append(start(_run_args(data, out), run_dir / "clips", kill_after=delay, audit=audit,
                                  audit_root=run_dir))
        assert outcomes[-1].returncode is None or outcomes[-1].returncode == 0, outcomes[-1].output
        assert torn_files(out, LENGTHS) == [], _report(outcomes)
        assert _consistent_rows(run_dir) == [], _report(outcomes)
        assert changed(finished) == [], f"finished clips computed again: {_report(outcomes)}"

    finished = snapshot(_finished_files(run_dir))
    final = start(_run_args(data, out), run_dir, audit=audit)
    assert final.returncode == 0, final.output
    assert changed(finished) == [], f"finished clips computed again: {_report(outcomes)}"
    log = (run_dir / "run.log").read_text()
    done_before = {Path(p).parent.name for p in finished if p.endswith("clip.json")}
    assert all(f"clip {c}: already finished, skipped" in log for c in done_before)
    # A kill between a clip's row and its lease's release leaves that lease on a finished clip: stale (its
    # process is gone), so it blocks nothing; every other lease was released.
    assert all(is_stale(p, 120.0) and json.loads((p.parent / "clip.json").read_text())["status"] == "ok"
               for p in (run_dir / "clips").rglob("lease.json"))
    assert torn_files(out, LENGTHS) == []
    assert leftovers(out) == []
    # Written in place only: Hydra's record, write probes, run.log (appended), leases (created exclusively,
    # heartbeats through a temp name); everything else through a temp name and a rename (Python-level opens:
    # pyarrow's are not seen).
    in_place, _ = audited(audit)
    allowed = r"w \.hydra/.*|wb? (clips/)?\.write-probe.*|a run\.log|a \.run\.lock|\d+ clips/[^/]+/lease\.json|w clips/[^/]+/\.lease\.json\..*"
    assert [w for w in in_place if not re.fullmatch(allowed, w)] == []

    columns = ["clip", "frame", *METRICS]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "frames.parquet")[columns],
                                  pd.read_parquet(ref_dir / "frames.parquet")[columns])
    columns = ["clip", "status", "frames", *METRICS]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "clips.parquet")[columns],
                                  pd.read_parquet(ref_dir / "clips.parquet")[columns])
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    for clip in LENGTHS:  # the saved outputs are the uninterrupted run's, byte for byte
        name = f"{clip_folder_name(clip)}.mkv"
        assert (run_dir / "outputs" / name).read_bytes() == (ref_dir / "outputs" / name).read_bytes()


def test_merge_killed_at_random_moments_leaves_whole_tables_and_untouched_clips(reference, tmp_path):
    _, ref_dir, _ = reference
    run_dir = tmp_path / "run"
    shutil.copytree(ref_dir, run_dir)
    for table in ("clips", "frames", "curves"):  # as a worker killed before its last consolidation leaves it
        for suffix in (".parquet", ".csv"):
            (run_dir / f"{table}{suffix}").unlink(missing_ok=True)
    clip_files = snapshot([p for p in (run_dir / "clips").rglob("*") if p.is_file()])
    probe = tmp_path / "probe"
    shutil.copytree(run_dir, probe)
    ref = start(["merge", str(probe)], probe)
    assert ref.returncode == 0, ref.output

    outcomes = []
    for fraction in kill_fractions(SEED + 1, 3):
        outcomes.append(start(["merge", str(run_dir)], run_dir, kill_after=fraction * ref.work_seconds))
        assert torn_files(run_dir, LENGTHS) == [], _report(outcomes)
        assert changed(clip_files) == [], "merge rewrote clip files"
    final = start(["merge", str(run_dir)], run_dir)
    assert final.returncode == 0, final.output
    assert "5/5 clips ok, 0 failed, 0 missing; status complete" in final.output
    for table in ("clips.parquet", "frames.parquet", "clips.csv", "frames.csv"):
        assert (run_dir / table).read_bytes() == (ref_dir / table).read_bytes(), table
    assert changed(clip_files) == []
    assert leftovers(run_dir) == []


def test_report_killed_at_random_moments_leaves_only_whole_files(reference, tmp_path):
    _, run_dir, _ = reference
    ref_out, out = tmp_path / "reference", tmp_path / "report"
    ref_out.mkdir()
    out.mkdir()  # both times the first write is the first figure's (a re-run writes into an existing folder)
    ref = start(["report", str(run_dir), f"out={ref_out}"], ref_out)
    assert ref.returncode == 0, ref.output
    expected = {p.name: p.read_bytes() for p in ref_out.iterdir()}
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.tex", "leaderboard.csv"} <= set(expected)

    outcomes = []
    for fraction in kill_fractions(SEED + 2, 5):  # into the same folder: a re-run replaces an earlier report
        outcomes.append(start(["report", str(run_dir), f"out={out}"], out, kill_after=fraction * ref.work_seconds))
        assert torn_files(out) == [], _report(outcomes)
        wrong = [p.name for p in out.iterdir() if not p.name.startswith(".") and p.read_bytes() != expected.get(p.name)]
        assert wrong == [], f"not the report's whole file: {wrong}; {_report(outcomes)}"
    final = start(["report", str(run_dir), f"out={out}"], out)
    assert final.returncode == 0, final.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == expected
    assert leftovers(out) == []


# -- build ---------------------------------------------------------------------------------------------

CLIPS = ("[{name:a,source:{type:animated_photos,photos:[astronaut,coffee],frames:40,size:[48,64],shot_frames:[10,25]}},"
         "{name:b,source:{type:animated_photos,photos:[chelsea],frames:40,size:[48,64],shot_frames:[10,25]}}]")


def _build_args(root: Path) -> list[str]:
    """A tiny generated benchmark (two 40-frame clips at 48x64) built at ``root``."""
    return ["build", "dataset=longform_mini", "dataset.name=robust", f"dataset.root={root}", f"dataset.clips={CLIPS}"]


def test_build_killed_at_random_moments_leaves_no_dataset_or_a_whole_one_and_is_not_rebuilt(tmp_path):
    ref_root = tmp_path / "reference" / "robust"
    ref_root.parent.mkdir()
    ref = start(_build_args(ref_root), ref_root.parent)
    assert ref.returncode == 0, ref.output
    expected = json.loads((ref_root / "manifest.json").read_text())

    root = tmp_path / "datasets" / "robust"
    root.parent.mkdir()
    outcomes = []
    for fraction in kill_fractions(SEED + 3, 3):
        if root.exists():
            break  # built: later kills would only find nothing to do
        outcomes.append(start(_build_args(root), root.parent, kill_after=fraction * ref.work_seconds))
        assert sorted(p.name for p in root.parent.iterdir() if not p.name.startswith(".")) in ([], ["robust"])
        if root.exists():  # whole: every file its manifest lists, with its checksum
            assert verify_benchmark(root) == [], _report(outcomes)
            assert json.loads((root / "manifest.json").read_text()) == expected
        assert torn_files(root.parent) == [], _report(outcomes)
    final = start(_build_args(root), root.parent)
    assert final.returncode == 0, final.output
    assert verify_benchmark(root) == []
    assert json.loads((root / "manifest.json").read_text()) == expected  # the uninterrupted build's files

    built = snapshot([p for p in root.rglob("*") if p.is_file()])
    again = start(_build_args(root), root.parent)
    assert again.returncode == 0, again.output
    assert changed(built) == [], "a finished build was built again"


def test_a_killed_build_leaves_no_building_folder_behind_once_built_again(tmp_path):
    root = tmp_path / "datasets" / "robust"
    root.parent.mkdir(parents=True)
    building = start(_build_args(root), root.parent, kill_after=0.0)  # as soon as it began
    assert building.returncode is None and not root.exists(), building.output
    assert leftovers(root.parent), "the kill came before the build began"
    final = start(_build_args(root), root.parent)
    assert final.returncode == 0, final.output
    assert leftovers(root.parent) == []


# -- train ---------------------------------------------------------------------------------------------

STEPS = {"vae": (4, 2), "teacher": (2, 1), "student_init": (2, 1), "student": (2, 1)}  # (steps, checkpoint every)


def _train_args(out: Path) -> list[str]:
    """The smoke recipe at a few steps per stage, every checkpoint kept (so a re-trained step would show)."""
    args = ["train", "smoke", f"output_dir={out}", "keep_checkpoints=100"]
    for stage, (steps, every) in STEPS.items():
        args += [f"stages.{stage}.steps={steps}", f"stages.{stage}.checkpoint_every={every}"]
    return args


def _logged_steps(out: Path, stage: str) -> list[int]:
    lines = (out / stage / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if "val" not in json.loads(line)]


def test_train_killed_at_random_moments_resumes_from_its_checkpoints_to_the_same_model(tmp_path):
    """A kill at a fixed point first, just before the first checkpoint is renamed into place (its hidden
    temporary file is gone once training is finished), then kills at random moments. Logs are only appended
    to: a resumed stage cuts its log back to the checkpoint without rewriting it in place (a kill there would
    leave a torn line, which stops every later resume)."""
    ref_out = tmp_path / "reference"
    ref = start(_train_args(ref_out), ref_out)
    assert ref.returncode == 0, ref.output

    out, audit = tmp_path / "train", tmp_path / "audit.log"
    outcomes = []
    for kill in ("step_0000002.safetensors.tmp-", *kill_fractions(SEED + 4, 3)):
        done = snapshot([p for p in out.rglob("*.safetensors")] if out.exists() else [])
        if isinstance(kill, str):
            outcomes.append(start(_train_args(out), out, kill_at_rename=kill, audit=audit))
            assert any(kill in name for name in leftovers(out)), leftovers(out)
            assert _logged_steps(out, "vae") == [1, 2]
        else:
            outcomes.append(start(_train_args(out), out, kill_after=kill * ref.work_seconds, audit=audit))
        assert outcomes[-1].returncode is None or outcomes[-1].returncode == 0, outcomes[-1].output
        assert torn_files(out) == [], _report(outcomes)
        # Checkpoints and finished stages written before this attempt were not trained again.
        assert changed(done) == [], f"trained again: {_report(outcomes)}"
    done = snapshot(list(out.rglob("*.safetensors")))
    final = start(_train_args(out), out, audit=audit)
    assert final.returncode == 0, final.output
    assert changed(done) == [], "trained again"
    assert torn_files(out) == []
    assert leftovers(out) == []
    in_place, _ = audited(audit)
    assert [w for w in in_place if not re.fullmatch(r"a \w+/log\.jsonl", w)] == []
    for stage, (steps, _) in STEPS.items():  # each step logged once, in order, across the attempts
        assert _logged_steps(out, stage) == list(range(1, steps + 1)), stage
    # The same model as the uninterrupted training, tensor for tensor.
    got, want = load_file(str(out / "infvsr_tiny.safetensors")), load_file(str(ref_out / "infvsr_tiny.safetensors"))
    assert got.keys() == want.keys() and all(got[k].equal(want[k]) for k in want)
    card = json.loads((out / "infvsr_tiny.json").read_text())
    assert card["sha256"] == sha256_file(out / "infvsr_tiny.safetensors")


def test_report_writes_each_file_under_another_name_and_renames_it_into_place(reference, tmp_path):
    """Deterministic companion of the kill loop: no report file is ever opened for writing under its own name
    (where a kill would leave it torn); each appears whole, by a rename (Python's audit events of the process)."""
    _, run_dir, _ = reference
    out, audit = tmp_path / "report", tmp_path / "audit.log"
    outcome = start(["report", str(run_dir), f"out={out}"], out, audit=audit)
    assert outcome.returncode == 0, outcome.output
    in_place, renamed = audited(audit)
    assert in_place == []
    assert sorted(p.name for p in out.iterdir()) == sorted(renamed)


# -- work in progress left by a kill -------------------------------------------------------------------

def test_only_work_in_progress_of_a_dead_process_of_this_host_toward_the_file_being_written_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    kept = [f".run.json.tmp-{HOST}-{os.getpid()}-0000000a",  # a live process's (this one)
            f".run.json.tmp-elsewhere-{dead.pid}-0000000b",  # another host's: its pid says nothing here
            f".clips.csv.tmp-{HOST}-{dead.pid}-0000000c",  # toward another file: removed when that one is written
            f".run.json.tmpx-{HOST}-{dead.pid}", f".run.json.tmp-{HOST}-{dead.pid}-notours",  # not our names
            "notes.txt"]
    for name in [*kept, f".run.json.tmp-{HOST}-{dead.pid}-0000000d", f".run.json.tmp-{HOST}-{dead.pid}"]:
        (tmp_path / name).write_text("x")
    write_json(tmp_path / "run.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "run.json"])
