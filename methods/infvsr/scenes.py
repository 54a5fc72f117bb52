"""InfVSR's chunk planner: 9 LR frames at a scene start, 12 after, never across a detected cut.

Scene cuts come from PySceneDetect's ContentDetector (threshold 27) on BGR frames. Chunks are
released only once the detector has seen ``event_buffer_length`` frames past their end, so a cut
found late can still end a chunk. Within a scene, a chunk starting >= 15 frames after the current
reference frame is compared with it by a fresh detector; a cut there refreshes the reference.
Memory is bounded: the pending frames (at most one chunk plus the detector delay) and one frame.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Iterator

import numpy as np


@dataclasses.dataclass
class Chunk:
    """LR frames (T,H,W,3 uint8) to process together, with the scene flags of notes §7."""

    start: int
    frames: np.ndarray
    new_scene: bool
    update_reference: bool


def _timecode(i: int):
    from scenedetect.common import FrameTimecode

    return FrameTimecode(i, fps=25.0)


class SceneChunker:
    """Streams LR frames in, chunks out (see module docstring); ``detect=False`` gives 9, 12, 12, ..."""

    def __init__(
        self,
        detect: bool = True,
        threshold: float = 27.0,
        reference_threshold: float = 27.0,
        first_chunk: int = 9,
        chunk: int = 12,
        reference_gap: int = 15,
    ) -> None:
        self.detect = detect
        self.threshold = threshold
        self.reference_threshold = reference_threshold
        self.first_chunk, self.chunk = first_chunk, chunk
        self.reference_gap = reference_gap
        self.reset()

    def reset(self) -> None:
        """Start a new video."""
        self._detector = None
        if self.detect:
            from scenedetect import ContentDetector

            self._detector = ContentDetector(threshold=self.threshold)
        self._delay = self._detector.event_buffer_length if self._detector else 0
        self._pending: deque[np.ndarray] = deque()
        self._pending_start = 0  # index of the first pending frame
        self._seen = 0
        self._cuts: deque[int] = deque()  # detected scene starts not yet consumed
        self._scene_start = True
        self._reference: tuple[int, np.ndarray] | None = None

    def _size(self) -> int:
        return self.first_chunk if self._scene_start else self.chunk

    def push(self, frames: np.ndarray) -> list[Chunk]:
        """Feed LR frames; returns the chunks that are now final."""
        for frame in frames:
            if self._detector is not None:
                for cut in self._detector.process_frame(_timecode(self._seen), np.ascontiguousarray(frame[..., ::-1])):
                    if cut.frame_num > 0:
                        self._cuts.append(cut.frame_num)
            self._pending.append(frame)
            self._seen += 1
        return list(self._release(final=False))

    def flush(self) -> list[Chunk]:
        """End of the video: every pending frame, in chunks (the last may be short)."""
        return list(self._release(final=True))

    def _release(self, final: bool) -> Iterator[Chunk]:
        while self._pending:
            # As the authors' loop: a cut at the chunk's start begins a scene, also when it falls
            # exactly where the previous chunk ended (the release delay guarantees it is known here).
            while self._cuts and self._cuts[0] < self._pending_start:
                self._cuts.popleft()
            if self._cuts and self._cuts[0] == self._pending_start:
                self._cuts.popleft()
                self._scene_start = True
            size = self._size()
            end = self._pending_start + size
            if not final and self._seen < end + self._delay:
                return
            cut = self._cuts[0] if self._cuts and self._cuts[0] < end else None
            n = min(size, len(self._pending), (cut - self._pending_start) if cut else size)
            frames = np.stack([self._pending.popleft() for _ in range(n)])
            yield self._make_chunk(frames)
            self._pending_start += n
            self._scene_start = False

    def _make_chunk(self, frames: np.ndarray) -> Chunk:
        start, new_scene, update = self._pending_start, self._scene_start, False
        if new_scene:
            self._reference = (start, frames[0])
        elif self.detect and self._reference and start - self._reference[0] >= self.reference_gap:
            update = self._differs(self._reference[1], frames[0])
            if update:
                self._reference = (start, frames[0])
        return Chunk(start, frames, new_scene, update)

    def _differs(self, a: np.ndarray, b: np.ndarray) -> bool:
        from scenedetect import ContentDetector

        detector = ContentDetector(threshold=self.reference_threshold, min_scene_len=0)
        detector.process_frame(_timecode(0), np.ascontiguousarray(a[..., ::-1]))
        return bool(detector.process_frame(_timecode(1), np.ascontiguousarray(b[..., ::-1])))
