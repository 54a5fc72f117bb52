"""One ``run`` job: config -> method, dataset, metrics -> runner -> run record and summary table."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from infvsr_bench.errors import ConfigError
from infvsr_bench.io.transcode import SCORE_THROUGH
from infvsr_bench.memory import PROBE, MemoryAccount, process_peak_rss_mib
from infvsr_bench.metrics import build_metric
from infvsr_bench.results import RunStore, environment
from infvsr_bench.run_record import DatasetRecord, RunRecord, RunStatus, fingerprint, run_identity
from infvsr_bench.runner import MemoryAccounts, run_all
from methods.base import build_method
from vsr_datasets.benchmark import load_dataset

log = logging.getLogger("infvsr_bench")


def _add_file_log(run_dir: Path) -> None:
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


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
    """Run every clip of the configured dataset through the method and metrics; 0 when all ok."""
    try:
        config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    except Exception as exc:  # omegaconf interpolation errors
        raise ConfigError(f"config: {exc}".splitlines()[0]) from None
    store = RunStore(run_dir)
    _add_file_log(run_dir)
    score_through = SCORE_THROUGH.get(config["score_through"])  # a typo fails before anything is built

    # Cheap and fail-fast first (metric weights), then the method (may load large weights), then
    # the data (may build a benchmark on first use). Each component's memory is counted apart.
    metrics_memory = MemoryAccount("cuda" if torch.cuda.is_available() else "cpu")
    with metrics_memory:
        metrics = [build_metric(name, opts) for name, opts in (config["metrics"] or {}).items()]
    method_memory = MemoryAccount("cuda" if torch.cuda.is_available() else "cpu")
    with method_memory:
        method = build_method(config["method"])
    method_memory.settle_on(method.device)
    memory = MemoryAccounts(method_memory, metrics_memory)
    dataset = load_dataset(config["dataset"])
    clips = dataset.clips[: config["max_clips"]] if config["max_clips"] else dataset.clips
    if dataset.scale != method.scale:
        raise ConfigError(f"dataset {dataset.name} is x{dataset.scale} but method {method.name} is x{method.scale}")

    method_info, metric_infos = method.info(), [m.info() for m in metrics]
    data = DatasetRecord(dataset.name, dataset.scale, [c.name for c in clips], dataset.record.get("kind", ""),
                         dataset.record.get("root", ""), dataset.record.get("recipe_sha256"))
    identity = run_identity(config, method_info, metric_infos, data)
    store.check_resumable(identity, fingerprint(identity), bool(config["overwrite"]))
    record = RunRecord(
        config=config, identity=identity, fingerprint=fingerprint(identity), method=method_info,
        metrics=metric_infos, dataset=data, environment={**environment(), "memory_probe": PROBE},
        started=dt.datetime.now(dt.timezone.utc).isoformat(),
    )
    store.write_record(record)
    log.info("run %s: %d clips, method %s, metrics %s", run_dir, len(clips), method.name, [m.column for m in metrics])
    frames, clip_table = run_all(
        clips, method, metrics, store,
        max_frames=config["max_frames"], save_outputs=bool(config["save_outputs"]),
        output_codec=config["output_codec"], progress=bool(config["progress"]), memory=memory,
        score_through=score_through,
    )
    failed = int((clip_table["status"] != "ok").sum()) if not clip_table.empty else 0
    ok = clip_table[clip_table["status"] == "ok"] if not clip_table.empty else clip_table
    record.finished = dt.datetime.now(dt.timezone.utc).isoformat()
    record.status = RunStatus.COMPLETE if failed == 0 else RunStatus.COMPLETE_WITH_FAILURES
    record.clips_ok, record.clips_failed = len(clip_table) - failed, failed
    record.timings = {
        "method_seconds": float(ok["method_seconds"].sum()) if "method_seconds" in ok else 0.0,
        "frames": int(ok["frames"].sum()) if "frames" in ok else 0,
        "method_peak_rss_mib": float(ok["method_peak_rss_mib"].max()) if len(ok) else None,
        "process_peak_rss_mib": process_peak_rss_mib(),
    }
    store.write_record(record)
    print(summary_table(clip_table, [m.column for m in metrics]))
    print(f"results: {run_dir}")
    return 0 if failed == 0 else 1
