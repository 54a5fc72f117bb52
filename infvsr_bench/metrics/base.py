"""The streaming metric contract (torchmetrics-style update / compute / reset) and per-frame helper."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from enum import Enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is made: the CLI reads the metric registry before any metric loads

from infvsr_bench.weights_kind import WeightsKind, check_weights_choice


class MetricKind(str, Enum):
    """What a metric needs and measures."""

    FULL_REFERENCE = "FR"
    NO_REFERENCE = "NR"
    TEMPORAL = "temporal"
    SEMANTIC = "semantic"


@dataclasses.dataclass
class MetricResult:
    """What a metric reports for one clip: per-frame values, clip-level scalars and curves."""

    frames: pd.DataFrame  # column "frame" plus one column per per-frame value
    scalars: dict[str, float]
    # Long format: "curve" (name), "x" (frame index, frame gap, chunk index...), "value", "count".
    curves: pd.DataFrame | None = None


class Metric(ABC):
    """A metric over one clip, fed chunk by chunk, holding only bounded state between chunks.

    Subclasses declare ``name``, ``version``, ``kind``, ``higher_is_better`` and a ``Settings``
    dataclass listing every option that changes the value; ``info()`` records all of them.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[MetricKind]
    higher_is_better: ClassVar[bool]
    Settings: ClassVar[type]
    # Options that do not change the value (where and how fast it is computed), given as keyword
    # arguments to the constructor and recorded apart from the settings.
    runtime_options: ClassVar[tuple[str, ...]] = ()
    # The ``weights`` runtime option's choices (weights_kind.WEIGHTS_CHOICES that apply; "auto", the default,
    # first), for metrics that list "weights" in runtime_options.
    weights_choices: ClassVar[tuple[str, ...]] = ("auto",)
    # True for metrics that need the method's chunk layout (set_chunk_starts before compute).
    needs_chunk_layout: ClassVar[bool] = False
    # The short name of the reference implementation whose numbers the column reproduces
    # (info()["protocol"]): "infvsr_bench" for our own definitions; ``protocol()`` may derive it from settings.
    default_protocol: ClassVar[str] = "infvsr_bench"

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        self.settings = settings if settings is not None else self.Settings()
        self.column = column or self.name
        self.runtime = runtime
        self.weights_choice = self.checked_weights_choice(runtime, self.column)
        # Where its learned numbers come from: a metric on random weights is flagged and refused by leaderboards.
        self.weights: WeightsKind = WeightsKind.NONE
        self.weights_sha256: dict[str, str] = {}
        self.reset()

    @classmethod
    def checked_weights_choice(cls, runtime: Mapping[str, Any], column: str | None = None) -> str:
        """The ``weights`` runtime option (default auto), one of ``weights_choices``: else one ConfigError line,
        before any file is looked up."""
        return check_weights_choice(runtime.get("weights", "auto"), cls.weights_choices, f"metric {column or cls.name!r}")

    @property
    def needs_gt(self) -> bool:
        return self.kind == MetricKind.FULL_REFERENCE

    def info(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "column": self.column,
            "version": self.version,
            "kind": self.kind.value,
            "protocol": self.protocol(),
            "higher_is_better": self.higher_is_better,
            "settings": dataclasses.asdict(self.settings),
            "runtime": dict(self.runtime),
            "weights": self.weights,
            "weights_sha256": dict(self.weights_sha256),
        }

    def protocol(self) -> str:
        """Whose published numbers this column reproduces (e.g. "basicsr", "pyiqa"), from its settings."""
        return self.default_protocol

    def begin_clip(self, num_frames: int) -> None:
        """Told after ``reset``, before the first ``update``: how many frames the clip will feed.

        Metrics whose sampling follows from the clip length (DOVER's official views) override it.
        """

    def set_chunk_starts(self, starts: list[int] | None) -> None:
        """Output frame indices where the method started a new chunk, before ``compute`` (for boundary
        metrics); None when the method's layout is unknown."""
        self.chunk_starts = None if starts is None else list(starts)

    def set_scene_cuts(self, cuts: list[int] | None) -> None:
        """Frames that start a new shot when the dataset knows them (None: unknown), after ``reset``."""
        self.scene_cuts = None if cuts is None else list(cuts)

    @abstractmethod
    def reset(self) -> None:
        """Forget the current clip."""

    @abstractmethod
    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        """Consume output frames ``sr`` (T,H,W,3 uint8, T >= 1: the runner never feeds an empty chunk)
        starting at ``frame_index`` (GT aligned)."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """The clip's result from the state accumulated since ``reset``."""


class PerFrameMetric(Metric):
    """A metric that scores every frame on its own; the clip value is the mean over frames."""

    def reset(self) -> None:
        self._frames: list[int] = []
        self._values: list[float] = []

    @abstractmethod
    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        """Score one H,W,3 uint8 frame."""

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        for i in range(sr.shape[0]):
            self._frames.append(frame_index + i)
            self._values.append(float(self.score(sr[i], None if gt is None else gt[i])))

    def compute(self) -> MetricResult:
        import pandas as pd

        values = np.asarray(self._values, dtype=np.float64)
        frames = pd.DataFrame({"frame": np.asarray(self._frames, dtype=np.int64), self.column: values})
        # The plain frame mean; a metric with its own clip rule (PSNR's frames equal to their GT) overrides compute.
        mean = float(values.mean()) if values.size else float("nan")
        return MetricResult(frames=frames, scalars={self.column: mean})
