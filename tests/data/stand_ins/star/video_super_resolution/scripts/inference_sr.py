"""Stand-in for STAR's video_super_resolution/scripts/inference_sr.py (external_methods.md section 3): one
video file in (--input_path), no --prompt_path, --file_name needed at save time, any frame count and
size, exactly x`upscale` out, PNGs re-encoded by ffmpeg libx264 crf 0 yuv420p into save_dir/tmp.mp4,
renamed to save_dir/file_name."""

import argparse
import os

import standin

parser = argparse.ArgumentParser()
parser.add_argument("--input_path", type=str, required=True)
parser.add_argument("--save_dir", type=str, default="results")
parser.add_argument("--file_name", type=str)
parser.add_argument("--model_path", type=str, default="./pretrained_weight/model.pt")
parser.add_argument("--prompt", type=str, default="a good video")
parser.add_argument("--upscale", type=int, default=4)
parser.add_argument("--max_chunk_len", type=int, default=32)
parser.add_argument("--cfg", type=float, default=7.5)
parser.add_argument("--solver_mode", type=str, default="fast")
parser.add_argument("--steps", type=int, default=15)
args = parser.parse_args()

open(args.model_path, "rb").close()
frames, fps = standin.read_video(args.input_path)
out = [standin.upscale(f, args.upscale) for f in frames]
os.makedirs(args.save_dir, exist_ok=True)
tmp = os.path.join(args.save_dir, "tmp.mp4")
standin.write_video(tmp, out, fps, "yuv420p", crf=0, preset="ultrafast")
os.rename(tmp, os.path.join(args.save_dir, args.file_name))
