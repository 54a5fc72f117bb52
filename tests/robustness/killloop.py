"""The fault harness of the robustness tests: a command of ours as a real process, killed with SIGKILL at
seeded random moments of its work or just before it renames chosen work in progress into place, with its
writes recorded from Python's audit events; and checks that every file it leaves is complete (parses as
its kind) or absent, that nothing is written in place, and that a re-run leaves what is finished untouched."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Names our writers give work in progress (io.atomic: results, leases, io.writers, training checkpoints; the builder).
TEMP_MARKERS = (".tmp-", ".partial-", ".building-", ".replaced-")


def command_env() -> dict[str, str]:
    """This checkout first on the path, one thread, offline, reproducible PDF dates."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SOURCE_DATE_EPOCH": "0"}


@dataclass
class Outcome:
    """How a command ended: its exit code (None when it was killed), its output, and its timing."""

    returncode: int | None
    output: str
    seconds: float  # from the start to the exit or the kill
    first_write: float | None  # from the start until something under the watched folder first changed
    last_write: float | None  # ... last changed

    @property
    def work_seconds(self) -> float:
        """From the first write to the last: the window the kills are drawn from."""
        return (self.last_write or 0.0) - (self.first_write or 0.0)


def _mtimes(folder: Path) -> list[float]:
    """Modification times of everything under ``folder`` (itself included)."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files, "."):
            try:
                out.append(os.stat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
    return out


# Runs the command under Python's audit hooks. With a marker it SIGKILLs itself when about to rename a file
# whose name holds the marker into place (the event of os.rename / os.replace): work in progress written
# whole, not yet renamed. With an audit log it records, for files under the watched folder, each open for
# writing ("write <mode> <path>") and each rename into it ("rename <path>"), paths relative to that folder.
_BOOTSTRAP = """
import os, signal, sys
marker, audit, watch, args = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3]), sys.argv[4:]
log = open(audit, "a") if audit else None
def inside(path):
    path = os.path.realpath(str(path))
    return os.path.relpath(path, watch) if path.startswith(watch + os.sep) else None
def hook(event, event_args):
    if event == "os.rename" and marker and marker in os.path.basename(str(event_args[0])):
        os.kill(os.getpid(), signal.SIGKILL)
    if log is None or event not in ("open", "os.rename") or not isinstance(event_args[0], (str, bytes, os.PathLike)):
        return
    if event == "open":
        mode, flags, path = event_args[1] or "", event_args[2] or 0, inside(event_args[0])
        if path and (any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR)):
            log.write(f"write {mode or flags} {path}\\n"); log.flush()
    elif inside(event_args[1]):
        log.write(f"rename {inside(event_args[1])}\\n"); log.flush()
