"""``python -m infvsr_bench report``: runs -> leaderboard files, figures, and index.html, the page showing them all."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from infvsr_bench.errors import ConfigError
from infvsr_bench.report import page, plots
from infvsr_bench.report.figure import Figure
from infvsr_bench.report.tables import leaderboard, to_markdown, write_all
from infvsr_bench.results.merge import load_runs


@dataclasses.dataclass
class ReportOptions:
    """Options of the report command (key=value on the command line)."""

    out: str = "reports/latest"
    metrics: list = dataclasses.field(default_factory=list)  # default: every metric in the runs
    methods_as: str = "rows"  # rows | columns (InfVSR's Table 1 has methods as columns)
    aggregation: str = "clip_mean"  # clip_mean | frame_weighted
    reference: str = ""  # e.g. infvsr_paper: reported values, beside columns of their protocol, else apart
    quality: str = ""  # metric on the y axis of the speed and length plots (default: first metric)
    plots: bool = True

    def __post_init__(self) -> None:
        if self.methods_as not in ("rows", "columns"):
            raise ValueError(f"methods_as must be rows or columns, got {self.methods_as!r}")


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
    figures: list[Figure] = []
    if options.plots:
        quality = options.quality or next((m for m in metrics if m in merged.clips), "")
        if quality:
            figures += plots.plot_speed_quality(merged, quality, out)
            if len(merged.frames) and quality in merged.frames:
                figures += plots.plot_length(merged, quality, out)
        figures += plots.plot_curves(merged, out)
        figures = plots.plot_legend(merged, out) + figures if figures else figures  # the report's legend first
    files += write_all(board, out, options.methods_as)
    files.append(page.write_page(out, board, figures, merged.runs, files, options.methods_as))
    print(to_markdown(board, options.methods_as))
    return out, files + [name for f in figures for name in f.files]
