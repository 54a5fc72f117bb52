"""The files of a run folder, owned here: the run record (``run.json``), the clip rows (``clip.json``)
and the parquet tables are read and written only through this module, each carrying ``FORMAT_VERSION``
(checked on read).

A record names everything that decides a run's numbers. ``identity`` holds the parts that must
agree before results may be resumed into a folder or merged into one table row (config, method
name/version/weights checksums, every metric's name/version/settings/weights checksums, the
dataset's recipe hash or, for folder-backed data, its content digest); ``fingerprint`` is its hash.
``RunKey`` (format version, fingerprint) is the one identity of a run: resume continues a folder only
under its record's key and takes only clip rows written under it, and merge treats run folders of one
key as re-runs of one experiment.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infvsr_bench.checksums import json_digest
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.atomic import atomic_write, write_json
from infvsr_bench.io.transcode import SCORE_THROUGH

# 3: clip rows carry the run fingerprint they were computed under; 4: clip rows and parquet tables carry
# the format version too
FORMAT_VERSION = 4
RUN_FILE, CLIP_FILE = "run.json", "clip.json"
TABLE_METADATA = b"infvsr_bench"  # the parquet schema metadata key holding {"format_version": ...}
# Top-level config keys that change results. Not these: max_clips and shard only select clips (the
# shards of one run share its identity and folder), pipeline and the output options change no value.
RESULT_CONFIG_KEYS = ("method", "dataset", "metrics", "max_frames", "seed", "score_through")


class RunKey(NamedTuple):
    """What makes results one run's (see the module docstring); never a time or a path."""

    format_version: int | None
    fingerprint: str | None


class RunStatus(str, Enum):
    """Where a run stands, from its clip files: complete (with or without failed clips) once every clip
    has a row; before that ``running`` while a worker holds a lease, else ``incomplete`` (no worker at it).
    ``interrupted``: a worker stopped by Ctrl-C or SIGTERM left the run unfinished (the next merge
    recomputes the status from the clip files)."""

    RUNNING = "running"
    COMPLETE = "complete"
    COMPLETE_WITH_FAILURES = "complete_with_failures"
    INCOMPLETE = "incomplete"
    INTERRUPTED = "interrupted"


@dataclasses.dataclass
class DatasetRecord:
    """The data a run was asked to score: its name, scale, the clips in order, and how it was made."""

    name: str
    scale: int
    clips: list[str]
    kind: str = ""
    root: str = ""
    recipe_sha256: str | None = None  # generated benchmarks: the hash of the recipe that built them
    lr_dir: str = ""  # folder-backed datasets (folder, public): the LR and GT folders under root
    gt_dir: str = ""
    content_digest: str | None = None  # folder-backed datasets: every clip file's relative name, size, mtime

    @classmethod
    def of(cls, name: str, scale: int, clips: list[str], about: Mapping[str, Any]) -> "DatasetRecord":
        """The record of a loaded dataset; ``about`` is what its loader says of the data (kind, root, hashes)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"name", "scale", "clips"}
        return cls(name, scale, clips, **{k: v for k, v in about.items() if k in known})

    @property
    def content_id(self) -> str | None:
        """What names the data itself: a generated benchmark's recipe hash, a folder's content digest."""
        return self.recipe_sha256 or self.content_digest


@dataclasses.dataclass
class RunRecord:
    """Everything ``run.json`` holds; see the module docstring."""

    config: dict[str, Any]
    identity: dict[str, Any]
    fingerprint: str
    method: dict[str, Any]
    metrics: list[dict[str, Any]]
    dataset: DatasetRecord
    environment: dict[str, Any]
    started: str
    status: RunStatus = RunStatus.RUNNING
    finished: str | None = None
    clips_ok: int | None = None
    clips_failed: int | None = None
    timings: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def key(self) -> RunKey:
        return RunKey(self.format_version, self.fingerprint)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "run.json") -> "RunRecord":
        """Parse a record; one-line ConfigError for another format version or a missing field."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ConfigError(f"{source}: run record format_version {version!r}; this infvsr-bench reads "
                              f"{FORMAT_VERSION} (re-run with this version, or report with the one that wrote it)")
        data = dict(data)
        try:
            data["dataset"] = DatasetRecord(**data["dataset"])
            data["status"] = RunStatus(data["status"])
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a valid run record ({exc})") from None


