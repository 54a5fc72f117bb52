"""Reports from synthetic runs with known values: numbers, marks, LaTeX structure, merging rules, plots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infvsr_bench.cli import main
from infvsr_bench.report.merge import load_runs
from infvsr_bench.report.tables import leaderboard, to_latex, to_markdown

PSNR = {"metric": "psnr", "column": "psnr", "version": "1.0", "kind": "FR", "higher_is_better": True,
        "settings": {"channel": "y", "crop_border": 0}, "weights": "none"}
LPIPS = {"metric": "lpips", "column": "lpips", "version": "1.0", "kind": "FR", "higher_is_better": False,
         "settings": {"net": "alex"}, "weights": "pretrained"}


def make_run(root: Path, method: str, psnr: dict[str, list[float]], lpips: dict[str, list[float]],
             fps: float = 10.0, params: int = 0, weights: str = "none", psnr_info: dict = PSNR,
             finished: str = "2026-01-01T00:00:00", dataset: str = "toy", tag: str = "") -> Path:
    """A run folder with per-frame values given per clip (clip value = frame mean)."""
    path = root / dataset / (method + tag)
    path.mkdir(parents=True)
    frames, clips = [], []
    for clip in psnr:
        n = len(psnr[clip])
        frames.append(pd.DataFrame({"clip": clip, "frame": np.arange(n), "psnr": psnr[clip], "lpips": lpips[clip]}))
        clips.append({"clip": clip, "status": "ok", "reason": None, "frames": n, "psnr": np.mean(psnr[clip]),
                      "lpips": np.mean(lpips[clip]), "method_fps": fps, "chunk_starts": [0, 2]})
    pd.concat(frames).to_parquet(path / "frames.parquet")
    pd.DataFrame(clips).to_parquet(path / "clips.parquet")
    record = {"method": {"name": method, "weights": weights, "parameters": params, "config": {}},
              "dataset": {"name": dataset}, "config_fingerprint": method + json.dumps(psnr_info["settings"]),
              "metrics": [psnr_info, LPIPS], "finished": finished}
    (path / "run.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def three_runs(tmp_path):
    # Clip means: A psnr (30, 20) -> 25, lpips (0.2, 0.4) -> 0.3 ; B psnr 28 / lpips 0.1 ; C psnr 26 / lpips 0.5
    make_run(tmp_path, "A", {"c1": [29, 31], "c2": [20, 20, 20, 20]}, {"c1": [0.2, 0.2], "c2": [0.4] * 4}, fps=50)
    make_run(tmp_path, "B", {"c1": [28, 28], "c2": [28] * 4}, {"c1": [0.1, 0.1], "c2": [0.1] * 4}, fps=5, params=10**6)
    make_run(tmp_path, "C", {"c1": [26, 26], "c2": [26] * 4}, {"c1": [0.5, 0.5], "c2": [0.5] * 4}, fps=1)
    return tmp_path


def test_leaderboard_values_and_marks(three_runs):
    board = leaderboard(load_runs([str(three_runs)]), ["psnr", "lpips"])
    assert board.values.loc["A", ("toy", "psnr")] == pytest.approx(25.0)  # clip mean of frame means
    assert board.values.loc["A", ("toy", "lpips")] == pytest.approx(0.3)
    marks = board.marks()
    assert marks.loc["B", ("toy", "psnr")] == "best" and marks.loc["C", ("toy", "psnr")] == "second"
    assert marks.loc["B", ("toy", "lpips")] == "best" and marks.loc["A", ("toy", "lpips")] == "second"
    weighted = leaderboard(load_runs([str(three_runs)]), ["psnr"], aggregation="frame_weighted")
    assert weighted.values.loc["A", ("toy", "psnr")] == pytest.approx((29 + 31 + 80) / 6)
    md = to_markdown(board)
    assert "| B | **28.00** | **0.1000** |" in md and "toy psnr ↑" in md and "toy lpips ↓" in md


def test_latex_is_structurally_sound(three_runs, tmp_path):
    board = leaderboard(load_runs([str(three_runs)]), ["psnr", "lpips"], reference=None)
    tex = to_latex(board)
    for env in ("table", "tabular"):
        assert tex.count(rf"\begin{{{env}}}") == tex.count(rf"\end{{{env}}}") == 1
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\textbf{28.00}" in tex and r"\underline{26.00}" in tex
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len({line.count("&") for line in body}) == 1  # same column count on every row
    assert tex.count("{") == tex.count("}")
    if shutil.which("pdflatex"):
        doc = tmp_path / "t.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}" + tex + "\\end{document}")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path, check=True,
                       capture_output=True, timeout=60)


def test_reference_rows_are_marked_and_not_ranked(tmp_path):
    make_run(tmp_path, "A", {"c": [30.0]}, {"c": [0.25]}, dataset="udm10")
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr", "lpips"], reference="infvsr_paper")
    assert board.values.loc["InfVSR (reported)", ("udm10", "psnr")] == 24.86
    assert "InfVSR (reported)" in board.reported
    assert board.marks().loc["InfVSR (reported)"].eq("").all()
    assert "*InfVSR (reported)*" in to_markdown(board)


def test_disagreeing_metric_versions_are_shown_apart(tmp_path):
    make_run(tmp_path, "A", {"c": [30.0]}, {"c": [0.2]})
    other = {**PSNR, "settings": {"channel": "rgb", "crop_border": 0}}
    make_run(tmp_path, "B", {"c": [31.0]}, {"c": [0.3]}, psnr_info=other)
    merged = load_runs([str(tmp_path)])
    alt = [c for c in merged.metrics if c.startswith("psnr@")]
    assert len(alt) == 1
    assert any("'psnr' differs in ['settings']" in n and alt[0] in n for n in merged.notes)
    board = leaderboard(merged, ["psnr", alt[0]])
    assert np.isnan(board.values.loc["B", ("toy", "psnr")]) and board.values.loc["B", ("toy", alt[0])] == 31.0


def test_random_weights_refused_tiny_labelled_reruns_deduplicated(tmp_path):
    make_run(tmp_path, "R", {"c": [30.0]}, {"c": [0.2]}, weights="random")
    make_run(tmp_path, "infvsr", {"c": [25.0]}, {"c": [0.2]}, weights="tiny")
    make_run(tmp_path, "A", {"c": [20.0]}, {"c": [0.2]}, finished="2026-01-01")
    make_run(tmp_path, "A", {"c": [21.0]}, {"c": [0.2]}, finished="2026-02-01", tag="_rerun")
    merged = load_runs([str(tmp_path)])
    assert any("refused, method R ran with random weights" in n for n in merged.notes)
    assert any("superseded by the re-run" in n for n in merged.notes)
    board = leaderboard(merged, ["psnr"])
    assert set(board.values.index) == {"infvsr-tiny", "A"}
    assert board.values.loc["A", ("toy", "psnr")] == 21.0


def test_report_command_writes_tables_and_plots(three_runs, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(three_runs), f"out={out}", "metrics=[psnr,lpips]", "methods_as=columns"]) == 0
    for name in ("leaderboard.md", "leaderboard.tex", "leaderboard.csv", "leaderboard.html",
                 "speed_vs_psnr.png", "speed_vs_psnr.pdf"):
        assert (out / name).stat().st_size > 0, name
    csv = pd.read_csv(out / "leaderboard.csv", index_col=0)
    assert csv.loc["C", "toy/lpips"] == pytest.approx(0.5)
    html = (out / "leaderboard.html").read_text()
    assert "data:image/png;base64," in html and "<b>28.00</b>" in html
    assert re.search(r"\| psnr|toy psnr", (out / "leaderboard.md").read_text())


def test_metric_vs_length_cuts_prefixes(tmp_path):
    from infvsr_bench.report.plots import metric_vs_length

    ramp = list(np.linspace(30, 20, 300))  # quality decays along the clip
    make_run(tmp_path, "A", {"long": ramp, "short": [40.0] * 150}, {"long": [0.1] * 300, "short": [0.1] * 150})
    data = metric_vs_length(load_runs([str(tmp_path)]), "psnr", lengths=(100, 250))
    at100 = data[data["length"] == 100]["value"].item()
    at250 = data[data["length"] == 250]["value"].item()
    assert at100 == pytest.approx((np.mean(ramp[:100]) + 40.0) / 2)  # both clips reach 100 frames
    assert at250 == pytest.approx(np.mean(ramp[:250]))  # only the long clip reaches 250


def test_figure_data_match_the_leaderboard(three_runs):
    from infvsr_bench.report.plots import metric_vs_length, speed_quality

    merged = load_runs([str(three_runs)])
    board = leaderboard(merged, ["psnr"])
    sq = speed_quality(merged, "psnr")
    for method in ("A", "B", "C"):
        assert sq.loc[method, "value"] == pytest.approx(board.values.loc[method, ("toy", "psnr")])
    assert sq.loc["A", "fps"] == 50 and sq.loc["C", "fps"] == 1
    # A prefix as long as every clip is the whole clip: the length curve ends at the table's value.
    ends = metric_vs_length(merged, "psnr", lengths=(2,))
    assert ends.set_index("method").loc["B", "value"] == pytest.approx(28.0)
