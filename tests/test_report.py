"""Reports from synthetic runs with known values: numbers, marks, LaTeX structure, merging rules, plots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

from infvsr_bench.app.cli import main
from infvsr_bench.results.merge import load_runs
from infvsr_bench.report.tables import leaderboard, to_latex, to_markdown
from infvsr_bench.results.record import DatasetRecord, RunRecord, RunStatus, write_run_record, write_table

PSNR = {"metric": "psnr", "column": "psnr", "version": "1.0", "kind": "FR", "higher_is_better": True,
        "settings": {"channel": "y", "crop_border": 0}, "weights": "none"}
LPIPS = {"metric": "lpips", "column": "lpips", "version": "1.0", "kind": "FR", "higher_is_better": False,
         "settings": {"net": "alex"}, "weights": "pretrained"}


def make_run(root: Path, method: str, psnr: dict[str, list[float]], lpips: dict[str, list[float]],
             fps: float = 10.0, params: int = 0, weights: str = "none", psnr_info: dict = PSNR,
             finished: str = "2026-01-01T00:00:00", dataset: str = "toy", tag: str = "",
             status: str = "complete", clips: list[str] | None = None, failed: dict[str, str] | None = None,
             recipe: str | None = None, score_through: str = "lossless", max_frames: int | None = None,
             identity: dict | None = None) -> Path:
    """A run folder with per-frame values given per clip (clip value = frame mean), ``failed`` clips
    (clip -> reason) and the clip list it was asked to do (``clips``, default: all given, in order).
    A ``running`` run has no ``finished`` time."""
    path = root / dataset / (method + tag)
    path.mkdir(parents=True)
    failed = failed or {}
    frames, rows = [], []
    for clip, values in psnr.items():
        n = len(values)
        frames.append(pd.DataFrame({"clip": clip, "frame": np.arange(n), "psnr": values, "lpips": lpips[clip]}))
        rows.append({"clip": clip, "status": "ok", "reason": None, "frames": n, "psnr": np.mean(values),
                     "lpips": np.mean(lpips[clip]), "method_fps": fps, "chunk_starts": [0, 2]})
    rows += [{"clip": clip, "status": "failed", "reason": reason, "frames": None} for clip, reason in failed.items()]
    if frames:
        write_table(pd.concat(frames), path / "frames.parquet", csv=False)
    write_table(pd.DataFrame(rows), path / "clips.parquet", csv=False)
    method_info = {"name": method, "weights": weights, "parameters": params, "config": {}}
    record = RunRecord(config={"score_through": score_through, "max_frames": max_frames}, identity=identity or {},
                       fingerprint=method + json.dumps(psnr_info["settings"]) + score_through + str(recipe),
                       method=method_info, metrics=[psnr_info, LPIPS], environment={}, started=finished,
                       dataset=DatasetRecord(dataset, 4, clips or [*psnr, *failed], recipe_sha256=recipe),
                       status=RunStatus(status), finished=None if status == "running" else finished)
    write_run_record(path, record)
    return path


PDFLATEX = shutil.which("pdflatex")
ARTICLE = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n%s\n\\end{document}\n"
BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "chrome-headless-shell", "google-chrome",
            "google-chrome-stable")


def compile_latex(tex: str, folder: Path) -> None:
    """``tex`` in a plain article with booktabs (what the table needs), through a real pdflatex: it must
    compile with -halt-on-error and lose no glyph. Skips, saying why, where no pdflatex is installed."""
    if not PDFLATEX:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-base texlive-latex-recommended, as .ci/run does)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doc.tex").write_text(ARTICLE % tex, encoding="utf-8")
    done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, errors="replace", timeout=120)
    log = (folder / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, "\n".join(re.findall(r"^!.*\n.*\n.*", log, re.M)) or done.stdout[-2000:]
    assert "Missing character" not in log, re.findall(r"Missing character.*", log)
    assert (folder / "doc.pdf").stat().st_size > 0


def render_html(path: Path) -> str:
    """The DOM a real headless Chromium builds from ``path``; skips, saying why, where none is installed."""
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        pytest.skip(f"no headless Chromium-family browser installed (looked for {', '.join(BROWSERS)})")
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


class _Dom(HTMLParser):
    """Tables (rows of cell texts), images, links, scripts and the page's text, from a rendered DOM or a page."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        elif tag == "a":
            self.links.append(dict(attrs).get("href", ""))
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


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
    assert "| B | 2/2 | **28.00** | **0.1000** |" in md and "toy clips" in md and "toy psnr ↑" in md and "toy lpips ↓" in md


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
    compile_latex(tex, tmp_path / "tex")


