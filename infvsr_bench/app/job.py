"""One ``run`` job: config -> method, dataset, metrics -> runner -> run record and summary table."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from infvsr_bench.config import RunConfig, ShardConfig, check_run_options, from_options
from infvsr_bench.contracts import ClipEntry
from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ConfigError, VideoReadError
from infvsr_bench.io.atomic import HOST
from infvsr_bench.io.readers import open_video
from infvsr_bench.io.transcode import SCORE_THROUGH
from infvsr_bench.metrics import build_metric
from infvsr_bench.results.record import DatasetRecord, RunRecord, fingerprint, run_identity
from infvsr_bench.results.store import RunStore, environment
from infvsr_bench.run import shards
from infvsr_bench.run.memory import PROBE, MemoryAccount, settle
from infvsr_bench.run.runner import MemoryAccounts, RunOptions, run_all
from methods.base import build_method
from vsr_datasets.benchmark import load_dataset

log = logging.getLogger("infvsr_bench")


class _RunLog(logging.FileHandler):
    """The run folder's ``run.log`` (one per process at a time; lines name the worker)."""


def _add_file_log(run_dir: Path) -> None:
    for old in [h for h in log.handlers if isinstance(h, _RunLog)]:  # an earlier job of this process
        log.removeHandler(old)
        old.close()
    handler = _RunLog(run_dir / "run.log")
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {HOST}:%(process)d %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def clip_frames(clip: ClipEntry, options: RunOptions) -> int:
    """Frames the run will process of ``clip`` (0 when unreadable: it fails wherever it lands)."""
    try:
        return options.frames_of(open_video(clip.lr).num_frames)
    except VideoReadError:
        return 0


def summary_table(clips: pd.DataFrame, metric_columns: list[str]) -> str:
    """A compact per-clip table plus the clip mean, for the terminal."""
    if clips.empty:
        return "(no clips)"
    cols = ["clip", "status", "frames", *[c for c in metric_columns if c in clips], "method_fps"]
    if (clips["status"] != "ok").any():
        cols.append("reason")
    table = clips[[c for c in cols if c in clips]].copy()
    ok = table[table["status"] == "ok"]
    if len(ok) > 1:
        mean = ok.mean(numeric_only=True).to_frame().T
        mean["frames"] = ok["frames"].sum()  # the mean row counts all frames
        mean.insert(0, "clip", "mean")
        mean.insert(1, "status", "")
        table = pd.concat([table, mean], ignore_index=True)
    if "frames" in table:
        table["frames"] = table["frames"].astype("Int64")
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def execute(cfg: DictConfig, run_dir: Path) -> int:
    """Run every clip of the configured dataset through the method and metrics; 0 when all ok.
    However it ends, the method is closed (an external tool's temporary folder removed)."""
    with contextlib.ExitStack() as closing:
        return _execute(cfg, run_dir, closing)


def _execute(cfg: DictConfig, run_dir: Path, closing: contextlib.ExitStack) -> int:
    try:
        config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    except Exception as exc:  # omegaconf interpolation errors
        raise ConfigError(f"config: {exc}".splitlines()[0]) from None
    check_run_options(config)  # again once resolved: interpolations and config files (the CLI checked the command line)
    shard = from_options(ShardConfig, config.pop("shard", None) or {}, "shard")  # the worker's, not the run's
    shards.check(shard)
    run = from_options(RunConfig, {**config, "shard": shard}, "run")  # the record keeps ``config`` as resolved
    if run.threads:
        torch.set_num_threads(run.threads)
    store = RunStore(run_dir)
    _add_file_log(run_dir)
    options = RunOptions(max_frames=run.max_frames, save_outputs=run.save_outputs, output_codec=run.output_codec,
                         progress=run.progress, score_through=SCORE_THROUGH.get(run.score_through),
                         pipeline=run.pipeline, lease_timeout_s=shard.lease_timeout_s)

    # Cheap and fail-fast first (metric weights), then the method (may load large weights), then
    # the data (may build a benchmark on first use). Each component's memory is counted apart.
    metrics_memory = MemoryAccount(resolve_device("auto").type)
    settle()
    with metrics_memory:
        metrics = [build_metric(name, opts) for name, opts in (run.metrics or {}).items()]
    method_memory = MemoryAccount(resolve_device("auto").type)
    settle()
    with method_memory:
        method = build_method(run.method)
    closing.callback(method.close)
    method_memory.settle_on(method.device)
    memory = MemoryAccounts(method_memory, metrics_memory)
    dataset = load_dataset(run.dataset)
    clips = dataset.clips[: run.max_clips] if run.max_clips else dataset.clips
    if dataset.scale != method.scale:
        raise ConfigError(f"dataset {dataset.name} is x{dataset.scale} but method {method.name} is x{method.scale}")
    frames = [clip_frames(c, options) for c in clips] if shard.count > 1 else [0] * len(clips)
    mine = shards.select(clips, frames, shard)

    method_info, metric_infos = method.info(), [m.info() for m in metrics]
    # The record lists every clip of the dataset: max_clips, like a shard, only picks what this worker
    # does, so the folder's tables keep every finished clip and merge lists the others as missing.
    data = DatasetRecord.of(dataset.name, dataset.scale, [c.name for c in dataset.clips], dataset.record)
    identity = run_identity(config, method_info, metric_infos, data)
    store.begin(RunRecord(
        config=config, identity=identity, fingerprint=fingerprint(identity), method=method_info,
        metrics=metric_infos, dataset=data, environment={**environment(), "memory_probe": PROBE},
        started=dt.datetime.now(dt.timezone.utc).isoformat(),
    ), run.overwrite)
    log.info("run %s: shard %d of %d: %d of %d clips, method %s, metrics %s", run_dir, shard.index, shard.count,
             len(mine), len(data.clips), method.name, [m.column for m in metrics])
    try:
        run_all(mine, method, metrics, store, options, memory)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: finished clips are kept, the record says interrupted
        store.merge(shard.lease_timeout_s, interrupted=True)
        raise
    summary = store.merge(shard.lease_timeout_s)
    print(summary_table(summary.clips, [m.column for m in metrics]))
    print(summary.describe())
    print(f"results: {run_dir}")
    failed = sum(c.name in summary.failed for c in mine)
    return 0 if failed == 0 else 1

