"""Leaderboards like a paper's main table: methods x (dataset, metric), best and second marked.

Coverage is explicit (the rule is in ``report.coverage``): each dataset's column group starts with
the clips each row finished out of the dataset's clips; rows are valued and ranked over the clips
every ranked method finished, and values of rows that are not ranked (partial, running, first frames, no clips)
carry a dagger. Best and second are decided on the values as shown, so equal printed values get
equal marks. Aggregation is explicit: ``clip_mean`` (mean over clips of each clip's frame mean, the
field's convention) or ``frame_weighted`` (every frame counts once). Each column ranks in its own
direction, up to its ideal (``report.columns``); a metric's derived columns (e.g. semantic fidelity,
its slope, chunk-boundary discontinuity) stand right after it, so consistency is never read alone.
A value over fewer clips than its row's (the metric has no value on the others, e.g. a temporal metric
on a clip of one or two frames) is followed by ``(k/m)``, and the notes name those clips.
Reference values stand beside a column only under the rule of ``report.reference``; the others are
shown apart, in a second table, with the reason. Outputs: Markdown, LaTeX (booktabs, best bold,
second underlined, notes as comments), CSV and a self-contained HTML page
(the table alone; ``report.page`` puts the same HTML in the report's ``index.html``).
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

import numpy as np
import pandas as pd

from infvsr_bench.errors import ConfigError
from infvsr_bench.io.atomic import write_bytes
from infvsr_bench.report.columns import Direction
from infvsr_bench.report.coverage import Coverage, coverage, value_counts
from infvsr_bench.report.reference import place
from infvsr_bench.results.merge import Merged

AGGREGATIONS = ("clip_mean", "frame_weighted")


@dataclasses.dataclass
class Leaderboard:
    values: pd.DataFrame  # index: method; columns: MultiIndex (dataset, metric)
    directions: dict[str, Direction]  # column -> direction and ideal
    reported: set[str]  # reference rows (not measured, not ranked)
    aggregation: str
    notes: list[str]
    coverage: Coverage
    counts: pd.DataFrame  # like values: how many of the row's counted clips have a value (NaN: not measured)
    apart: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # reported values shown apart
    apart_protocols: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # row -> metric -> protocol

    def direction(self, metric: str) -> Direction:
        return self.directions.get(metric, Direction())

    def count_label(self, method: str, col: tuple[str, str]) -> str:
        """`` (k/m)`` when the value is over k of the row's m counted clips (the others have none), else ''."""
        k, row = self.counts.loc[method, col], self.coverage.rows.get((method, col[0]))
        return f" ({int(k)}/{len(row.counted)})" if row is not None and not np.isnan(k) and k < len(row.counted) else ""

    def marks(self) -> pd.DataFrame:
        """'best' / 'second' / '' per cell, among ranked rows (two at least), in each column's direction
        up to its ideal, on the values as displayed."""
        marks = pd.DataFrame("", index=self.values.index, columns=self.values.columns)
        for col in self.values.columns:
            ranked = [m for m in self.values.index if self.coverage.ranked(m, col[0])]
            series = self.values.loc[ranked, col].dropna()
            if len(series) < 2:
                continue
            shown = self.direction(col[1]).rank_key(pd.Series([float(_fmt(v, col[1])) for v in series],
                                                              index=series.index))
            shown = shown.sort_values(ascending=False)
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


def with_derived(metrics: list[str], catalogue: dict[str, dict[str, Any]]) -> list[str]:
    """``metrics``, each followed by the columns derived from it (unless listed already)."""
    out: list[str] = []
    for m in metrics:
        out += [m] if m not in out else []
        out += [c for c, info in catalogue.items() if info.get("parent") == m and c not in out and c not in metrics]
    return out


