"""Leaderboards like a paper's main table: methods x (dataset, metric), best and second marked.

Coverage is explicit (the rule is in ``report.coverage``): each dataset's column group starts with
the clips each row finished out of the dataset's clips; rows are valued and ranked over the clips
every ranked method finished, and values of rows that are not ranked (partial, running, no clips)
carry a dagger. Best and second are decided on the values as shown, so equal printed values get
equal marks. Aggregation is explicit: ``clip_mean`` (mean over clips of each clip's frame mean, the
field's convention) or ``frame_weighted`` (every frame counts once). Outputs: Markdown, LaTeX
(booktabs, best bold, second underlined, notes as comments), CSV and a self-contained HTML page.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import numpy as np
import pandas as pd

from infvsr_bench.errors import ConfigError
from infvsr_bench.report.coverage import Coverage, coverage
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
    coverage: Coverage

    def marks(self) -> pd.DataFrame:
        """'best' / 'second' / '' per cell, among ranked rows (two at least), in each metric's direction, on
        the values as displayed."""
        marks = pd.DataFrame("", index=self.values.index, columns=self.values.columns)
        for col in self.values.columns:
            ranked = [m for m in self.values.index if self.coverage.ranked(m, col[0])]
            series = self.values.loc[ranked, col].dropna()
            if len(series) < 2:
                continue
            shown = pd.Series([float(_fmt(v, col[1])) for v in series], index=series.index)
            shown = shown.sort_values(ascending=not self.higher_is_better.get(col[1], True))
            distinct = shown.unique()
            marks.loc[shown.index[shown == distinct[0]], col] = "best"
            if len(distinct) > 1 and len(series) > 2:
                marks.loc[shown.index[shown == distinct[1]], col] = "second"
        return marks


def aggregate(clips: pd.DataFrame, metrics: list[str], aggregation: str) -> pd.DataFrame:
    """Long table method, dataset, metric, value, aggregated over the given clips (those that count)."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
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


def _reference_rows(reference: str, datasets: list[str], metrics: list[str]) -> pd.DataFrame:
    """Values reported by papers (``reference``) for the given datasets (all of theirs when none)."""
    if reference not in REFERENCES:
        raise ConfigError(f"unknown reference {reference!r}; available: {sorted(REFERENCES)}")
    wanted = set(datasets) or {d for name in REFERENCES[reference] for d in REPORTED[name]}
    return pd.DataFrame([
        {"method": name, "dataset": d, "metric": m, "value": v}
        for name in REFERENCES[reference] for d, vals in REPORTED[name].items() if d in wanted
        for m, v in vals.items() if m in metrics
    ], columns=["method", "dataset", "metric", "value"])


def leaderboard(merged: Merged, metrics: list[str] | None = None, aggregation: str = "clip_mean",
                reference: str | None = None) -> Leaderboard:
    """Build the table from merged runs (and optional reported reference rows): every measured
    (method, dataset) has a row, values over the clips that count (see ``report.coverage``)."""
    metrics = metrics or list(merged.metrics)
    cov = coverage(merged)
    measured = list(dict.fromkeys(m for m, _ in cov.rows))
    datasets = list(dict.fromkeys(d for _, d in cov.rows))
    table = aggregate(cov.counted(merged.clips), metrics, aggregation)
    reported: list[str] = []
    if reference:
        ref = _reference_rows(reference, datasets, metrics)
        reported = list(dict.fromkeys(ref["method"]))
        table = pd.concat([t for t in (table, ref) if not t.empty] or [table], ignore_index=True)
    if not any(m in merged.metrics or m in set(table["metric"]) for m in metrics):
        raise ConfigError(f"no values for metrics {metrics} in the selected runs")
    values = pd.DataFrame() if table.empty else table.pivot_table(
        index="method", columns=["dataset", "metric"], values="value", aggfunc="first", sort=False)
    with_values = set(values.columns)
    datasets += [d for d in dict.fromkeys(table["dataset"]) if d not in datasets]
    order = [(d, m) for d in datasets for m in metrics  # a dataset without any value keeps its columns
             if (d, m) in with_values or (m in merged.metrics and not any(c[0] == d for c in with_values))]
    values = values.reindex(index=measured + reported,
                            columns=pd.MultiIndex.from_tuples(order, names=["dataset", "metric"])).astype(float)
    directions = {m: merged.metrics.get(m, {}).get("higher_is_better", HIGHER_IS_BETTER.get(m.split("@")[0], True))
                  for m in metrics}
    return Leaderboard(values, directions, set(reported), aggregation, list(merged.notes) + cov.notes, cov)


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if np.isinf(value):
        return "inf"
    return f"{value:.2f}" if abs(value) >= 10 or metric.split("@")[0] in ("psnr", "ewarp", "musiq") else f"{value:.4f}"


