"""What the leaderboard ranks and beside what (#12 points 4, 12, 15): semantic derived columns with
their own directions and variants, reference values only beside columns of their protocol, and
figure data that never pools metric columns or datasets. Synthetic runs with hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from metric_tester import feed

from infvsr_bench.report import reference
from infvsr_bench.report.tables import APART, leaderboard, to_csv, to_latex, to_markdown
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import DatasetRecord, RunRecord, RunStatus, write_table

DINO = "semantic_drift_dino"
CLIP = "semantic_drift_clip"
# What the semantic drift metrics declare (the directions, written out independently).
DECLARED = {"_fidelity": {"higher_is_better": True, "ideal": None},
            "_fidelity_slope": {"higher_is_better": True, "ideal": 0.0},
            "_boundary": {"higher_is_better": False, "ideal": 1.0}}


def drift_info(column: str = DINO, declared: bool = False, settings: dict | None = None) -> dict:
    info = {"metric": column, "column": column, "version": "1.0", "kind": "semantic", "higher_is_better": True,
            "settings": settings or {"stride": 1}, "weights": "pretrained"}
    return {**info, "columns": {column + s: d for s, d in DECLARED.items()}} if declared else info


def psnr_info(protocol: str | None = None, version: str = "1.0") -> dict:
    info = {"metric": "psnr", "column": "psnr", "version": version, "kind": "FR", "higher_is_better": True,
            "settings": {"crop_border": 0}, "weights": "none"}
    return {**info, "protocol": protocol} if protocol else info


def write_run(root: Path, method: str, infos: list[dict], clips: dict[str, dict[str, float]], dataset: str = "toy",
              frames: dict[str, dict[str, list[float]]] | None = None, curves: pd.DataFrame | None = None,
              fps: float = 10.0) -> Path:
    """A finished run folder: clip rows (clip -> column -> value), optional per-frame values and curves."""
    path = root / dataset / method
    path.mkdir(parents=True)
    rows = [{"clip": c, "status": "ok", "reason": None, "frames": 4, "method_fps": fps, "chunk_starts": [0, 2], **v}
            for c, v in clips.items()]
    write_table(pd.DataFrame(rows), path / "clips.parquet", csv=False)
    if frames:
        write_table(pd.concat([pd.DataFrame({"clip": c, "frame": np.arange(len(next(iter(v.values())))), **v})
                               for c, v in frames.items()]), path / "frames.parquet", csv=False)
    if curves is not None:
        write_table(curves, path / "curves.parquet", csv=False)
    record = RunRecord(config={}, identity={}, fingerprint=method + dataset + json.dumps(infos, sort_keys=True),
                       method={"name": method, "weights": "none", "parameters": 0, "config": {}}, metrics=infos,
                       environment={}, started="2026-01-01", dataset=DatasetRecord(dataset, 4, list(clips)),
                       status=RunStatus.COMPLETE, finished="2026-01-01")
    # Raw, keeping the declared columns' order: results.record.write_run_record sorts keys
    # (see the report of #22 point 3).
    (path / "run.json").write_text(json.dumps(record.to_dict()))
    return path


def drift_scalars(column: str, consistency: float, fidelity: float, slope: float, boundary: float) -> dict:
    return {column: consistency, f"{column}_fidelity": fidelity, f"{column}_fidelity_slope": slope,
            f"{column}_boundary": boundary}


# --- point 12: the semantic columns that separate drift from smoothness stand beside consistency --------

@pytest.mark.parametrize("declared", [True, False], ids=["declared", "fallback"])
def test_a_blurred_output_does_not_win_the_fidelity_columns(tmp_path, declared):
    # The case: blur raises VBench consistency (0.657 vs 0.608) but lowers fidelity to GT.
    cases = {"perfect": [(0.600, 1.00, 0.0, 1.0), (0.616, 1.00, 0.0, 1.0)],
             "blurred": [(0.650, 0.85, -0.8, 1.0), (0.664, 0.75, -1.0, 1.0)],
             "stitched": [(0.620, 0.96, -0.1, 1.5), (0.640, 0.94, -0.1, 1.7)]}
    for method, (c1, c2) in cases.items():
        write_run(tmp_path, method, [drift_info(declared=declared)],
                  {"c1": drift_scalars(DINO, *c1), "c2": drift_scalars(DINO, *c2)})
    board = leaderboard(load_runs([str(tmp_path)]))  # default: every column
    assert [m for _, m in board.values.columns] == [DINO, f"{DINO}_fidelity", f"{DINO}_fidelity_slope", f"{DINO}_boundary"]
    for method, (c1, c2) in cases.items():  # clip means of the clip values, by hand
        assert board.values.loc[method, ("toy", f"{DINO}_fidelity")] == pytest.approx((c1[1] + c2[1]) / 2)
    marks = board.marks()
    assert marks.loc["blurred", ("toy", DINO)] == "best"  # what consistency alone would say
    assert marks[("toy", f"{DINO}_fidelity")].to_dict() == {"perfect": "best", "stitched": "second", "blurred": ""}
    assert marks[("toy", f"{DINO}_fidelity_slope")].to_dict() == {"perfect": "best", "stitched": "second", "blurred": ""}
    # boundary: lower is better, 1 (invisible seams) is ideal: perfect and blurred tie, stitched is worse
    assert marks[("toy", f"{DINO}_boundary")].to_dict() == {"perfect": "best", "blurred": "best", "stitched": "second"}
    md = to_markdown(board)
    assert f"toy {DINO}_fidelity ↑ |" in md and f"toy {DINO}_fidelity_slope ↑ (ideal 0) |" in md
    assert f"toy {DINO}_boundary ↓ (ideal 1) |" in md


def test_a_named_consistency_column_brings_its_derived_columns(tmp_path):
    for method, v in (("A", 0.6), ("B", 0.7)):
        write_run(tmp_path, method, [psnr_info(), drift_info()], {"c": {"psnr": 30.0, **drift_scalars(DINO, v, v, 0, 1)}})
    board = leaderboard(load_runs([str(tmp_path)]), ["psnr", DINO])
    assert [m for _, m in board.values.columns] == ["psnr", DINO, f"{DINO}_fidelity", f"{DINO}_fidelity_slope",
                                                    f"{DINO}_boundary"]


def test_ideals_tie_every_value_past_them(tmp_path):
    # boundary ratio: 0.9 and 1.0 are both invisible seams; fidelity slope: 0.3 and 0.0 are both no drift.
    for method, boundary, slope in (("A", 0.9, 0.3), ("B", 1.0, 0.0), ("C", 1.2, -0.2), ("D", 1.8, -0.5)):
        write_run(tmp_path, method, [drift_info()], {"c": drift_scalars(DINO, 0.6, 0.9, slope, boundary)})
    marks = leaderboard(load_runs([str(tmp_path)]), [f"{DINO}_boundary", f"{DINO}_fidelity_slope"]).marks()
    assert marks[("toy", f"{DINO}_boundary")].to_dict() == {"A": "best", "B": "best", "C": "second", "D": ""}
    assert marks[("toy", f"{DINO}_fidelity_slope")].to_dict() == {"A": "best", "B": "best", "C": "second", "D": ""}


def test_an_infinite_boundary_ratio_ranks_last(tmp_path):
    # A static clip whose only change is at a seam has ratio inf (semantic.boundary_discontinuity).
    for method, boundary in (("A", 1.1), ("B", np.inf), ("C", 1.3)):
        write_run(tmp_path, method, [drift_info()], {"c": drift_scalars(DINO, 0.6, 0.9, 0.0, boundary)})
    marks = leaderboard(load_runs([str(tmp_path)]), [f"{DINO}_boundary"]).marks()
    assert marks[("toy", f"{DINO}_boundary")].to_dict() == {"A": "best", "B": "", "C": "second"}


# --- point 15: derived columns split with their parent; figures keep columns and datasets apart ---------

def test_derived_columns_split_with_their_parent(tmp_path):
    write_run(tmp_path, "A", [drift_info()], {"c": drift_scalars(DINO, 0.60, 0.90, -0.1, 1.2)},
              frames={"c": {DINO: [np.nan, 0.6], f"{DINO}_fidelity": [0.9, 0.9]}})
    write_run(tmp_path, "B", [drift_info(settings={"stride": 2})], {"c": drift_scalars(DINO, 0.70, 0.80, -0.3, 1.4)},
              frames={"c": {DINO: [np.nan, 0.7], f"{DINO}_fidelity": [0.8, 0.8]}},
              curves=pd.DataFrame({"clip": "c", "metric": DINO, "curve": "sim_first", "x": [0, 1], "value": 1.0,
                                   "count": 1}))
    merged = load_runs([str(tmp_path)])
    alt = next(c for c in merged.metrics if c.startswith(f"{DINO}@"))
    suffix = alt[len(DINO):]
    assert [c for c in merged.metrics if c.endswith(suffix)] == [alt, f"{DINO}_fidelity{suffix}",
                                                                 f"{DINO}_fidelity_slope{suffix}", f"{DINO}_boundary{suffix}"]
    assert merged.metrics[f"{DINO}_boundary{suffix}"]["higher_is_better"] is False
    assert merged.metrics[f"{DINO}_boundary{suffix}"]["ideal"] == 1.0
    board = leaderboard(merged)
    assert board.values.loc["B", ("toy", f"{DINO}_fidelity{suffix}")] == 0.80
    assert np.isnan(board.values.loc["B", ("toy", f"{DINO}_fidelity")])  # never in A's column
    assert board.values.loc["A", ("toy", f"{DINO}_fidelity")] == 0.90
    assert np.isnan(board.values.loc["A", ("toy", f"{DINO}_boundary{suffix}")])
    b = merged.frames[merged.frames["method"] == "B"]
    assert b[f"{DINO}_fidelity{suffix}"].tolist() == [0.8, 0.8] and b[f"{DINO}_fidelity"].isna().all()
    assert set(merged.curves["metric"]) == {alt}
    assert any(f"shown apart as '{alt}'" in n and f"{DINO}_boundary{suffix}" in n for n in merged.notes)


def test_columns_of_different_protocols_are_split(tmp_path):
    write_run(tmp_path, "A", [psnr_info("basicsr")], {"c": {"psnr": 30.0}})
    write_run(tmp_path, "B", [psnr_info("dove")], {"c": {"psnr": 28.5}})
    merged = load_runs([str(tmp_path)])
    alt = next(c for c in merged.metrics if c.startswith("psnr@"))
    assert merged.metrics[alt]["protocol"] == "dove"
    assert any("'psnr' differs in ['protocol']" in n for n in merged.notes)


def curves_of(column: str, values: dict[str, float]) -> pd.DataFrame:
    """sim_first curves (x = frame 0..3) of one column, one clip per (clip -> constant value)."""
    return pd.concat([pd.DataFrame({"clip": c, "metric": column, "curve": "sim_first", "x": np.arange(4),
                                    "value": v, "count": 1}) for c, v in values.items()])


@pytest.fixture
def two_columns_two_datasets(tmp_path):
    """Method A on datasets d1 and d2, scored by DINO and CLIP drift; every value differs."""
    for dataset, base in (("d1", 0.0), ("d2", 0.5)):
        write_run(tmp_path, "A", [psnr_info(), drift_info(DINO), drift_info(CLIP)],
                  {c: {"psnr": 30 + base * 10 + i, **drift_scalars(DINO, 0.6, 0.9, 0, 1),
                       **drift_scalars(CLIP, 0.7, 0.8, 0, 1)} for i, c in enumerate(("c1", "c2"))},
                  dataset=dataset, fps=5.0 + base * 10,
                  frames={c: {f"{DINO}_fidelity": [0.9 - base] * 4, f"{CLIP}_fidelity": [0.2 + base + i] * 4}
                          for i, c in enumerate(("c1", "c2"))},
                  curves=pd.concat([curves_of(DINO, {"c1": 0.90 - base, "c2": 0.80 - base}),
                                    curves_of(CLIP, {"c1": 0.30 + base, "c2": 0.10 + base}),
                                    pd.DataFrame({"clip": "c1", "metric": DINO, "curve": "scene_cut", "x": [2],
                                                  "value": 1.0, "count": 1})]))
    return tmp_path


def test_drift_curves_never_pool_columns_or_datasets(two_columns_two_datasets):
    from infvsr_bench.report.plots import clip_mean, clip_series

    merged = load_runs([str(two_columns_two_datasets)])
    for dataset, base in (("d1", 0.0), ("d2", 0.5)):
        dino = clip_mean(merged, clip_series(merged, DINO, dataset, "sim_first"), dataset)
        clip = clip_mean(merged, clip_series(merged, CLIP, dataset, "sim_first"), dataset)
        assert dino["value"].to_numpy() == pytest.approx([(0.90 - base + 0.80 - base) / 2] * 4)  # mean of its 2 clips
        assert clip["value"].to_numpy() == pytest.approx([(0.30 + base + 0.10 + base) / 2] * 4)
        assert set(dino["method"]) == {"A"} and dino["x"].tolist() == [0, 1, 2, 3] and set(dino["clips"]) == {2}
        fidelity = clip_mean(merged, clip_series(merged, f"{CLIP}_fidelity", dataset), dataset)
        assert fidelity["value"].to_numpy() == pytest.approx([0.2 + base + 0.5] * 4)


def test_speed_vs_quality_keeps_datasets_apart(two_columns_two_datasets):
    from infvsr_bench.report.plots import speed_quality

    merged = load_runs([str(two_columns_two_datasets)])
    board = leaderboard(merged, ["psnr"])
    data = speed_quality(merged, "psnr").set_index(["method", "dataset"])
    assert len(data) == 2
    for dataset, fps in (("d1", 5.0), ("d2", 10.0)):
        assert data.loc[("A", dataset), "value"] == pytest.approx(board.values.loc["A", (dataset, "psnr")])
        assert data.loc[("A", dataset), "fps"] == fps


def test_one_figure_per_column_and_dataset(two_columns_two_datasets, tmp_path):
    from infvsr_bench.report.plots import plot_curves, plot_speed_quality

    out = tmp_path / "fig"
    out.mkdir()
    merged = load_runs([str(two_columns_two_datasets)])
    files = {name for f in plot_curves(merged, out) + plot_speed_quality(merged, "psnr", out) for name in f.files}
    drift = {f"drift{mean}_{c}_{d}.{e}" for mean in ("", "_mean") for c in (DINO, CLIP) for d in ("d1", "d2")
             for e in ("png", "pdf", "csv")}  # per clip, and the mean over the clips
    speed = {f"speed_vs_psnr_{d}.{e}" for d in ("d1", "d2") for e in ("png", "pdf", "csv")}
    assert files == drift | speed  # scene cuts are marks on the drift figures, not a figure of their own
    assert all((out / f).stat().st_size > 0 for f in files)


# --- point 4: reference values only beside columns of their protocol ----------------------------------

def test_a_reference_of_unknown_protocol_is_shown_apart_with_the_reason(tmp_path):
    # Even a column computed with the likely protocol (dove) does not get InfVSR's Table 1 beside it.
    write_run(tmp_path, "A", [psnr_info("dove"), {**psnr_info(), "metric": "ssim", "column": "ssim"}],
              {"c": {"psnr": 26.0, "ssim": 0.75}}, dataset="udm10")
    write_run(tmp_path, "B", [psnr_info("dove"), {**psnr_info(), "metric": "ssim", "column": "ssim"}],
              {"c": {"psnr": 25.0, "ssim": 0.70}}, dataset="udm10")
    board = leaderboard(load_runs([str(tmp_path)]), reference="infvsr_paper")
    assert "InfVSR (reported)" not in board.values.index and not board.reported
    assert board.apart.loc["InfVSR (reported)", ("udm10", "psnr")] == 24.86  # the paper's Table 1 value
    assert board.apart.loc["InfVSR (reported)", ("udm10", "ssim")] == 0.7274
    assert ("udm10", "lpips") not in board.apart.columns  # no column measures it
    note = next(n for n in board.notes if n.startswith("InfVSR (reported)"))
    assert "Table 1" in note and "psnr, ssim shown apart: protocol unknown (likely dove)" in note
    assert "lpips" in note and "left out" in note and "Unknown:" in note and "eval_metrics.py" in note
    md = to_markdown(board)
    table, rest = md.split(APART)
    assert "InfVSR" not in table.split("\n\n")[0]  # not a row of the measured table
    assert "| *InfVSR (reported)* | 24.86 | 0.7274 |" in rest
    assert "| *InfVSR (reported): protocol* | unknown (likely dove) | unknown (likely dove) |" in rest
    tex = to_latex(board)
    assert r"\textit{InfVSR (reported)} & 24.86" in tex
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 2  # the measured table, then the apart one
    assert "udm10/psnr (apart)" in to_csv(board)


@pytest.fixture
def toy_reference(monkeypatch):
    table = reference.ReferenceTable(
        row="Toy (reported)", source="Toy paper, Table 2",
        metrics={"psnr": reference.ReportedMetric(True, protocol="dove"),
                 "ssim": reference.ReportedMetric(True, protocol="dove", version="2.0")},
        values={"udm10": {"psnr": 25.5, "ssim": 0.8}})
    monkeypatch.setitem(reference.REFERENCES, "toy", (table,))


def test_a_reference_stands_only_beside_columns_of_its_protocol_and_version(tmp_path, toy_reference):
    ssim = {**psnr_info("dove"), "metric": "ssim", "column": "ssim"}  # protocol dove, version 1.0
    write_run(tmp_path, "A", [psnr_info("dove"), ssim], {"c": {"psnr": 26.0, "ssim": 0.75}}, dataset="udm10")
    write_run(tmp_path, "B", [psnr_info("basicsr"), ssim], {"c": {"psnr": 27.0, "ssim": 0.70}}, dataset="udm10")
    write_run(tmp_path, "C", [psnr_info("dove"), ssim], {"c": {"psnr": 24.0, "ssim": 0.60}}, dataset="udm10")
    merged = load_runs([str(tmp_path)])
    basicsr = next(c for c in merged.metrics if c.startswith("psnr@"))
    board = leaderboard(merged, reference="toy")
    assert board.values.loc["Toy (reported)", ("udm10", "psnr")] == 25.5  # beside the dove column
    assert np.isnan(board.values.loc["Toy (reported)", ("udm10", basicsr)])  # never beside basicsr
    assert board.apart.loc["Toy (reported)", ("udm10", "ssim")] == 0.8  # version 1.0, the reference needs 2.0
    assert board.marks().loc["Toy (reported)"].eq("").all()  # reported, never ranked
    assert board.marks().loc["A", ("udm10", "psnr")] == "best"
    note = next(n for n in board.notes if n.startswith("Toy (reported)"))
    assert f"column '{basicsr}' has protocol basicsr, the reference protocol dove" in note
    assert "ssim shown apart: column 'ssim' is ssim version 1.0" in note and "2.0" in note
    assert "| *Toy (reported)* |" in to_markdown(board).split(APART)[0]


def test_a_column_without_a_recorded_protocol_never_matches(tmp_path, toy_reference):
    write_run(tmp_path, "A", [psnr_info()], {"c": {"psnr": 26.0}}, dataset="udm10")  # a record from before protocols
    board = leaderboard(load_runs([str(tmp_path)]), reference="toy")
    assert "Toy (reported)" not in board.values.index
    assert board.apart.loc["Toy (reported)", ("udm10", "psnr")] == 25.5
    assert any("column 'psnr' has no recorded protocol" in n for n in board.notes)


def test_the_infvsr_table_records_its_source_protocols_and_unknowns():
    (table,) = reference.REFERENCES["infvsr_paper"]
    assert "Table 1" in table.source and "2510.00948" in table.source
    assert all(m.protocol is None and m.likely for m in table.metrics.values())  # unknown, with the likely one
    assert table.metrics["psnr"].likely == "dove" and table.metrics["ewarp"].likely == "evalcrafter"
    assert any("not stated" in u for u in table.unknown)


def test_the_semantic_metric_declares_every_derived_scalar_it_emits(tmp_path):
    # The real metric (shipped weights, offline): its declaration names exactly the extra scalars
    # compute() gives with GT, with the directions the report falls back to for older records.
    from infvsr_bench.metrics import build_metric
    from infvsr_bench.report.columns import FALLBACK_DERIVED, Direction

    metric = build_metric("semantic_offline", {})
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    scalars = feed(metric, gt // 2, gt, [3, 3], layout=[0, 3]).scalars
    declared = metric.info()["columns"]
    assert list(declared) == [f"semantic_offline{s}" for s in FALLBACK_DERIVED]
    assert set(declared) == set(scalars) - {"semantic_offline"}
    for suffix, direction in FALLBACK_DERIVED.items():
        d = declared[f"semantic_offline{suffix}"]
        assert Direction(d["higher_is_better"], d["ideal"]) == direction
    assert DECLARED == {s: {"higher_is_better": d.higher_is_better, "ideal": d.ideal} for s, d in FALLBACK_DERIVED.items()}
