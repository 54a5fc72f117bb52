"""SeedVR2's script writes each result with ``mediapy.write_video`` at its defaults (H.264 yuv420p,
qp 28 above 640x480): lossy. This runs the script unchanged with that function replaced by a
lossless writer of PNG frames ``<output_dir>/<input stem>/00000000.png, ...``.

  torchrun --standalone --nproc-per-node=1 seedvr2_infer.py projects/inference_seedvr2_3b.py ARGS
  (cwd: the SeedVR clone; PYTHONPATH: the clone, for its data/common/projects packages)
"""

from __future__ import annotations

import sys
from pathlib import Path

import mediapy
import numpy as np
from PIL import Image

from _script import run_script


def write_png_frames(path: str, images, **_options) -> None:
    """mediapy.write_video's signature; the frames (uint8 H,W,3 each) go to PNGs in a folder named after the video."""
    folder = Path(path).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(np.asarray(image)).save(folder / f"{i:08d}.png", compress_level=1)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: seedvr2_infer.py <SeedVR2 inference script> [its arguments]")
    mediapy.write_video = write_png_frames
    run_script(sys.argv[1], sys.argv[2:])