def test_reference_rows_are_marked_and_not_ranked(tmp_path):
    make_run(tmp_path, "A", {"c": [30.0]}, {"c": [0.25]}, dataset="udm10")
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr", "lpips"], reference="infvsr_paper")
    # Table 1's protocol is unknown: its values are shown apart (italic), never in the ranked table.
    assert board.apart.loc["InfVSR (reported)", ("udm10", "psnr")] == 24.86
    assert "InfVSR (reported)" not in board.values.index
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


def test_scores_through_a_lossy_encode_are_shown_apart(tmp_path):
    make_run(tmp_path, "A", {"c": [30.0]}, {"c": [0.2]})
    make_run(tmp_path, "B", {"c": [29.0]}, {"c": [0.3]}, score_through="x264_yuv420p_q7")
    merged = load_runs([str(tmp_path)])
    lossy = [c for c in merged.metrics if c.startswith("psnr@")]
    assert len(lossy) == 1 and any("differs in ['score_through']" in n for n in merged.notes)
    # scored through another version of the encode (its values differ): apart again, lossless runs unmoved
    v2 = {"score_through": {"name": "x264_yuv420p_q7", "version": 2}}
    make_run(tmp_path, "C", {"c": [28.0]}, {"c": [0.3]}, score_through="x264_yuv420p_q7", identity=v2)
    make_run(tmp_path, "D", {"c": [27.0]}, {"c": [0.3]}, score_through="x264_yuv420p_q7", identity=v2)
    merged = load_runs([str(tmp_path)])
    board = leaderboard(merged, [c for c in merged.metrics if c.startswith("psnr")])
    columns = {m: [c[1] for c in board.values.columns if not np.isnan(board.values.loc[m, c])] for m in "ABCD"}
    assert columns["A"] == ["psnr"] and columns["C"] == columns["D"] and len({*columns["B"], *columns["C"]}) == 2


def test_random_weights_refused_tiny_labelled_reruns_deduplicated(tmp_path):
    make_run(tmp_path, "R", {"c": [30.0]}, {"c": [0.2]}, weights="random")
    make_run(tmp_path, "infvsr", {"c": [25.0]}, {"c": [0.2]}, weights="tiny")
    make_run(tmp_path, "A", {"c": [20.0]}, {"c": [0.2]}, finished="2026-01-01")
    make_run(tmp_path, "A", {"c": [21.0]}, {"c": [0.2]}, finished="2026-02-01", tag="_rerun")
    merged = load_runs([str(tmp_path)])
    assert any("refused, method R ran with random weights" in n for n in merged.notes)
    older = str(tmp_path / "toy" / "A")  # equally complete: time breaks the tie, and the note says so
    assert any(n.startswith(f"{older}: superseded by") and n.endswith("equally complete and newer") for n in merged.notes)
    board = leaderboard(merged, ["psnr"])
    assert set(board.values.index) == {"infvsr-tiny", "A"}
    assert board.values.loc["A", ("toy", "psnr")] == 21.0


def test_report_command_writes_tables_and_plots(three_runs, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(three_runs), f"out={out}", "metrics=[psnr,lpips]", "methods_as=columns"]) == 0
    for name in ("leaderboard.md", "leaderboard.tex", "leaderboard.csv", "leaderboard.html",
                 "speed_vs_psnr_toy.png", "speed_vs_psnr_toy.pdf"):
        assert (out / name).stat().st_size > 0, name
    csv = pd.read_csv(out / "leaderboard.csv", index_col=0)
    assert csv.loc["C", "toy/lpips"] == pytest.approx(0.5)
    assert "<b>28.00</b>" in (out / "leaderboard.html").read_text()
    assert "<img src=\"speed_vs_psnr_toy.png\"" in (out / "index.html").read_text()  # the page, beside its figures
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
    sq = speed_quality(merged, "psnr").set_index("method")
    for method in ("A", "B", "C"):
        assert sq.loc[method, "value"] == pytest.approx(board.values.loc[method, ("toy", "psnr")])
    assert sq.loc["A", "fps"] == 50 and sq.loc["C", "fps"] == 1
    # A prefix as long as every clip is the whole clip: the length curve ends at the table's value.
    ends = metric_vs_length(merged, "psnr", lengths=(2,))
    assert ends.set_index("method").loc["B", "value"] == pytest.approx(28.0)


