"""Figures that say what they show (#23 points 1-4, 6), on synthetic runs of clips of 30 and 60 frames:
per-clip drift curves and means only where every clip covers the frame (with the clip count in the
CSV), seams per method and per clip with scene-cut boundaries excluded, unranked rows hollow, one
style per method across figures, axis labels with protocol, direction and log scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from infvsr_bench.report import plots
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import DatasetRecord, RunRecord, RunStatus, write_run_record, write_table

COL = "semantic_drift_dino"
PSNR = {"metric": "psnr", "column": "psnr", "version": "1.0", "kind": "FR", "higher_is_better": True,
        "protocol": "basicsr", "settings": {"crop_border": 0}, "weights": "none"}
DRIFT = {"metric": COL, "column": COL, "version": "1.0", "kind": "semantic", "higher_is_better": True,
         "protocol": "vbench", "settings": {"stride": 2}, "weights": "pretrained",
         "columns": {f"{COL}_fidelity": {"higher_is_better": True, "ideal": None},
                     f"{COL}_boundary": {"higher_is_better": False, "ideal": 1.0}}}
LENGTHS = {"c30": 30, "c60": 60}
FIDELITY = {"c30": 0.80, "c60": 0.90}  # constant per clip: a frame-by-frame mean of both jumps at frame 30
GAPS = {"c30": {1: (0.95, 29), 10: (0.90, 20)}, "c60": {1: (0.97, 59), 10: (0.92, 50), 40: (0.85, 20)}}
CUTS = {"c30": [20], "c60": [39]}  # first frames of new shots
CHUNK = 10


def write_run(root: Path, method: str, offset: float, *, stride: int = 2, max_frames: int | None = None,
              semantic: bool = True, fps: float = 10.0, chunk: int = CHUNK) -> None:
    """A finished run over clips c30 and c60 (``max_frames`` cuts them short), chunks of ``chunk`` frames;
    with ``semantic``: fidelity FIDELITY + offset on every ``stride``-th frame, the gap curve GAPS,
    scene cuts CUTS and a per-boundary ratio of 1 + boundary / 100 on the boundaries scored."""
    path = root / "toy" / method
    path.mkdir(parents=True)
    frames, rows, curves = [], [], []
    for clip, n in LENGTHS.items():
        done = min(n, max_frames or n)
        f = np.arange(done)
        psnr = 30.0 + offset - f / 100
        starts = list(range(0, done, chunk))
        row = {"clip": clip, "status": "ok", "reason": None, "frames": done, "lr_frames": n, "psnr": psnr.mean(),
               "method_fps": fps, "chunk_starts": starts}
        table = pd.DataFrame({"clip": clip, "frame": f, "psnr": psnr})
        if semantic:
            scored = f % stride == 0
            table[COL] = np.where(scored & (f > 0), 0.95, np.nan)  # as the metric: frame 0 has no VBench term
            table[f"{COL}_fidelity"] = np.where(scored, FIDELITY[clip] + offset, np.nan)
            row |= {COL: 0.95, f"{COL}_fidelity": FIDELITY[clip] + offset, f"{COL}_boundary": 1.1}
            # every boundary the metric keeps: a scored pair crosses it and no cut lies in that pair
            x = f[scored]
            kept = [s for s in starts[1:]
                    if s <= x[-1] and not any(x[x < s][-1] < c <= x[x >= s][0] for c in CUTS[clip])]
            gaps = {g: v for g, v in GAPS[clip].items() if g < done}
            curves += [pd.DataFrame({"curve": "sim_first", "x": x, "value": 1 - x / 1000 + offset, "count": 1}),
                       pd.DataFrame({"curve": "sim_gap", "x": list(gaps), "value": [v for v, _ in gaps.values()],
                                     "count": [c for _, c in gaps.values()]}),
                       pd.DataFrame({"curve": "boundary", "x": kept, "value": [1 + s / 100 for s in kept], "count": 1}),
                       pd.DataFrame({"curve": "scene_cut", "x": [c for c in CUTS[clip] if c < done], "value": 1.0,
                                     "count": 1})]
            curves[-4:] = [c.assign(metric=COL, clip=clip) for c in curves[-4:]]
        frames.append(table)
        rows.append(row)
    write_table(pd.concat(frames), path / "frames.parquet", csv=False)
    write_table(pd.DataFrame(rows), path / "clips.parquet", csv=False)
    if curves:
        write_table(pd.concat(curves, ignore_index=True), path / "curves.parquet", csv=False)
    infos = [PSNR, {**DRIFT, "settings": {"stride": stride}}] if semantic else [PSNR]
    record = RunRecord(config={"max_frames": max_frames}, identity={}, fingerprint=method,
                       method={"name": method, "weights": "none", "parameters": 0, "config": {}}, metrics=infos,
                       environment={}, started="2026-01-01", dataset=DatasetRecord("toy", 4, list(LENGTHS)),
                       status=RunStatus.COMPLETE, finished="2026-01-01")
    write_run_record(path, record)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Ranked A and B, C without the drift metric, R over the first 20 frames only (not ranked); every
    figure drawn once, each kept with its Figure record and its matplotlib figure."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root, "A", 0.0, fps=20.0)
    write_run(root, "B", 0.02, fps=5.0)
    write_run(root, "C", -0.01, semantic=False, fps=50.0)
    write_run(root, "R", 0.05, max_frames=20, fps=1.0)
    merged = load_runs([str(root)])
    out = tmp_path_factory.mktemp("report")
    drawn = {}
    save = plots._save

    def keep(fig, out, name, data, caption="", title=""):
        figures = save(fig, out, name, data, caption, title)
        drawn[figures[0].name] = fig
        return figures

    plots._save = keep
    try:
        figures = (plots.plot_speed_quality(merged, "psnr", out) + plots.plot_length(merged, "psnr", out)
                   + plots.plot_curves(merged, out) + plots.plot_legend(merged, out))
    finally:
        plots._save = save
    return merged, out, {f.name: f for f in figures}, drawn


def csv(report, name: str) -> pd.DataFrame:
    _, out, figures, _ = report
    assert set(figures[name].files) == {f"{name}.png", f"{name}.pdf", f"{name}.csv"}
    return pd.read_csv(out / f"{name}.csv")


# --- point 1: drift curves per clip; a mean only where every clip covers the frame, with the count ---------

def test_per_clip_drift_curves_keep_each_clip_apart(report):
    data = csv(report, f"drift_{COL}_toy")
    fidelity = data[data["series"].str.startswith(f"{COL}_fidelity")]
    for (method, offset, extent), clip in [(m, c) for m in (("A", 0, 99), ("B", 0.02, 99), ("R", 0.05, 20))
                                           for c in LENGTHS]:
        g = fidelity[(fidelity["method"] == method) & (fidelity["clip"] == clip)]
        assert g["x"].tolist() == list(range(0, min(LENGTHS[clip], extent), 2))  # its own (scored) frames only
        assert g["value"].to_numpy() == pytest.approx(FIDELITY[clip] + offset)  # never mixed with the other clip
    marks = data[data["series"] == "scene cut"]
    assert sorted(zip(marks["clip"], marks["x"])) == [("c30", 20), ("c60", 39)]  # each clip its own cuts
    starts = data[(data["series"] == "chunk start") & (data["method"] == "A")]
    assert sorted(starts.loc[starts["clip"] == "c60", "x"]) == [10, 20, 30, 40, 50]
    assert "Dashed (†), not ranked" in report[2][f"drift_{COL}_toy"].caption and "R (2/2 first frames)" in \
        report[2][f"drift_{COL}_toy"].caption


def test_drift_mean_only_over_frames_every_clip_covers(report):
    # Before (frame_series): per frame the mean over whichever clips reach it: 0.85 up to frame 29, then
    # 0.90 (c60 alone), a jump that is no drift; and no count in the data.
    data = csv(report, f"drift_mean_{COL}_toy")
    fidelity = data[data["series"].str.startswith(f"{COL}_fidelity")]
    assert (data["clips"] == 2).all()  # every point the mean of both clips
    a = fidelity[fidelity["method"] == "A"]
    assert a["x"].tolist() == list(range(0, 30, 2)) and a["value"].to_numpy() == pytest.approx((0.80 + 0.90) / 2)
    b = fidelity[fidelity["method"] == "B"]
    assert b["x"].tolist() == list(range(0, 30, 2)) and b["value"].to_numpy() == pytest.approx(0.85 + 0.02)
    assert set(fidelity["method"]) == {"A", "B"}  # R is not ranked: left out, and the caption says so
    sim = data[data["series"].str.contains("frame 0")]
    assert sim.loc[sim["method"] == "A", "value"].to_numpy() == pytest.approx(1 - np.arange(0, 30, 2) / 1000)
    caption = report[2][f"drift_mean_{COL}_toy"].caption
    assert "the 2 clips every ranked row finished (c30, c60)" in caption and "up to frame 28" in caption
    assert "Left out, not ranked: R (2/2 first frames)" in caption


def test_gap_curve_says_how_many_clips_each_point_averages(report):
    data = csv(report, f"dt_{COL}_sim_gap_toy").set_index(["method", "x"])
    for method in ("A", "B"):
        assert data.loc[(method, 1), "value"] == pytest.approx((0.95 * 29 + 0.97 * 59) / 88)
        assert data.loc[(method, 10), "value"] == pytest.approx((0.90 * 20 + 0.92 * 50) / 70)
        assert data.loc[(method, 40), "value"] == pytest.approx(0.85)  # c60 alone: said, not silent
        assert data.loc[method, "clips"].tolist() == [2, 2, 1] and set(data.loc[method, "of"]) == {2}
    assert "R" not in data.index.get_level_values("method")


def test_length_curve_counts_the_clips_long_enough(report):
    merged = report[0]
    data = plots.metric_vs_length(merged, "psnr", lengths=(20, 30, 60)).set_index(["method", "length"])
    f = np.arange(60)
    assert data.loc[("A", 30), "value"] == pytest.approx((30 - f[:30] / 100).mean())
    assert data.loc[("A", 60), "value"] == pytest.approx((30 - f / 100).mean())  # c60 only
    assert data.loc["A", "clips"].tolist() == [2, 2, 1] and set(data.loc["A", "of"]) == {2}
    assert data.loc["R", "clips"].tolist() == [2]  # its clips stop at frame 20


# --- point 2: seams per method and per clip, boundaries across a scene cut excluded ----------------------

def test_seam_data_marks_boundaries_across_a_cut_as_excluded(report):
    # Before: only the kept boundaries, all methods and clips in one panel; an excluded one was just missing.
    data = csv(report, f"boundaries_{COL}_boundary_toy")
    excluded = {(m, c, b) for m, c, b, e in zip(data["method"], data["clip"], data["boundary"], data["excluded"]) if e}
    # Every 2nd frame scored: cut 20 in c30 lies in the pair (18, 20] across boundary 20; cut 39 in c60 in
    # (38, 40] across boundary 40 (with every frame scored it would not: (39, 40] holds 40 only). R's 20
    # frames reach neither cut.
    assert excluded == {(m, c, b) for m in "AB" for c, b in (("c30", 20), ("c60", 40))}
    a60 = data[(data["method"] == "A") & (data["clip"] == "c60")]
    assert a60["boundary"].tolist() == [10, 20, 30, 40, 50]
    assert a60["value"].to_numpy() == pytest.approx([1.1, 1.2, 1.3, np.nan, 1.5], nan_ok=True)  # the curve's
    assert data.loc[data["excluded"], "value"].isna().all()
    assert set(data.loc[data["method"] == "R", "boundary"]) == {10}  # its first 20 frames: one scored crossing
    assert data.set_index("method")["ranked"].groupby(level=0).first().to_dict() == {"A": True, "B": True, "R": False}
    caption = report[2][f"boundaries_{COL}_boundary_toy"].caption
    assert "4 boundaries (counted per method) whose frame pair spans a scene cut are excluded" in caption
    assert "R (2/2 first frames)" in caption


def test_a_boundary_whose_pair_starts_at_frame_0_counts(tmp_path):
    # Frame 0 is scored but has no VBench term (NaN): the pair (0, 2] still crosses the chunk start 2.
    write_run(tmp_path, "A", 0.0, chunk=2)
    data = plots.boundary_table(load_runs([str(tmp_path)]), COL, "boundary", "toy", ["scene_cut"])
    c30 = data[data["clip"] == "c30"]
    assert c30["boundary"].tolist() == list(range(2, 30, 2))
    assert c30.loc[c30["excluded"], "boundary"].tolist() == [20]
    assert c30["value"].iloc[0] == pytest.approx(1.02)


def test_seam_figure_draws_a_distribution_per_method_and_a_panel_per_clip(report):
    fig = report[3][f"boundaries_{COL}_boundary_toy"]
    box, *clips = fig.axes
    assert [t.get_text() for t in box.get_xticklabels()] == ["A", "B", "R †"]
    assert [ax.get_title() for ax in clips] == ["c30", "c60"]
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in box.get_lines())  # the ideal line
    c30 = {line.get_label(): line for line in clips[0].get_lines()}
    assert c30["A"].get_xdata().tolist() == [10] and c30["R"].get_linestyle() == "--"
    crosses = [line for line in clips[0].get_lines() if line.get_marker() == "x"]
    assert [line.get_xdata().tolist() for line in crosses] == [[20]]


# --- point 3: speed vs quality follows the leaderboard's coverage ----------------------------------------

def test_speed_quality_draws_unranked_rows_hollow_and_names_them(report):
    data = csv(report, "speed_vs_psnr_toy").set_index("method")
    assert data["ranked"].to_dict() == {"A": True, "B": True, "C": True, "R": False}
    assert data.loc["R", "coverage"] == "2/2 first frames"
    fig = report[3]["speed_vs_psnr_toy"]
    points = {c.get_label(): c for c in fig.axes[0].collections}
    assert points["R"].get_facecolors().size == 0 or points["R"].get_facecolors()[0][3] == 0  # hollow
    assert all(points[m].get_facecolors()[0][3] > 0 for m in "ABC")  # filled
    caption = report[2]["speed_vs_psnr_toy"].caption
    assert "Hollow (†), not ranked" in caption and "R (2/2 first frames)" in caption and "A (" not in caption


# --- point 4: one style per method across the report ------------------------------------------------------

def test_a_method_keeps_its_colour_and_marker_in_every_figure(report):
    _, out, _, drawn = report
    legend = pd.read_csv(out / "legend_methods.csv").set_index("method")
    assert list(legend.index) == ["A", "B", "C", "R"]
    seen = {}
    for name, fig in drawn.items():
        for ax in fig.axes:
            for artist in [*ax.get_lines(), *ax.collections]:
                method = artist.get_label()
                if method in legend.index:
                    if hasattr(artist, "get_xdata"):  # a line
                        colour = artist.get_color()
                    else:  # points: filled in the colour (edge black), or hollow with an edge in the colour
                        face = artist.get_facecolor()
                        colour = face[0] if len(face) and face[0][3] > 0 else artist.get_edgecolor()[0]
                    seen.setdefault(method, set()).add((name, to_hex(colour)))
        for handle in fig.legends[0].legend_handles if fig.legends else []:
            method = handle.get_label().removesuffix(" †")
            if method in legend.index:
                assert (to_hex(handle.get_color()), handle.get_marker()) == (to_hex(legend.loc[method, "color"]),
                                                                        legend.loc[method, "marker"]), name
    # R is drawn in the drift figures (A, B, R) and the speed figure (A, B, C, R): one colour throughout
    assert {n for n, _ in seen["R"]} >= {f"drift_{COL}_toy", "speed_vs_psnr_toy", f"boundaries_{COL}_boundary_toy"}
    for method, found in seen.items():
        assert {c for _, c in found} == {to_hex(legend.loc[method, "color"])}, method


# --- point 6: axes name metric, protocol, direction, log scale; titles name dataset and extent ------------

def test_axes_and_titles_say_what_they_show(report):
    _, _, figures, drawn = report
    for name, fig in drawn.items():
        if name == "legend_methods":
            continue
        assert "toy (whole clips)" in figures[name].title, name
        for ax in fig.axes:
            labels = (ax.get_xscale(), ax.get_xlabel()), (ax.get_yscale(), ax.get_ylabel().replace("\n", " "))
            for scale, label in labels:
                assert (scale == "log") == ("log scale" in label), (name, label)
    def ylabel(name: str) -> str:  # labels are wrapped onto lines
        return drawn[name].axes[0].get_ylabel().replace("\n", " ")

    assert ylabel("speed_vs_psnr_toy") == "psnr (↑ better, basicsr protocol)"
    assert "ideal 1, vbench protocol" in ylabel(f"boundaries_{COL}_boundary_toy")
    drift = ylabel(f"drift_{COL}_toy")
    assert drift == f"{COL}_fidelity (↑ better, vbench protocol)"


def test_titles_name_the_first_frames_when_every_run_is_cut(tmp_path):
    write_run(tmp_path, "A", 0.0, max_frames=20, semantic=False)
    figures = plots.plot_speed_quality(load_runs([str(tmp_path)]), "psnr", tmp_path)
    assert figures[0].title == "toy (the first 20 frames): speed vs psnr"