def _pivot(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame() if table.empty else table.pivot_table(
        index="method", columns=["dataset", "metric"], values="value", aggfunc="first", sort=False)


def leaderboard(merged: Merged, metrics: list[str] | None = None, aggregation: str = "clip_mean",
                reference: str | None = None) -> Leaderboard:
    """Build the table from merged runs (and optional reported reference values): every measured
    (method, dataset) has a row, values over the clips that count (see ``report.coverage``); each
    metric brings its derived columns."""
    metrics = with_derived(list(metrics or merged.metrics), merged.metrics)
    cov = coverage(merged)
    measured = list(dict.fromkeys(m for m, _ in cov.rows))
    datasets = list(dict.fromkeys(d for _, d in cov.rows))
    table = aggregate(cov.counted(merged.clips), metrics, aggregation)
    if not any(m in merged.metrics for m in metrics):
        raise ConfigError(f"no values for metrics {metrics} in the selected runs")
    reported: list[str] = []
    apart, apart_protocols = pd.DataFrame(), {}
    counts, count_notes = value_counts(merged, cov, metrics)
    notes = list(merged.notes) + cov.notes + count_notes
    directions = {m: Direction.of(merged.metrics.get(m, {})) for m in metrics}
    if reference:
        placement = place(reference, {m: merged.metrics[m] for m in metrics if m in merged.metrics}, datasets)
        reported = list(dict.fromkeys(placement.beside["method"]))
        table = pd.concat([t for t in (table, placement.beside) if not t.empty] or [table], ignore_index=True)
        apart, apart_protocols = _pivot(placement.apart), placement.apart_protocols
        directions.update({m: Direction(h) for m, h in placement.apart_higher_is_better.items() if m not in directions})
        notes += placement.notes
    values = _pivot(table)
    with_values = set(values.columns)
    order = [(d, m) for d in datasets for m in metrics  # a dataset without any value keeps its columns
             if (d, m) in with_values or (m in merged.metrics and not any(c[0] == d for c in with_values))]
    columns = pd.MultiIndex.from_tuples(order, names=["dataset", "metric"])
    values = values.reindex(index=measured + reported, columns=columns).astype(float)
    counts = counts.reindex(index=values.index, columns=columns).astype(float)
    return Leaderboard(values, directions, set(reported), aggregation, notes, cov, counts, apart, apart_protocols)


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if np.isinf(value):
        return "inf"
    return f"{value:.2f}" if abs(value) >= 10 or metric.split("@")[0] in ("psnr", "ewarp", "musiq") else f"{value:.4f}"


def _heading(lb: Leaderboard, dataset: str, metric: str, style: dict[str, Any]) -> str:
    """``<dataset> <metric> <arrow>``, and the ideal when the column has one."""
    direction = lb.direction(metric)
    esc = style["escape"]
    text = f"{esc(dataset)} {esc(metric)} {style['up'] if direction.higher_is_better else style['down']}"
    return text + (esc(f" (ideal {direction.ideal:g})") if direction.ideal is not None else "")


Cells = tuple[list[str], list[list[str]], list[str]]  # header, body rows, row labels


def _oriented(header: list[str], body: list[list[str]], labels: list[str], methods_as: str) -> Cells:
    return (labels, [list(r) for r in zip(*body)], header) if methods_as == "columns" else (header, body, labels)


def _cells(lb: Leaderboard, style: dict[str, Any], methods_as: str) -> Cells:
    """Header, body rows and row labels as text, for any output format: per dataset the clips
    column, then one column per metric."""
    marks = lb.marks()
    esc = style["escape"]
    header: list[str] = []
    body: list[list[str]] = [[] for _ in lb.values.index]
    for dataset in dict.fromkeys(d for d, _ in lb.values.columns):
        header.append(f"{esc(dataset)} clips")
        for row, method in zip(body, lb.values.index):
            row.append(esc(lb.coverage.label(method, dataset)))
        for col in [c for c in lb.values.columns if c[0] == dataset]:
            header.append(_heading(lb, *col, style))
            for row, method in zip(body, lb.values.index):
                text = _fmt(lb.values.loc[method, col], col[1])
                if text != "-" and method not in lb.reported and not lb.coverage.ranked(method, dataset):
                    text += style["unranked"]
                text += lb.count_label(method, col)
                mark = marks.loc[method, col]
                row.append(style[mark].format(text) if mark else text)
    labels = [style["reported"].format(esc(m)) if m in lb.reported else esc(m) for m in lb.values.index]
    return _oriented(header, body, labels, methods_as)


def _apart_cells(lb: Leaderboard, style: dict[str, Any], methods_as: str) -> Cells:
    """The reported values shown apart: one column per (dataset, metric); per reference a row of
    values, then a row saying each value's protocol."""
    esc = style["escape"]
    header = [_heading(lb, *col, style) for col in lb.apart.columns]
    body, labels = [], []
    for ref in lb.apart.index:
        protocols = lb.apart_protocols.get(ref, {})
        body += [[_fmt(lb.apart.loc[ref, col], col[1]) for col in lb.apart.columns],
                 [esc(protocols.get(m, "-")) for _, m in lb.apart.columns]]
        labels += [style["reported"].format(esc(ref)), style["reported"].format(esc(f"{ref}: protocol"))]
    return _oriented(header, body, labels, methods_as)


APART = ("Reported values shown apart: not computed with the protocol of any column above "
         "(reasons in the notes); never compare them with the measured rows.")


def _legend(lb: Leaderboard, style: dict[str, Any]) -> str:
    """The footnote of every format: aggregation, the coverage rule, the marks, the ideals. Its text goes
    through the format's escape like every name; only the format's own markup is inserted as is."""
    esc = style["escape"]
    return (esc(f"Aggregation: {lb.aggregation}. Clips: k/n, the clips finished of the n clips the dataset's runs "
                "were asked to do. Ranked rows are valued and ranked over the common clips, those every ranked "
                "method finished; ")
            + style["unranked"]
            + esc(" not ranked (partial: its job ended without every clip, or asked fewer; running: not finished; "
                  "first frames: max_frames cut its clips shorter than the ranked rows'; or no clip finished), valued "
                  "over its own finished clips and frames. (k/m) after a value: over the k of the row's m clips that "
                  "have one (the notes name the others, e.g. too short for a temporal metric). ")
            + f"{style['best'].format(esc('Best'))}, {style['second'].format(esc('second'))}"
            + esc(" among ranked rows, on the values as shown; a column with an ideal ranks every value past it as "
                  "the ideal (boundary ratio: 1, seams invisible; fidelity slope per 1,000 frames: 0, no drift). ")
            + style["reported"].format(esc("Italic"))
            + esc(" rows are reported by their papers, not measured here, and stand only beside columns computed "
                  "with their protocol."))


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "`": r"\textasciigrave{}"}
# Non-ASCII characters pdflatex typesets in its default setup (UTF-8 input, OT1 fonts): Latin-1 and
# Latin Extended-A letters but those OT1 lacks, and common punctuation.
LATEX_UNICODE = (frozenset(map(chr, range(0xA0, 0x180))) - frozenset("«»ÐÞðþĄąĐđĘęĦħĮįĸĿŀŉŊŋŦŧŲųſ")
                 | frozenset("–—‘’“”…•€™"))


