"""Streaming video IO: readers yield uint8 (T,H,W,3) chunks; writers store frames losslessly."""

from infvsr_bench.io.readers import FrameFolderReader, PyAVReader, VideoReader, open_video
from infvsr_bench.io.writers import FrameWriter, LosslessVideoWriter, PngFolderWriter, open_writer

__all__ = [
    "FrameFolderReader",
    "FrameWriter",
    "LosslessVideoWriter",
    "PngFolderWriter",
    "PyAVReader",
    "VideoReader",
    "open_video",
    "open_writer",
]
