"""Figures for papers from merged runs: drift vs frame per clip (and their mean where every clip
covers the frame), similarity vs frame gap, metric vs clip length, speed vs quality, chunk-boundary
discontinuity, and the report's method legend. PNG + PDF + the plotted data as CSV.

Nothing is averaged across metric columns (a DINO curve never with a CLIP one, a variant never with
its parent) or datasets: one figure per column (its variant included) and dataset. Figures follow
the leaderboard's coverage (``report.coverage``): a mean over clips is over the clips the ranked
rows share and says how many clips each point averages; rows the leaderboard does not rank are drawn
hollow or dashed and named in the caption, or left out of a mean with a note. A method has one
colour and marker in every figure of a report (``report.style``)."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from infvsr_bench.io.atomic import write_bytes
from infvsr_bench.report.coverage import Coverage, coverage
from infvsr_bench.report.figure import Figure
from infvsr_bench.report.style import (
    Style,
    curve_label,
    frame_extent,
    method_styles,
    metric_label,
    unranked_text,
)
from infvsr_bench.results.merge import Merged

LENGTHS = (100, 250, 500, 1000, 2000, 5000, 10000, 20000)
SMOOTH = 25  # points of the centred rolling mean drawn for per-frame curves
CUT = {"color": "grey", "lw": 0.8, "ls": "--"}
MAX_STARTS = 40  # a method's chunk starts are drawn on drift curves up to this many in a clip (more hide the curve)


def _save(fig, out: Path, name: str, data: pd.DataFrame, caption: str = "", title: str = "") -> list[Figure]:
    """Write the figure as PNG and PDF and the data it draws as CSV, each written whole (kill -9 safe)."""
    name = re.sub(r"[^A-Za-z0-9@._-]+", "_", name)
    names = (f"{name}.png", f"{name}.pdf", f"{name}.csv")
    title = title or (fig.axes[0].get_title() if fig.axes else name)
    for file, options in zip(names, ({"dpi": 150}, {})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=file[-3:], bbox_inches="tight", **options)
        write_bytes(out / file, buffer.getvalue())
    write_bytes(out / names[2], data.to_csv(index=False).encode("utf-8"))
    plt.close(fig)
    return [Figure(name, title, caption or title, names)]


def _wrap(label: str, width: int = 38) -> str:
    """An axis label on lines short enough to stay beside its panel."""
    return textwrap.fill(label, width, break_long_words=False)


def _plain_log(ax, axis: str = "y", ticks=None) -> None:
    """Log ticks as plain numbers (1.2, not 1.2 x 10^0), ratios near 1 read as ratios; the minor ticks
    labelled only within one decade, where they are all there is; ``ticks`` (e.g. the frame gaps
    drawn) replace the decades as the labelled ticks."""
    which = ax.yaxis if axis == "y" else ax.xaxis
    which.set_major_formatter(FormatStrFormatter("%g"))
    if ticks is not None:
        which.set_ticks(sorted(set(ticks)))
        which.set_minor_formatter(NullFormatter())
        return
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    which.set_minor_formatter(FormatStrFormatter("%g") if high < 10 * low else NullFormatter())


def _handle(style: Style, label: str, ranked: bool = True, line: bool = True) -> Line2D:
    """A legend entry in a method's style: filled and solid when ranked, hollow and dashed when not."""
    return Line2D([], [], color=style.color, marker=style.marker, ls=("-" if ranked else "--") if line else "",
                  mfc=style.color if ranked else "none", label=label if ranked else f"{label} †")


def _legend(fig, handles: list) -> None:
    """One legend per figure, below the panels (clear of the title), up to 3 entries a row."""
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, ncol=min(3, len(handles)), frameon=False)


def _methods(styles: dict[str, Style], present) -> list[str]:
    """The methods among ``present`` in the report's order (that of their styles)."""
    present = set(present)
    return [m for m in styles if m in present]


def _unranked_note(cov: Coverage, dataset: str, methods: list[str], what: str) -> str:
    text = unranked_text(cov, dataset, methods)
    return f" {what}: {text}." if text else ""


