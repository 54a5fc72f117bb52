"""One look per report: each method's colour and marker, fixed once from the report's sorted method
names so a method looks the same in every figure whatever methods a figure shows; axis labels that
name a metric's protocol, direction and ideal; the frame extent a title names."""

from __future__ import annotations

import dataclasses
from typing import Any

from infvsr_bench.report.coverage import Coverage, _extent, _extent_text, frame_limit
from infvsr_bench.results.merge import Merged

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale by marker.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

# What each curve a metric records measures (metrics/semantic.py), for axis labels.
CURVES = {
    "sim_first": "cosine similarity to frame 0",
    "sim_reference": "cosine similarity to the first chunk's mean",
    "sim_gap": "mean cosine similarity of frames dt apart",
    "boundary": "boundary ratio (change across / inside chunks)",
}


@dataclasses.dataclass(frozen=True)
class Style:
    """How one method is drawn in every figure of a report."""

    color: str
    marker: str


def method_styles(merged: Merged) -> dict[str, Style]:
    """Colour and marker of every method of the report, by its rank among the sorted method names
    (colour cycles every 8, the marker shifts each cycle: unique up to 64 methods)."""
    methods = sorted({r.method for r in merged.runs})
    n = len(PALETTE)
    return {m: Style(PALETTE[i % n], MARKERS[(i + i // n) % len(MARKERS)]) for i, m in enumerate(methods)}


def _protocol(info: dict[str, Any]) -> str:
    protocol = info.get("protocol") or (info.get("settings") or {}).get("protocol")
    return f", {protocol} protocol" if protocol else ""


def metric_label(metrics: dict[str, dict[str, Any]], column: str, log: bool = False) -> str:
    """``<column> (<protocol> protocol) ↑|↓, ideal <v>`` for an axis; ``log scale`` when the axis is."""
    info = metrics.get(column, {})
    arrow = "↑ better" if info.get("higher_is_better", True) else "↓ better"
    ideal = info.get("ideal")
    text = f"{column} ({arrow}{f', ideal {ideal:g}' if ideal is not None else ''}{_protocol(info)})"
    return text + (", log scale" if log else "")


def curve_label(metrics: dict[str, dict[str, Any]], column: str, curve: str, log: bool = False) -> str:
    """An axis label for curve ``curve`` of metric ``column``: what it measures, its protocol, its direction."""
    info = metrics.get(column, {})
    if curve == "boundary":
        what, direction = CURVES[curve], "↓ better, ideal 1"
    else:
        what = CURVES.get(curve, curve.replace("_", " "))
        direction = "↑ closer" if curve.startswith("sim") else ("↑ better" if info.get("higher_is_better", True)
                                                                 else "↓ better")
    return f"{column}: {what} ({direction}{_protocol(info)})" + (", log scale" if log else "")


def frame_extent(merged: Merged, cov: Coverage, dataset: str) -> str:
    """The frame extent of a dataset's ranked rows (``whole clips`` or ``the first N frames``); of all
    its runs when none is ranked."""
    runs = [r for r in merged.runs if r.dataset == dataset]
    ranked = [r for r in runs if cov.ranked(r.method, dataset)] or runs
    return _extent_text(_extent([frame_limit(r) for r in ranked]))


def unranked_text(cov: Coverage, dataset: str, methods: list[str]) -> str:
    """``A (3/3 first frames), B (1/3 partial)``: the rows among ``methods`` the leaderboard does not rank."""
    return ", ".join(f"{m} ({cov.label(m, dataset)})" for m in methods if not cov.ranked(m, dataset))