def is_run_folder(folder: Path) -> bool:
    return (Path(folder) / RUN_FILE).is_file()


def _record_data(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable run record ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a valid run record")
    return data


def read_run_record(run_dir: Path) -> RunRecord:
    """The record of a run folder; ConfigError when it is missing, unreadable or of another format."""
    path = Path(run_dir) / RUN_FILE
    return RunRecord.from_dict(_record_data(path), str(path))


def stored_run_record(run_dir: Path) -> RunRecord | None:
    """The record of a folder a run is to begin in; None when it holds none (no file, or no JSON object in
    it: a new folder); ConfigError for a record of another format or not a valid one."""
    path = Path(run_dir) / RUN_FILE
    try:
        data = _record_data(path)
    except ConfigError:
        return None
    return RunRecord.from_dict(data, str(path))


def write_run_record(run_dir: Path, record: RunRecord) -> None:
    write_json(Path(run_dir) / RUN_FILE, record.to_dict())


def write_clip_row(clip_dir: Path, row: Mapping[str, Any], key: RunKey) -> None:
    """A clip's row, with the key of the run it was computed under; written last, it marks the clip done."""
    write_json(clip_dir / CLIP_FILE, {**row, "fingerprint": key.fingerprint, "format_version": key.format_version},
               sort_keys=False)


def read_clip_row(clip_dir: Path) -> tuple[RunKey, dict[str, Any]] | None:
    """A clip's stored row (holding its ``fingerprint``) and the key it was written under; None when absent
    or unreadable."""
    try:
        row = json.loads((clip_dir / CLIP_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict):
        return None
    version = row.pop("format_version", None)
    return RunKey(version, row.get("fingerprint")), row


def write_table(df: pd.DataFrame, path: Path, csv: bool = True) -> None:
    """``path`` as parquet, its schema metadata naming the format version, and, next to it, the same
    table as CSV (for reading elsewhere; unversioned)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {**(table.schema.metadata or {}), TABLE_METADATA: json.dumps({"format_version": FORMAT_VERSION}).encode()}
    atomic_write(path, lambda p: pq.write_table(table.replace_schema_metadata(meta), p))
    if csv:
        atomic_write(path.with_suffix(".csv"), lambda p: df.to_csv(p, index=False))


def read_table(path: Path) -> pd.DataFrame:
    """A parquet table of a run folder; ConfigError when written by another format version. A file that is
    not parquet raises what pyarrow raises (OSError, ArrowException)."""
    meta = (pq.read_schema(path).metadata or {}).get(TABLE_METADATA)
    try:
        version = json.loads(meta).get("format_version") if meta else None
    except (ValueError, AttributeError):
        version = None
    if version != FORMAT_VERSION:
        raise ConfigError(f"{path}: table format_version {version!r}; this infvsr-bench reads {FORMAT_VERSION}")
    return pd.read_parquet(path)


def run_identity(config: Mapping[str, Any], method: Mapping[str, Any], metrics: list[Mapping[str, Any]],
                 dataset: DatasetRecord) -> dict[str, Any]:
    """What must agree for two sets of results to belong to one run (see the module docstring)."""
    encoding = SCORE_THROUGH.get(config.get("score_through") or "lossless")
    return {
        "config": {k: config.get(k) for k in RESULT_CONFIG_KEYS},
        # a lossy encoding's version (its values changed with it); lossless runs' identity as before
        **({"score_through": {"name": encoding.name, "version": encoding.version}} if encoding else {}),
        "method": {k: method.get(k) for k in ("name", "version", "weights", "weights_sha256")},
        "metrics": {m["column"]: {k: m.get(k) for k in ("metric", "version", "settings", "weights", "weights_sha256")}
                    for m in metrics},
        # Folder-backed data by its content digest too (absent for generated data, named by its recipe).
        "dataset": {"name": dataset.name, "recipe_sha256": dataset.recipe_sha256,
                    **({"content_digest": dataset.content_digest} if dataset.content_digest else {})},
    }


def fingerprint(identity: Mapping[str, Any]) -> str:
    return json_digest(identity)


def identity_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths where two identities differ, e.g. ``metrics.psnr.version``, for one-line errors."""
    diffs: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, path = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += identity_differences(a, b, path + ".")
        elif a != b:
            diffs.append(path)
    return diffs
