"""Score outputs produced elsewhere (FlashVSR, SeedVR2, ...): a folder mapping clip names to files."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from infvsr_bench.checksums import content_digest
from infvsr_bench.contracts import ClipInfo, Method
from infvsr_bench.errors import ClipError, ConfigError
from infvsr_bench.io.readers import VIDEO_SUFFIXES, VideoReader, open_video
from infvsr_bench.weights import WeightsKind
from methods.chunk_layout import ChunkRule
from methods.configs import PrecomputedConfig


class Precomputed(Method):
    """Replays stored SR frames in step with the LR stream, after checking count and size."""

    name = "precomputed"
    Config = PrecomputedConfig
    causal = False
    weights = WeightsKind.EXTERNAL

    def __init__(self, config: PrecomputedConfig) -> None:
        super().__init__(config)
        if not config.root:
            raise ConfigError("method 'precomputed' needs method.root=<folder of outputs>")
        self.root = Path(config.root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"method 'precomputed': root {self.root} is not a folder")
        self.chunk_rule = ChunkRule.parse(config.chunk_layout)
        self.outputs_digest = content_digest([self.root], self.root)

    def num_parameters(self) -> int | None:
        return None

    @property
    def weights_sha256(self) -> dict[str, str]:
        """The outputs stand in for the weights: their content digest (names, sizes, mtimes of every file
        under root; checksums.content_digest) is part of the run's identity, so changed outputs are never
        resumed into old results."""
        return {"outputs": self.outputs_digest}

    def locate(self, clip: str) -> Path:
        base = self.root / self.config.pattern.format(clip=clip)
        if base.exists():
            return base
        for suffix in sorted(VIDEO_SUFFIXES):
            if base.with_name(base.name + suffix).exists():
                return base.with_name(base.name + suffix)
        raise ClipError(f"no precomputed output for clip {clip!r} at {base}[.mp4|.mkv|...]")

    def reset(self, clip: ClipInfo) -> None:
        super().reset(clip)
        reader: VideoReader = open_video(self.locate(clip.name), fps=clip.fps)
        want = (clip.lr_height * self.scale, clip.lr_width * self.scale)
        if reader.num_frames != clip.source_frames:  # the whole clip was super-resolved elsewhere
            raise ClipError(
                f"precomputed output {reader.path} has {reader.num_frames} frames, LR has {clip.source_frames}"
            )
        if reader.size != want:
            raise ClipError(
                f"precomputed output {reader.path} is {reader.width}x{reader.height}, "
                f"expected {want[1]}x{want[0]} (x{self.scale} of LR)"
            )
        self._frames: Iterator[np.ndarray] = reader.iter_frames()

    def process(self, lr: np.ndarray) -> np.ndarray:
        return np.stack([next(self._frames) for _ in range(lr.shape[0])])

    def chunk_layout(self) -> list[int] | None:
        """The declared ``chunk_layout`` over the frames scored; None (not applicable) when undeclared."""
        return None if self.chunk_rule is None else self.chunk_rule.chunk_starts(self.clip.num_frames)



