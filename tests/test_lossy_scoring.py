"""Scoring through InfVSR's lossy writer (issue #12.9): metrics see the SR frames after the same
libx264 yuv420p encode, here against an independent encode (PyAV muxing an .mp4 with x264's C code,
demuxed and decoded back), the same on any CPU (FFmpeg's SIMD paths off), and close to what ffmpeg and
OpenCV give on this CPU and, where installed, imageio-ffmpeg's own writer; the default stays lossless."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import platform
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from av.video.reformatter import Interpolation, VideoReformatter
from conftest import downscale, real_frames, write_clip

from infvsr_bench.app.cli import main
from infvsr_bench.contracts import ClipEntry
from infvsr_bench.io.transcode import SCORE_THROUGH, TranscodeStream
from infvsr_bench.metrics import build_metric
from infvsr_bench.run.runner import RunOptions, run_clip
from methods import build_method

Q7 = SCORE_THROUGH.get("x264_yuv420p_q7")
EXACT = Interpolation.ACCURATE_RND | Interpolation.BITEXACT


def reference_q7(frames: np.ndarray, path, fps: float = 25.0, pix_fmt: str = "yuv420p") -> np.ndarray:
    """imageio's quality 7 as FFmpeg's reference code computes it, written out with PyAV: libx264 crf
    int((1 - 7/10) * 51) = 15, medium preset, one thread, x264's C code (``asm=0``: no CPU-specific
    path), ffmpeg's bicubic RGB -> YUV with exact rounding; the .mp4 demuxed and decoded back, YUV -> RGB
    with exact rounding and nearest chroma (FFmpeg's C conversion, the one its readers use)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], pix_fmt
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "15", "x264-params": "asm=0"}
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(stream.encode(vf.reformat(format=pix_fmt, interpolation=Interpolation.BICUBIC | EXACT,
                                                    threads=1)))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        return np.stack([f.reformat(format="rgb24", interpolation=Interpolation.POINT | EXACT, threads=1).to_ndarray()
                         for f in container.decode(video=0)])


def common_q7(frames: np.ndarray, path, fps: float = 25.0) -> np.ndarray:
    """The same encode as ffmpeg runs it on this CPU (x264's and swscale's fastest paths, automatic
    threads), read back with OpenCV: what the authors' pipeline gives on one machine."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], "yuv420p"
        stream.options = {"crf": "15"}
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(stream.encode(vf.reformat(format="yuv420p", interpolation="BICUBIC")))
        container.mux(stream.encode())
    return read_opencv(path)


def _pyav_libavutil() -> ctypes.CDLL:
    """The libavutil PyAV runs on (its wheel's own copy, else the system's)."""
    here = Path(av.__file__).parent
    found = sorted([*here.parent.glob("av.libs/libavutil*"), *here.glob(".dylibs/libavutil*")])
    name = str(found[0]) if found else ctypes.util.find_library("avutil")
    if name is None:
        pytest.skip("PyAV's libavutil not found: cannot switch FFmpeg's SIMD paths off")
    return ctypes.CDLL(name)


@contextlib.contextmanager
def ffmpeg_without_simd():
    """PyAV's FFmpeg as on a CPU without SIMD: ``av_force_cpu_flags(0)``, read when a converter or
    decoder is set up (so only objects made inside see it); restored after."""
    lib = _pyav_libavutil()
    lib.av_get_cpu_flags.restype = ctypes.c_int
    lib.av_force_cpu_flags(0)
    try:
        assert lib.av_get_cpu_flags() == 0
        yield
    finally:
        lib.av_force_cpu_flags(-1)


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
    lossy = run_clip(entry, method, metrics(), RunOptions(progress=False, score_through=Q7))
    lossless = run_clip(entry, method, metrics(), RunOptions(progress=False))
    reference = reference_q7(sr, tmp_path / "ref.mp4")
    assert not np.array_equal(reference, sr)
    for column in ("psnr", "ssim"):
        np.testing.assert_array_equal(lossy.frames[column], per_frame(column, reference, gt))
        np.testing.assert_array_equal(lossless.frames[column], per_frame(column, sr, gt))
    assert lossy.row["psnr"] < lossless.row["psnr"] - 0.03  # 26.74 vs 26.81 dB: bicubic blur dominates
    assert lossy.row["score_through"] == "x264_yuv420p_q7 v2: libx264 crf 15 yuv420p"
    assert lossless.row["score_through"] == "lossless"


def _through(frames: np.ndarray, cut: int = 5) -> np.ndarray:
    codec = TranscodeStream(Q7, *frames.shape[1:3], 25.0)
    return np.concatenate([codec.push(frames[:cut]), codec.push(frames[cut:]), codec.finish()])


@pytest.mark.parametrize("size", [(64, 96), (47, 63)])
def test_the_lossy_path_is_the_same_on_every_cpu(size):
    """x264's SIMD rate-control code and swscale's SIMD conversions round differently per instruction
    set (on AVX-512 x264 even varied run to run: 20% of values by up to 6 levels); ours takes none of
    them, so every run, with FFmpeg's SIMD on or off, gives the same frames."""
    frames = real_frames(12, size)
    first = _through(frames)
    for cut in (3, 7):
        np.testing.assert_array_equal(_through(frames, cut), first)
    with ffmpeg_without_simd():
        np.testing.assert_array_equal(_through(frames), first)
    if platform.machine().lower() in ("x86_64", "amd64") and size == (64, 96):  # what ffmpeg's defaults do
        yuv = av.VideoFrame.from_ndarray(first[0], format="rgb24").reformat(format="yuv420p", interpolation="BICUBIC")
        simd = VideoReformatter().reformat(yuv, format="rgb24").to_ndarray()  # to_ndarray's conversion
        with ffmpeg_without_simd():
            plain = VideoReformatter().reformat(yuv, format="rgb24").to_ndarray()
        assert 0 < np.abs(simd.astype(int) - plain).max() <= 3


