"""Structured configs: the run schema registered with Hydra, and typed option parsing for registries."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional

from infvsr_bench.errors import ConfigError


@dataclasses.dataclass
class ShardConfig:
    """This worker's part of a run: shard ``index`` of ``count`` (clips balanced by frame count,
    infvsr_bench/shards.py); a clip's lease older than ``lease_timeout_s`` is taken over."""

    count: int = 1
    index: int = 0
    lease_timeout_s: float = 120.0


@dataclasses.dataclass
class RunConfig:
    """Top-level options of ``run``; method/dataset/metrics are validated by their own schemas."""

    method: Any = None
    dataset: Any = None
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    output_root: str = "runs"
    run_name: str = "${method.name}"
    data_root: str = "${oc.env:INFVSR_DATA,'~/.cache/infvsr_bench/datasets'}"
    seed: int = 0
    max_clips: Optional[int] = None
    max_frames: Optional[int] = None
    save_outputs: bool = False
    output_codec: str = "ffv1"
    # Pass SR frames through a lossy encode before scoring (infvsr_bench/io/transcode.py):
    # lossless | x264_yuv420p_q7 (InfVSR's official writer). Changes results: part of a run's identity.
    score_through: str = "lossless"
    overwrite: bool = False
    progress: bool = True
    # Decode, run the method, score and write in overlapping threads (same results; false: one thread).
    pipeline: bool = True
    # CPU threads torch may use (0: torch's default, one per core). Changes speed, never values: one
    # thread each lets two runs share a small machine. Recorded as environment.torch_threads.
    threads: int = 0
    # Which clips this worker does and how workers share a run folder; not part of a run's identity.
    shard: ShardConfig = dataclasses.field(default_factory=ShardConfig)


def register_schemas() -> None:
    from hydra.core.config_store import ConfigStore  # only the CLI needs Hydra

    ConfigStore.instance().store(name="run_schema", node=RunConfig)


def from_options(cls: type, options: Mapping[str, Any], what: str) -> Any:
    """Fill the dataclass ``cls`` from config data, with one-line errors for unknown or bad keys."""
    options = dict(options)
    if "_target_" in options:
        raise ConfigError(f"{what}: '_target_' is not allowed; only registered names are instantiated")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"{what}: unknown option(s) {unknown}; valid: {sorted(fields)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