def _row(md: str, method: str) -> list[str]:
    """The cells of one Markdown table row (label first)."""
    line = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_a_failed_clip_does_not_lift_the_method_that_failed_it(tmp_path):
    # Identical outputs; B failed the hardest clip. Before: B 35.00 (easy clips only) beat A 30.00.
    psnr = {"c1": [36.0, 34.0], "c2": [35.0, 35.0], "c3": [20.0, 20.0]}
    lpips = {c: [0.2, 0.2] for c in psnr}
    make_run(tmp_path, "A", psnr, lpips)
    make_run(tmp_path, "B", {c: psnr[c] for c in ("c1", "c2")}, lpips, failed={"c3": "ClipError: CUDA out of memory"},
             status="complete_with_failures")
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"])
    common = np.mean([np.mean(psnr["c1"]), np.mean(psnr["c2"])])  # both valued over the clips both finished
    assert board.values.loc["A", ("toy", "psnr")] == pytest.approx(common)
    assert board.values.loc["B", ("toy", "psnr")] == pytest.approx(common)
    marks = board.marks()
    assert marks.loc["A", ("toy", "psnr")] == marks.loc["B", ("toy", "psnr")]
    md = to_markdown(board)
    assert _row(md, "A")[1] == "3/3" and _row(md, "B")[1] == "2/3"
    assert any("B" in n and "c3" in n and "CUDA out of memory" in n for n in board.notes)  # which clip, why
    assert any("c1, c2" in n and "c3" in n for n in board.notes)  # the common clips and the excluded one


def test_a_method_that_failed_every_clip_keeps_a_row(tmp_path):
    make_run(tmp_path, "A", {"c1": [30.0], "c2": [20.0]}, {"c1": [0.2], "c2": [0.2]})
    make_run(tmp_path, "F", {}, {}, failed={"c1": "VideoReadError: bad", "c2": "VideoReadError: bad"},
             status="complete_with_failures")
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"])
    assert np.isnan(board.values.loc["F", ("toy", "psnr")])
    assert board.values.loc["A", ("toy", "psnr")] == pytest.approx(25.0)  # F does not shrink A's clips
    assert _row(to_markdown(board), "F")[1:] == ["0/2", "-"]
    assert board.marks().loc["F"].eq("").all()


def test_a_quick_newer_rerun_does_not_supersede_the_full_run(tmp_path):
    # Same method, same fingerprint (max_clips is not in it); the newer run was asked one clip only.
    full = {"c1": [30.0], "c2": [25.0], "c3": [20.0]}
    lpips = {c: [0.2] for c in full}
    make_run(tmp_path, "A", full, lpips, finished="2026-01-01T00:00:00")
    make_run(tmp_path, "A", {"c1": [30.0]}, {"c1": [0.2]}, finished="2026-02-01T00:00:00", tag="_quick")
    merged = load_runs([str(tmp_path)])
    assert [r.path.name for r in merged.runs] == ["A"]
    assert any("A_quick" in n and "superseded" in n and "3 vs 1" in n for n in merged.notes)
    assert leaderboard(merged, ["psnr"]).values.loc["A", ("toy", "psnr")] == pytest.approx(25.0)


def test_running_runs_are_shown_but_not_ranked(tmp_path):
    for method, value in (("A", 30.0), ("B", 28.0), ("C", 26.0)):
        make_run(tmp_path, method, {"c1": [value], "c2": [value]}, {"c1": [0.2], "c2": [0.2]})
    make_run(tmp_path, "R", {"c1": [40.0]}, {"c1": [0.1]}, status="running", clips=["c1", "c2"])
    # A newer re-run of A that has not finished does not replace the finished one.
    make_run(tmp_path, "A", {"c1": [10.0]}, {"c1": [0.9]}, status="running", clips=["c1", "c2"],
             finished="2026-06-01T00:00:00", tag="_again")
    merged = load_runs([str(tmp_path)])
    assert any("A_again" in n and "superseded" in n for n in merged.notes)
    board = leaderboard(merged, ["psnr", "lpips"])
    assert board.values.loc["A", ("toy", "psnr")] == pytest.approx(30.0)
    marks = board.marks()
    assert marks.loc["R"].eq("").all()
    assert marks.loc["A", ("toy", "psnr")] == "best" and marks.loc["B", ("toy", "psnr")] == "second"
    row = _row(to_markdown(board), "R")
    assert row[1] == "1/2 running" and row[2] == "40.00†"