def _latex_char(ch: str) -> str:
    if ch in LATEX_SPECIAL:
        return LATEX_SPECIAL[ch]
    if " " <= ch <= "~" or ch in LATEX_UNICODE:
        return ch
    return " " if ch.isspace() else f"[U+{ord(ch):04X}]"  # any other character: its code point, visibly


def latex_escape(text: str) -> str:
    """``text`` as pdflatex typesets it literally, whatever it holds (one pass, so no escape is escaped
    again): the only way any text (names, headings, captions) enters LaTeX output."""
    return "".join(map(_latex_char, text))


MARKDOWN = {"up": "↑", "down": "↓", "best": "**{}**", "second": "<u>{}</u>", "reported": "*{}*", "unranked": "†",
            "escape": lambda s: s.replace("|", "\\|")}
LATEX = {"up": r"$\uparrow$", "down": r"$\downarrow$", "best": r"\textbf{{{}}}", "second": r"\underline{{{}}}",
         "reported": r"\textit{{{}}}", "unranked": r"$^\dagger$", "escape": latex_escape}
HTML = {"up": "&uarr;", "down": "&darr;", "best": "<b>{}</b>", "second": "<u>{}</u>", "reported": "<i>{}</i>",
        "unranked": "&dagger;", "escape": lambda s: html.escape(s, quote=False)}


def _markdown_table(header: list[str], body: list[list[str]], labels: list[str]) -> list[str]:
    lines = ["| | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    return lines + [f"| {label} | " + " | ".join(row) + " |" for label, row in zip(labels, body)]


def to_markdown(lb: Leaderboard, methods_as: str = "rows") -> str:
    lines = _markdown_table(*_cells(lb, MARKDOWN, methods_as)) + ["", _legend(lb, MARKDOWN)]
    if not lb.apart.empty:
        lines += ["", APART, "", *_markdown_table(*_apart_cells(lb, MARKDOWN, methods_as))]
    return "\n".join(lines + [""] + [f"- {n}" for n in lb.notes]) + "\n"


def _latex_table(cells: Cells, corner: str, caption: str) -> list[str]:
    header, body, labels = cells
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * len(header) + "}", r"\toprule",
             " & ".join([corner, *header]) + r" \\", r"\midrule"]
    lines += [" & ".join([label, *row]) + r" \\" for label, row in zip(labels, body)]
    return lines + [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}"]


