"""Figures for papers from merged runs: drift vs frame, similarity vs frame gap, metric vs clip
length, speed vs quality, chunk-boundary discontinuity. PNG + PDF, colour-blind-safe colours."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from infvsr_bench.report.coverage import coverage  # noqa: E402
from infvsr_bench.report.merge import Merged  # noqa: E402

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


def _save(fig, out: Path, name: str) -> list[str]:
    names = [f"{name}.png", f"{name}.pdf"]
    fig.savefig(out / names[0], dpi=150, bbox_inches="tight")
    fig.savefig(out / names[1], bbox_inches="tight")
    plt.close(fig)
    return names


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


def plot_length(merged: Merged, metric: str, out: Path) -> list[str]:
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
    return _save(fig, out, f"length_{metric}")


def speed_quality(merged: Merged, metric: str) -> pd.DataFrame:
    """Per method: mean frames/s and the clip mean of ``metric`` over the clips that count in the leaderboard."""
    clips = coverage(merged).counted(merged.clips)
    if metric not in clips or "method_fps" not in clips:
        return pd.DataFrame(columns=["fps", "value"])
    return clips.groupby("method", sort=False).agg(fps=("method_fps", "mean"), value=(metric, "mean"))


def plot_speed_quality(merged: Merged, metric: str, out: Path) -> list[str]:
    """Frames/s (log x) vs a quality metric; bubble area proportional to parameter count."""
    agg = speed_quality(merged, metric)
    if agg.empty:
        return []
    params = {r.method: (r.record.method.get("parameters") or 0) for r in merged.runs}
    fig, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
    biggest = max(params.values()) or 1
    for i, (method, row) in enumerate(agg.iterrows()):
        area = 60 + 1500 * params.get(method, 0) / biggest
        ax.scatter(row["fps"], row["value"], s=area, alpha=0.6, color=PALETTE[i % len(PALETTE)], edgecolor="k")
        label = method + (f"\n{params[method] / 1e6:.0f}M params" if params.get(method) else "")
        ax.annotate(label, (row["fps"], row["value"]), fontsize=7, xytext=(6, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("frames / s (method alone, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"speed vs {metric} (bubble area = parameters)")
    return _save(fig, out, f"speed_vs_{metric}")


def _curve(merged: Merged, name: str) -> pd.DataFrame:
    """A curve by name from curves.parquet, or a per-frame column of frames.parquet as one."""
    c = merged.curves
    if len(c) and "curve" in c and (c["curve"] == name).any():
        return c[c["curve"] == name]
    if len(merged.frames) and name in merged.frames:
        f = merged.frames[["method", "clip", "frame", name]].dropna()
        return f.rename(columns={"frame": "x", name: "value"}).assign(curve=name, count=1)
    return pd.DataFrame()


def plot_frame_curves(merged: Merged, names: list[str], out: Path, window: int = 25) -> list[str]:
    """One panel per curve (vs frame index: per-frame fidelity columns or drift curves), a line per
    method (mean over clips, rolling mean), dotted verticals at each method's chunk boundaries."""
    curves = {n: _curve(merged, n) for n in names}
    curves = {n: c for n, c in curves.items() if len(c)}
    if not curves:
        return []
    fig, axes = plt.subplots(len(curves), 1, figsize=(6, 2.6 * len(curves)), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, (name, data) in zip(axes[:, 0], curves.items()):
        for i, (method, g) in enumerate(data.groupby("method", sort=False)):
            line = g.groupby("x")["value"].mean().sort_index()
            smooth = line.rolling(window, min_periods=1, center=True).mean()
            ax.plot(smooth.index, smooth.values, label=method, color=PALETTE[i % len(PALETTE)], lw=1.4)
            starts = _chunk_starts(merged, method)
            for s in starts[1:60]:
                ax.axvline(s, color=PALETTE[i % len(PALETTE)], lw=0.4, ls=":", alpha=0.6)
        ax.set_ylabel(name.replace("_", " "), fontsize=8)
        _legend(ax)
    axes[-1, 0].set_xlabel("frame")
    return _save(fig, out, "drift_" + "_".join(curves))


def _chunk_starts(merged: Merged, method: str) -> list[int]:
    clips = merged.clips
    if "chunk_starts" not in clips:
        return []
    rows = clips[(clips["method"] == method) & (clips["status"] == "ok")]
    return list(rows["chunk_starts"].iloc[0]) if len(rows) and rows["chunk_starts"].iloc[0] is not None else []


def plot_dt(merged: Merged, name: str, out: Path) -> list[str]:
    """Similarity vs frame gap (log x), a line per method."""
    data = _curve(merged, name)
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for i, (method, g) in enumerate(data.groupby("method", sort=False)):
        weighted = g.assign(w=g["value"] * g["count"]).groupby("x")[["w", "count"]].sum()
        ax.plot(weighted.index, weighted["w"] / weighted["count"].replace(0, np.nan), label=method, **_style(i))
    ax.set_xscale("log")
    ax.set_xlabel("frame gap dt")
    ax.set_ylabel("feature similarity")
    ax.set_title(name)
    _legend(ax)
    return _save(fig, out, f"dt_{name}")


def plot_boundaries(merged: Merged, name: str, out: Path) -> list[str]:
    """Per-chunk-boundary discontinuity per method (1 = boundaries invisible)."""
    data = _curve(merged, name)
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    for i, (method, g) in enumerate(data.groupby("method", sort=False)):
        line = g.groupby("x")["value"].mean().sort_index()
        ax.plot(line.index, line.values, label=method, lw=1, **_style(i), ms=3)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("chunk boundary (frame)")
    ax.set_ylabel("discontinuity ratio")
    ax.set_title(name)
    _legend(ax)
    return _save(fig, out, f"boundaries_{name}")
