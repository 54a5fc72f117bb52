"""The report's one page, ``index.html``: the leaderboard (the HTML of ``leaderboard.html``, with its coverage
marks and notes), every figure with its caption and its PNG, PDF and CSV, and each run's provenance.

It lies beside the files it links and links them relatively, fetches nothing from elsewhere and runs no
script, so the folder reads offline and can be moved whole. Every name, note and caption is escaped."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from infvsr_bench.io.atomic import write_bytes
from infvsr_bench.report.figure import Figure
from infvsr_bench.report.tables import Leaderboard, html_leaderboard, html_page
from infvsr_bench.results.merge import Run

PAGE = "index.html"
STYLE = ("figure{margin:2em 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}"
         "figcaption{max-width:900px}table.run td{text-align:left;font-family:monospace;overflow-wrap:anywhere}"
         "table.run{max-width:1100px}")


def _link(name: str, text: str) -> str:
    """A link to the report's own file ``name`` (beside the page)."""
    return f'<a href="{escape(quote(name))}">{escape(text)}</a>'


def figure_html(figure: Figure) -> str:
    """The figure (its PNG, linked), its title and caption, and links to its PNG, PDF and CSV."""
    src = escape(quote(figure.png))
    caption = "" if figure.caption == figure.title else f" {escape(figure.caption)}"
    files = " · ".join(_link(name, Path(name).suffix[1:].upper()) for name in figure.files)
    return (f'<figure><a href="{src}"><img src="{src}" alt="{escape(figure.title)}"></a>'
            f"<figcaption><b>{escape(figure.title)}</b>{caption} ({files})</figcaption></figure>")


def _weights(kind: str | None, sha256: dict | None) -> str:
    """A weights kind (none, pretrained, tiny, ...) and each of its files' checksum, as the record holds them."""
    files = "; ".join(f"{name} {digest}" for name, digest in (sha256 or {}).items())
    return (kind or "not recorded") + (f" ({files})" if files else "")


def provenance(run: Run) -> list[tuple[str, str]]:
    """What a reader needs to trace one row to how it was made, from its run record: (label, text)."""
    record, method = run.record, run.record.method
    git = record.environment.get("git") or {}
    code = (record.environment.get("packages") or {}).get("infvsr-bench")
    commit = (f"git commit {git['commit']}" + (" with uncommitted changes" if git.get("dirty") else "")
              if git.get("commit") else "git commit not recorded")
    metrics = [f"{m['column']}: {m.get('metric')} version {m.get('version')}, protocol "
               f"{m.get('protocol') or 'not recorded'}, weights {_weights(m.get('weights'), m.get('weights_sha256'))}"
               for m in record.metrics]
    data = record.dataset
    content = (f"recipe sha256 {data.recipe_sha256}" if data.recipe_sha256 else
               f"folder content digest {data.content_digest}" if data.content_digest else "no content id recorded")
    return [
        ("run folder", str(run.path)),
        ("run name", str(record.config.get("run_name") or "not recorded")),
        ("status", f"{record.status.value}, {run.clips_done}/{len(data.clips)} clips"),
        ("method", f"{method.get('name')} version {method.get('version') or 'not recorded'}"),
        ("weights", _weights(method.get("weights"), method.get("weights_sha256"))),
        ("code", f"infvsr-bench {code or 'version not recorded'}, {commit}"),
        ("metrics", "\n".join(metrics)),
        ("dataset", f"{data.name} x{data.scale}" + (f" ({data.kind})" if data.kind else "") + f", {content}"),
        ("fingerprint", record.fingerprint),
    ]


def run_html(run: Run) -> str:
    """A run's provenance as a heading (its row and dataset, as the leaderboard names them) and a table."""
    rows = "".join(f"<tr><th>{escape(label)}</th><td>{'<br>'.join(map(escape, text.splitlines()))}</td></tr>"
                   for label, text in provenance(run))
    return f"<h3>{escape(run.method)} on {escape(run.dataset)}</h3><table class='run'>{rows}</table>"


def write_page(out: Path, board: Leaderboard, figures: list[Figure], runs: list[Run], tables: list[str],
               methods_as: str = "rows") -> str:
    """Write ``index.html`` into the report folder ``out`` (beside ``tables`` and the figures' files it links);
    returns its name."""
    shown = "".join(map(figure_html, figures)) or "<p>None (plots=false, or nothing to draw).</p>"
    body = (f"<h2>Leaderboard</h2><p>Files: {' · '.join(_link(name, name) for name in tables)}</p>"
            f"{html_leaderboard(board, methods_as)}<h2>Figures</h2>{shown}"
            f"<h2>Runs</h2><p>Each row's run: where it lies, what ran, on which code, weights and data.</p>"
            + "".join(map(run_html, runs)))
    write_bytes(out / PAGE, html_page("infvsr-bench report", body, STYLE).encode("utf-8"))
    return PAGE
