"""Figures for papers from merged runs: drift vs frame, similarity vs frame gap, metric vs clip
length, speed vs quality, chunk-boundary discontinuity. PNG + PDF, colour-blind-safe colours.

Nothing is averaged across metric columns (a DINO curve never with a CLIP one, a variant never with
its parent) or datasets: curves and speed-vs-quality get one figure per column (its variant
included) and dataset, a line or point per method; clips are averaged only within one of them."""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from infvsr_bench.report.coverage import coverage
from infvsr_bench.report.figure import Figure
from infvsr_bench.report.merge import Merged
from infvsr_bench.results import write_bytes

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale by marker.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LENGTHS = (100, 250, 500, 1000, 2000, 5000, 10000, 20000)


def _style(i: int) -> dict:
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}


def _legend(ax) -> None:
    """A legend that stays readable with many methods (outside the axes, several columns)."""
    n = len(ax.get_legend_handles_labels()[0])
    if n <= 8:
        ax.legend(fontsize=7)
    else:
        ax.legend(fontsize=6, ncol=max(1, n // 20 + 1), loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _save(fig, out: Path, name: str, data: pd.DataFrame, caption: str = "") -> list[Figure]:
    """Write the figure as PNG and PDF and the data it draws as CSV, each written whole (kill -9 safe)."""
    name = re.sub(r"[^A-Za-z0-9@._-]+", "_", name)
    names = (f"{name}.png", f"{name}.pdf", f"{name}.csv")
    title = fig.axes[0].get_title() if fig.axes else name
    for file, options in zip(names, ({"dpi": 150}, {})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=file[-3:], bbox_inches="tight", **options)
        write_bytes(out / file, buffer.getvalue())
    write_bytes(out / names[2], data.to_csv(index=False).encode("utf-8"))
    plt.close(fig)
    return [Figure(name, title, caption or title, names)]


def metric_vs_length(merged: Merged, metric: str, lengths: tuple[int, ...] = LENGTHS) -> pd.DataFrame:
    """Each clip's prefix of L frames -> frame mean; then mean over clips, per method and dataset.

    One pass: running sums per clip, read off at frame L-1 (clips shorter than L drop out)."""
    frames = merged.frames
    if metric not in frames:
        return pd.DataFrame(columns=["method", "dataset", "value", "length"])
    f = frames.loc[frames["frame"] < max(lengths), ["method", "dataset", "run", "clip", "frame", metric]]
    f = f.sort_values(["run", "clip", "frame"], kind="stable")
    valid = f[metric].notna()
    groups = [f["run"], f["clip"]]
    total = f[metric].where(valid, 0.0).groupby(groups, sort=False).cumsum()
    count = valid.astype(np.int64).groupby(groups, sort=False).cumsum()
    at = f["frame"].add(1).isin(lengths) & (count > 0)
    picked = f.loc[at, ["method", "dataset"]].assign(length=f.loc[at, "frame"] + 1, value=total[at] / count[at])
    return picked.groupby(["method", "dataset", "length"], sort=False)["value"].mean().reset_index()


def plot_length(merged: Merged, metric: str, out: Path) -> list[Figure]:
    data = metric_vs_length(merged, metric)
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for i, ((method, dataset), g) in enumerate(data.groupby(["method", "dataset"], sort=False)):
        ax.plot(g["length"], g["value"], label=f"{method} ({dataset})", **_style(i))
    ax.set_xscale("log")
    ax.set_xlabel("clip length (first N frames)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs clip length")
    _legend(ax)
    return _save(fig, out, f"length_{metric}", data)


def speed_quality(merged: Merged, metric: str) -> pd.DataFrame:
    """Per method and dataset: mean frames/s and the clip mean of ``metric`` over the clips that count
    in the leaderboard (columns method, dataset, fps, value)."""
    clips = coverage(merged).counted(merged.clips)
    if metric not in clips or "method_fps" not in clips:
        return pd.DataFrame(columns=["method", "dataset", "fps", "value"])
    agg = clips.groupby(["method", "dataset"], sort=False).agg(fps=("method_fps", "mean"), value=(metric, "mean"))
    return agg.dropna(subset=["value"]).reset_index()


def plot_speed_quality(merged: Merged, metric: str, out: Path) -> list[Figure]:
    """Per dataset: frames/s (log x) vs a quality metric; bubble area proportional to parameter count."""
    data = speed_quality(merged, metric)
    params = {r.method: (r.record.method.get("parameters") or 0) for r in merged.runs}
    biggest = max(params.values(), default=0) or 1
    files: list[Figure] = []
    for dataset, agg in data.groupby("dataset", sort=False):
        fig, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
        for i, row in enumerate(agg.itertuples()):
            area = 60 + 1500 * params.get(row.method, 0) / biggest
            ax.scatter(row.fps, row.value, s=area, alpha=0.6, color=PALETTE[i % len(PALETTE)], edgecolor="k")
            label = row.method + (f"\n{params[row.method] / 1e6:.0f}M params" if params.get(row.method) else "")
            ax.annotate(label, (row.fps, row.value), fontsize=7, xytext=(6, 4), textcoords="offset points")
        ax.margins(x=0.3, y=0.25)  # room for the largest bubble and its label inside the axes
        ax.set_xscale("log")
        ax.set_xlabel("frames / s (method alone, log scale)")
        ax.set_ylabel(metric)
        ax.set_title(f"{dataset}: speed vs {metric} (bubble area = parameters)", fontsize=9)
        files += _save(fig, out, f"speed_vs_{metric}_{dataset}", agg)
    return files


def metric_curve(merged: Merged, column: str, curve: str, dataset: str) -> pd.DataFrame:
    """Curve ``curve`` of metric column ``column`` on ``dataset``: per method and x, the mean over clips
    (weighted by each point's count), columns method, x, value."""
    c = merged.curves
    if not len(c):
        return pd.DataFrame(columns=["method", "x", "value"])
    g = c[(c["metric"] == column) & (c["curve"] == curve) & (c["dataset"] == dataset)]
    sums = g.assign(w=g["value"] * g["count"]).groupby(["method", "x"], sort=False)[["w", "count"]].sum()
    value = sums["w"] / sums["count"].replace(0, np.nan)
    return value.rename("value").reset_index().sort_values(["method", "x"], kind="stable")


def frame_series(merged: Merged, column: str, dataset: str) -> pd.DataFrame:
    """Per-frame column ``column`` on ``dataset``: per method and frame, the mean over clips (method, x, value)."""
    f = merged.frames
    if not len(f) or column not in f:
        return pd.DataFrame(columns=["method", "x", "value"])
    g = f.loc[f["dataset"] == dataset, ["method", "frame", column]].dropna()
    line = g.groupby(["method", "frame"], sort=False)[column].mean()
    return line.rename("value").reset_index().rename(columns={"frame": "x"}).sort_values(["method", "x"], kind="stable")


def _curve_kind(name: str) -> str:
    """'gap' (x = frame gap), 'boundary' (x = a chunk boundary), 'cut' (x = frames where a scene cut
    is, drawn as marks) or 'frame' (x = frame index)."""
    tokens = name.split("_")
    if "gap" in tokens or "dt" in tokens:
        return "gap"
    return "boundary" if "boundary" in name else "cut" if "cut" in tokens else "frame"


def plot_curves(merged: Merged, out: Path) -> list[Figure]:
    """Every metric's curves, one figure per (column, dataset, kind): vs frame (with the column's
    per-frame derived values, e.g. fidelity), vs frame gap, per chunk boundary."""
    c = merged.curves
    per_frame = set(merged.frames.columns) if len(merged.frames) else set()
    datasets = list(dict.fromkeys(r.dataset for r in merged.runs))
    files: list[Figure] = []
    for column, info in merged.metrics.items():
        if "parent" in info:
            continue
        names = list(dict.fromkeys(c.loc[c["metric"] == column, "curve"])) if len(c) else []
        derived = [d for d, i in merged.metrics.items() if i.get("parent") == column and d in per_frame]
        for dataset in datasets:
            panels = {d: frame_series(merged, d, dataset) for d in derived}
            panels |= {n: metric_curve(merged, column, n, dataset) for n in names if _curve_kind(n) == "frame"}
            cuts = tuple(sorted({x for n in names if _curve_kind(n) == "cut" for x in metric_curve(merged, column, n, dataset)["x"]}))
            files += plot_frame_curves(merged, {n: p for n, p in panels.items() if len(p)}, out, column, dataset, cuts)
            for name in names:
                kind = _curve_kind(name)
                if kind in ("gap", "boundary"):
                    plot = plot_dt if kind == "gap" else plot_boundaries
                    files += plot(metric_curve(merged, column, name, dataset), out, column, name, dataset)
    return files


def plot_frame_curves(merged: Merged, panels: dict[str, pd.DataFrame], out: Path, column: str, dataset: str,
                      cuts: tuple[int, ...] = (), window: int = 25) -> list[Figure]:
    """One panel per curve vs frame index (``panels``: name -> method, x, value) of one column on one
    dataset, a line per method (rolling mean), dotted verticals at each method's chunk boundaries,
    grey dashed ones at scene ``cuts``."""
    if not panels:
        return []
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.6 * len(panels)), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, (name, data) in zip(axes[:, 0], panels.items()):
        for i, (method, g) in enumerate(data.groupby("method", sort=False)):
            line = g.set_index("x")["value"]
            smooth = line.rolling(window, min_periods=1, center=True).mean()
            ax.plot(smooth.index, smooth.values, label=method, color=PALETTE[i % len(PALETTE)], lw=1.4)
            for s in _chunk_starts(merged, method, dataset)[1:60]:
                ax.axvline(s, color=PALETTE[i % len(PALETTE)], lw=0.4, ls=":", alpha=0.6)
        for k, x in enumerate(cuts):
            ax.axvline(x, color="grey", lw=0.8, ls="--", label="scene cut" if k == 0 else None)
        ax.set_ylabel(name.replace("_", " "), fontsize=8)
        _legend(ax)
    axes[0, 0].set_title(f"{column} on {dataset}", fontsize=9)
    axes[-1, 0].set_xlabel("frame")
    return _save(fig, out, f"drift_{column}_{dataset}",
                 pd.concat([p.assign(curve=n) for n, p in panels.items()], ignore_index=True))


def _chunk_starts(merged: Merged, method: str, dataset: str) -> list[int]:
    clips = merged.clips
    if "chunk_starts" not in clips:
        return []
    rows = clips[(clips["method"] == method) & (clips["dataset"] == dataset) & (clips["status"] == "ok")]
    return list(rows["chunk_starts"].iloc[0]) if len(rows) and rows["chunk_starts"].iloc[0] is not None else []


def plot_dt(data: pd.DataFrame, out: Path, column: str, name: str, dataset: str) -> list[Figure]:
    """Similarity vs frame gap (log x), a line per method (``data`` from ``metric_curve``)."""
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for i, (method, g) in enumerate(data.groupby("method", sort=False)):
        ax.plot(g["x"], g["value"], label=method, **_style(i))
    ax.set_xscale("log")
    ax.set_xlabel("frame gap dt")
    ax.set_ylabel("feature similarity")
    ax.set_title(f"{column} {name} on {dataset}", fontsize=9)
    _legend(ax)
    return _save(fig, out, f"dt_{column}_{name}_{dataset}", data)


def plot_boundaries(data: pd.DataFrame, out: Path, column: str, name: str, dataset: str) -> list[Figure]:
    """Per-chunk-boundary discontinuity per method (1 = boundaries invisible; ``data`` from ``metric_curve``)."""
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    for i, (method, g) in enumerate(data.groupby("method", sort=False)):
        ax.plot(g["x"], g["value"], label=method, lw=1, **_style(i), ms=3)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("chunk boundary (frame)")
    ax.set_ylabel("discontinuity ratio")
    ax.set_title(f"{column} {name} on {dataset}", fontsize=9)
    _legend(ax)
    return _save(fig, out, f"boundaries_{column}_{name}_{dataset}", data)
