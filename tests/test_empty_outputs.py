"""Reported defect: infvsr-tiny's first call returns an empty (0, H, W, 3) array (its first chunk is still
being assembled), and every clip failed with "IndexError: index -1 is out of bounds" from the temporal
metrics. A method may return zero frames from a call: the runner treats it as "nothing yet"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infvsr_bench.app.cli import main
from methods import METHODS
from methods.classical import Bicubic


class _EmptyFirst(Bicubic):
    """Bicubic that returns zero frames from its first call and those frames with its second."""

    name = "test_empty_first"

    def reset(self, clip):
        super().reset(clip)
        self.held = None

    def process(self, lr):
        out = super().process(lr)
        if self.held is None:
            self.held = out
            return out[:0]
        held, self.held = np.concatenate([self.held, out]), out[:0]
        return held


if _EmptyFirst.name not in METHODS:
    METHODS.register(_EmptyFirst.name, _EmptyFirst)


@pytest.mark.parametrize("pipeline", ["true", "false"])
def test_a_call_returning_zero_frames_is_not_a_failure(tmp_path, folder_dataset, pipeline):
    root = folder_dataset(lengths=(10, 7))
    runs = {}
    for method in ("bicubic", "test_empty_first"):
        code = main(["run", f"method.name={method}", f"run_name={method}", "dataset=folder", f"dataset.root={root}", "method.chunk_size=4",
                     "metrics=[psnr,ewarp_dis,tof]", f"output_root={tmp_path}", "progress=false",
                     f"pipeline={pipeline}"])
        assert code == 0
        runs[method] = pd.read_parquet(tmp_path / "folder" / method / "frames.parquet").sort_values(["clip", "frame"])
    for column in ("psnr", "ewarp_dis", "tof"):
        np.testing.assert_array_equal(runs["bicubic"][column].to_numpy(), runs["test_empty_first"][column].to_numpy())


def test_a_codec_releasing_zero_frames_is_not_a_failure(tmp_path, folder_dataset):
    # score_through's x264 holds its first ~40 frames, so the metrics' first chunks were empty (IndexError)
    root = folder_dataset(lengths=(10,))
    args = ["run", "dataset=folder", f"dataset.root={root}", "method.chunk_size=4", "metrics=[ewarp_dis,tof]",
            f"output_root={tmp_path}", "progress=false", "score_through=x264_yuv420p_q7"]
    assert main(args) == 0
    clips = pd.read_parquet(tmp_path / "folder" / "bicubic" / "clips.parquet")
    assert list(clips["status"]) == ["ok"] and clips.loc[0, "ewarp_dis"] > 0 and clips.loc[0, "tof"] > 0
