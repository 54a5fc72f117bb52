"""Scoring through InfVSR's lossy writer (issue #12.9): metrics see the SR frames after the same
libx264 yuv420p encode, here against an independent encode (PyAV muxing an .mp4, OpenCV decoding
it) and, where installed, imageio-ffmpeg's own writer; the default stays lossless."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import downscale, real_frames, write_clip

from infvsr_bench.cli import main
from infvsr_bench.io.transcode import SCORE_THROUGH, TranscodeStream
from infvsr_bench.metrics import build_metric
from infvsr_bench.runner import run_clip
from methods import build_method
from vsr_datasets.benchmark import ClipEntry

Q7 = SCORE_THROUGH.get("x264_yuv420p_q7")


def reference_q7(frames: np.ndarray, path, fps: float = 25.0, pix_fmt: str = "yuv420p") -> np.ndarray:
    """imageio's quality 7 written out with PyAV: libx264 crf int((1 - 7/10) * 51) = 15, medium preset,
    one thread, ffmpeg's bicubic RGB -> YUV; the .mp4 read back with OpenCV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], pix_fmt
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "15"}
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=pix_fmt, interpolation="BICUBIC")
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    return read_opencv(path)


def read_opencv(path) -> np.ndarray:
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return np.stack(out)
        out.append(frame[..., ::-1])


def per_frame(column: str, sr: np.ndarray, gt: np.ndarray) -> np.ndarray:
    metric = build_metric(column, {})
    metric.update(sr, gt, 0)
    return metric.compute().frames[column].to_numpy()


@pytest.fixture
def clip(tmp_path):
    gt = real_frames(60, (96, 128))
    lr = downscale(gt)
    entry = ClipEntry("pan", write_clip(tmp_path / "lr.mkv", lr), write_clip(tmp_path / "gt.mkv", gt))
    sr = build_method({"name": "bicubic"}).process(lr)
    return entry, gt, sr


def test_lossy_scores_equal_an_independent_encode_and_default_stays_lossless(tmp_path, clip):
    entry, gt, sr = clip
    metrics = lambda: [build_metric("psnr", {}), build_metric("ssim", {})]
    method = build_method({"name": "bicubic", "chunk_size": 7})  # chunks of 7: the codec holds ~40 frames
    lossy = run_clip(entry, method, metrics(), progress=False, score_through=Q7)
    lossless = run_clip(entry, method, metrics(), progress=False)
    reference = reference_q7(sr, tmp_path / "ref.mp4")
    assert not np.array_equal(reference, sr)
    for column in ("psnr", "ssim"):
        np.testing.assert_array_equal(lossy.frames[column], per_frame(column, reference, gt))
        np.testing.assert_array_equal(lossless.frames[column], per_frame(column, sr, gt))
    assert lossy.row["psnr"] < lossless.row["psnr"] - 0.03  # 26.74 vs 26.81 dB: bicubic blur dominates
    assert lossy.row["score_through"] == "x264_yuv420p_q7: libx264 crf 15 yuv420p"
    assert lossless.row["score_through"] == "lossless"


def test_odd_sizes_go_through_yuv444p_as_the_authors_writer_does(tmp_path):
    frames = real_frames(12, (47, 63))
    codec = TranscodeStream(Q7, 47, 63, 25.0)
    got = np.concatenate([codec.push(frames[:5]), codec.push(frames[5:]), codec.finish()])
    assert codec.pix_fmt == "yuv444p" and got.shape == frames.shape
    np.testing.assert_array_equal(got, reference_q7(frames, tmp_path / "odd.mp4", pix_fmt="yuv444p"))


def test_close_to_imageios_own_writer(tmp_path, clip):
    """imageio-ffmpeg runs ffmpeg with libx264's automatic thread count, which changes the bitstream a
    little (the only difference: at the same count the files are bit-identical); scores stay within 0.01 dB."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    _, gt, sr = clip
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "iio.mp4"), (sr.shape[2], sr.shape[1]), fps=25, quality=7)
    writer.send(None)
    for frame in sr:
        writer.send(frame)
    writer.close()
    codec = TranscodeStream(Q7, *sr.shape[1:3], 25.0)
    ours = np.concatenate([codec.push(sr), codec.finish()])
    theirs = read_opencv(tmp_path / "iio.mp4")
    assert abs(per_frame("psnr", ours, gt).mean() - per_frame("psnr", theirs, gt).mean()) < 0.01


def test_score_through_is_part_of_the_run_identity(tmp_path, capsys):
    gt = real_frames(10)
    write_clip(tmp_path / "data" / "GT" / "a.mkv", gt)
    write_clip(tmp_path / "data" / "LR" / "a.mkv", downscale(gt))
    base = ["run", "dataset=folder", f"dataset.root={tmp_path / 'data'}", f"output_root={tmp_path / 'runs'}",
            "method=bicubic", "metrics=[psnr]", "progress=false"]
    assert main(base) == 0
    run = tmp_path / "runs" / "folder" / "bicubic"
    assert json.loads((run / "run.json").read_text())["identity"]["config"]["score_through"] == "lossless"
    capsys.readouterr()
    assert main([*base, "score_through=x264_yuv420p_q7"]) != 0  # another experiment: not resumed into this folder
    assert "score_through" in capsys.readouterr().err
    assert main([*base, "score_through=x264_yuv420p_q7", "run_name=q7"]) == 0
    record = json.loads((tmp_path / "runs" / "folder" / "q7" / "run.json").read_text())
    assert record["config"]["score_through"] == record["identity"]["config"]["score_through"] == "x264_yuv420p_q7"
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "q7" / "clips.parquet")
    assert clips.loc[0, "score_through"] == "x264_yuv420p_q7: libx264 crf 15 yuv420p"
    capsys.readouterr()
    assert main([*base, "score_through=x264_yuv420p_q8", "run_name=typo"]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'x264_yuv420p_q7'" in err
    assert not (tmp_path / "runs" / "folder" / "typo" / "run.json").exists()
