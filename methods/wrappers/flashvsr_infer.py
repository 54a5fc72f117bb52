"""FlashVSR (examples/WanVSR/infer_flashvsr_*.py) has no command line: its inputs, output folder and
mp4 writer (libx264 crf 20, yuv420p) are fixed inside the script. This runs the script's own
``main()`` (its pipeline, settings and seed) on one input of ours, its writer replaced by lossless
PNG frames ``OUT_DIR/00000000.png, ...``; it stops after that input.

  python flashvsr_infer.py INPUT OUT_DIR [--script infer_flashvsr_full.py]   (cwd: <clone>/examples/WanVSR)

INPUT: a video or a frame folder. FlashVSR returns F-4 frames for the largest 8n+1 F <= N+4 and
centre-crops x4 sizes to multiples of 128: give it N = 8n+5 >= 21 frames of multiples of 32 pixels
(the adapter's frames and size options do) and every frame comes back, aligned and exactly x4.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image


class _Saved(BaseException):
    """Ends main() after our input (a BaseException, so the script's ``except Exception`` lets it through)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("out_dir")
    parser.add_argument("--script", default="infer_flashvsr_full.py",
                        help="infer_flashvsr_full.py, infer_flashvsr_tiny.py or a v1.1 script, in the cwd")
    args = parser.parse_args()
    script = Path(args.script).resolve()
    if not script.is_file():
        sys.exit(f"flashvsr_infer: no script {args.script} in {Path.cwd()} (cwd must be <FlashVSR>/examples/WanVSR)")
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location("flashvsr_script", script)  # v1.1 names hold a dot
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prepare = module.prepare_input_tensor

    def prepare_ours(_path: str, *rest, **options):
        return prepare(str(Path(args.input).resolve()), *rest, **options)

    def save_frames(frames, *_rest, **_options) -> None:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            Image.fromarray(np.asarray(frame)).save(out / f"{i:08d}.png", compress_level=1)
        raise _Saved

    module.prepare_input_tensor, module.save_video = prepare_ours, save_frames
    try:
        module.main()
    except _Saved:
        return
    sys.exit("flashvsr_infer: the script's main() returned without saving a video (its error is above)")


if __name__ == "__main__":
    main()
