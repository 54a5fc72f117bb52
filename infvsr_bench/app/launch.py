"""One ``run`` job as a Hydra launcher starts it: in this process, or in a launcher's worker process
(joblib, submitit local or SLURM), which gets its shard's GPU and reports a non-zero exit back to the
process that launched the sweep as one line (Hydra then exits 1)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from infvsr_bench.errors import InfvsrError
from infvsr_bench.interrupts import sigterm_unwinds
from infvsr_bench.run.shards import pin_gpu


class JobFailed(CompactHydraException):
    """A job in a launcher's worker process ended with failed clips or an error."""


def run_job(cfg: DictConfig, launching_pid: int) -> int:
    """Execute one job; 0 when all its clips are ok, 1 with failed clips, 2 on an error (one line)."""
    from infvsr_bench.app.job import execute

    in_worker = os.getpid() != launching_pid
    if in_worker:
        gpu = pin_gpu(int(cfg.shard.index))
        if gpu is not None:
            print(f"shard {cfg.shard.index}: CUDA_VISIBLE_DEVICES={gpu}", file=sys.stderr)
    try:
        with sigterm_unwinds():  # a launcher's worker process too: SIGTERM ends its tool, marks the run
            code = execute(cfg, Path(HydraConfig.get().runtime.output_dir))
    except InfvsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    if in_worker and code:
        job = " ".join(HydraConfig.get().overrides.task)
        raise JobFailed(f"error: job [{job}] ended with exit code {code} ({'failed clips' if code == 1 else 'an error'})")
    return code
