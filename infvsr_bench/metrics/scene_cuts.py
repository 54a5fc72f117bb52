"""Scene cuts of a clip found while it streams: PySceneDetect's ContentDetector, frame by frame.

Memory is bounded: the detector keeps the previous frame's HSV planes and the cuts found so far.
"""

from __future__ import annotations

import numpy as np


class SceneCutDetector:
    """Frames that start a new shot, as PySceneDetect's ``ContentDetector`` finds them (HSV content
    change >= ``threshold``; cuts closer than ``min_scene_len`` frames merged)."""

    def __init__(self, threshold: float = 27.0, min_scene_len: int = 15) -> None:
        from scenedetect import ContentDetector

        self.detector = ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
        self.cuts: list[int] = []
        self.next_frame = 0

    def push(self, frames: np.ndarray, frame_index: int) -> None:
        """Consume RGB (T,H,W,3) uint8 frames, the first being frame ``frame_index`` of the clip."""
        from scenedetect.common import FrameTimecode

        if frame_index != self.next_frame:
            raise ValueError(f"scene cut detection needs consecutive frames: got {frame_index}, expected {self.next_frame}")
        for i, frame in enumerate(frames, start=frame_index):
            # ContentDetector takes BGR; the frame rate plays no part with min_scene_len in frames
            found = self.detector.process_frame(FrameTimecode(i, fps=25.0), np.ascontiguousarray(frame[..., ::-1]))
            self.cuts += [int(c.frame_num) for c in found if c.frame_num > 0]
        self.next_frame = frame_index + len(frames)
