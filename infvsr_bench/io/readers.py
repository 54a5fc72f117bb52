"""Readers that stream a clip as uint8 RGB chunks (T,H,W,3) without decoding the whole clip.

PyAV is the sequential reader (fastest for a front-to-back pass); decord serves random access;
frame folders (PNG/JPG) are read one file at a time in natural order, every mode and bit depth
brought to uint8 RGB by one documented rule (``frame_to_rgb8``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from infvsr_bench.errors import VideoReadError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".y4m"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def is_hidden(path: Path) -> bool:
    """macOS metadata (``._*`` AppleDouble forks, ``.DS_Store``) is never a frame or a clip. Other names
    starting with a dot are data like any other: a clip file ``...mkv`` is the clip ``..``, never dropped."""
    return path.name.startswith("._") or path.name == ".DS_Store"


def frame_files(folder: Path) -> list[Path]:
    """The frames of a frame folder in natural order: image files, hidden ones left out."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p)),
                  key=_natural_key)


def _numbering_outlier(files: list[Path]) -> Path | None:
    """The first file whose name breaks the numbering pattern (digits aside) that most frames share."""
    patterns = [re.sub(r"\d+", "#", p.name.lower()) for p in files]
    common, count = Counter(patterns).most_common(1)[0]
    if count * 2 <= len(files):  # no pattern most frames share: nothing to compare with
        return None
    return next((p for p, pattern in zip(files, patterns) if pattern != common), None)


def _sixteen_bit_colour(im: Image.Image, file: Path) -> bool:
    """True for 16-bit RGB(A) (and grey+alpha) PNG/TIFF, which PIL opens silently as 8-bit "RGB"/"RGBA"
    (low byte dropped)."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    if im.format == "PNG":
        with open(file, "rb") as f:  # IHDR: the bit depth is byte 24 of every PNG
            f.seek(24)
            return f.read(1) == b"\x10"
    if im.format == "TIFF":
        return max(im.tag_v2.get(258, (8,))) == 16  # BitsPerSample
    return False


def _sixteen_to_rgb8(x: np.ndarray) -> np.ndarray:
    """16-bit samples to uint8: round(x * 255 / 65535), i.e. (x + 128) // 257 exactly (x / 257 is never a half)."""
    return ((x.astype(np.uint32) + 128) // 257).astype(np.uint8)


def frame_to_rgb8(im: Image.Image, file: Path) -> np.ndarray:
    """One image as H,W,3 uint8 RGB, whatever its mode and bit depth.

    8-bit modes as stored (1 -> 0/255; 2/4-bit grey scaled by PIL; grey repeated to three channels;
    palette looked up; CMYK, YCbCr... by PIL's conversion). 16-bit samples (I;16*, I, and 16-bit
    RGB/RGBA/grey+alpha, read with OpenCV)
    are rounded to uint8 as round(x * 255 / 65535): the pipeline scores uint8 frames. Alpha is
    dropped: the colour values are used as stored, not composited on any background. Floating-point
    frames (F) have no defined range and are refused, as are integer samples outside 0..65535.
    """
    if _sixteen_bit_colour(im, file):
        bgr = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if bgr is None or bgr.dtype != np.uint16:
            raise VideoReadError(f"{file}: unreadable 16-bit colour image")
        return _sixteen_to_rgb8(bgr[..., 2::-1])
    if im.mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N and I: one sample per pixel
        x = np.asarray(im)
        if x.size and (x.min() < 0 or x.max() > 65535):
            raise VideoReadError(f"{file}: {im.mode} samples outside 0..65535 are not supported; store 8 or 16 bits")
        return np.repeat(_sixteen_to_rgb8(x)[..., None], 3, axis=2)
    if im.mode == "F":
        raise VideoReadError(f"{file}: floating-point samples (mode F) have no defined range; store 8 or 16 bits")
    if im.mode in ("L", "LA"):
        return np.repeat(np.atleast_3d(np.asarray(im))[..., :1], 3, axis=2)
    if im.mode == "RGBA":
        return np.asarray(im)[..., :3]
    return np.asarray(im.convert("RGB"))


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
    """A folder of PNG/JPG frames, sorted in natural order (frame2 before frame10); hidden files are
    skipped, and a file breaking the others' numbering (a ``preview.jpg``) is refused by name."""

    def __init__(self, path: Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.files = frame_files(self.path)
        if not self.files:
            raise VideoReadError(f"{self.path}: folder holds no PNG/JPG frames")
        odd = _numbering_outlier(self.files)
        if odd is not None:
            others = [p for p in self.files if p != odd]
            raise VideoReadError(f"{odd}: {odd.name} does not follow the numbering of the other {len(others)} "
                                 f"frames ({others[0].name}...); remove it or move it out of the clip folder")
        first = self._load(self.files[0])
        self.height, self.width = first.shape[:2]
        self.num_frames = len(self.files)
        self.fps = fps

    def _load(self, file: Path) -> np.ndarray:
        try:
            with Image.open(file) as im:
                return frame_to_rgb8(im, file)
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


def _frame_number(path: Path) -> tuple[int, ...]:
    return tuple(int(t) for t in re.findall(r"\d+", path.name))


def unmatched_frame(a: VideoReader, b: VideoReader) -> Path | None:
    """For two frame folders: the first frame of the longer one (else of the other) whose number (the
    digits in its name) the other lacks; None when there is none or either is a video."""
    if not (isinstance(a, FrameFolderReader) and isinstance(b, FrameFolderReader)):
        return None
    for mine, other in sorted(((a, b), (b, a)), key=lambda pair: -pair[0].num_frames):
        theirs = {_frame_number(p) for p in other.files}
        odd = next((p for p in mine.files if _frame_number(p) not in theirs), None)
        if odd is not None:
            return odd
    return None


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
