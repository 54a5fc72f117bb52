"""Readers that stream a clip as uint8 RGB chunks (T,H,W,3) without decoding the whole clip.

PyAV is the sequential reader (fastest for a front-to-back pass); decord serves random access;
frame folders (PNG/JPG) are read one file at a time in natural order.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from infvsr_bench.errors import VideoReadError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".y4m"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


class VideoReader(ABC):
    """A clip's frames, read front to back in bounded memory."""

    path: Path
    num_frames: int
    height: int
    width: int
    fps: float

    @abstractmethod
    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield H,W,3 uint8 RGB frames in order."""

    def iter_chunks(self, chunk_size: int, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """Yield (T,H,W,3) uint8 chunks of at most ``chunk_size`` frames."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        buf: list[np.ndarray] = []
        count = 0
        for frame in self.iter_frames():
            if max_frames is not None and count >= max_frames:
                break
            buf.append(frame)
            count += 1
            if len(buf) == chunk_size:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Random access to a few frames (decord for videos); (len(indices),H,W,3) uint8."""
        wanted = sorted(set(int(i) for i in indices))
        got: dict[int, np.ndarray] = {}
        for i, frame in enumerate(self.iter_frames()):
            if i in wanted:
                got[i] = frame
            if i >= wanted[-1]:
                break
        missing = [i for i in wanted if i not in got]
        if missing:
            raise VideoReadError(f"{self.path}: frame(s) {missing[:5]} out of range ({self.num_frames} frames)")
        return np.stack([got[int(i)] for i in indices])

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


class FrameFolderReader(VideoReader):
    """A folder of PNG/JPG frames, sorted in natural order (frame2 before frame10)."""

    def __init__(self, path: Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.files = sorted(
            (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
        )
        if not self.files:
            raise VideoReadError(f"{self.path}: folder holds no PNG/JPG frames")
        first = self._load(self.files[0])
        self.height, self.width = first.shape[:2]
        self.num_frames = len(self.files)
        self.fps = fps

    def _load(self, file: Path) -> np.ndarray:
        try:
            with Image.open(file) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise VideoReadError(f"{file}: unreadable image ({exc})") from None

    def iter_frames(self) -> Iterator[np.ndarray]:
        for file in self.files:
            frame = self._load(file)
            if frame.shape[:2] != (self.height, self.width):
                raise VideoReadError(
                    f"{file}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the first "
                    f"frame's {self.width}x{self.height}"
                )
            yield frame

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return np.stack([self._load(self.files[int(i)]) for i in indices])
        except IndexError:
            raise VideoReadError(f"{self.path}: frame index out of range ({self.num_frames} frames)") from None


class PyAVReader(VideoReader):
    """A video file decoded sequentially with PyAV (FFmpeg), converted to RGB24."""

    def __init__(self, path: Path) -> None:
        import av

        self.path = Path(path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoReadError(f"{self.path}: no video stream")
                stream = container.streams.video[0]
                self.width = stream.codec_context.width
                self.height = stream.codec_context.height
                self.fps = float(stream.average_rate or stream.guessed_rate or 25.0)
                self.num_frames = stream.frames or self._count_frames(container, self.fps)
                self.codec = stream.codec_context.name
                self.pix_fmt = stream.codec_context.pix_fmt
        except VideoReadError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoReadError(f"{self.path}: unreadable video ({exc})") from None
        if not self.width or not self.height or self.num_frames == 0:
            raise VideoReadError(f"{self.path}: video has no decodable frames")

    def _count_frames(self, container, fps: float) -> int:
        """Containers such as MKV store no frame count: count packets (no decoding), and compare
        with the duration in the header to catch files cut short."""
        n = sum(1 for p in container.demux(video=0) if p.size)
        if container.duration:
            expected = round(container.duration / 1e6 * fps)
            if n < expected - 1:
                raise VideoReadError(f"{self.path}: truncated video, {n} of {expected} frames present")
        return n

    def iter_frames(self) -> Iterator[np.ndarray]:
        import av

        count = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise VideoReadError(f"{self.path}: decoding failed after {count} frames ({exc})") from None
        if count < self.num_frames:
            raise VideoReadError(
                f"{self.path}: truncated video, decoded {count} of {self.num_frames} frames"
            )

    _decord_refused = False  # set once decord failed on this clip: PyAV reads it from then on

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """decord's random access, else PyAV's sequential decoding (the same frames): for RGB-coded
        streams (x264rgb, FFV1 bgr0), which decord converts inexactly; for indices out of range (PyAV
        names them); and where decord fails. It does so on CPUs with AVX-512, where FFmpeg pads RGB rows
        to 64 bytes and decord refuses padded frames (e.g. 96 px wide: 384-byte rows of 288 bytes)."""
        if (not self.pix_fmt.startswith("yuv") or self._decord_refused
                or not all(0 <= int(i) < self.num_frames for i in indices)):
            return super().read_frames(indices)
        import decord

        try:
            vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0))
            return vr.get_batch(list(map(int, indices))).asnumpy()
        except (decord.DECORDError, IndexError, RuntimeError):
            self._decord_refused = True
            return super().read_frames(indices)


def open_video(path: str | Path, fps: float = 25.0) -> VideoReader:
    """Open a video file or a folder of frames; raises VideoReadError with one clear line."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: no such file or folder")
    if path.is_dir():
        return FrameFolderReader(path, fps=fps)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return PyAVReader(path)
    raise VideoReadError(
        f"{path}: unsupported file type {path.suffix!r}; expected a frame folder or one of "
        + ", ".join(sorted(VIDEO_SUFFIXES))
    )
