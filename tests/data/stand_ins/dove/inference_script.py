"""Stand-in for DOVE's inference_script.py (external_methods.md section 6): videos matching
*.mp4 *.avi *.mov *.mkv in --input_dir (no frame folders), the empty-prompt embedding read from a path
relative to the cwd, padded to 8n+1 frames and zero-padded to multiples of 16 internally, exactly
x`upscale` for any count and size; --png_save: <output_path>/<stem>/000.png, 001.png, ...; else an mp4."""

import argparse
import glob
import os

import numpy as np

import standin

parser = argparse.ArgumentParser()
parser.add_argument("--input_dir", type=str)
parser.add_argument("--input_json", type=str, default="")
parser.add_argument("--model_path", type=str)
parser.add_argument("--lora_path", type=str, default=None)
parser.add_argument("--output_path", type=str, default="./results")
parser.add_argument("--fps", type=int, default=16)
parser.add_argument("--dtype", type=str, default="bfloat16")
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--upscale_mode", type=str, default="bilinear")
parser.add_argument("--upscale", type=int, default=4)
parser.add_argument("--noise_step", type=int, default=0)
parser.add_argument("--sr_noise_step", type=int, default=399)
parser.add_argument("--is_cpu_offload", action="store_true")
parser.add_argument("--is_vae_st", action="store_true")
parser.add_argument("--png_save", action="store_true")
parser.add_argument("--save_format", type=str, default="yuv444p")
parser.add_argument("--chunk_len", type=int, default=0)
parser.add_argument("--overlap_t", type=int, default=8)
args = parser.parse_args()

if not os.path.isdir(args.model_path):
    raise OSError(f"{args.model_path} is not a diffusers model folder")
if not os.path.isdir("pretrained_models/prompt_embeddings"):
    raise OSError("no pretrained_models/prompt_embeddings: would run the T5 encoder")
videos = sorted(sum((glob.glob(os.path.join(args.input_dir, p)) for p in ("*.mp4", "*.avi", "*.mov", "*.mkv")), []))
print(f"{len(videos)} videos in {args.input_dir}")
for video in videos:
    frames, fps = standin.read_video(video)
    n = len(frames)
    frames = np.stack(frames + [frames[-1]] * ((1 - n) % 8))
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, (-h) % 16), (0, (-w) % 16), (0, 0)))
    out = [standin.upscale(f, args.upscale)[: h * args.upscale, : w * args.upscale] for f in frames[:n]]
    stem = os.path.splitext(os.path.basename(video))[0]
    if args.png_save:
        os.makedirs(os.path.join(args.output_path, stem), exist_ok=True)
        for i, frame in enumerate(out):
            standin.save_png(os.path.join(args.output_path, stem, f"{i:03d}.png"), frame)
    else:
        standin.write_video(os.path.join(args.output_path, stem + ".mp4"), out, fps, args.save_format, crf=0)
