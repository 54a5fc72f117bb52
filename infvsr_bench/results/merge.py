"""Read run folders into one tidy table, keeping apart what must not share a column.

Two runs share a metric column only when the metric's name, version, protocol and every setting
agree; otherwise the column gets a variant suffix and the reason is reported. The scalar columns a
metric derives beside its own (``report.columns``) follow their parent: they split with it, with
the same suffix (``<derived>@<suffix>``), and come right after it in the catalogue, as a variant
comes right after its base column. Runs of one dataset built from different recipes
(``recipe_sha256``), or read from folders of other content (``content_digest``: other LR/GT folders,
changed files), are different data: the dataset is shown apart per data (``name@<hash>``). Re-runs, runs of one ``RunKey`` (the identity resume uses: format version and run
fingerprint, so the same method, dataset, data and config, whatever their run_name), are decided by completeness, never by time alone: a finished run beats an unfinished one, then more
finished clips, then more clips asked; the newer wins only an exact tie. Every row is then one run
identity: runs that would share a display name on a dataset are shown apart, each named by its
fingerprint (``name@<fingerprint>``). Random-weight results are refused; a run whose tables cannot be
read is left out, and clip rows computed under another run fingerprint are, with a note each. A run that did
not finish (no tables, or tables older than its clips) is read from its clip folders, with a note.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from infvsr_bench.errors import ConfigError
from infvsr_bench.report.columns import derived_columns, derived_info
from infvsr_bench.results.record import (RUN_FILE, RunKey, RunRecord, RunStatus, identity_differences, is_run_folder,
                                         read_run_record, read_table)
from infvsr_bench.results.store import RunTables, build_tables, tables_behind
from infvsr_bench.weights import WeightsKind

T = TypeVar("T")
FINISHED = (RunStatus.COMPLETE, RunStatus.COMPLETE_WITH_FAILURES)  # statuses of a job that ended


@dataclasses.dataclass
class Run:
    """One run folder: its record and its per-clip table."""

    path: Path
    record: RunRecord
    clips: pd.DataFrame  # clips.parquet: a row per clip (ok / failed with the reason); metric columns as merged
    alias: str | None = None  # set when runs of different identities would otherwise share a display name
    dataset_alias: str | None = None  # set when runs of one dataset name are on different data
    built: RunTables | None = None  # its tables as built in memory from its clip folders (it did not finish)

    @property
    def method(self) -> str:
        """Display name (the method's label, else the run name, else the method); tiny weights are
        labelled so, never with the paper model's name."""
        if self.alias:
            return self.alias
        info = self.record.method
        label = info.get("config", {}).get("label") or self.record.config.get("run_name") or info["name"]
        return f"{label}-tiny" if info.get("weights") == WeightsKind.TINY else label

    @property
    def dataset(self) -> str:
        return self.dataset_alias or self.record.dataset.name

    @property
    def is_finished(self) -> bool:
        """The job ended (complete, with or without failed clips); a killed or running job has not."""
        return self.record.status in FINISHED and bool(self.record.finished)

    @property
    def clips_done(self) -> int:
        """Clips finished ok among those the run was asked to do."""
        ok = self.clips.loc[self.clips["status"] == "ok", "clip"] if len(self.clips) else []
        return len(set(ok) & set(self.record.dataset.clips))

    @property
    def time(self) -> str:
        return self.record.finished or self.record.started

    def completeness(self) -> tuple[bool, int, int]:
        """What decides between re-runs, in order: finished, clips finished ok, clips asked."""
        return self.is_finished, self.clips_done, len(self.record.dataset.clips)


@dataclasses.dataclass
class Merged:
    """Per-frame and per-clip values of many runs, plus the metric catalogue and what was set apart."""

    frames: pd.DataFrame  # run, method, dataset, clip, frame, <metric columns>
    clips: pd.DataFrame  # run, method, dataset, clip, frames, <metric clip values>, method_fps, ...
    curves: pd.DataFrame  # run, method, dataset, clip, metric, curve, x, value, count
    metrics: dict[str, dict[str, Any]]  # column -> info (higher_is_better, version, settings; parent if derived)
    runs: list[Run]
    notes: list[str]


def find_runs(patterns: list[str]) -> list[Path]:
    """Run folders (holding a run record) matched by paths or globs, searched recursively."""
    found: set[Path] = set()
    for pattern in patterns:
        for hit in glob.glob(str(Path(pattern).expanduser()), recursive=True) or [pattern]:
            p = Path(hit)
            if is_run_folder(p):
                found.add(p.resolve())
            elif p.is_dir():
                found.update(q.parent.resolve() for q in p.rglob(RUN_FILE))
    if not found:
        raise ConfigError(f"no run folders (with {RUN_FILE}) under {patterns}")
    return sorted(found)


# What must agree for two runs to share a column; ``score_through`` is the run's (lossless or the
# authors' lossy encode before scoring), which changes every value of the run.
IDENTITY = ("metric", "version", "protocol", "settings", "score_through")


def _metric_key(info: dict[str, Any]) -> str:
    return json.dumps({k: info.get(k) for k in IDENTITY}, sort_keys=True)


def _variant_suffix(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def _why_chosen(chosen: Run, other: Run) -> str:
    """The first criterion of ``Run.completeness`` (then time) that sets the chosen run apart."""
    (fin_a, done_a, asked_a), (fin_b, done_b, asked_b) = chosen.completeness(), other.completeness()
    if fin_a != fin_b:
        return "it finished, this one did not"
    if done_a != done_b:
        return f"more clips finished ({done_a} vs {done_b})"
    if asked_a != asked_b:
        return f"more clips asked ({asked_a} vs {asked_b})"
    return "equally complete and newer"


def _noted(path: Path, notes: list[str], read: Callable[[], T]) -> T | None:
    """What ``read`` returns; None, with a note naming ``path``, when a parquet table it reads cannot be read."""
    try:
        return read()
    except ConfigError as exc:  # written by another format version
        notes.append(f"skipped: {exc}")
        return None
    except (OSError, ValueError, pa.ArrowException) as exc:
        text = str(exc).strip()
        notes.append(f"{path}: skipped, unreadable ({text.splitlines()[0] if text else type(exc).__name__})")
        return None


def _read_table(path: Path, notes: list[str]) -> pd.DataFrame | None:
    """A run's parquet table; None, with a note naming the file, when it cannot be read."""
    return _noted(path, notes, lambda: read_table(path))


def _read_run(path: Path, notes: list[str]) -> Run | None:
    """The run in ``path``, or None with a note saying why it is left out."""
    try:
        run = Run(path, read_run_record(path), pd.DataFrame())
        name = run.method
    except ConfigError as exc:
        notes.append(f"skipped: {exc}")
        return None
    except KeyError as exc:
        notes.append(f"{path}: skipped, run.json has no usable method name ({exc})")
        return None
    if tables_behind(path, run.record.dataset.clips):
        # built by the code merge writes them with, in memory: report never writes into a run folder
        run.built = _noted(path, notes, lambda: build_tables(path, run.record.dataset.clips, run.record.key))
        if run.built is None:
            return None
    if not (path / "clips.parquet").exists() and (run.built is None or not len(run.built.clips)):
        notes.append(f"{path}: skipped, no results yet")
        return None
    if run.record.method.get("weights") == WeightsKind.RANDOM:
        notes.append(f"{path}: refused, method {name} ran with random weights")
        return None
    random_metrics = [m["column"] for m in run.record.metrics if m.get("weights") == WeightsKind.RANDOM]
    if random_metrics:
        notes.append(f"{path}: refused, metric(s) {random_metrics} ran with random weights")
        return None
    if run.built is not None:
        notes.append(f"{path}: tables rebuilt from its clip folders: the run did not finish")
        notes += [f"{path}: left out {clip}: {why}" for clip, why in run.built.foreign.items()]
    clips = run.built.clips if run.built is not None else _read_table(path / "clips.parquet", notes)
    if clips is None:
        return None
    if "fingerprint" in clips:  # a worker of another run rebuilt the tables after this record was written
        foreign = clips["fingerprint"] != run.record.fingerprint
        if foreign.any():
            notes.append(f"{path}: left out {', '.join(clips.loc[foreign, 'clip'])}: computed under another run "
                         f"fingerprint than the record's ({run.record.fingerprint[:10]}); merge the folder again")
        clips = clips[~foreign]
    run.clips = clips
    return run


def _frames_and_curves(run: Run, notes: list[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None] | None:
    """The run's per-frame and curve tables (None where it has none); None when one cannot be read."""
    if run.built is not None:
        return run.built.frames, run.built.curves
    tables = []
    for path in (run.path / "frames.parquet", run.path / "curves.parquet"):
        table = _read_table(path, notes) if path.exists() else None
        if table is None and path.exists():
            return None
        tables.append(table)
    return tables[0], tables[1]


def _name_runs_apart(runs: list[Run], notes: list[str]) -> None:
    """Runs of different identities that would share a row (one display name on one dataset) get a row
    each, named by the shortest fingerprint prefix (8 hex digits at least) that tells them apart."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.method, run.dataset), []).append(run)
    for (name, dataset), group in groups.items():
        if len(group) < 2:
            continue
        width = 8
        while len({r.record.fingerprint[:width] for r in group}) < len(group) and width < 64:
            width += 1
        for run in group:
            run.alias = f"{name}@{run.record.fingerprint[:width]}"
        first = group[0].record.identity
        differs = sorted({d for r in group[1:] for d in identity_differences(first, r.record.identity)})
        shown = ", ".join(differs[:4]) + (f" and {len(differs) - 4} more" if len(differs) > 4 else "")
        notes.append(f"{name} on {dataset}: {len(group)} runs named {name} with different settings"
                     + (f" (they differ in {shown})" if differs else "") + "; one row each: "
                     + ", ".join(f"{r.method} ({r.path})" for r in group))


def _name_recipes_apart(runs: list[Run], notes: list[str]) -> None:
    """Runs of one dataset name on different data (recipe, or folder content digest) get it shown apart."""
    recipes: dict[str, set[str | None]] = {}
    for run in runs:
        recipes.setdefault(run.record.dataset.name, set()).add(run.record.dataset.content_id)
    for name, found in recipes.items():
        if len(found) < 2:
            continue
        labels = {r: f"{name}@{r[:8] if r else 'unidentified'}" for r in found}
        notes.append(f"{name}: runs come from {len(found)} different data (dataset recipe_sha256 or folder "
                     f"content_digest); shown apart as {', '.join(sorted(labels.values()))}")
        for run in runs:
            if run.record.dataset.name == name:
                run.dataset_alias = labels[run.record.dataset.content_id]


def _catalogue(runs: list[Run], notes: list[str]) -> tuple[dict[str, dict[str, Any]], dict[Path, dict[str, str]]]:
    """One column per (metric, version, protocol, settings), each followed by its derived columns;
    disagreeing variants get their own columns. Returns the catalogue and each run's renames."""
    parents: dict[str, dict[str, Any]] = {}
    derived: dict[str, dict[str, dict[str, Any]]] = {}  # parent column -> derived column -> info
    keys: dict[str, str] = {}
    renames: dict[Path, dict[str, str]] = {}
    for run in runs:
        renames[run.path] = {}
        for info in run.record.metrics:
            col = info["column"]
            lossy = run.record.identity.get("score_through")  # name and version; none: lossless or version 1
            key = _metric_key({**info, "score_through": lossy or run.record.config.get("score_through", "lossless")})
            keys.setdefault(col, key)
            suffix = "" if keys[col] == key else f"@{_variant_suffix(key)}"
            own = derived_columns(info, run.clips.columns)
            renames[run.path].update({name: name + suffix for name in [col, *own]} if suffix else {})
            parents.setdefault(col + suffix, info)
            for name, direction in own.items():
                derived.setdefault(col + suffix, {}).setdefault(
                    name + suffix, derived_info(info, name + suffix, col + suffix, direction))
            if suffix:
                a, b = json.loads(keys[col]), json.loads(key)
                diff = sorted(k for k in IDENTITY if a.get(k) != b.get(k))
                also = f" (with {', '.join(n + suffix for n in own)})" if own else ""
                notes.append(f"{run.method} on {run.dataset}: '{col}' differs in {diff} from earlier runs; "
                             f"shown apart as '{col + suffix}'{also}")
    bases = list(dict.fromkeys(c.split("@")[0] for c in parents))  # a variant stands right after its base
    catalogue: dict[str, dict[str, Any]] = {}
    for col in sorted(parents, key=lambda c: bases.index(c.split("@")[0])):
        catalogue[col] = parents[col]
        catalogue.update(derived.get(col, {}))
    return catalogue, renames


def load_runs(patterns: list[str]) -> Merged:
    """Merge run folders; see the module docstring for the rules."""
    notes: list[str] = []
    same: dict[RunKey, list[Run]] = {}  # run key -> its re-runs
    for path in find_runs(patterns):
        run = _read_run(path, notes)
        if run is not None:
            same.setdefault(run.record.key, []).append(run)
    runs: list[Run] = []
    for reruns in same.values():
        chosen, *others = sorted(reruns, key=lambda r: (r.completeness(), r.time), reverse=True)
        notes += [f"{other.path}: superseded by {chosen.path}, a run of the same experiment: "
                  f"{_why_chosen(chosen, other)}"
                  for other in others]
        runs.append(chosen)
    tables = {run.path: _frames_and_curves(run, notes) for run in runs}
    runs = [run for run in runs if tables[run.path] is not None]  # an unreadable table leaves the run out
    _name_recipes_apart(runs, notes)
    runs.sort(key=lambda r: (r.dataset, r.method, r.record.fingerprint))
    _name_runs_apart(runs, notes)

    catalogue, renames = _catalogue(runs, notes)

    frames, clips, curves = [], [], []
    for run in runs:
        tag = {"run": str(run.path), "method": run.method, "dataset": run.dataset}
        run.clips = run.clips.rename(columns=renames[run.path])
        clips.append(run.clips.assign(**tag))
        run_frames, run_curves = tables[run.path]  # type: ignore[misc]
        mine = set(run.clips["clip"]) if len(run.clips) else set()  # not the clips left out as another run's
        if run_frames is not None:
            frames.append(run_frames[run_frames["clip"].isin(mine)].rename(columns=renames[run.path]).assign(**tag))
        if run_curves is not None:
            run_curves = run_curves[run_curves["clip"].isin(mine)].copy()
            run_curves["metric"] = run_curves["metric"].replace(renames[run.path])
            curves.append(run_curves.assign(**tag))

    def cat(parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    return Merged(cat(frames), cat(clips), cat(curves), catalogue, runs, notes)
