"""Scoring through a lossy encode: SR frames go through the codec a tool saves its outputs with,
and come back decoded, before metrics see them (``score_through``); the default stays lossless.

``x264_yuv420p_q7`` is InfVSR's official writer: imageio's mp4 writer at ``quality=7``, i.e.
imageio-ffmpeg's ``write_frames``, which maps quality q in [0, 10] for libx264 to
``-crf int((1 - q / 10) * 51)`` (imageio_ffmpeg/_io.py, ``write_frames``): q=7 -> crf 15, with
``-pix_fmt yuv420p``, libx264's default preset (medium), ``-r`` the clip's fps written as
``{:.02f}``, and ffmpeg's default RGB -> YUV conversion (swscale, bicubic). Frames are decoded back
to RGB24 as our readers (and OpenCV) decode such a file. Sizes: the authors' writer switches to
yuv444p when a dimension is odd (yuv420p needs even sizes), and so do we; imageio's default
``macro_block_size=16`` would instead resize other sizes to a multiple of 16, which we never do
(scored frames keep the GT's size). libx264's output depends on its thread count, which ffmpeg
sets from the machine's cores: we encode with one thread, so results do not depend on the machine
(at one thread count the bitstream equals the ffmpeg command's; across counts PSNR moves ~0.001 dB).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from infvsr_bench.errors import ClipError
from infvsr_bench.registry import Registry


@dataclasses.dataclass(frozen=True)
class LossyEncoding:
    """One codec setting SR frames pass through before scoring."""

    name: str
    codec: str
    crf: int
    pix_fmt: str  # for even sizes
    odd_pix_fmt: str  # when a dimension is odd (4:2:0 cannot hold it)

    def describe(self, height: int, width: int) -> str:
        """What frames of this size go through, e.g. ``x264_yuv420p_q7: libx264 crf 15 yuv420p``."""
        return f"{self.name}: {self.codec} crf {self.crf} {self.pix_fmt_for(height, width)}"

    def pix_fmt_for(self, height: int, width: int) -> str:
        return self.odd_pix_fmt if height % 2 or width % 2 else self.pix_fmt


# None = frames are scored exactly as the method returned them.
SCORE_THROUGH: Registry[LossyEncoding | None] = Registry("score_through encoding")
SCORE_THROUGH.register("lossless", None)
SCORE_THROUGH.register("x264_yuv420p_q7", LossyEncoding("x264_yuv420p_q7", "libx264", crf=int((1 - 7 / 10) * 51),
                                                         pix_fmt="yuv420p", odd_pix_fmt="yuv444p"))


def imageio_rate(fps: float) -> Fraction:
    """The frame rate imageio-ffmpeg passes to ffmpeg (``-r {:.02f}``): libx264's rate control uses it."""
    return Fraction(f"{fps:.02f}")


class TranscodeStream:
    """Streaming in-memory encode + decode of one clip; frames come back after the codec's latency."""

    def __init__(self, encoding: LossyEncoding, height: int, width: int, fps: float) -> None:
        import av

        self.size = (height, width)
        self.pix_fmt = encoding.pix_fmt_for(height, width)
        rate = imageio_rate(fps)
        self.encoder = av.CodecContext.create(encoding.codec, "w")
        self.encoder.height, self.encoder.width = height, width
        self.encoder.pix_fmt = self.pix_fmt
        self.encoder.time_base = 1 / rate
        self.encoder.framerate = rate
        self.encoder.thread_count = 1
        self.encoder.options = {"crf": str(encoding.crf)}
        self.decoder = av.CodecContext.create("h264", "r")
        self.decoder.thread_count = 1
        self.frames_in = self.frames_out = 0

    def _decode(self, packets: list) -> np.ndarray:
        out = [f.to_ndarray(format="rgb24") for p in packets for f in self.decoder.decode(p)]
        self.frames_out += len(out)
        return np.stack(out) if out else np.zeros((0, *self.size, 3), np.uint8)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Encode (T,H,W,3) uint8 frames; return the decoded frames the codec has released so far."""
        import av

        packets = []
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf = vf.reformat(format=self.pix_fmt, interpolation="BICUBIC")  # ffmpeg's default swscale flags
            vf.pts = self.frames_in
            self.frames_in += 1
            packets.extend(self.encoder.encode(vf))
        return self._decode(packets)

    def finish(self) -> np.ndarray:
        """Drain encoder and decoder: the clip's last frames."""
        out = np.concatenate([self._decode(list(self.encoder.encode(None))), self._decode([None])])
        if self.frames_out != self.frames_in:
            raise ClipError(f"{self.pix_fmt} transcode returned {self.frames_out} of {self.frames_in} frames")
        return out
