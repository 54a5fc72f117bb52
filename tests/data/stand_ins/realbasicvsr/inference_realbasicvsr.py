"""Stand-in for RealBasicVSR's inference_realbasicvsr.py (external_methods.md section 7): positional
config, checkpoint, input_dir, output_dir; --max_seq_len (underscores: --max-seq-len is rejected);
a folder without extension is a frame folder (every file, sorted); LR at least 64x64 (BasicVSR's
assertion); independent chunks of max_seq_len; PNGs named as the inputs in a folder output_dir."""

import argparse
import glob
import os

import standin

VIDEO_EXTENSIONS = (".mp4", ".mov")

parser = argparse.ArgumentParser(description="Inference script of RealBasicVSR")
parser.add_argument("config", help="test config file path")
parser.add_argument("checkpoint", help="checkpoint file")
parser.add_argument("input_dir", help="directory of the input video")
parser.add_argument("output_dir", help="directory of the output video")
parser.add_argument("--max_seq_len", type=int, default=None)
parser.add_argument("--is_save_as_png", type=bool, default=True)
parser.add_argument("--fps", type=float, default=25)
args = parser.parse_args()

for path in (args.config, args.checkpoint):
    open(path, "rb").close()
ext = os.path.splitext(args.input_dir)[1]
if ext in VIDEO_EXTENSIONS:
    raise NotImplementedError("stand-in: video input is not used by the harness")
elif ext == "":
    files = sorted(glob.glob(os.path.join(args.input_dir, "*")))
    frames = standin.read_images(files)
else:
    raise ValueError('"input_dir" can only be a video or a directory.')
h, w = frames[0].shape[:2]
assert h >= 64 and w >= 64, "The height and width of input should be at least 64."
step = args.max_seq_len or len(frames)
outputs = []
for start in range(0, len(frames), step):  # independent chunks, no overlap
    outputs += [standin.upscale(f, 4) for f in frames[start: start + step]]
os.makedirs(args.output_dir, exist_ok=True)
for file, frame in zip(files, outputs):
    standin.save_png(os.path.join(args.output_dir, os.path.splitext(os.path.basename(file))[0] + ".png"), frame)
