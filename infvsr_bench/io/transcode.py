"""Scoring through a lossy encode: SR frames go through the codec a tool saves its outputs with,
and come back decoded, before metrics see them (``score_through``); the default stays lossless.

``x264_yuv420p_q7`` is InfVSR's official writer: imageio's mp4 writer at ``quality=7``, i.e.
imageio-ffmpeg's ``write_frames``, which maps quality q in [0, 10] for libx264 to
``-crf int((1 - q / 10) * 51)`` (imageio_ffmpeg/_io.py, ``write_frames``): q=7 -> crf 15, with
``-pix_fmt yuv420p``, libx264's default preset (medium), ``-r`` the clip's fps written as
``{:.02f}``, and ffmpeg's default RGB -> YUV conversion (swscale, bicubic). Frames are decoded back
to RGB24 as FFmpeg-based readers (PyAV, OpenCV) decode such a file. Sizes: the authors' writer switches
to yuv444p when a dimension is odd (yuv420p needs even sizes), and so do we; imageio's default
``macro_block_size=16`` would instead resize other sizes to a multiple of 16, which we never do
(scored frames keep the GT's size).

The same frames on every machine: as ffmpeg runs it, this encode depends on the CPU. libx264's SIMD
rate-control code (mbtree: approximate reciprocals, FMA) rounds differently per instruction set and
vendor, and its AVX-512 code even varied from run to run (AMD EPYC: 20% of values by up to 6 levels);
its thread count, set from the machine's cores, changes the bitstream; swscale's SIMD conversions
round differently from its C code (RGB -> yuv420p by 1 level, yuv420p -> RGB by up to 3). So we encode
with one thread and only x264 code whose output equals its C code bit for bit (integer MMX2 on x86, C
elsewhere), and convert both ways with swscale's exact rounding (``ACCURATE_RND | BITEXACT``,
bicubic to YUV, nearest chroma back to RGB: FFmpeg's C conversion, the one its readers use): one result
on any x86 CPU, checked with FFmpeg's SIMD off; ARM builds run the same C code compiled for ARM (not
compared here with x86: a compiler may fuse its float operations). It differs from the authors' pipeline on one machine by that machine's rounding (about
0.01 dB of PSNR; that pipeline moves by about as much from one CPU to another), and costs about twice
the encode time of ffmpeg's fastest path.
"""

from __future__ import annotations

import dataclasses
import platform
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
    version: int  # raised whenever its output changes; part of a run's identity

    def describe(self, height: int, width: int) -> str:
        """What frames of this size go through, e.g. ``x264_yuv420p_q7 v2: libx264 crf 15 yuv420p``."""
        return f"{self.name} v{self.version}: {self.codec} crf {self.crf} {self.pix_fmt_for(height, width)}"

    def pix_fmt_for(self, height: int, width: int) -> str:
        return self.odd_pix_fmt if height % 2 or width % 2 else self.pix_fmt


# None = frames are scored exactly as the method returned them.
SCORE_THROUGH: Registry[LossyEncoding | None] = Registry("score_through encoding")
SCORE_THROUGH.register("lossless", None)
# v1 (unversioned): ffmpeg's defaults, CPU-dependent; v2: the same frames on every CPU (module docstring).
SCORE_THROUGH.register("x264_yuv420p_q7", LossyEncoding("x264_yuv420p_q7", "libx264", crf=int((1 - 7 / 10) * 51),
                                                         pix_fmt="yuv420p", odd_pix_fmt="yuv444p", version=2))


def x264_asm() -> str:
    """libx264's ``asm`` setting for a CPU-independent bitstream: its integer MMX2 code on x86 (checked
    bit-exact against its C code, about 2.5x faster than C), its C code elsewhere."""
    return "MMX2" if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86") else "0"


def imageio_rate(fps: float) -> Fraction:
    """The frame rate imageio-ffmpeg passes to ffmpeg (``-r {:.02f}``): libx264's rate control uses it."""
    return Fraction(f"{fps:.02f}")


class TranscodeStream:
    """Streaming in-memory encode + decode of one clip; frames come back after the codec's latency."""

    def __init__(self, encoding: LossyEncoding, height: int, width: int, fps: float) -> None:
        import av
        from av.video.reformatter import Interpolation, VideoReformatter

        self.size = (height, width)
        self.pix_fmt = encoding.pix_fmt_for(height, width)
        rate = imageio_rate(fps)
        self.encoder = av.CodecContext.create(encoding.codec, "w")
        self.encoder.height, self.encoder.width = height, width
        self.encoder.pix_fmt = self.pix_fmt
        self.encoder.time_base = 1 / rate
        self.encoder.framerate = rate
        self.encoder.thread_count = 1
        self.encoder.options = {"crf": str(encoding.crf), "x264-params": f"asm={x264_asm()}"}
        self.decoder = av.CodecContext.create("h264", "r")
        self.decoder.thread_count = 1
        exact = Interpolation.ACCURATE_RND | Interpolation.BITEXACT
        self.to_yuv, self.yuv_flags = VideoReformatter(), Interpolation.BICUBIC | exact  # ffmpeg's bicubic, exact
        self.to_rgb, self.rgb_flags = VideoReformatter(), Interpolation.POINT | exact  # FFmpeg's C yuv -> RGB
        self.frames_in = self.frames_out = 0

    def _decode(self, packets: list) -> np.ndarray:
        out = [self.to_rgb.reformat(f, format="rgb24", interpolation=self.rgb_flags, threads=1).to_ndarray()
               for p in packets for f in self.decoder.decode(p)]
        self.frames_out += len(out)
        return np.stack(out) if out else np.zeros((0, *self.size, 3), np.uint8)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Encode (T,H,W,3) uint8 frames; return the decoded frames the codec has released so far."""
        import av

        packets = []
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf = self.to_yuv.reformat(vf, format=self.pix_fmt, interpolation=self.yuv_flags, threads=1)
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