sys.addaudithook(hook)
from infvsr_bench.app.cli import main
sys.exit(main(args))
"""


def start(args: list[str], watch: Path, kill_after: float | None = None, kill_at_rename: str = "",
          audit: Path | None = None, audit_root: Path | None = None, timeout: float = 300) -> Outcome:
    """Run ``infvsr_bench <args>`` (the CLI's ``main`` in a fresh interpreter); with ``kill_after``, SIGKILL it
    that many seconds after its first write under ``watch`` (or let it finish if it ends sooner); with
    ``kill_at_rename``, it SIGKILLs itself just before renaming work in progress with that in its name into
    place; with ``audit``, its writes under ``audit_root`` (default ``watch``) are appended there (``audited``)."""
    with tempfile.TemporaryFile() as log:
        began = time.time()
        bootstrap = [sys.executable, "-c", _BOOTSTRAP, kill_at_rename, str(audit or ""), str(audit_root or watch)]
        proc = subprocess.Popen([*bootstrap, *args],
                                cwd=REPO, env=command_env(), stdout=log, stderr=subprocess.STDOUT)
        first_write = None
        try:
            while proc.poll() is None and first_write is None and time.time() - began < timeout:
                if watch.exists() and max(_mtimes(watch), default=0.0) >= began:
                    first_write = time.time() - began
                else:
                    time.sleep(0.005)
            try:
                wait = timeout if kill_after is None else kill_after
                returncode: int | None = proc.wait(timeout=wait)
                if returncode == -signal.SIGKILL:
                    returncode = None  # it killed itself (kill_at_rename)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL to this one process (ours): nothing of it runs afterwards
                proc.wait()
                returncode = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.time() - began
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    last = max(_mtimes(watch), default=0.0) if watch.exists() else 0.0
    return Outcome(returncode, output, seconds, first_write, last - began if last >= began else None)


def audited(audit: Path) -> tuple[list[str], set[str]]:
    """From an audit log: the files opened for writing under a final name (not work in progress), as
    "<mode> <path>", where a kill leaves them torn; and the paths something was renamed to."""
    events = [e.split(" ", 1) for e in audit.read_text().splitlines()]
    writes = sorted({rest for kind, rest in events if kind == "write"
                     and not any(m in Path(rest.split(" ", 1)[1]).name for m in TEMP_MARKERS)})
    return writes, {rest for kind, rest in events if kind == "rename"}


def kill_fractions(seed: int, n: int) -> list[float]:
    """``n`` reproducible kill moments as fractions of the work window (a little past its end included): one
    drawn uniformly in each of ``n`` equal strata of [0, 1.1), so they spread over the whole window, in a
    seeded random order."""
    rng = random.Random(seed)
    fractions = [round(1.1 * (i + rng.random()) / n, 3) for i in range(n)]
    rng.shuffle(fractions)
    return fractions


def check_file(path: Path) -> int | None:
    """Read ``path`` as its kind says (raises when torn); a video's frame count, else None."""
    suffix = path.suffix
    if suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".jsonl":
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            raise ValueError("the last line is cut")
        for line in text.splitlines():
            json.loads(line)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.read_table(path)
    elif suffix == ".csv":
        import pandas as pd

        pd.read_csv(path)
    elif suffix == ".safetensors":
        from safetensors.torch import load_file

        load_file(str(path))
    elif suffix in (".mkv", ".mp4"):
        import av

        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            image.load()
    elif suffix == ".pdf":
        data = path.read_bytes()
        if not data.startswith(b"%PDF") or not data.rstrip().endswith(b"%%EOF"):
            raise ValueError("not a whole PDF")
    elif suffix == ".html":
        if not path.read_text(encoding="utf-8").rstrip().endswith("</html>"):
            raise ValueError("not a whole HTML page")
    elif suffix in (".md", ".tex", ".log", ".txt", ".yaml"):
        path.read_text(encoding="utf-8")
    else:
        raise ValueError(f"no check for {suffix!r} files")
    return None


def torn_files(root: Path, video_frames: dict[str, int] | None = None) -> list[str]:
    """Every visible file under ``root`` that is torn (does not parse, or a video short of its ``video_frames[stem]``
    frames), and every visible file named like work in progress. Hidden names (work in progress, Hydra's
    ``.hydra``) are never read as results."""
    problems = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if any(marker in path.name for marker in TEMP_MARKERS):
            problems.append(f"{rel}: work in progress under a result's name")
            continue
        try:
            frames = check_file(path)
        except Exception as exc:  # any failure to read is the finding
            problems.append(f"{rel}: {type(exc).__name__}: {exc}")
            continue
        if frames is not None and video_frames is not None and frames != video_frames.get(path.stem):
            problems.append(f"{rel}: {frames} frames, expected {video_frames.get(path.stem)}")
    return problems


def leftovers(root: Path) -> list[str]:
    """Work in progress left under ``root`` (hidden temp files and folders of our writers)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if any(m in p.name for m in TEMP_MARKERS))


def snapshot(paths: list[Path]) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime, size) of each existing file: any rewrite changes it."""
    out = {}
    for path in paths:
        if path.is_file():
            st = path.stat()
            out[str(path)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def changed(before: dict[str, tuple[int, int, int]]) -> list[str]:
    """The files of ``before`` that were rewritten or removed since."""
    now = snapshot([Path(p) for p in before])
    return sorted(p for p in before if now.get(p) != before[p])