def plot_legend(merged: Merged, out: Path) -> list[Figure]:
    """The report's legend: every method's colour and marker, the same in each of its figures."""
    styles = method_styles(merged)
    if not styles:
        return []
    fig = plt.figure(figsize=(2.6, 0.3 + 0.22 * len(styles)))
    fig.legend(handles=[_handle(s, m) for m, s in styles.items()], loc="center", fontsize=8, frameon=False)
    data = pd.DataFrame({"method": list(styles), "color": [s.color for s in styles.values()],
                         "marker": [s.marker for s in styles.values()]})
    caption = ("Each method's colour and marker, the same in every figure of this report (assigned once from "
               "the sorted method names). In the figures, hollow markers or dashed lines (†) are rows the "
               "leaderboard does not rank.")
    return _save(fig, out, "legend_methods", data, caption, title="Methods")


def metric_vs_length(merged: Merged, metric: str, lengths: tuple[int, ...] = LENGTHS) -> pd.DataFrame:
    """Each counted clip's prefix of L frames -> frame mean; then the mean over clips, per method and
    dataset (columns method, dataset, length, value, clips, of): ``clips`` of the row's ``of`` counted
    clips reach L frames, shorter ones drop out. Counted clips are the leaderboard's (``coverage``).

    One pass: running sums per clip, read off at frame L-1."""
    frames = merged.frames
    columns = ["method", "dataset", "length", "value", "clips", "of"]
    if metric not in frames:
        return pd.DataFrame(columns=columns)
    counted = {(m, d, c) for (m, d), row in coverage(merged).rows.items() for c in row.counted}
    f = frames.loc[frames["frame"] < max(lengths), ["method", "dataset", "run", "clip", "frame", metric]]
    f = f[[k in counted for k in zip(f["method"], f["dataset"], f["clip"])]].sort_values(["run", "clip", "frame"],
                                                                                      kind="stable")
    valid = f[metric].notna()
    groups = [f["run"], f["clip"]]
    total = f[metric].where(valid, 0.0).groupby(groups, sort=False).cumsum()
    count = valid.astype(np.int64).groupby(groups, sort=False).cumsum()
    at = f["frame"].add(1).isin(lengths) & (count > 0)
    picked = f.loc[at, ["method", "dataset", "clip"]].assign(length=f.loc[at, "frame"] + 1, value=total[at] / count[at])
    data = picked.groupby(["method", "dataset", "length"], sort=False).agg(value=("value", "mean"),
                                                                          clips=("clip", "nunique")).reset_index()
    of = f[valid].groupby(["method", "dataset"])["clip"].nunique().rename("of")
    return data.join(of, on=["method", "dataset"])[columns]


def plot_length(merged: Merged, metric: str, out: Path) -> list[Figure]:
    """Per dataset: ``metric`` over each clip's first L frames vs L (log x), a line per method; points
    over fewer clips than the row's (clips shorter than L drop out) hollow."""
    data = metric_vs_length(merged, metric)
    cov, styles = coverage(merged), method_styles(merged)
    files: list[Figure] = []
    for dataset, rows in data.groupby("dataset", sort=False):
        fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
        methods = _methods(styles, rows["method"])
        for method in methods:
            g, s = rows[rows["method"] == method], styles[method]
            ranked = cov.ranked(method, dataset)
            ax.plot(g["length"], g["value"], color=s.color, ls="-" if ranked else "--", lw=1.2, label=method)
            full = g["clips"] == g["of"]
            ax.scatter(g.loc[full, "length"], g.loc[full, "value"], color=s.color, marker=s.marker, s=25, zorder=3)
            ax.scatter(g.loc[~full, "length"], g.loc[~full, "value"], facecolor="none", edgecolor=s.color,
                       marker=s.marker, s=25, zorder=3)
        extent = frame_extent(merged, cov, dataset)
        ax.set_xscale("log")
        _plain_log(ax, "x", rows["length"])
        ax.set_xlabel("prefix length L (first L frames of each clip, log scale)")
        ax.set_ylabel(_wrap(metric_label(merged.metrics, metric)), fontsize=8)
        title = f"{dataset} ({extent}): {metric} over the first L frames"
        ax.set_title(title, fontsize=9)
        _legend(fig, [_handle(styles[m], m, cov.ranked(m, dataset)) for m in methods])
        caption = (f"{metric} on {dataset}: for each L, the mean over clips of each clip's mean over its first L "
                   "frames, over the clips the leaderboard counts. Filled points average all of a row's clips; "
                   "hollow points only those at least L frames long (CSV columns clips, of).")
        caption += _unranked_note(cov, dataset, methods, "Dashed, not ranked (values over their own clips)")
        short = [r.method for r in merged.runs if r.dataset == dataset and r.method not in methods and metric in r.clips]
        caption += f" Not drawn, no clip reaches L = {min(LENGTHS)} frames: {', '.join(short)}." if short else ""
        files += _save(fig, out, f"length_{metric}_{dataset}", rows, caption, title)
    return files


