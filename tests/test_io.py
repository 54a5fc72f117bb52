"""Streaming readers and lossless writers round-trip real frames exactly; bad files fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import real_frames, write_clip
from PIL import Image

from infvsr_bench.errors import VideoReadError
from infvsr_bench.io import open_video, open_writer


@pytest.mark.parametrize("name,codec", [("a.mkv", "ffv1"), ("b.mkv", "x264rgb"), ("c.mp4", "x264rgb"), ("frames", "ffv1")])
def test_lossless_roundtrip_in_chunks(tmp_path, name, codec):
    frames = real_frames(23)
    writer = open_writer(tmp_path / name, fps=30.0, codec=codec)
    writer.write(frames[:10])
    writer.write(frames[10:])
    writer.close()
    assert writer.record()["lossless"] is True
    reader = open_video(tmp_path / name)
    assert (reader.num_frames, reader.height, reader.width) == (23, 64, 96)
    chunks = list(reader.iter_chunks(8))
    assert [len(c) for c in chunks] == [8, 8, 7]
    np.testing.assert_array_equal(np.concatenate(chunks), frames)
    np.testing.assert_array_equal(reader.read_frames([5, 0, 22]), frames[[5, 0, 22]])
    assert [len(c) for c in reader.iter_chunks(8, max_frames=10)] == [8, 2]


@pytest.mark.parametrize("size", [(64, 128), (64, 96)])
def test_decord_random_access_on_yuv_video(tmp_path, size):
    """Random access equals sequential PyAV decoding at any width. On CPUs with AVX-512 FFmpeg pads
    RGB rows to 64 bytes, and decord refuses frames such as 96 px wide ones (linesize 384 for 288 bytes:
    "The size must exactly match (24576 vs. 18432)"): those are read with PyAV."""
    import av

    frames = real_frames(12, size)
    path = tmp_path / "yuv.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.pix_fmt, s.height, s.width = "yuv420p", *size
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    reader = open_video(path)
    sequential = np.stack(list(reader.iter_frames()))
    np.testing.assert_array_equal(reader.read_frames([7, 2, 7]), sequential[[7, 2, 7]])
    np.testing.assert_array_equal(reader.read_frames([11]), sequential[[11]])
    assert size == (64, 96) or not reader._decord_refused  # 384-byte rows are never padded: decord served them
    with pytest.raises(VideoReadError, match=r"yuv.mp4: frame\(s\) \[12\] out of range \(12 frames\)"):
        reader.read_frames([3, 12])


def test_frame_folder_natural_order(tmp_path):
    frames = real_frames(12)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"frame{i}.png")  # frame10 must come after frame9
    np.testing.assert_array_equal(np.stack(list(open_video(tmp_path).iter_frames())), frames)


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError):
        with open_writer(target) as w:
            w.write(real_frames(3))
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_missing_unsupported_and_corrupt_inputs(tmp_path):
    with pytest.raises(VideoReadError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(VideoReadError, match="unsupported file type '.txt'"):
        open_video(tmp_path / "x.txt")
    (tmp_path / "bad.mp4").write_bytes(b"\x00not a video at all" * 50)
    with pytest.raises(VideoReadError, match="bad.mp4: unreadable video"):
        open_video(tmp_path / "bad.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoReadError, match="holds no PNG/JPG frames"):
        open_video(tmp_path / "empty")


def test_truncated_video_is_reported(tmp_path):
    path = write_clip(tmp_path / "t.mkv", real_frames(40))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="t.mkv"):
        reader = open_video(path)
        list(reader.iter_frames())
