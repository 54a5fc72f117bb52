"""Issue #23 point 5: one page to read a report (``index.html``): the leaderboard, every figure with its
caption and files, the notes and each run's provenance, self-contained and escaped; loaded in a real
headless Chromium over the DevTools protocol (``--remote-debugging-pipe``: no package needed)."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import select
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from test_report import BROWSERS, _Dom, make_run

from infvsr_bench.app.cli import main
from infvsr_bench.results.record import RunRecord, read_run_record, write_run_record

HOSTILE = "<img src=x onerror=alert(1)>&\"'"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32  # a weights file's checksum as a record holds it
RECIPE = "cd" * 32


def _record(path: Path, **changes) -> None:
    """Set fields of a run folder's run.json (what a real job records: protocols, checksums, the commit)."""
    record = read_run_record(path).to_dict()
    for key, value in changes.items():
        record[key] = value if not isinstance(value, dict) else {**record[key], **value}
    write_run_record(path, RunRecord.from_dict(record))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of three runs: A (pretrained weights with a checksum, a commit), B, and the hostile name,
    asked two of the three clips (partial, so unranked)."""
    tmp_path = tmp_path_factory.mktemp("report")
    runs = tmp_path / "runs"
    clips = {"c1": [29.0, 31.0], "c2": [20.0] * 4, "c3": [25.0] * 3}
    lpips = {"c1": [0.2, 0.2], "c2": [0.4] * 4, "c3": [0.3] * 3}
    a = make_run(runs, "A", clips, lpips, fps=50, params=10**6, recipe=RECIPE)
    b = make_run(runs, "B", {c: [v + 1 for v in vs] for c, vs in clips.items()}, lpips, fps=5, recipe=RECIPE)
    hostile = make_run(runs, HOSTILE, {c: clips[c] for c in ("c1", "c2")}, lpips, fps=1, recipe=RECIPE)
    for run in (a, b, hostile):  # the protocol a real PSNR records
        metrics = read_run_record(run).metrics
        _record(run, metrics=[{**m, "protocol": "basicsr"} if m["column"] == "psnr" else m for m in metrics])
    _record(a, method={"weights": "pretrained", "weights_sha256": {"model.safetensors": SHA}},
            environment={"packages": {"infvsr-bench": "0.3.1"}, "git": {"commit": COMMIT, "dirty": False}})
    out = tmp_path / "rep"
    assert main(["report", str(runs), f"out={out}", "metrics=[psnr,lpips]"]) == 0
    return out


def _files(report: Path) -> set[str]:
    """What the page must link: each figure's PNG, PDF and CSV, and the leaderboard's files."""
    return ({f"{p.stem}.{ext}" for p in report.glob("*.png") for ext in ("png", "pdf", "csv")}
            | {f"leaderboard.{ext}" for ext in ("md", "tex", "csv", "html")})


def test_index_links_every_figure_and_file_relatively_and_escapes_every_name(report):
    html = (report / "index.html").read_text()
    page = _Dom(html)
    figures = sorted(p.stem for p in report.glob("*.png"))
    assert figures and "speed_vs_psnr_toy" in figures
    # Every figure: its image, and links to its PNG, PDF and CSV; nothing else but the leaderboard's files.
    assert sorted(Path(unquote(src)).stem for src in page.images) == figures
    assert {unquote(h) for h in page.links} == _files(report)
    for ref in [*page.links, *page.images]:  # relative, and beside the page: readable offline, moved as a folder
        assert not urlsplit(ref).scheme and not urlsplit(ref).netloc and not ref.startswith("/"), ref
        assert (report / unquote(ref)).is_file(), ref
    assert page.scripts == 0 and "://" not in html and "http" not in html.replace("http-equiv", "")
    # The hostile name is text everywhere (table, legend of no figure, provenance), never markup.
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;&amp;" in html
    text = "".join(page.text)
    assert text.count(HOSTILE) >= 2  # its leaderboard row and its provenance
    # The leaderboard is the one leaderboard.html shows (one rendering, no second page to diverge).
    board = _Dom((report / "leaderboard.html").read_text()).tables[0]
    assert page.tables[0] == board
    row = next(r for r in board if r[0] == HOSTILE)
    assert row[1] == "2/3 partial" and row[2].endswith("†")  # unranked, marked as the table marks it
    assert "not ranked" in text  # the legend that says what † means
    assert "c3 missing: not run" in text  # the note naming the clip the partial run never did


def test_index_gives_each_runs_provenance(report):
    text = " ".join(" ".join(_Dom((report / "index.html").read_text()).text).split())
    section = text[text.index("Runs"):]
    a = section[section.index("A on toy"):section.index("B on toy")]
    facts = (COMMIT, "infvsr-bench 0.3.1", "pretrained", f"model.safetensors {SHA}", "toy x4", RECIPE, "3/3 clips",
             "psnr: psnr version 1.0, protocol basicsr",
             "lpips: lpips version 1.0, protocol not recorded, weights pretrained")
    for fact in facts:
        assert fact in a, fact
    hostile = section[section.index(f"{HOSTILE} on toy"):section.index("A on toy")]  # rows in table order
    assert "git commit not recorded" in hostile and "complete, 2/2 clips" in hostile  # the 2 clips it was asked


# --- the page in a real browser ---------------------------------------------------------------------------

class _DevTools:
    """A headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4, NUL-separated JSON)."""

    def __init__(self, browser: str, profile: Path) -> None:
        commands, self._to_browser = os.pipe()
        self._from_browser, replies = os.pipe()

        def on_fds_3_and_4() -> None:  # in the child: the pipe ends become fds 3 and 4, inherited
            read, write = os.dup(commands), os.dup(replies)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1200,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
            preexec_fn=on_fds_3_and_4)  # noqa: PLW1509 (safe: started before the test starts any thread)
        os.close(commands)
        os.close(replies)
        self.events: list[dict] = []
        self._buffer, self._id, self.session = b"", 0, None

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "no answer from the browser within the time allowed"
            chunk = os.read(self._from_browser, 1 << 16)
            assert chunk, "the browser closed its DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        """Send a command and return its result; events that arrive meanwhile are kept in ``events``."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        os.write(self._to_browser, json.dumps({**message, **({"sessionId": self.session} if self.session else {})})
                 .encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._receive(deadline))

    def close(self) -> None:
        try:
            self._id += 1
            os.write(self._to_browser, json.dumps({"id": self._id, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


# Run in the page once loaded: each image decoded, each link fetched (what a reader's click would get).
CHECK = """(async () => {
  const images = [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
  const links = await Promise.all([...document.querySelectorAll('a[href]')].map(async a => {
    const r = await fetch(a.href); const body = await r.arrayBuffer();
    return {href: a.getAttribute('href'), status: r.status, bytes: body.byteLength};
  }));
  return {images, links, text: document.body.innerText};
})()"""


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_index_loads_in_headless_chromium_without_errors(report, tmp_path):
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        pytest.skip(f"no headless Chromium-family browser installed (looked for {', '.join(BROWSERS)}; "
                    "Debian: chromium, as .ci/run installs)")
    chrome = _DevTools(browser, tmp_path / "profile")  # started before the server's thread (it forks)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(report)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = chrome.call("Target.createTarget", url="about:blank")["targetId"]
        chrome.session = chrome.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            chrome.call(f"{domain}.enable")
        chrome.call("Page.navigate", url=f"http://127.0.0.1:{server.server_address[1]}/index.html")
        chrome.wait_for("Page.loadEventFired")
        found = chrome.call("Runtime.evaluate", expression=CHECK, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in found, found
        found = found["result"]["value"]
        shot = base64.b64decode(chrome.call("Page.captureScreenshot", format="png")["data"])
    finally:
        chrome.close()
        server.shutdown()
        server.server_close()
    errors = [e["params"] for e in chrome.events if e.get("method") in (
        "Runtime.exceptionThrown", "Network.loadingFailed", "Page.javascriptDialogOpening")
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    figures = sorted(p.name for p in report.glob("*.png"))
    assert sorted(i["src"] for i in found["images"]) == figures and all(i["ok"] for i in found["images"])
    assert {unquote(link["href"]) for link in found["links"]} == _files(report)
    assert all(link["status"] == 200 and link["bytes"] > 0 for link in found["links"]), found["links"]
    assert HOSTILE in found["text"]
    (tmp_path / "index.png").write_bytes(shot)
    width, height = _png_size(shot)
    assert 800 <= width <= 4000 and 600 <= height <= 4000 and len(shot) > 10_000