def test_odd_sizes_go_through_yuv444p_as_the_authors_writer_does(tmp_path):
    frames = real_frames(12, (47, 63))
    codec = TranscodeStream(Q7, 47, 63, 25.0)
    got = np.concatenate([codec.push(frames[:5]), codec.push(frames[5:]), codec.finish()])
    assert codec.pix_fmt == "yuv444p" and got.shape == frames.shape
    np.testing.assert_array_equal(got, reference_q7(frames, tmp_path / "odd.mp4", pix_fmt="yuv444p"))


def test_close_to_what_ffmpeg_and_opencv_give_on_this_cpu(tmp_path, clip):
    """The authors' pipeline on one machine (x264 and swscale at full speed, automatic threads, OpenCV
    reading the file) differs from ours only by rounding: 0.0099 dB here on AMD EPYC (that pipeline itself
    moves by 0.006 dB between x264's instruction sets); PSNR within 0.02 dB."""
    _, gt, sr = clip
    ours, theirs = _through(sr), common_q7(sr, tmp_path / "common.mp4")
    assert abs(per_frame("psnr", ours, gt).mean() - per_frame("psnr", theirs, gt).mean()) < 0.02
    assert per_frame("psnr", theirs, ours).mean() > 40  # the same picture, not just the same score


def test_close_to_imageios_own_writer(tmp_path, clip):
    """imageio-ffmpeg runs the ffmpeg program at full speed with automatic threads; scores stay within 0.02 dB."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    _, gt, sr = clip
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "iio.mp4"), (sr.shape[2], sr.shape[1]), fps=25, quality=7)
    writer.send(None)
    for frame in sr:
        writer.send(frame)
    writer.close()
    ours = _through(sr)
    theirs = read_opencv(tmp_path / "iio.mp4")
    assert abs(per_frame("psnr", ours, gt).mean() - per_frame("psnr", theirs, gt).mean()) < 0.02


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
    assert clips.loc[0, "score_through"] == "x264_yuv420p_q7 v2: libx264 crf 15 yuv420p"
    assert record["identity"]["score_through"] == {"name": "x264_yuv420p_q7", "version": 2}
    # a folder scored by the encode's first version (its values differ) is not resumed into
    old = {**record, "fingerprint": "v1", "identity": {k: v for k, v in record["identity"].items() if k != "score_through"}}
    (tmp_path / "runs" / "folder" / "q7" / "run.json").write_text(json.dumps(old))
    capsys.readouterr()
    assert main([*base, "score_through=x264_yuv420p_q7", "run_name=q7"]) != 0
    assert "differs in score_through" in capsys.readouterr().err
    capsys.readouterr()
    assert main([*base, "score_through=x264_yuv420p_q8", "run_name=typo"]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'x264_yuv420p_q7'" in err
    assert not (tmp_path / "runs" / "folder" / "typo" / "run.json").exists()