def speed_quality(merged: Merged, metric: str) -> pd.DataFrame:
    """Per method and dataset: mean frames/s and the clip mean of ``metric`` over the clips that count
    in the leaderboard (columns method, dataset, fps, value, ranked, coverage: the leaderboard's label)."""
    cov = coverage(merged)
    clips = cov.counted(merged.clips)
    if metric not in clips or "method_fps" not in clips:
        return pd.DataFrame(columns=["method", "dataset", "fps", "value", "ranked", "coverage"])
    agg = clips.groupby(["method", "dataset"], sort=False).agg(fps=("method_fps", "mean"), value=(metric, "mean"))
    agg = agg.dropna(subset=["value"]).reset_index()
    agg["ranked"] = [cov.ranked(m, d) for m, d in zip(agg["method"], agg["dataset"])]
    agg["coverage"] = [cov.label(m, d) for m, d in zip(agg["method"], agg["dataset"])]
    return agg


def plot_speed_quality(merged: Merged, metric: str, out: Path) -> list[Figure]:
    """Per dataset: frames/s (log x) vs a quality metric; bubble area proportional to parameter count;
    rows the leaderboard does not rank hollow and named in the caption."""
    data = speed_quality(merged, metric)
    cov, styles = coverage(merged), method_styles(merged)
    params = {r.method: (r.record.method.get("parameters") or 0) for r in merged.runs}
    biggest = max(params.values(), default=0) or 1
    files: list[Figure] = []
    for dataset, agg in data.groupby("dataset", sort=False):
        fig, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
        for row in agg.itertuples():
            s = styles[row.method]
            area = 60 + 1500 * params.get(row.method, 0) / biggest
            fill = {"color": s.color, "alpha": 0.6, "edgecolor": "k"} if row.ranked else \
                {"facecolor": "none", "edgecolor": s.color, "linewidths": 1.5}
            ax.scatter(row.fps, row.value, s=area, marker=s.marker, label=row.method, **fill)
            label = row.method + ("" if row.ranked else " †")
            label += f"\n{params[row.method] / 1e6:.0f}M params" if params.get(row.method) else ""
            ax.annotate(label, (row.fps, row.value), fontsize=7, xytext=(6, 4), textcoords="offset points")
        ax.margins(x=0.3, y=0.25)  # room for the largest bubble and its label inside the axes
        extent = frame_extent(merged, cov, dataset)
        ax.set_xscale("log")
        _plain_log(ax, "x")
        ax.set_xlabel("frames / s (method alone, ↑ faster, log scale)")
        ax.set_ylabel(_wrap(metric_label(merged.metrics, metric)), fontsize=8)
        title = f"{dataset} ({extent}): speed vs {metric}"
        ax.set_title(f"{title} (bubble area = parameters)", fontsize=9)
        caption = (f"Mean frames/s of the method alone vs the clip mean of {metric} on {dataset}, over the clips "
                   f"the leaderboard counts; bubble area is proportional to parameter count. Filled: ranked rows "
                   f"({extent}, the {len(cov.common.get(dataset, ()))} clips they share).")
        caption += _unranked_note(cov, dataset, list(agg["method"]),
                                  "Hollow (†), not ranked and valued over their own clips and frames")
        files += _save(fig, out, f"speed_vs_{metric}_{dataset}", agg, caption, title)
    return files