def test_a_method_asked_fewer_clips_is_partial_and_not_ranked(tmp_path):
    for method, value in (("A", 30.0), ("B", 28.0), ("C", 26.0)):
        make_run(tmp_path, method, {c: [value] for c in ("c1", "c2", "c3")}, {c: [0.2] for c in ("c1", "c2", "c3")})
    make_run(tmp_path, "Q", {"c1": [40.0]}, {"c1": [0.1]})  # a max_clips=1 run
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"])
    assert board.marks().loc["Q"].eq("").all() and board.marks().loc["A", ("toy", "psnr")] == "best"
    assert _row(to_markdown(board), "Q")[1:] == ["1/3 partial", "40.00†"]
    assert any("Q" in n and "c2, c3" in n and "not run" in n for n in board.notes)
    assert "common clips" in to_markdown(board)  # the footnote states the rule


def test_runs_on_different_dataset_recipes_are_kept_apart(tmp_path):
    # Same fingerprint, but the benchmark was rebuilt from another recipe: different data, not a re-run.
    make_run(tmp_path, "A", {"c": [30.0]}, {"c": [0.2]}, recipe="a" * 64)
    make_run(tmp_path, "A", {"c": [31.0]}, {"c": [0.2]}, recipe="b" * 64, tag="_rebuilt", finished="2026-02-01")
    make_run(tmp_path, "B", {"c": [29.0]}, {"c": [0.2]}, recipe="b" * 64)
    merged = load_runs([str(tmp_path)])
    assert len(merged.runs) == 3 and not any("superseded" in n for n in merged.notes)
    board = leaderboard(merged, ["psnr"])
    by_recipe = {d: board.values[(d, "psnr")].dropna().to_dict() for d, _ in board.values.columns}
    assert by_recipe == {"toy@aaaaaaaa": {"A": 30.0}, "toy@bbbbbbbb": {"A": 31.0, "B": 29.0}}


def _balanced(tex: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):  # escaped braces are text
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_latex_escapes_every_special_character(tmp_path):
    make_run(tmp_path, "a_b$c^d~e{f}", {"c": [30.0]}, {"c": [0.2]})
    make_run(tmp_path, "50%", {"c": [29.0]}, {"c": [0.2]})
    make_run(tmp_path, "x\\y&z#", {"c": [28.0]}, {"c": [0.2]})
    tex = to_latex(leaderboard(load_runs([str(tmp_path)]), ["psnr"]))
    assert r"a\_b\$c\textasciicircum{}d\textasciitilde{}e\{f\}" in tex
    assert r"50\%" in tex and r"x\textbackslash{}y\&z\#" in tex
    assert _balanced(tex)
    compile_latex(tex, tmp_path / "tex")


def test_marks_follow_the_displayed_values(tmp_path):
    # 30.001 and 29.998 both print as 30.00: both best; 25.00 is second.
    for method, value in (("A", 30.001), ("B", 29.998), ("C", 25.0)):
        make_run(tmp_path, method, {"c": [value]}, {"c": [0.2]})
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"])
    marks = board.marks()[("toy", "psnr")]
    assert marks.to_dict() == {"A": "best", "B": "best", "C": "second"}
    assert to_latex(board).count(r"\textbf{30.00}") == 2


def test_a_lone_ranked_row_is_not_marked_best(tmp_path):
    # Next to reported (or unranked) rows, a bold lone value would read as a win it never had.
    make_run(tmp_path, "A", {"c": [20.0]}, {"c": [0.5]}, dataset="udm10")
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"], reference="infvsr_paper")
    assert board.marks().eq("").all().all()


