"""Stand-in for MGLD-VSR's scripts/vsr_val_ddpm_text_T_vqganfin_oldcanvas_tile.py (external_methods.md
section 5): imports ldm (PYTHONPATH), loads --config and the hard-coded configs/video_autoencoder/ VAE
config (the repo ships configs/video_vae/), whose absolute weight paths are opened at model
construction; every folder of --seqs-path is a sequence, names padded to a multiple of 5 with the last;
LR upsampled by max(4, 512/min(h,w)), padded to multiples of 32, brought back with the padded size
(exactly x4 only when min(h,w) >= 128); PNGs under <outdir>/<seq>/ with the input names."""

import argparse
import math
import os

import numpy as np
from omegaconf import OmegaConf

import ldm  # noqa: F401  ("No module named 'ldm'" without PYTHONPATH, issue #2)
import standin

parser = argparse.ArgumentParser()
parser.add_argument("--seqs-path", type=str, default="inputs/user_upload")
parser.add_argument("--outdir", type=str, default="outputs/user_upload")
parser.add_argument("--device", type=str, default="cuda")
parser.add_argument("--ddpm_steps", type=int, default=1000)
parser.add_argument("--n_frames", type=int, default=5)
parser.add_argument("--config", type=str, required=True)
parser.add_argument("--ckpt", type=str, default="checkpoints/stablevsr_025.ckpt")
parser.add_argument("--vqgan_ckpt", type=str, default="checkpoints/vqgan_cfw_00011.ckpt")
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--select_idx", type=int, default=0)
parser.add_argument("--n_gpus", type=int, default=1)
parser.add_argument("--dec_w", type=float, default=0.5)
parser.add_argument("--upscale", type=float, default=4.0)
parser.add_argument("--colorfix_type", type=str, default="nofix")
opt = parser.parse_args()

config = OmegaConf.load(f"{opt.config}")
vqgan_config = OmegaConf.load("configs/video_autoencoder/video_autoencoder_kl_64x64x4_resi.yaml")
for path in (config.model.params.ckpt_path, config.model.params.flow_config.params.load_path,
             vqgan_config.model.params.ckpt_path, vqgan_config.model.params.lossconfig.params.spynet_path[0],
             opt.ckpt, opt.vqgan_ckpt):
    open(path, "rb").close()
assert config.model.params.num_frames == opt.n_frames

for seq in sorted(os.listdir(opt.seqs_path)):
    names = sorted(os.listdir(os.path.join(opt.seqs_path, seq)))
    names += [names[-1]] * ((-len(names)) % opt.n_frames)
    os.makedirs(os.path.join(opt.outdir, seq), exist_ok=True)
    for start in range(0, len(names), opt.n_frames):  # segments of n_frames, independent
        for name in names[start: start + opt.n_frames]:
            frame = standin.read_images([os.path.join(opt.seqs_path, seq, name)])[0]
            h, w = frame.shape[:2]
            factor = max(opt.upscale, 512 / min(h, w))
            up = standin.upscale(frame, factor)
            ph, pw = math.ceil(up.shape[0] / 32) * 32, math.ceil(up.shape[1] / 32) * 32
            up = np.pad(up, ((0, ph - up.shape[0]), (0, pw - up.shape[1]), (0, 0)), mode="reflect")
            out = standin.resize(up, round(ph * opt.upscale / factor), round(pw * opt.upscale / factor))
            if factor == opt.upscale:
                out = out[: round(h * opt.upscale), : round(w * opt.upscale)]
            standin.save_png(os.path.join(opt.outdir, seq, os.path.splitext(name)[0] + ".png"), out)