def to_latex(lb: Leaderboard, methods_as: str = "rows") -> str:
    """A booktabs table (and one for reported values shown apart) that pdflatex compiles whatever the
    names hold; the notes follow as comments (one line each, never typeset), so the source says what
    the caption cannot."""
    corner = "Method" if methods_as == "rows" else "Metric"
    lines = _latex_table(_cells(lb, LATEX, methods_as), corner, _legend(lb, LATEX))
    if not lb.apart.empty:
        lines += _latex_table(_apart_cells(lb, LATEX, methods_as), corner, latex_escape(APART))
    lines += [f"% {' '.join(n.splitlines())}" for n in lb.notes]
    return "\n".join(lines) + "\n"


def to_csv(lb: Leaderboard) -> str:
    """Values per dataset/metric, each followed by how many clips have one (``<dataset>/<metric>/clips``), and
    per dataset the clips finished (k/n) and whether the row is ranked;
    reported values shown apart follow in their own rows and ``<dataset>/<metric> (apart)`` columns."""
    flat = pd.DataFrame(index=lb.values.index)
    for d, m in lb.values.columns:
        flat[f"{d}/{m}"], flat[f"{d}/{m}/clips"] = lb.values[(d, m)], lb.counts[(d, m)].astype("Int64")
    for dataset in reversed(list(dict.fromkeys(d for d, _ in lb.values.columns))):
        flat.insert(0, f"{dataset}/ranked", [lb.coverage.ranked(m, dataset) for m in flat.index])
        flat.insert(0, f"{dataset}/clips", [lb.coverage.label(m, dataset) for m in flat.index])
    flat.insert(0, "reported", [m in lb.reported for m in flat.index])
    if not lb.apart.empty:
        apart = lb.apart.copy()
        apart.columns = [f"{d}/{m} (apart)" for d, m in apart.columns]
        flat = pd.concat([flat, apart.assign(reported=True)])
    return flat.to_csv()


def _html_table(cells: Cells) -> str:
    header, body, labels = cells
    head = "".join(f"<th>{h}</th>" for h in header)
    rows = "".join(f"<tr><th>{label}</th>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for label, row in zip(labels, body))
    return f"<table><tr><th></th>{head}</tr>{rows}</table>"


HTML_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
              "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:right}th:first-child{text-align:left}")


def html_page(title: str, body: str, style: str = "") -> str:
    """A complete, self-contained HTML document: ``body`` under an ``<h1>`` of ``title`` (escaped here). No script
    may run (the page needs none, and a name that slipped through unescaped could not act); the icon is empty,
    so a browser asks the folder for none."""
    return (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"script-src 'none'; object-src 'none'\">"
            f"<link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def html_leaderboard(lb: Leaderboard, methods_as: str = "rows") -> str:
    """The leaderboard as HTML: the table, its legend, the values shown apart and the notes (every page that
    shows a leaderboard shows this)."""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in lb.notes)
    apart = "" if lb.apart.empty else f"<p>{html.escape(APART)}</p>{_html_table(_apart_cells(lb, HTML, methods_as))}"
    return f"{_html_table(_cells(lb, HTML, methods_as))}<p>{_legend(lb, HTML)}</p>{apart}<ul>{notes}</ul>"


def to_html(lb: Leaderboard, methods_as: str = "rows", title: str = "infvsr-bench leaderboard") -> str:
    return html_page(title, html_leaderboard(lb, methods_as))


def write_all(lb: Leaderboard, out: Any, methods_as: str = "rows") -> list[str]:
    """leaderboard.md/.tex/.csv/.html in folder ``out``; returns the file names."""
    files = {"leaderboard.md": to_markdown(lb, methods_as), "leaderboard.tex": to_latex(lb, methods_as),
             "leaderboard.csv": to_csv(lb), "leaderboard.html": to_html(lb, methods_as)}
    for name, text in files.items():
        write_bytes(out / name, text.encode("utf-8"))
    return list(files)