def test_runs_cut_short_by_max_frames_are_not_ranked_against_whole_clips(tmp_path):
    # A scores whole clips (4 frames); B only its first 2 frames, which happen to be easy (the 40 dB ones)
    make_run(tmp_path, "A", {"c1": [20, 20, 20, 20]}, {"c1": [0.2] * 4})
    make_run(tmp_path, "B", {"c1": [40, 40]}, {"c1": [0.1] * 2}, max_frames=2)
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr"])
    marks = board.marks()
    assert marks.loc["B", ("toy", "psnr")] == "" and not board.coverage.ranked("B", "toy")
    assert board.coverage.label("B", "toy") == "1/1 first frames"
    assert any("first 2 frames" in n and "whole clips" in n for n in board.notes)
    # when every run was cut to the same length, they are ranked together
    only_short = tmp_path / "short"
    make_run(only_short, "A", {"c1": [20, 20]}, {"c1": [0.2] * 2}, max_frames=2)
    make_run(only_short, "B", {"c1": [40, 40]}, {"c1": [0.1] * 2}, max_frames=2)
    board = leaderboard(load_runs([str(only_short)]), ["psnr"])
    assert board.coverage.ranked("A", "toy") and board.coverage.ranked("B", "toy")


HOSTILE = ("a_b$c^d~e{f}", "50%", "x\\y&z#", "m\u00e9thode\u2013\u03b2<|>`")  # \u03b2: no pdflatex glyph


@pytest.fixture
def hostile_runs(tmp_path):
    """Runs whose method, clip and metric names hold every LaTeX/HTML special character and non-ASCII
    text, on a dataset with reported values (the table shown apart), one cut short by max_frames."""
    root = tmp_path / "runs"
    odd = {**PSNR, "settings": {"channel": "rgb", "crop_border": 0}}  # shown apart as psnr@<suffix>
    for i, name in enumerate(HOSTILE):
        clips = {"c_1&%": [30.0 - i, 30.0 - i], "c~2#<b>": [25.0 - i, 25.0 - i]}
        make_run(root, name, clips, {c: [0.2, 0.2] for c in clips}, dataset="udm10",
                 max_frames=1 if i == 1 else None)
    make_run(root, "rgb_{psnr}", {"c_1&%": [31.0]}, {"c_1&%": [0.2]}, dataset="udm10", psnr_info=odd)
    return root


@pytest.mark.parametrize("methods_as", ["rows", "columns"])
def test_every_generated_tex_compiles_with_pdflatex(hostile_runs, tmp_path, methods_as):
    out = tmp_path / "rep"
    assert main(["report", str(hostile_runs), f"out={out}", "reference=infvsr_paper", f"methods_as={methods_as}",
                 "plots=false"]) == 0
    tex = (out / "leaderboard.tex").read_text()
    assert r"max\_frames" in tex and "max_frames" not in tex.split("\\end{table}")[0]  # the caption's
    assert "m\u00e9thode\u2013[U+03B2]\\textless{}\\textbar{}\\textgreater{}\\textasciigrave{}" in tex  # all still there
    assert tex.count(r"\begin{table}") == 2  # reported values shown apart: their own table
    compile_latex(tex, tmp_path / "tex")


@pytest.mark.parametrize("path", sorted(REPO.glob("reports/**/*.tex")), ids=lambda p: str(p.relative_to(REPO)))
def test_committed_reports_compile_with_pdflatex(path, tmp_path):
    compile_latex(path.read_text(), tmp_path)


def test_report_html_renders_in_a_headless_browser(hostile_runs, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(hostile_runs), f"out={out}", "reference=infvsr_paper", "metrics=[psnr,lpips]"]) == 0
    dom = _Dom(render_html(out / "leaderboard.html"))
    ranked, apart = dom.tables
    assert len({len(row) for row in ranked}) == 1 and len({len(row) for row in apart}) == 1  # no row broken
    assert sorted(row[0] for row in ranked[1:]) == sorted([*HOSTILE, "rgb_{psnr}"])  # names as text, not markup
    assert ranked[0][1] == "udm10 clips" and "udm10 psnr ↑" in ranked[0]
    text = "".join(dom.text)
    assert "first frames: max_frames cut its clips" in text  # the legend
    assert "c~2#<b>" in text  # a clip name in the notes, as text (escaped, not a <b> element)
    assert not dom.images  # the table alone; index.html shows the figures (tests/test_report_page.py)
