"""Stand-in for SeedVR2's projects/inference_seedvr2_3b.py (external_methods.md section 2): torchrun only,
cwd = repo root (configs_3b/, ckpts/), imports data/common (PYTHONPATH), every entry of --video_path
processed, padded to 4n+1 and trimmed back, resized to the area res_h*res_w keeping the aspect ratio,
centre-cropped to multiples of 16, written with mediapy.write_video to <output_dir>/<input name>."""

import argparse
import math
import os

import mediapy
import numpy as np

import common  # noqa: F401  ("No module named 'data'" without PYTHONPATH, issue #51)
import data  # noqa: F401
import standin

parser = argparse.ArgumentParser()
parser.add_argument("--video_path", type=str, default="./test_videos")
parser.add_argument("--output_dir", type=str, default="./results")
parser.add_argument("--seed", type=int, default=666)
parser.add_argument("--res_h", type=int, default=720)
parser.add_argument("--res_w", type=int, default=1280)
parser.add_argument("--sp_size", type=int, default=1)
parser.add_argument("--out_fps", type=float, default=None)
args = parser.parse_args()

if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
    raise RuntimeError("init_process_group: environment variable RANK expected, but not set (run under torchrun)")
for path in ("./configs_3b/main.yaml", "./ckpts/seedvr2_ema_3b.pth", "./ckpts/ema_vae.pth"):
    open(path, "rb").close()
os.makedirs(args.output_dir, exist_ok=True)
for name in sorted(os.listdir(args.video_path)):
    frames, fps = standin.read_video(os.path.join(args.video_path, name))
    n = len(frames)
    frames = frames + [frames[-1]] * ((1 - n) % 4)
    h, w = frames[0].shape[:2]
    scale = math.sqrt(args.res_h * args.res_w / (h * w))
    out = [standin.upscale(f, scale) for f in frames]
    oh, ow = out[0].shape[0] // 16 * 16, out[0].shape[1] // 16 * 16
    out = np.stack([standin.centre_crop(f, oh, ow) for f in out][:n])
    mediapy.write_video(os.path.join(args.output_dir, name), out, fps=args.out_fps or fps)