def _cells(lb: Leaderboard, style: dict[str, Any], methods_as: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body rows and row labels as text, for any output format: per dataset the clips
    column, then one column per metric."""
    marks = lb.marks()
    arrow = {True: style["up"], False: style["down"]}
    esc = style["escape"]
    header: list[str] = []
    body: list[list[str]] = [[] for _ in lb.values.index]
    for dataset in dict.fromkeys(d for d, _ in lb.values.columns):
        header.append(f"{esc(dataset)} clips")
        for row, method in zip(body, lb.values.index):
            row.append(lb.coverage.label(method, dataset))
        for col in [c for c in lb.values.columns if c[0] == dataset]:
            header.append(f"{esc(dataset)} {esc(col[1])} {arrow[lb.higher_is_better.get(col[1], True)]}")
            for row, method in zip(body, lb.values.index):
                text = _fmt(lb.values.loc[method, col], col[1])
                if text != "-" and method not in lb.reported and not lb.coverage.ranked(method, dataset):
                    text += style["unranked"]
                mark = marks.loc[method, col]
                row.append(style[mark].format(text) if mark else text)
    labels = [style["reported"].format(esc(m)) if m in lb.reported else esc(m) for m in lb.values.index]
    if methods_as == "columns":
        return labels, [list(r) for r in zip(*body)], header
    return header, body, labels


def _legend(lb: Leaderboard, style: dict[str, Any]) -> str:
    """The footnote of every format: aggregation, the coverage rule, the marks."""
    return (f"Aggregation: {style['escape'](lb.aggregation)}. Clips: k/n, the clips finished of the n clips the dataset's runs were asked to do. "
            "Ranked rows are valued and ranked over the common clips, those every ranked method finished; "
            f"{style['unranked']} not ranked (partial: asked fewer clips; running: not finished; or no clip "
            "finished), valued over its own finished clips. "
            f"{style['best'].format('Best')}, {style['second'].format('second')} among ranked rows, on the "
            f"values as shown; {style['reported'].format('italic')} rows are reported by their papers, not "
            "measured here.")


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX typesets it literally (one pass, so no escape is escaped again)."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: LATEX_SPECIAL[m.group()], text)


MARKDOWN = {"up": "↑", "down": "↓", "best": "**{}**", "second": "<u>{}</u>", "reported": "*{}*", "unranked": "†",
            "escape": lambda s: s.replace("|", "\\|")}
LATEX = {"up": r"$\uparrow$", "down": r"$\downarrow$", "best": r"\textbf{{{}}}", "second": r"\underline{{{}}}",
         "reported": r"\textit{{{}}}", "unranked": r"$^\dagger$", "escape": latex_escape}
HTML = {"up": "&uarr;", "down": "&darr;", "best": "<b>{}</b>", "second": "<u>{}</u>", "reported": "<i>{}</i>",
        "unranked": "&dagger;", "escape": html.escape}


def to_markdown(lb: Leaderboard, methods_as: str = "rows") -> str:
    header, body, labels = _cells(lb, MARKDOWN, methods_as)
    lines = ["| | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    lines += [f"| {label} | " + " | ".join(row) + " |" for label, row in zip(labels, body)]
    return "\n".join(lines + ["", _legend(lb, MARKDOWN)] + [f"- {n}" for n in lb.notes]) + "\n"


def to_latex(lb: Leaderboard, methods_as: str = "rows") -> str:
    """A booktabs table; the notes follow as comments, so the source says what the caption cannot."""
    header, body, labels = _cells(lb, LATEX, methods_as)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * len(header) + "}", r"\toprule",
             " & ".join(["Method" if methods_as == "rows" else "Metric", *header]) + r" \\", r"\midrule"]
    lines += [" & ".join([label, *row]) + r" \\" for label, row in zip(labels, body)]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_legend(lb, LATEX)}}}", r"\end{table}"]
    lines += [f"% {' '.join(n.splitlines())}" for n in lb.notes]
    return "\n".join(lines) + "\n"


def to_csv(lb: Leaderboard) -> str:
    """Values per dataset/metric, and per dataset the clips finished (k/n) and whether the row is ranked."""
    flat = lb.values.copy()
    flat.columns = [f"{d}/{m}" for d, m in flat.columns]
    for dataset in reversed(list(dict.fromkeys(d for d, _ in lb.values.columns))):
        flat.insert(0, f"{dataset}/ranked", [lb.coverage.ranked(m, dataset) for m in flat.index])
        flat.insert(0, f"{dataset}/clips", [lb.coverage.label(m, dataset) for m in flat.index])
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
            f"<p>{_legend(lb, HTML)}</p><ul>{notes}</ul>{extra}</body></html>\n")


def write_all(lb: Leaderboard, out: Any, methods_as: str = "rows", extra_html: str = "") -> list[str]:
    """leaderboard.md/.tex/.csv/.html in folder ``out``; returns the file names."""
    files = {"leaderboard.md": to_markdown(lb, methods_as), "leaderboard.tex": to_latex(lb, methods_as),
             "leaderboard.csv": to_csv(lb), "leaderboard.html": to_html(lb, methods_as, extra=extra_html)}
    for name, text in files.items():
        (out / name).write_text(text)
    return list(files)
