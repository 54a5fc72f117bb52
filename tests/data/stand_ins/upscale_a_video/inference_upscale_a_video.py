"""Stand-in for Upscale-A-Video's inference_upscale_a_video.py (external_methods.md section 4): LLaVA
captions unless --no_llava, weights under ./pretrained_models/upscale_a_video, a video (or a folder of
videos; a frame folder crashes), x4, written by imageio at quality 8 (libx264 crf 10 yuv420p) to
<output_path>/video/<name>_n<N>_g<G>_s<S>[_p<a_b_c>].mp4, frames resized up to multiples of 16."""

import argparse
import os

import standin

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi")

parser = argparse.ArgumentParser()
parser.add_argument("-i", "--input_path", type=str, default="./inputs")
parser.add_argument("-o", "--output_path", type=str, default="./results")
parser.add_argument("-n", "--noise_level", type=int, default=120)
parser.add_argument("-g", "--guidance_scale", type=int, default=6)
parser.add_argument("-s", "--inference_steps", type=int, default=30)
parser.add_argument("-p", "--propagation_steps", type=str, default=None)
parser.add_argument("--a_prompt", type=str, default="best quality, extremely detailed")
parser.add_argument("--n_prompt", type=str, default="blur, worst quality")
parser.add_argument("--use_video_vae", action="store_true")
parser.add_argument("--color_fix", type=str, default="None")
parser.add_argument("--no_llava", action="store_true")
parser.add_argument("--load_8bit_llava", action="store_true")
parser.add_argument("--perform_tile", action="store_true")
parser.add_argument("--tile_size", type=int, default=256)
parser.add_argument("--save_image", action="store_true")
parser.add_argument("--save_suffix", type=str, default="")
args = parser.parse_args()

for part in ("unet/unet_video.bin", "vae/vae_3d.bin", "propagator/raft-things.pth"):
    open(os.path.join("./pretrained_models/upscale_a_video", part), "rb").close()
if not args.no_llava:
    raise OSError("liuhaotian/llava-v1.5-13b is not a local folder and the Hub cannot be reached")
if os.path.isfile(args.input_path):
    videos = [args.input_path]
else:
    videos = sorted(os.path.join(args.input_path, f) for f in os.listdir(args.input_path))
    if not any(v.endswith(VIDEO_EXTENSIONS) for v in videos):
        raise NameError("name 'np' is not defined")  # utils.py reads frame folders without importing numpy
for video in videos:
    frames, fps = standin.read_video(video)
    out = [standin.upscale(f, 4) for f in frames]
    h, w = out[0].shape[:2]
    out = [standin.resize(f, -(-h // 16) * 16, -(-w // 16) * 16) for f in out]  # imageio's macro_block_size 16
    name = os.path.splitext(os.path.basename(video))[0]
    suffix = f"_n{args.noise_level}_g{args.guidance_scale}_s{args.inference_steps}"
    if args.propagation_steps:
        suffix += "_p" + args.propagation_steps.replace(",", "_")
    os.makedirs(os.path.join(args.output_path, "video"), exist_ok=True)
    standin.write_video(os.path.join(args.output_path, "video", f"{name}{suffix}{args.save_suffix}.mp4"), out, fps,
                        "yuv420p", crf=10)
