"""Leaderboards like a paper's main table: methods x (dataset, metric), best and second marked.

Aggregation is explicit: ``clip_mean`` (mean over clips of each clip's frame mean, the field's
convention) or ``frame_weighted`` (every frame counts once). Outputs: Markdown, LaTeX (booktabs,
best bold, second underlined), CSV and a self-contained HTML page.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

import numpy as np
import pandas as pd

from infvsr_bench.errors import ConfigError
from infvsr_bench.report.merge import Merged
from infvsr_bench.report.reference import HIGHER_IS_BETTER, REFERENCES, REPORTED

AGGREGATIONS = ("clip_mean", "frame_weighted")


@dataclasses.dataclass
class Leaderboard:
    values: pd.DataFrame  # index: method; columns: MultiIndex (dataset, metric)
    higher_is_better: dict[str, bool]
    reported: set[str]  # reference rows (not measured, not ranked)
    aggregation: str
    notes: list[str]

    def marks(self) -> pd.DataFrame:
        """'best' / 'second' / '' per cell, ranking measured rows only, in each metric's direction."""
        marks = pd.DataFrame("", index=self.values.index, columns=self.values.columns)
        measured = [m for m in self.values.index if m not in self.reported]
        for col in self.values.columns:
            series = self.values.loc[measured, col].dropna()
            if series.empty:
                continue
            ranked = series.sort_values(ascending=not self.higher_is_better.get(col[1], True))
            distinct = ranked.unique()
            marks.loc[ranked.index[ranked == distinct[0]], col] = "best"
            if len(distinct) > 1 and len(series) > 2:
                marks.loc[ranked.index[ranked == distinct[1]], col] = "second"
        return marks


def aggregate(merged: Merged, metrics: list[str], aggregation: str) -> pd.DataFrame:
    """Long table method, dataset, metric, value, aggregated over the ok clips."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    clips = merged.clips[merged.clips["status"] == "ok"] if len(merged.clips) else merged.clips
    present = [m for m in metrics if m in clips.columns]
    if not present:
        return pd.DataFrame(columns=["method", "dataset", "metric", "value"])
    long = clips.melt(id_vars=["method", "dataset", "clip", "frames"], value_vars=present,
                      var_name="metric", value_name="value").dropna(subset=["value"])
    if aggregation == "clip_mean":
        out = long.groupby(["method", "dataset", "metric"], sort=False)["value"].mean()
    else:
        weighted = long.assign(wv=long["value"] * long["frames"])
        sums = weighted.groupby(["method", "dataset", "metric"], sort=False)[["wv", "frames"]].sum()
        out = sums["wv"] / sums["frames"]
    return out.rename("value").reset_index()


def leaderboard(merged: Merged, metrics: list[str] | None = None, aggregation: str = "clip_mean",
                reference: str | None = None) -> Leaderboard:
    """Build the table from merged runs (and optional reported reference rows)."""
    metrics = metrics or list(merged.metrics)
    long = aggregate(merged, metrics, aggregation)
    rows = [long]
    reported: set[str] = set()
    if reference:
        if reference not in REFERENCES:
            raise ConfigError(f"unknown reference {reference!r}; available: {sorted(REFERENCES)}")
        datasets = set(long["dataset"]) or {d for name in REFERENCES[reference] for d in REPORTED[name]}
        for name in REFERENCES[reference]:
            reported.add(name)
            rows.append(pd.DataFrame([
                {"method": name, "dataset": d, "metric": m, "value": v}
                for d, vals in REPORTED[name].items() if d in datasets for m, v in vals.items() if m in metrics
            ], columns=["method", "dataset", "metric", "value"]))
    table = pd.concat(rows, ignore_index=True)
    if table.empty:
        raise ConfigError(f"no values for metrics {metrics} in the selected runs")
    values = table.pivot_table(index="method", columns=["dataset", "metric"], values="value", aggfunc="first",
                               sort=False)
    order = [(d, m) for d in dict.fromkeys(table["dataset"]) for m in metrics if (d, m) in values.columns]
    values = values[order]
    directions = {m: merged.metrics.get(m, {}).get("higher_is_better", HIGHER_IS_BETTER.get(m.split("@")[0], True))
                  for m in metrics}
    return Leaderboard(values, directions, reported, aggregation, list(merged.notes))


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if np.isinf(value):
        return "inf"
    return f"{value:.2f}" if abs(value) >= 10 or metric.split("@")[0] in ("psnr", "ewarp", "musiq") else f"{value:.4f}"


def _cells(lb: Leaderboard, style: dict[str, str], methods_as: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body rows and row labels as text, for any output format."""
    marks = lb.marks()
    arrow = {True: style["up"], False: style["down"]}
    esc = style["escape"]
    col_labels = [f"{esc(d)} {esc(m)} {arrow[lb.higher_is_better.get(m, True)]}" for d, m in lb.values.columns]
    body = []
    for method in lb.values.index:
        row = []
        for col in lb.values.columns:
            text = _fmt(lb.values.loc[method, col], col[1])
            mark = marks.loc[method, col]
            row.append(style[mark].format(text) if mark else text)
        body.append(row)
    labels = [style["reported"].format(esc(m)) if m in lb.reported else esc(m) for m in lb.values.index]
    if methods_as == "columns":
        return labels, [list(r) for r in zip(*body)], col_labels
    return col_labels, body, labels


