"""Stand-in for Stream-DiffVSR's inference.py (external_methods.md section 9): --model_id (default the SD
x4 upscaler, which lacks the controlnet/ subfolder) must be a snapshot folder here (no hub offline);
--in_path holds sequence folders, every file opened with PIL in name order; LR resized down to
multiples of 8 (VaeImageProcessor), x4; PNGs <out_path>/<basename of in_path>/<seq>/<same names>."""

import argparse
import os

import standin

parser = argparse.ArgumentParser()
parser.add_argument("--model_id", type=str, default="stabilityai/stable-diffusion-x4-upscaler")
parser.add_argument("--unet_pretrained_weight", type=str)
parser.add_argument("--controlnet_pretrained_weight", type=str)
parser.add_argument("--temporal_vae_pretrained_weight", type=str)
parser.add_argument("--out_path", type=str, default="./StreamDiffVSR_results/")
parser.add_argument("--in_path", type=str, required=True)
parser.add_argument("--num_inference_steps", type=int, default=4)
parser.add_argument("--enable_tensorrt", action="store_true")
parser.add_argument("--image_height", type=int, default=720)
parser.add_argument("--image_width", type=int, default=1280)
args = parser.parse_args()

for sub in ("controlnet", "unet", "vae", "scheduler"):
    if not os.path.isdir(os.path.join(args.model_id, sub)):
        raise OSError(f"{args.model_id} has no {sub}/ folder and the Hub cannot be reached")
out_root = os.path.join(args.out_path, os.path.basename(os.path.normpath(args.in_path)))
for seq in sorted(os.listdir(args.in_path)):
    names = sorted(os.listdir(os.path.join(args.in_path, seq)))
    frames = standin.read_images([os.path.join(args.in_path, seq, n) for n in names])
    os.makedirs(os.path.join(out_root, seq), exist_ok=True)
    for name, frame in zip(names, frames):  # causal, frame by frame
        h, w = frame.shape[0] // 8 * 8, frame.shape[1] // 8 * 8
        standin.save_png(os.path.join(out_root, seq, name), standin.upscale(standin.resize(frame, h, w), 4))
