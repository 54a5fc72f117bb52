"""The contracts the layers meet at: what a method, a dataset and a metric are to the runner.

They sit at the bottom so the core (runner, results) uses them without knowing any implementation;
``methods/`` and ``vsr_datasets/`` implement them, the application composes them. The metric
contract is defined in ``infvsr_bench.metrics.base`` beside its per-frame helper and is named here.

The method contract: reset(clip) -> process(lr_chunk)* -> flush(). Frames cross it as numpy arrays
(T,H,W,3): uint8 in, uint8 (or float in [0,1]) out. A method may return fewer or more frames than
it was given; the runner aligns by frame index.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from infvsr_bench.devices import resolve_device, resolve_dtype
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.weights_kind import WeightsKind

__all__ = ["ClipEntry", "ClipInfo", "Dataset", "Method", "Metric", "MetricKind", "MetricResult"]


@dataclasses.dataclass(frozen=True)
class ClipEntry:
    """One clip of a dataset: where its LR (input) and GT (reference, optional) frames live."""

    name: str
    lr: Path
    gt: Path | None
    cuts: tuple[int, ...] | None = None  # frames that start a new shot, when the dataset knows them


@dataclasses.dataclass
class Dataset:
    """A loaded dataset: its clips, their scale and what the run record keeps about the data."""

    name: str
    root: Path
    scale: int
    clips: list[ClipEntry]
    record: dict[str, Any]  # what the run record keeps about the data (manifest hash, kind, ...)


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    """What a method may know about the clip it is about to process (never the GT)."""

    name: str
    num_frames: int  # frames this run feeds (``max_frames`` may cut the clip short)
    lr_height: int
    lr_width: int
    fps: float
    source_frames: int = 0  # frames in the LR clip on disk (0: same as num_frames)

    def __post_init__(self) -> None:
        if not self.source_frames:
            object.__setattr__(self, "source_frames", self.num_frames)


class Method(ABC):
    """A video SR method fed chunk by chunk; subclasses set ``name`` and a ``Config`` dataclass."""

    name: ClassVar[str]
    # Bump when a code change can change outputs: finished clips of another version are never resumed.
    version: ClassVar[str] = "1"
    Config: ClassVar[type]
    causal: ClassVar[bool] = True
    # Where its learned numbers come from: results from random or tiny weights are labelled in every
    # record (random ones are refused by leaderboards); "external" for tools outside our control.
    weights: ClassVar[WeightsKind] = WeightsKind.NONE
    # True when each process() call is one independent chunk: the output's seams are the runner's
    # feed chunks (chunk_size) and chunk_layout() is not asked.
    feed_chunks: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config
        self.scale: int = int(getattr(config, "scale", 4))
        self.chunk_size: int = int(getattr(config, "chunk_size", 16))
        self.device = resolve_device(getattr(config, "device", "cpu"))
        self.dtype = resolve_dtype("float32", self.device)
        if self.scale < 1 or self.chunk_size < 1:
            raise ConfigError(f"method {self.name}: scale and chunk_size must be >= 1")

    def num_parameters(self) -> int | None:
        """Learned parameters, or None when not known (0 for classical upscalers)."""
        return 0

    @property
    def weights_sha256(self) -> dict[str, str]:
        """sha256 of every learned file the method loaded, by file name (part of a run's identity)."""
        return {}

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "config": dataclasses.asdict(self.config),
            "scale": self.scale,
            "chunk_size": self.chunk_size,
            "causal": self.causal,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "parameters": self.num_parameters(),
            "weights": self.weights,
            "weights_sha256": dict(self.weights_sha256),
        }

    def reset(self, clip: ClipInfo) -> None:
        """Start a new clip: drop every cache."""
        self.clip = clip

    @abstractmethod
    def process(self, lr: np.ndarray) -> np.ndarray:
        """Super-resolve the next LR frames (T,H,W,3 uint8); may return any number of frames."""

    def flush(self) -> np.ndarray | None:
        """Frames still held at the end of the clip (None when the method holds none)."""
        return None

    def flush_chunks(self) -> Iterator[np.ndarray]:
        """flush()'s frames as an iterator of chunks; methods holding a clip on disk stream it here."""
        out = self.flush()
        return iter(() if out is None else (out,))

    def close(self) -> None:
        """The run is over, finished or interrupted: release what the method made outside this
        process (an external tool's temporary folders). Nothing by default."""

    def clip_record(self) -> dict[str, Any]:
        """Extra per-clip facts for the clip's results row (e.g. an external tool's wall time)."""
        return {}

    def chunk_layout(self) -> list[int] | None:
        """Where the last clip's output can have seams: the output frame indices where the method
        began a new internal chunk (0 first); [] when it has no chunks (it works frame by frame);
        None when unknown, and boundary metrics are then not applicable (NaN). Methods whose chunks
        are the runner's feed chunks set ``feed_chunks`` instead."""
        return None