MARKDOWN = {"up": "↑", "down": "↓", "best": "**{}**", "second": "<u>{}</u>", "reported": "*{}*",
            "escape": lambda s: s.replace("|", "\\|")}
LATEX = {"up": r"$\uparrow$", "down": r"$\downarrow$", "best": r"\textbf{{{}}}", "second": r"\underline{{{}}}",
         "reported": r"\textit{{{}}}",
         "escape": lambda s: s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&")
         .replace("%", r"\%").replace("#", r"\#")}
HTML = {"up": "&uarr;", "down": "&darr;", "best": "<b>{}</b>", "second": "<u>{}</u>", "reported": "<i>{}</i>",
        "escape": html.escape}


def to_markdown(lb: Leaderboard, methods_as: str = "rows") -> str:
    header, body, labels = _cells(lb, MARKDOWN, methods_as)
    lines = ["| | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    lines += [f"| {label} | " + " | ".join(row) + " |" for label, row in zip(labels, body)]
    foot = [f"Aggregation: {lb.aggregation}. **Best**, <u>second</u> among measured rows; *italic* rows are "
            "reported by their papers, not measured here."]
    return "\n".join(lines + [""] + foot + [f"- {n}" for n in lb.notes]) + "\n"


def to_latex(lb: Leaderboard, methods_as: str = "rows") -> str:
    header, body, labels = _cells(lb, LATEX, methods_as)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * len(header) + "}", r"\toprule",
             " & ".join(["Method" if methods_as == "rows" else "Metric", *header]) + r" \\", r"\midrule"]
    lines += [" & ".join([label, *row]) + r" \\" for label, row in zip(labels, body)]
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{Aggregation: {lb.aggregation.replace('_', ' ')}. Best in bold, second underlined; "
              r"italic rows are reported by their papers.}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(lb: Leaderboard) -> str:
    flat = lb.values.copy()
    flat.columns = [f"{d}/{m}" for d, m in flat.columns]
    flat.insert(0, "reported", [m in lb.reported for m in flat.index])
    return flat.to_csv()


def to_html(lb: Leaderboard, methods_as: str = "rows", title: str = "infvsr-bench leaderboard",
            extra: str = "") -> str:
    header, body, labels = _cells(lb, HTML, methods_as)
    head = "".join(f"<th>{h}</th>" for h in header)
    rows = "".join(f"<tr><th>{label}</th>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for label, row in zip(labels, body))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in lb.notes)
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:right}th:first-child{text-align:left}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<table><tr><th></th>{head}</tr>{rows}</table>"
            f"<p>Aggregation: {lb.aggregation}. <b>Best</b>, <u>second</u> among measured rows; italic rows are "
            f"reported by their papers, not measured here.</p><ul>{notes}</ul>{extra}</body></html>\n")


def write_all(lb: Leaderboard, out: Any, methods_as: str = "rows", extra_html: str = "") -> list[str]:
    """leaderboard.md/.tex/.csv/.html in folder ``out``; returns the file names."""
    files = {"leaderboard.md": to_markdown(lb, methods_as), "leaderboard.tex": to_latex(lb, methods_as),
             "leaderboard.csv": to_csv(lb), "leaderboard.html": to_html(lb, methods_as, extra=extra_html)}
    for name, text in files.items():
        (out / name).write_text(text)
    return list(files)
