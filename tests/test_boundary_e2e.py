"""Chunk-boundary discontinuity through the whole runner: visible chunk seams score >> 1, invisible ones ~1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import downscale, real_frames, write_clip

from infvsr_bench.app.cli import main
from methods import METHODS
from methods.classical import Bicubic


class _FeedChunks(Bicubic):
    """Bicubic declared as chunked by its feed: each process() call counts as one chunk."""

    name = "test_feed_chunks"
    feed_chunks = True


class _ColourShiftPerChunk(_FeedChunks):
    """Every chunk gets its own colour cast: chunks visibly disagree."""

    name = "test_colour_shift"

    def reset(self, clip) -> None:
        super().reset(clip)
        self._chunk = 0

    def process(self, lr: np.ndarray) -> np.ndarray:
        out = super().process(lr).astype(np.int16)
        out[..., self._chunk % 3] += 40 if self._chunk % 2 else -40
        self._chunk += 1
        return np.clip(out, 0, 255).astype(np.uint8)


for _cls in (_FeedChunks, _ColourShiftPerChunk):
    if _cls.name not in METHODS:
        METHODS.register(_cls.name, _cls)


def _clip_row(tmp_path, root, method: str) -> pd.Series:
    assert main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}",
                 f"method.name={method}", "method.chunk_size=8", "metrics=[semantic_offline]",
                 "progress=false"]) == 0
    return pd.read_parquet(tmp_path / "runs" / "folder" / method / "clips.parquet").iloc[0]


def test_inconsistent_chunks_stand_out_and_consistent_ones_do_not(tmp_path):
    gt = real_frames(48, (96, 128))
    write_clip(tmp_path / "data" / "GT" / "pan.mkv", gt)
    write_clip(tmp_path / "data" / "LR" / "pan.mkv", downscale(gt))
    seams = _clip_row(tmp_path, tmp_path / "data", "test_colour_shift")
    smooth = _clip_row(tmp_path, tmp_path / "data", "test_feed_chunks")
    assert seams["semantic_offline_boundary"] > 3.0, seams
    assert 0.5 < smooth["semantic_offline_boundary"] < 1.5, smooth
    assert list(seams["chunk_starts"]) == list(range(0, 48, 8)) and seams["chunk_layout"].startswith("feed")


def test_report_says_boundary_is_not_applicable_for_a_frame_by_frame_method(tmp_path):
    """A frame-wise method has no chunk boundaries: the report's note gives the run's own reason
    (its clip rows' chunk_layout), not a guess about short clips."""
    gt = real_frames(24, (96, 128))
    write_clip(tmp_path / "data" / "GT" / "pan.mkv", gt)
    write_clip(tmp_path / "data" / "LR" / "pan.mkv", downscale(gt))
    row = _clip_row(tmp_path, tmp_path / "data", "bicubic")
    assert np.isnan(row["semantic_offline_boundary"]) and row["chunk_layout"].startswith("none")
    assert main(["report", str(tmp_path / "runs" / "folder"), f"out={tmp_path / 'rep'}", "plots=false"]) == 0
    notes = [line for line in (tmp_path / "rep" / "leaderboard.md").read_text().splitlines()
             if "semantic_offline_boundary" in line and line.startswith("- ")]
    assert len(notes) == 1, notes
    assert "not applicable" in notes[0] and "frame by frame" in notes[0], notes[0]
    assert "too short" not in notes[0]
