"""``python -m infvsr_bench report``: runs -> leaderboard files + figures + one HTML page."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

from infvsr_bench.errors import ConfigError
from infvsr_bench.report import plots
from infvsr_bench.report.merge import load_runs
from infvsr_bench.report.tables import leaderboard, to_markdown, write_all


@dataclasses.dataclass
class ReportOptions:
    """Options of the report command (key=value on the command line)."""

    out: str = "reports/latest"
    metrics: list = dataclasses.field(default_factory=list)  # default: every metric in the runs
    methods_as: str = "rows"  # rows | columns (InfVSR's Table 1 has methods as columns)
    aggregation: str = "clip_mean"  # clip_mean | frame_weighted
    reference: str = ""  # e.g. infvsr_paper: add reported rows, marked as such
    quality: str = ""  # metric on the y axis of the speed and length plots (default: first metric)
    plots: bool = True

    def __post_init__(self) -> None:
        if self.methods_as not in ("rows", "columns"):
            raise ValueError(f"methods_as must be rows or columns, got {self.methods_as!r}")


def _curve_groups(names: list[str]) -> tuple[list[str], list[str], list[str]]:
    dt = [n for n in names if "gap" in n.split("_") or "dt" in n.split("_")]
    boundary = [n for n in names if "boundary" in n]
    frame = [n for n in names if n not in dt and n not in boundary]
    return frame, dt, boundary


def build_report(patterns: list[str], options: ReportOptions) -> tuple[Path, list[str]]:
    """Write everything into ``options.out``; returns the folder and the files written."""
    merged = load_runs(patterns)
    if not merged.runs:
        raise ConfigError("no usable runs: " + "; ".join(merged.notes))
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(options.metrics) or list(merged.metrics)
    board = leaderboard(merged, metrics, options.aggregation, options.reference or None)
    files: list[str] = []
    figures: list[str] = []
    if options.plots:
        quality = options.quality or next((m for m in metrics if m in merged.clips), "")
        if quality:
            figures += plots.plot_speed_quality(merged, quality, out)
            if len(merged.frames) and quality in merged.frames:
                figures += plots.plot_length(merged, quality, out)
        names = sorted(set(merged.curves["curve"])) if len(merged.curves) else []
        frame, dt, boundary = _curve_groups(names)
        fidelity = [c for c in merged.frames.columns if c.endswith("_fidelity")] if len(merged.frames) else []
        if frame or fidelity:
            figures += plots.plot_frame_curves(merged, fidelity + frame, out)
        for name in dt:
            figures += plots.plot_dt(merged, name, out)
        for name in boundary:
            figures += plots.plot_boundaries(merged, name, out)
    images = "".join(
        f"<h2>{name[:-4]}</h2><img style='max-width:900px' src='data:image/png;base64,"
        f"{base64.b64encode((out / name).read_bytes()).decode()}'/>" for name in figures if name.endswith(".png"))
    files += write_all(board, out, options.methods_as, extra_html=images)
    print(to_markdown(board, options.methods_as))
    return out, files + figures
