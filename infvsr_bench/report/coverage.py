"""Which clips count in a leaderboard, per dataset and per row, and the notes that say so.

A dataset's clips are the union of the clip lists its runs were asked to do (``n``). A row (one
method on one dataset) is *ranked* when its run finished, was asked every one of the n clips and
finished at least one. The *common clips* are those every ranked row finished; ranked rows are
valued and ranked over them only, so a clip one method failed is left out for every method instead
of lifting the one that failed it. Other rows are shown, marked and never ranked, valued over
their own finished clips: ``running`` (a worker is at it), ``partial`` (its job ended without every
clip: ``max_clips``, a shard, an interrupted job; or asked fewer clips), ``first frames``
(``max_frames`` cut its clips short where the ranked rows scored more of them) or ``no clips``
(finished none). Ranked rows share one frame extent: whole clips when any run scored whole clips,
else the longest ``max_frames`` among the runs. A metric with no value
(NaN) on some of a row's counted clips, e.g. a temporal metric on a clip of one or two frames, is
valued over the others, and says so: ``value_counts``. Notes name every clip left out and why.
"""

from __future__ import annotations

import dataclasses
from enum import Enum

import pandas as pd

from infvsr_bench.results.merge import Merged, Run
from infvsr_bench.results.record import RunStatus


class State(str, Enum):
    """How a row takes part in the ranking."""

    RANKED = "ranked"
    PARTIAL = "partial"
    RUNNING = "running"
    FIRST_FRAMES = "first frames"
    NO_CLIPS = "no clips"


@dataclasses.dataclass(frozen=True)
class RowCoverage:
    """One method on one dataset: its state, the clips it finished and those its values are over."""

    state: State
    done: tuple[str, ...]  # clips finished ok, in the dataset's order
    counted: tuple[str, ...]  # clips the row's values are computed over
    total: int  # the dataset's clips (n)

    @property
    def label(self) -> str:
        """``k/n`` clips finished, followed by the state when that is why the row is not ranked."""
        text = f"{len(self.done)}/{self.total}"
        shown = (State.PARTIAL, State.RUNNING, State.FIRST_FRAMES)
        return f"{text} {self.state.value}" if self.state in shown else text


@dataclasses.dataclass
class Coverage:
    """Coverage of every (method, dataset) row, the common clips per dataset and the notes."""

    rows: dict[tuple[str, str], RowCoverage]
    common: dict[str, tuple[str, ...]]
    notes: list[str]

    def label(self, method: str, dataset: str) -> str:
        row = self.rows.get((method, dataset))
        return row.label if row else "-"

    def ranked(self, method: str, dataset: str) -> bool:
        row = self.rows.get((method, dataset))
        return row is not None and row.state is State.RANKED

    def counted(self, clips: pd.DataFrame) -> pd.DataFrame:
        """The rows of a merged clip table whose values count (see the module docstring)."""
        if clips.empty:
            return clips
        keep = {(m, d, c) for (m, d), row in self.rows.items() for c in row.counted}
        return clips[[key in keep for key in zip(clips["method"], clips["dataset"], clips["clip"])]]


def _one_line(reason: object, limit: int = 160) -> str:
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else "no reason recorded"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def frame_limit(run: Run) -> int | None:
    """The ``max_frames`` that cut at least one of the run's finished clips short; None: whole clips."""
    limit = run.record.config.get("max_frames")
    if not limit or not len(run.clips) or "frames" not in run.clips:
        return None
    ok = run.clips[run.clips["status"] == "ok"]
    # A clip of exactly max_frames frames is whole; a row without its length (written before lr_frames
    # was recorded) cannot tell that from a longer clip cut short, so it counts as cut.
    length = ok["lr_frames"] if "lr_frames" in ok else pd.Series(float("nan"), index=ok.index)
    cut = (ok["frames"] < length).where(length.notna(), ok["frames"] >= int(limit))
    return int(limit) if cut.any() else None


def _extent(limits: list[int | None]) -> int | None:
    """The frame extent ranked rows share: whole clips (None) when any run has it, else the longest limit."""
    return None if not limits or None in limits else max(limits)  # type: ignore[type-var]


def _state(run: Run, clips: list[str], done: tuple[str, ...], extent: int | None) -> State:
    if run.record.status is RunStatus.RUNNING:
        return State.RUNNING
    if not run.is_finished or not set(clips) <= set(run.record.dataset.clips):
        return State.PARTIAL
    if frame_limit(run) != extent:
        return State.FIRST_FRAMES
    return State.RANKED if done else State.NO_CLIPS


WHY_NOT_RANKED = {
    State.RANKED: "",
    State.PARTIAL: "partial (asked {asked} of the {n} clips, finished {done}), not ranked, values over its own clips",
    State.RUNNING: "running (the job has not finished), not ranked, values over its clips so far",
    State.FIRST_FRAMES: "scored only the first {limit} frames of each clip (max_frames), not ranked against "
                        "{extent}, values over its own frames",
    State.NO_CLIPS: "no clip finished, not ranked",
}


def _extent_text(extent: int | None) -> str:
    return "whole clips" if extent is None else f"the first {extent} frames"


