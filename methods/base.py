"""The streaming method contract: reset(clip) -> process(lr_chunk)* -> flush(), plus the registry.

Frames cross the contract as numpy arrays (T,H,W,3): uint8 in, uint8 (or float in [0,1]) out.
A method may return fewer or more frames than it was given; the runner aligns by frame index.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Mapping

import numpy as np

from infvsr_bench.config import from_options
from infvsr_bench.devices import resolve_device, resolve_dtype
from infvsr_bench.errors import ConfigError
from infvsr_bench.registry import Registry
from infvsr_bench.weights import WeightFile
from infvsr_bench.weights_kind import WeightsKind


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


METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("bicubic", "methods.classical:Bicubic")
METHODS.register("lanczos", "methods.classical:Lanczos")
METHODS.register("precomputed", "methods.precomputed:Precomputed")
METHODS.register("infvsr", "methods.infvsr.adapter:InfVSR")
METHODS.register("realesrgan", "methods.realesrgan:RealESRGAN")
METHODS.register("command", "methods.command:Command")
METHODS.register("torch_module", "methods.torch_module:TorchModule")

# Each method's weights hook: the catalogue files its options (a config mapping: ``weights``, ``weights_dir``, ...)
# will load, for methods that load catalogued files. Its module imports no torch, so the CLI locates the files
# (``required_weights``) before anything heavy loads; the method resolves the same files when it is built.
REQUIRED_WEIGHTS: Registry[Callable[[Mapping[str, Any]], list[WeightFile]]] = Registry("method weights hook")
REQUIRED_WEIGHTS.register("infvsr", "methods.infvsr.weight_files:required_weights")


def required_weights(name: str, options: Mapping[str, Any]) -> list[WeightFile]:
    """The catalogue files the registered method ``name`` loads with ``options`` (none when it declares none)."""
    return REQUIRED_WEIGHTS.get(name)(options) if name in REQUIRED_WEIGHTS else []


def build_method(options: Mapping[str, Any]) -> Method:
    """Instantiate the registered method named by ``options['name']`` with the other options."""
    options = dict(options)
    name = str(options.pop("name", ""))
    cls = METHODS.get(name)
    return cls(from_options(cls.Config, options, f"method {name!r}"))