def clip_series(merged: Merged, column: str, dataset: str, curve: str | None = None) -> pd.DataFrame:
    """One clip's curve per row (columns method, clip, x, value, count): curve ``curve`` of metric column
    ``column`` (``merged.curves``), or with no curve the per-frame values of column ``column``."""
    columns = ["method", "clip", "x", "value", "count"]
    if curve is None:
        f = merged.frames
        if not len(f) or column not in f:
            return pd.DataFrame(columns=columns)
        g = f.loc[f["dataset"] == dataset, ["method", "clip", "frame", column]].dropna()
        g = g.rename(columns={"frame": "x", column: "value"}).assign(count=1)
    else:
        c = merged.curves
        if not len(c):
            return pd.DataFrame(columns=columns)
        g = c.loc[(c["metric"] == column) & (c["curve"] == curve) & (c["dataset"] == dataset), columns]
    return g[columns].sort_values(["method", "clip", "x"], kind="stable").reset_index(drop=True)


def clip_mean(merged: Merged, per_clip: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per ranked method and x, the mean of ``per_clip`` (from ``clip_series``) over the dataset's common
    clips, those every ranked row finished (the leaderboard's), weighted by each point's count.
    Columns method, x, value, clips (how many of those clips have a point at x), of (how many there are)."""
    cov = coverage(merged)
    common = cov.common.get(dataset, ())
    ranked = [m for (m, d) in cov.rows if d == dataset and cov.ranked(m, d)]
    keep = per_clip["clip"].isin(common) & per_clip["method"].isin(ranked)
    g = per_clip[keep & (per_clip["count"] > 0)]
    sums = g.assign(w=g["value"] * g["count"]).groupby(["method", "x"], sort=False).agg(
        w=("w", "sum"), n=("count", "sum"), clips=("clip", "nunique"))
    data = sums.assign(value=sums["w"] / sums["n"], of=len(common)).reset_index()
    return data[["method", "x", "value", "clips", "of"]].sort_values(["method", "x"], kind="stable")


def _curve_kind(name: str) -> str:
    """'gap' (x = frame gap), 'boundary' (x = a chunk boundary), 'cut' (x = frames where a scene cut
    is, drawn as marks) or 'frame' (x = frame index)."""
    tokens = name.split("_")
    if "gap" in tokens or "dt" in tokens:
        return "gap"
    return "boundary" if "boundary" in name else "cut" if "cut" in tokens else "frame"


def plot_curves(merged: Merged, out: Path) -> list[Figure]:
    """Every metric's curves, per (column, dataset): vs frame per clip (with the column's per-frame
    derived values, e.g. fidelity) and their mean over clips, vs frame gap, per chunk boundary."""
    c = merged.curves
    per_frame = set(merged.frames.columns) if len(merged.frames) else set()
    datasets = list(dict.fromkeys(r.dataset for r in merged.runs))
    files: list[Figure] = []
    for column, info in merged.metrics.items():
        if "parent" in info:
            continue
        names = list(dict.fromkeys(c.loc[c["metric"] == column, "curve"])) if len(c) else []
        cut_names = [n for n in names if _curve_kind(n) == "cut"]
        derived = [d for d, i in merged.metrics.items() if i.get("parent") == column and d in per_frame]
        for dataset in datasets:
            series = {d: metric_label(merged.metrics, d) for d in derived}
            series |= {n: curve_label(merged.metrics, column, n) for n in names if _curve_kind(n) == "frame"}
            data = {label: clip_series(merged, column if name in names else name, dataset,
                                       name if name in names else None) for name, label in series.items()}
            data = {label: d for label, d in data.items() if len(d)}
            cuts = pd.concat([clip_series(merged, column, dataset, n) for n in cut_names] or [pd.DataFrame()])
            files += plot_drift(merged, data, out, column, dataset, cuts)
            files += plot_drift_mean(merged, data, out, column, dataset)
            for name in names:
                if _curve_kind(name) == "gap":
                    files += plot_dt(merged, out, column, name, dataset)
                elif _curve_kind(name) == "boundary":
                    files += plot_boundaries(merged, out, column, name, dataset, cut_names)
    return files


def _dataset_clips(merged: Merged, dataset: str, present) -> list[str]:
    """The clips among ``present`` in the dataset's order."""
    present = set(present)
    order = merged.clips.loc[merged.clips["dataset"] == dataset, "clip"] if len(merged.clips) else []
    return [c for c in dict.fromkeys(order) if c in present]


def _chunk_starts(merged: Merged, dataset: str) -> dict[tuple[str, str], list[int]]:
    """(method, clip) -> the frames where a chunk other than the first starts (clips finished ok)."""
    clips = merged.clips
    if "chunk_starts" not in clips:
        return {}
    rows = clips[(clips["dataset"] == dataset) & (clips["status"] == "ok")]
    return {(m, c): [int(x) for x in s if x > 0] for m, c, s in zip(rows["method"], rows["clip"], rows["chunk_starts"])
            if isinstance(s, (list, tuple, np.ndarray))}  # None or NaN: layout unknown


def _smooth(values: pd.Series, window: int) -> np.ndarray:
    return values.rolling(window, min_periods=1, center=True).mean().to_numpy()


def plot_drift(merged: Merged, series: dict[str, pd.DataFrame], out: Path, column: str, dataset: str,
               cuts: pd.DataFrame, window: int = SMOOTH) -> list[Figure]:
    """A row of panels per clip, a panel per series (``series``: axis label -> ``clip_series``) of one
    column on one dataset, each on the clip's own frame axis: a line per method (centred rolling mean),
    the clip's scene cuts (grey dashed) and each method's chunk starts on it (dotted, its colour)."""
    if not series:
        return []
    cov, styles = coverage(merged), method_styles(merged)
    clips = _dataset_clips(merged, dataset, {c for d in series.values() for c in d["clip"]})
    starts = _chunk_starts(merged, dataset)
    dense = sorted({m for (m, _), s in starts.items() if len(s) > MAX_STARTS})
    starts = {k: s for k, s in starts.items() if k[0] not in dense}
    methods = _methods(styles, {m for d in series.values() for m in d["method"]})
    fig, axes = plt.subplots(len(clips), len(series), figsize=(4.2 * len(series), 2.3 * len(clips)),
                             squeeze=False, layout="constrained")
    parts = []
    for r, clip in enumerate(clips):
        clip_cuts = sorted(set(cuts["x"][cuts["clip"] == clip])) if len(cuts) else []
        for k, (label, data) in enumerate(series.items()):
            ax = axes[r, k]
            mine = data[data["clip"] == clip]
            for method in _methods(styles, mine["method"]):
                g = mine[mine["method"] == method]
                drawn = _smooth(g["value"].reset_index(drop=True), window)
                ranked = cov.ranked(method, dataset)
                ax.plot(g["x"], drawn, color=styles[method].color, lw=1.2, ls="-" if ranked else "--", label=method)
                parts.append(g[["method", "clip", "x", "value"]].assign(series=label, drawn=drawn))
                end = g["x"].max()
                for s in (s for s in starts.get((method, clip), []) if s <= end):
                    ax.axvline(s, color=styles[method].color, lw=0.4, ls=":", alpha=0.6)
            for x in clip_cuts:
                ax.axvline(x, **CUT)
            ax.set_title(f"{clip}", fontsize=8)
            ax.set_ylabel(_wrap(label), fontsize=7)
            ax.set_xlabel("frame of the clip", fontsize=7)
            ax.tick_params(labelsize=7)
    extent = frame_extent(merged, cov, dataset)
    title = f"{dataset} ({extent}): {column} vs frame, per clip"
    fig.suptitle(title, fontsize=9)
    _legend(fig, [_handle(styles[m], m, cov.ranked(m, dataset), line=True) for m in methods]
            + [Line2D([], [], **CUT, label="scene cut"),
               Line2D([], [], color="k", lw=0.6, ls=":", label="chunk start")])
    marks = [pd.DataFrame({"series": "scene cut", "method": "", "clip": cuts["clip"], "x": cuts["x"]})
             .drop_duplicates() if len(cuts) else pd.DataFrame()]
    marks += [pd.DataFrame({"series": "chunk start", "method": m, "clip": c, "x": s})
              for (m, c), s in starts.items() if m in methods and c in clips and s]
    data = pd.concat([*parts, *marks], ignore_index=True)[["series", "method", "clip", "x", "value", "drawn"]]
    caption = (f"{column} on {dataset}, one row of panels per clip ({len(clips)}: {', '.join(clips)}), each on its "
               f"own frame axis; no curve is averaged over clips. Lines: centred rolling mean over {window} scored "
               "frames (CSV: value per frame, drawn = the line); grey dashed: the clip's scene cuts; dotted in a "
               "method's colour: its chunk starts.")
    dense = [m for m in methods if m in dense]
    caption += (f" Chunk starts not drawn for {', '.join(dense)}: over {MAX_STARTS} in a clip (each boundary is in "
                "the seam figure)." if dense else "")
    caption += _unranked_note(cov, dataset, methods, "Dashed (†), not ranked, curves end where their frames do")
    return _save(fig, out, f"drift_{column}_{dataset}", data, caption, title)


def plot_drift_mean(merged: Merged, series: dict[str, pd.DataFrame], out: Path, column: str, dataset: str,
                    window: int = SMOOTH) -> list[Figure]:
    """A panel per series: per ranked method, the mean over the dataset's common clips, drawn only at
    frames every one of them covers (so no point averages another set of clips than its neighbours)."""
    cov, styles = coverage(merged), method_styles(merged)
    common = cov.common.get(dataset, ())
    means = {label: clip_mean(merged, data, dataset) for label, data in series.items()}
    means = {label: m[m["clips"] == m["of"]] for label, m in means.items()}
    means = {label: m for label, m in means.items() if len(m)}
    if len(common) < 2 or not means:  # one clip: its curve is the per-clip figure
        return []
    fig, axes = plt.subplots(len(means), 1, figsize=(6, 2.6 * len(means)), squeeze=False, layout="constrained")
    parts = []
    for ax, (label, data) in zip(axes[:, 0], means.items()):
        for method in _methods(styles, data["method"]):
            g = data[data["method"] == method]
            drawn = _smooth(g["value"].reset_index(drop=True), window)
            ax.plot(g["x"], drawn, color=styles[method].color, lw=1.4, label=method)
            parts.append(g[["method", "x", "value", "clips"]].assign(series=label, drawn=drawn))
        ax.set_ylabel(_wrap(label), fontsize=7)
        ax.set_xlabel("frame", fontsize=7)
    data = pd.concat(parts, ignore_index=True)[["series", "method", "x", "value", "drawn", "clips"]]
    methods = _methods(styles, data["method"])
    title = f"{dataset} ({frame_extent(merged, cov, dataset)}): {column} vs frame, mean of {len(common)} clips"
    fig.suptitle(title, fontsize=9)
    _legend(fig, [_handle(styles[m], m) for m in methods])
    caption = (f"{column} on {dataset}: per method, the mean over the {len(common)} clips every ranked row finished "
               f"({', '.join(common)}), drawn only at frames all {len(common)} cover (up to frame "
               f"{int(data['x'].max())}; CSV column clips: the clips averaged at each point); the frames past the "
               f"shortest clip are in the per-clip figure. Lines: centred rolling mean over {window} points.")
    unranked = [m for m in _methods(styles, {m for d in series.values() for m in d["method"]})
                if not cov.ranked(m, dataset)]
    caption += _unranked_note(cov, dataset, unranked, "Left out, not ranked")
    return _save(fig, out, f"drift_mean_{column}_{dataset}", data, caption, title)


def plot_dt(merged: Merged, out: Path, column: str, name: str, dataset: str) -> list[Figure]:
    """Similarity vs frame gap (log x), per ranked method the mean over the common clips: solid with
    filled markers where every clip has the gap, dashed and hollow where only the longer ones do."""
    cov, styles = coverage(merged), method_styles(merged)
    per_clip = clip_series(merged, column, dataset, name)
    data = clip_mean(merged, per_clip, dataset)
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    methods = _methods(styles, data["method"])
    for method in methods:
        g, s = data[data["method"] == method], styles[method]
        full = (g["clips"] == g["of"]).to_numpy()
        ax.plot(g["x"][full], g["value"][full], color=s.color, marker=s.marker, ms=4, label=method)
        tail = ~full | (full & np.append(~full[1:], False))  # the partial points, joined to the last full one
        ax.plot(g["x"][tail], g["value"][tail], color=s.color, ls="--")
        ax.plot(g["x"][~full], g["value"][~full], color=s.color, marker=s.marker, ms=4, ls="", mfc="none")
    ax.set_xscale("log")
    _plain_log(ax, "x", data["x"])
    ax.set_xlabel("frame gap dt (log scale)")
    ax.set_ylabel(_wrap(curve_label(merged.metrics, column, name)), fontsize=8)
    common = cov.common.get(dataset, ())
    title = f"{dataset} ({frame_extent(merged, cov, dataset)}): {column} vs frame gap"
    ax.set_title(title, fontsize=9)
    _legend(fig, [_handle(styles[m], m) for m in methods])
    caption = (f"{column} {name} on {dataset}: per method, the mean over the {len(common)} clips every ranked row "
               f"finished ({', '.join(common)}), weighted by each clip's frame pairs. Solid, filled: every clip "
               "has pairs dt apart; dashed, hollow: only the clips longer than dt (CSV columns clips, of).")
    unranked = [m for m in _methods(styles, per_clip["method"]) if not cov.ranked(m, dataset)]
    caption += _unranked_note(cov, dataset, unranked, "Left out, not ranked")
    return _save(fig, out, f"dt_{column}_{name}_{dataset}", data, caption, title)


def boundary_table(merged: Merged, column: str, name: str, dataset: str, cut_names: list[str]) -> pd.DataFrame:
    """Every chunk boundary of every clip a method scored with ``column``: method, clip, boundary (the
    frame its chunk starts), value (its ratio, curve ``name``; NaN when excluded or not recorded),
    excluded (the scored pair across it spans a scene cut, so the metric leaves it out), ranked."""
    columns = ["method", "clip", "boundary", "value", "excluded", "ranked"]
    clips = merged.clips
    if column not in clips:
        return pd.DataFrame(columns=columns)
    cov = coverage(merged)
    values = clip_series(merged, column, dataset, name).set_index(["method", "clip", "x"])["value"]
    cuts = pd.concat([clip_series(merged, column, dataset, n) for n in cut_names]
                     or [pd.DataFrame(columns=["method", "clip", "x"])])
    f = merged.frames
    # Scored frames: those with a value, and frame 0 (scored, but its VBench term is NaN: no previous frame)
    scored = f.loc[(f["dataset"] == dataset) & (f[column].notna() | (f["frame"] == 0))] \
        if len(f) and column in f else None
    rows = []
    for (method, clip), starts in _chunk_starts(merged, dataset).items():
        row = clips[(clips["method"] == method) & (clips["dataset"] == dataset) & (clips["clip"] == clip)]
        if row[column].isna().all():  # this run does not measure the column
            continue
        frames = np.sort(scored.loc[(scored["method"] == method) & (scored["clip"] == clip), "frame"].to_numpy()) \
            if scored is not None else np.zeros(0, np.int64)
        frames = frames if len(frames) else np.arange(int(row["frames"].iloc[0]))  # no per-frame table: every frame
        marks = np.asarray(sorted(cuts.loc[(cuts["method"] == method) & (cuts["clip"] == clip), "x"]), np.int64)
        for s in starts:
            i = np.searchsorted(frames, s)  # the scored pair (frames[i - 1], frames[i]] holds the start
            if i == 0 or i == len(frames):
                continue  # no scored pair crosses it
            excluded = bool(((marks > frames[i - 1]) & (marks <= frames[i])).any())
            value = np.nan if excluded else values.get((method, clip, s), np.nan)
            rows.append((method, clip, s, value, excluded, cov.ranked(method, dataset)))
    return pd.DataFrame(rows, columns=columns)


def plot_boundaries(merged: Merged, out: Path, column: str, name: str, dataset: str,
                    cut_names: list[str] = ()) -> list[Figure]:
    """Chunk-boundary discontinuity (1 = boundaries invisible): its distribution per method (box and
    points, log y), then a panel per clip with each method's sequence along the clip; boundaries
    whose pair spans a scene cut are excluded by the metric and marked as such."""
    data = boundary_table(merged, column, name, dataset, list(cut_names))
    if data.empty:
        return []
    cov, styles = coverage(merged), method_styles(merged)
    methods = _methods(styles, data["method"])
    clips = _dataset_clips(merged, dataset, data["clip"])
    fig, axes = plt.subplots(1 + len(clips), 1, figsize=(7, 2.8 + 2.2 * len(clips)), squeeze=False,
                             layout="constrained")
    finite = data[~data["excluded"] & np.isfinite(data["value"].astype(float))]
    ax = axes[0, 0]
    for i, method in enumerate(methods):
        v = finite.loc[finite["method"] == method, "value"].astype(float).to_numpy()
        s, ranked = styles[method], cov.ranked(method, dataset)
        if len(v):
            ax.boxplot(v, positions=[i], widths=0.5, showfliers=False, patch_artist=True, medianprops={"color": "k"},
                       boxprops={"facecolor": s.color if ranked else "none", "alpha": 0.35 if ranked else 1.0,
                                 "edgecolor": s.color, "linestyle": "-" if ranked else "--"})
            jitter = np.random.default_rng(i).uniform(-0.18, 0.18, len(v))  # fixed seed: the same figure each time
            ax.scatter(i + jitter, v, s=6, marker=s.marker, color=s.color if ranked else "none",
                       edgecolor=s.color, linewidths=0.5, zorder=3)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(methods)), [m if cov.ranked(m, dataset) else f"{m} †" for m in methods],
                  fontsize=7, rotation=20)
    ax.set_yscale("log")
    _plain_log(ax)
    label = curve_label(merged.metrics, column, name, log=True)
    ax.set_ylabel(_wrap(label), fontsize=7)
    ax.set_title("per method, every boundary of every clip", fontsize=8)
    for ax, clip in zip(axes[1:, 0], clips):
        mine = data[data["clip"] == clip]
        for method in _methods(styles, mine["method"]):
            g, s = mine[(mine["method"] == method) & ~mine["excluded"]], styles[method]
            ranked = cov.ranked(method, dataset)
            ax.plot(g["boundary"], g["value"], color=s.color, marker=s.marker, ms=3, lw=0.8,
                    ls="-" if ranked else "--", mfc=s.color if ranked else "none", label=method)
        for x in sorted(set(mine.loc[mine["excluded"], "boundary"])):
            ax.axvline(x, color="grey", lw=3, alpha=0.3)
            ax.plot([x], [1.0], marker="x", color="k", ms=6, ls="")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        _plain_log(ax)
        ax.set_title(clip, fontsize=8)
        ax.set_ylabel(_wrap(label), fontsize=7)
        ax.set_xlabel("chunk boundary (frame the chunk starts)", fontsize=7)
    excluded, infinite = data["excluded"], ~data["excluded"] & np.isinf(data["value"].astype(float))
    title = f"{dataset} ({frame_extent(merged, cov, dataset)}): {column} chunk-boundary discontinuity"
    fig.suptitle(title, fontsize=9)
    _legend(fig, [_handle(styles[m], m, cov.ranked(m, dataset)) for m in methods]
            + [Line2D([], [], marker="x", color="k", ls="", label="spans a scene cut: excluded"),
               Line2D([], [], color="grey", lw=0.8, ls="--", label="ideal 1")])
    caption = (f"{column} on {dataset}: each chunk boundary's change across it over the clip's change inside chunks "
               "(1 = the boundary is invisible). Top: the distribution per method (box: quartiles; points: every "
               f"boundary); below, per clip ({', '.join(clips)}), each method's boundaries along the clip. "
               f"{int(excluded.sum())} boundaries (counted per method) whose frame pair spans a scene cut are excluded "
               "by the metric: "
               "marked x on a grey band, left out of boxes and lines (CSV: excluded).")
    caption += (f" {int(infinite.sum())} infinite ratios (a static clip that changes at the boundary) are not drawn."
                if infinite.any() else "")
    caption += _unranked_note(cov, dataset, methods, "Hollow, dashed (†), not ranked")
    return _save(fig, out, f"boundaries_{column}_{name}_{dataset}", data, caption, title)
