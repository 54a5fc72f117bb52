"""Stand-in for InfVSR's official inference.py (external_methods.md section 8): --input a video (or a
folder of them), --output a folder, the four weight files in --model_dir (missing: abort), any frame
count and size, exactly x`scale`; <output>/<stem>.mp4, refused if it exists; libx264 crf 15 yuv420p,
--yuv444p: crf 0 yuv444p."""

import argparse
import sys
from pathlib import Path

import standin

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
WEIGHTS = ("InfVSR.ckpt", "Wan2.1_VAE.pth", "ram_swin_large_14m.pth", "DAPE.pth")

parser = argparse.ArgumentParser()
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, default=Path("outputs"))
parser.add_argument("--model_dir", type=Path, default=Path("models"))
parser.add_argument("--scale", type=int, default=4)
parser.add_argument("--max_frames", type=int, default=None)
parser.add_argument("--fps", type=float, default=0)
parser.add_argument("--device", type=str, default="cuda")
parser.add_argument("--no_scene_detection", action="store_true")
parser.add_argument("--scene_threshold", type=float, default=27.0)
parser.add_argument("--reference_threshold", type=float, default=27.0)
parser.add_argument("--yuv444p", action="store_true")
args = parser.parse_args()

videos = [args.input] if args.input.is_file() else sorted(p for p in args.input.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
missing = [name for name in WEIGHTS if not (args.model_dir / name).is_file()]
if missing:
    sys.exit(f"missing model files in {args.model_dir}: {', '.join(missing)}")
args.output.mkdir(parents=True, exist_ok=True)
for video in videos:
    target = args.output / f"{video.stem}.mp4"
    if target.exists():
        sys.exit(f"{target} exists")
    frames, fps = standin.read_video(video)
    out = [standin.upscale(f, args.scale) for f in frames[: args.max_frames]]
    h, w = out[0].shape[:2]
    if args.yuv444p:
        standin.write_video(target, out, args.fps or fps, "yuv444p", crf=0)
    else:
        standin.write_video(target, out, args.fps or fps, "yuv444p" if h % 2 or w % 2 else "yuv420p", crf=15)
