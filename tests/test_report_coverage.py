"""Issue #20, points 5, 12 and 13: every leaderboard row is one run identity, a value over fewer clips
than its row says how many, and an unreadable run is left out in a note while the report goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import clips_folder

from infvsr_bench.app.cli import main
from infvsr_bench.report.tables import leaderboard, to_csv, to_markdown
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import write_table


def _run(root: Path, out: Path, *extra: str) -> Path:
    assert main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={out}", "progress=false",
                 *extra]) == 0
    return out


def _cells(md: str, label: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


@pytest.mark.slow
def test_four_same_named_runs_of_different_settings_are_four_rows_each_its_own_mean(tmp_path):
    # Before: two rows, 'x' and 'x (x)', the second the mean of three runs' clips (a value of no run).
    root = clips_folder(tmp_path / "data", {"c0": 6, "c1": 5})
    settings = ([], ["max_frames=3"], ["max_frames=4"], ["metrics.psnr.crop_border=4"])
    for i, extra in enumerate(settings):
        _run(root, tmp_path / f"out{i}", "run_name=x", "metrics=[psnr]", *extra)
    merged = load_runs([str(tmp_path / f"out{i}") for i in range(4)])
    board = leaderboard(merged)
    rows = [run.method for run in merged.runs]
    assert len(rows) == len(set(rows)) == 4 and list(board.values.index) == rows
    assert all(row.startswith("x@") for row in rows)
    md = to_markdown(board)
    for run in merged.runs:
        own = pd.read_parquet(run.path / "clips.parquet")["psnr"].mean()  # its own clips' mean
        shown = board.values.loc[run.method].dropna()
        assert len(shown) == 1 and shown.iloc[0] == pytest.approx(own), run.path
        assert _cells(md, run.method)[0].startswith("2/2")
    assert any("4 runs named x" in n and all(r in n for r in rows) for n in board.notes)


@pytest.mark.slow
def test_a_temporal_metric_with_no_value_on_short_clips_says_over_how_many_clips(tmp_path):
    # Before: tof 0.26 over the 6-frame clip alone, with nothing saying the 1- and 2-frame clips were left out.
    root = clips_folder(tmp_path / "data", {"one": 1, "two": 2, "six": 6})
    _run(root, tmp_path / "runs", "metrics=[psnr,tof,ewarp_dis]")
    board = leaderboard(load_runs([str(tmp_path / "runs")]))
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "bicubic" / "clips.parquet").set_index("clip")
    assert np.isnan(clips.loc["one", "tof"]) and np.isnan(clips.loc["two", "tof"])  # ok clips without a value
    assert board.values.loc["bicubic", ("folder", "tof")] == pytest.approx(clips.loc["six", "tof"])
    counts = board.counts.loc["bicubic"]
    assert counts[("folder", "psnr")] == 3 and counts[("folder", "tof")] == 1 and counts[("folder", "ewarp_dis")] == 2
    cells = _cells(to_markdown(board), "bicubic")
    assert cells[0] == "3/3" and not cells[1].endswith(")")  # psnr: every clip has a value
    assert cells[2] == f"{clips.loc['six', 'tof']:.4f} (1/3)"
    assert cells[3] == f"{clips[['ewarp_dis']].mean().item():.4f} (2/3)"
    assert any("tof" in n and "one, two" in n and "1 of 3 clips" in n for n in board.notes)
    assert any("ewarp_dis" in n and "one" in n and "2 of 3 clips" in n for n in board.notes)
    csv = pd.read_csv(pd.io.common.StringIO(to_csv(board)), index_col=0)
    assert csv.loc["bicubic", "folder/tof/clips"] == 1 and csv.loc["bicubic", "folder/psnr/clips"] == 3


def test_a_corrupt_clips_table_leaves_that_run_out_in_a_note_and_the_report_goes_on(tmp_path, capsys):
    root = clips_folder(tmp_path / "data", {"c0": 2})
    _run(root, tmp_path / "runs", "metrics=[psnr]")
    _run(root, tmp_path / "runs", "metrics=[psnr]", "method=lanczos")
    bad = tmp_path / "runs" / "folder" / "lanczos" / "clips.parquet"
    bad.write_bytes(b"PAR1 not a parquet file")
    out = tmp_path / "rep"
    assert main(["report", str(tmp_path / "runs"), f"out={out}", "plots=false"]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "| bicubic |" in md and "| lanczos |" not in md
    assert any(line.startswith(f"- {bad}: skipped, unreadable") for line in md.splitlines()), md
    assert f"{bad}: skipped, unreadable" in capsys.readouterr().out


def test_clip_rows_of_another_run_fingerprint_in_a_table_are_left_out_with_a_note(tmp_path):
    # A worker of another run (overwrite=true racing a running one) rebuilt the table after the record.
    root = clips_folder(tmp_path / "data", {"c0": 2, "c1": 3})
    run_dir = _run(root, tmp_path / "runs", "metrics=[psnr]") / "folder" / "bicubic"
    table = pd.read_parquet(run_dir / "clips.parquet")
    table.loc[table["clip"] == "c1", ["fingerprint", "psnr"]] = ["0" * 64, 99.0]
    write_table(table, run_dir / "clips.parquet", csv=False)
    board = leaderboard(load_runs([str(tmp_path / "runs")]))
    assert board.values.loc["bicubic", ("folder", "psnr")] == pytest.approx(table.loc[0, "psnr"])
    assert board.coverage.label("bicubic", "folder") == "1/2"
    assert any(n.startswith(f"{run_dir}: left out c1: computed under another run fingerprint") for n in board.notes)


def test_a_run_of_max_clips_is_partial_over_the_whole_dataset_and_not_ranked(tmp_path):
    root = clips_folder(tmp_path / "data", {"c0": 2, "c1": 3, "c2": 2})
    for method in ("bicubic", "lanczos"):
        _run(root, tmp_path / "runs", "metrics=[psnr]", f"method={method}")
    # A quick run of the same run identity, only named apart, is a re-run of bicubic (as resume has it:
    # its clips belong in bicubic's folder) and superseded by the full run (#22 point 3) ...
    _run(root, tmp_path / "runs", "metrics=[psnr]", "run_name=same", "max_clips=1")
    merged = load_runs([str(tmp_path / "runs")])
    assert "same" not in [r.method for r in merged.runs], merged.notes
    assert any(n.startswith(f"{(tmp_path / 'runs' / 'folder' / 'same').resolve()}: superseded by")
               and n.endswith("it finished, this one did not") for n in merged.notes), merged.notes
    # ... while one of another identity (another seed) is a run of its own: partial, so not ranked.
    _run(root, tmp_path / "runs", "metrics=[psnr]", "run_name=quick", "max_clips=1", "seed=1")
    board = leaderboard(load_runs([str(tmp_path / "runs")]))
    assert board.coverage.label("quick", "folder") == "1/3 partial" and not board.coverage.ranked("quick", "folder")
    assert board.coverage.ranked("bicubic", "folder") and board.coverage.ranked("lanczos", "folder")
    assert any(n.startswith("quick on folder: 1/3 clips; partial (asked 3 of the 3 clips, finished 1)")
               and "c1, c2 missing: not run" in n for n in board.notes)
