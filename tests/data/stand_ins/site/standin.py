"""What the stand-in tools share: video and frame I/O, and their model, nearest-neighbour upscaling."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def read_video(path: str | Path) -> tuple[list[np.ndarray], float]:
    """RGB frames and fps of a video; ValueError when it is not one."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25.0)
            return [f.to_ndarray(format="rgb24") for f in container.decode(stream)], fps
    except (av.error.FFmpegError, IsADirectoryError) as exc:
        raise ValueError(f"cannot read video {path}: {exc}") from None


def read_images(files: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def save_png(path: str | Path, frame: np.ndarray) -> None:
    Image.fromarray(frame).save(path)


def write_video(path: str | Path, frames: list[np.ndarray], fps: float, pix_fmt: str = "yuv420p", **options) -> None:
    """libx264 with the given pix_fmt and x264 options (crf, qp)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = {k: str(v) for k, v in options.items()}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (exact pixel repetition for whole-number factors)."""
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.NEAREST))


def upscale(frame: np.ndarray, scale: float) -> np.ndarray:
    return resize(frame, round(frame.shape[0] * scale), round(frame.shape[1] * scale))


def centre_crop(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (frame.shape[0] - height) // 2, (frame.shape[1] - width) // 2
    return frame[top: top + height, left: left + width]
