"""Top-level ``run`` options: a bad value is one line and exit code 2 before anything is written, and
``max_frames`` equal to a clip's length counts as the whole clip in reports."""

from __future__ import annotations

import pytest
from conftest import clips_folder

from infvsr_bench.app.cli import main
from infvsr_bench.report.tables import leaderboard
from infvsr_bench.results.merge import load_runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two real clips of 12 and 10 frames (LR 16x24)."""
    return clips_folder(tmp_path_factory.mktemp("validation") / "data", {"a": 12, "b": 10})


def _refused(capsys, tmp_path, data, *args: str) -> str:
    """Run with ``args``; assert exit code 2, one stderr line and no folder written; return the line."""
    out = tmp_path / "out"
    code = main(["run", "dataset=folder", f"dataset.root={data}", f"output_root={out / 'runs'}",
                 "progress=false", *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    written = [p for p in tmp_path.rglob("*") if p != out and p != out / "runs"]
    assert written == [], written  # neither a run folder nor a Hydra .hydra/ folder, inside or outside
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["max_clips=-1"], "error: max_clips must be a number of clips >= 1, or null for all; got -1"),
    (["max_clips=0"], "error: max_clips must be a number of clips >= 1, or null for all; got 0"),
    (["max_frames=0"], "error: max_frames must be a number of frames >= 1, or null for whole clips; got 0"),
    (["max_frames=-1"], "error: max_frames must be a number of frames >= 1, or null for whole clips; got -1"),
    (["max_frames=abc"], "error: max_frames must be an integer or null; got 'abc'"),
    (["max_frames=2.5"], "error: max_frames must be an integer or null; got 2.5"),
    (["threads=-1"], "error: threads must be a number of threads >= 0 (0: torch's default); got -1"),
    (["threads=many"], "error: threads must be an integer; got 'many'"),
    (["seed=abc"], "error: seed must be an integer; got 'abc'"),
    (["save_outputs=maybe"], "error: save_outputs must be true or false; got 'maybe'"),
    (["shard.count=two"], "error: shard.count must be an integer; got 'two'"),
    (["output_codec=ffv2"], "error: unknown output_codec 'ffv2'; did you mean 'ffv1'?"),
    (["score_through=x264"], "error: unknown score_through encoding 'x264'; available: lossless, x264_yuv420p_q7"),
    (["run_name=../../x"], "error: run_name must be one folder name inside output_root"),
    (["run_name=/tmp/x"], "error: run_name must be one folder name inside output_root"),
    (["run_name=a/b"], "error: run_name must be one folder name inside output_root"),
    (["run_name=a\\b"], "error: run_name must be one folder name inside output_root"),
    (["run_name=.."], "error: run_name must be one folder name inside output_root"),
    (["run_name=."], "error: run_name must be one folder name inside output_root"),
    (["run_name="], "error: run_name must be one folder name inside output_root"),
    (["+foo=1"], "error: unknown option 'foo'; "),
    (["++max_frame=1"], "error: unknown option 'max_frame'; did you mean 'max_frames'?"),
    # a sweep is checked value by value before Hydra starts any job (it makes each job's folder)
    (["-m", "max_frames=4,-1"], "error: max_frames must be a number of frames >= 1, or null for whole clips; got -1"),
    (["-m", "run_name=ok,../../x"], "error: run_name must be one folder name inside output_root"),
])
def test_bad_option_values_are_one_line_and_write_nothing(capsys, tmp_path, data, args, message):
    assert _refused(capsys, tmp_path, data, *args).startswith(message)


def test_empty_output_root_is_refused(capsys, tmp_path, data, monkeypatch):
    # ${output_root}/${dataset.name}/... would be /folder/...: at the file system's root
    monkeypatch.chdir(tmp_path)
    assert main(["run", "dataset=folder", f"dataset.root={data}", "output_root=", "progress=false"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: output_root must be a folder; got ''"]


def test_good_values_still_run(capsys, tmp_path, data):
    out = tmp_path / "runs"
    args = ["run", "dataset=folder", f"dataset.root={data}", f"output_root={out}", "progress=false"]
    assert main([*args, "max_clips=1", "max_frames=5", "run_name=quick look", "threads=1", "seed=3"]) == 0
    assert main([*args, "max_clips=null", "max_frames=null", "output_codec=png", "save_outputs=true"]) == 0
    assert (out / "folder" / "quick look" / "clips.parquet").is_file()
    assert sorted(p.name for p in (out / "folder" / "bicubic" / "outputs").iterdir()) == ["a", "b"]


def test_max_frames_equal_to_the_clip_length_is_the_whole_clip_in_reports(tmp_path, data):
    # Clips of 12 and 10 frames: max_frames=12 cuts neither (ranked with the whole-clip run), 11 cuts one.
    def coverage(max_frames: int):
        out = tmp_path / str(max_frames)
        common = ["run", "dataset=folder", f"dataset.root={data}", f"output_root={out}", "progress=false"]
        assert main([*common, "method=bicubic"]) == 0
        assert main([*common, "method=lanczos", f"max_frames={max_frames}"]) == 0
        return leaderboard(load_runs([str(out)]), ["psnr"]).coverage

    whole = coverage(12)
    assert whole.ranked("bicubic", "folder") and whole.ranked("lanczos", "folder")
    assert whole.label("lanczos", "folder") == "2/2"
    cut = coverage(11)
    assert cut.ranked("bicubic", "folder") and not cut.ranked("lanczos", "folder")
    assert cut.label("lanczos", "folder") == "2/2 first frames"