def _row_note(run: Run, clips: list[str], row: RowCoverage, extent: int | None) -> str | None:
    """What a row leaves out of the dataset's clips and why; None when it has every clip and is ranked."""
    if row.state is State.RANKED and len(row.done) == row.total:
        return None
    table = run.clips
    failed = table[table["status"] != "ok"] if len(table) else table
    reasons: dict[str, list[str]] = {}
    for clip, reason in zip(failed.get("clip", []), failed.get("reason", [])):
        if clip in clips:
            reasons.setdefault(_one_line(reason), []).append(clip)
    missing = [c for c in clips if c not in row.done and not any(c in v for v in reasons.values())]
    parts = [f"{run.method} on {run.dataset}: {len(row.done)}/{row.total} clips"]
    why = WHY_NOT_RANKED[row.state].format(asked=len(run.record.dataset.clips), n=row.total, done=len(row.done),
                                           limit=frame_limit(run), extent=_extent_text(extent))
    parts += [why] if why else []
    parts += [f"{', '.join(cs)} failed: {reason}" for reason, cs in reasons.items()]
    parts += [f"{', '.join(missing)} missing: not run"] if missing else []
    return "; ".join(parts)


def _dataset_note(dataset: str, clips: list[str], common: tuple[str, ...],
                  rows: dict[str, RowCoverage]) -> str | None:
    """Which clips the ranked rows of a dataset are valued over, and what was left out by whom."""
    ranked = {m: r for m, r in rows.items() if r.state is State.RANKED}
    if not ranked or len(common) == len(clips):
        return None
    if not common:
        return (f"{dataset}: no clip was finished by every ranked method ({', '.join(ranked)}); "
                "nothing is valued or ranked")
    left = [f"{c} (not finished by {', '.join(m for m, r in ranked.items() if c not in r.done)})"
            for c in clips if c not in common]
    return (f"{dataset}: ranked rows are valued over the {len(common)} common clips of {len(clips)} "
            f"({', '.join(common)}); left out: {', '.join(left)}")


def coverage(merged: Merged) -> Coverage:
    """Apply the rule of the module docstring to merged runs."""
    clips: dict[str, list[str]] = {}
    for run in merged.runs:
        clips.setdefault(run.dataset, [])
        clips[run.dataset] = list(dict.fromkeys(clips[run.dataset] + run.record.dataset.clips))
    extents = {d: _extent([frame_limit(r) for r in merged.runs if r.dataset == d and r.is_finished]) for d in clips}
    rows: dict[tuple[str, str], RowCoverage] = {}
    for run in merged.runs:
        order = clips[run.dataset]
        ok = set(run.clips.loc[run.clips["status"] == "ok", "clip"]) if len(run.clips) else set()
        done = tuple(c for c in order if c in ok)
        state = _state(run, order, done, extents[run.dataset])
        rows[(run.method, run.dataset)] = RowCoverage(state, done, done, len(order))
    common: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    for dataset, order in clips.items():
        mine = {m: r for (m, d), r in rows.items() if d == dataset}
        finished_by_all = set(order).intersection(*(r.done for r in mine.values() if r.state is State.RANKED))
        common[dataset] = tuple(c for c in order if c in finished_by_all)
        for m, r in mine.items():
            if r.state is State.RANKED:
                rows[(m, dataset)] = dataclasses.replace(r, counted=common[dataset])
        note = _dataset_note(dataset, order, common[dataset], mine)
        notes += [note] if note else []
    for run in merged.runs:
        note = _row_note(run, clips[run.dataset], rows[(run.method, run.dataset)], extents[run.dataset])
        notes += [note] if note else []
    return Coverage(rows, common, notes)


def value_counts(merged: Merged, cov: Coverage, metrics: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """How many of each row's counted clips have a value of each metric its run measures (index: method;
    columns: (dataset, metric); NaN where the run does not measure it), and a note per value over fewer
    clips than its row's, naming the clips without one."""
    counted = cov.counted(merged.clips)
    counts: dict[str, dict[tuple[str, str], int]] = {}
    notes: list[str] = []
    for run in merged.runs:
        mine = counted[(counted["method"] == run.method) & (counted["dataset"] == run.dataset)]
        for metric in [m for m in metrics if m in run.clips]:
            has = mine[metric].notna()
            counts.setdefault(run.method, {})[(run.dataset, metric)] = int(has.sum())
            if not has.all():
                notes.append(f"{run.method} on {run.dataset}: {metric} has no value (NaN) on "
                             f"{', '.join(mine.loc[~has, 'clip'])}, {_why_missing(metric, mine.loc[~has])}; "
                             f"its value is over {int(has.sum())} of {len(mine)} clips")
    return pd.DataFrame.from_dict(counts, orient="index"), notes


def _why_missing(metric: str, rows: pd.DataFrame) -> str:
    """Why clip rows have no value: for a boundary column, the runner's recorded reason when every row
    says boundaries are not applicable (a frame-by-frame method, an undeclared layout); else a hint."""
    layouts = set(rows["chunk_layout"].dropna()) if metric.endswith("_boundary") and "chunk_layout" in rows else set()
    if layouts and all("not applicable" in str(text) for text in layouts):
        return "; ".join(sorted(str(text) for text in layouts))
    return "e.g. a temporal metric on a clip too short for it"
