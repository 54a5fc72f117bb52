"""Lossless frame writers (PNG folders, FFV1 / x264-rgb video), atomic: temp path, rename on close."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infvsr_bench.io.atomic import publish, temp_path

# Lossless codecs keyed by name: (FFmpeg encoder, pixel format, encoder options).
LOSSLESS_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "ffv1": ("ffv1", "bgr0", {}),
    "x264rgb": ("libx264rgb", "rgb24", {"crf": "0", "preset": "veryfast"}),
}


class FrameWriter(ABC):
    """Appends uint8 RGB frames; the target appears only when ``close()`` succeeds."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = temp_path(self.path, "partial")  # a killed writer's frames removed
        self.frames_written = 0

    def write(self, chunk: np.ndarray) -> None:
        """Append a (T,H,W,3) or (H,W,3) uint8 array."""
        if chunk.ndim == 3:
            chunk = chunk[None]
        if chunk.dtype != np.uint8 or chunk.ndim != 4 or chunk.shape[-1] != 3:
            raise ValueError(f"writer expects uint8 (T,H,W,3) frames, got {chunk.dtype} {chunk.shape}")
        for frame in chunk:
            self._write_frame(frame)
            self.frames_written += 1

    @abstractmethod
    def _write_frame(self, frame: np.ndarray) -> None: ...

    @abstractmethod
    def _finish(self) -> None: ...

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """How the frames were stored (format, codec, pixel format), for manifests and run records."""

    def close(self) -> None:
        self._finish()
        publish(self.tmp, self.path, durable=False)  # whole or absent after a kill; re-made, not fsynced

    def abort(self) -> None:
        """Drop everything written so far."""
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class PngFolderWriter(FrameWriter):
    """One PNG per frame, named 00000000.png, 00000001.png, ..."""

    def __init__(self, path: str | Path, compress_level: int = 1) -> None:
        super().__init__(path)
        self.compress_level = compress_level
        self.tmp.mkdir(parents=True, exist_ok=False)

    def _write_frame(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.tmp / f"{self.frames_written:08d}.png", compress_level=self.compress_level)

    def _finish(self) -> None:
        pass

    def record(self) -> dict[str, Any]:
        return {"format": "png", "codec": "png", "pix_fmt": "rgb24", "lossless": True}


class LosslessVideoWriter(FrameWriter):
    """Lossless RGB video through PyAV: FFV1 (gbrp) in .mkv, or libx264rgb at CRF 0."""

    def __init__(self, path: str | Path, fps: float = 25.0, codec: str = "ffv1") -> None:
        import av

        super().__init__(path)
        if codec not in LOSSLESS_CODECS:
            raise ValueError(f"unknown lossless codec {codec!r}; available: {sorted(LOSSLESS_CODECS)}")
        self.codec = codec
        self.fps = fps
        self.encoder, self.pix_fmt, options = LOSSLESS_CODECS[codec]
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        fmt = {"mkv": "matroska"}.get(self.path.suffix.lstrip("."), self.path.suffix.lstrip("."))
        # bitexact: no random segment UID or version strings, so the same frames give the same bytes.
        self._container = av.open(str(self.tmp), mode="w", format=fmt, options={"fflags": "+bitexact"})
        self._stream = self._container.add_stream(self.encoder, rate=Fraction(fps).limit_denominator(1001))
        self._stream.pix_fmt = self.pix_fmt
        self._stream.codec_context.flags |= av.codec.context.Flags.bitexact
        self._stream.options = options
        self._opened = False

    def _write_frame(self, frame: np.ndarray) -> None:
        import av

        if not self._opened:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._opened = True
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def _finish(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # the container may be half-written; it is deleted next
            pass
        super().abort()

    def record(self) -> dict[str, Any]:
        return {"format": self.path.suffix.lstrip("."), "codec": self.encoder, "pix_fmt": self.pix_fmt, "lossless": True}


def open_writer(path: str | Path, fps: float = 25.0, codec: str = "ffv1") -> FrameWriter:
    """A PNG-folder writer for a path without a suffix, else a lossless video writer."""
    path = Path(path)
    if path.suffix == "":
        return PngFolderWriter(path)
    return LosslessVideoWriter(path, fps=fps, codec=codec)
