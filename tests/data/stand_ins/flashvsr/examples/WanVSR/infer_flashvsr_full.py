"""Stand-in for FlashVSR's examples/WanVSR/infer_flashvsr_full.py (external_methods.md section 1): no
command line, hard-coded inputs and ./results, weights under ./FlashVSR/ and the prompt tensor
relative to the cwd; 4 copies of the last frame appended, the largest 8n+1 prefix F kept, (F-1)/8-2
streaming steps (none: a crash), F-4 frames out; x4 centre-cropped to multiples of 128; libx264 crf 20."""

import os

import numpy as np
from PIL import Image

import standin


def largest_8n1_leq(n):
    return 0 if n < 1 else ((n - 1) // 8) * 8 + 1


def prepare_input_tensor(path, scale=4, dtype=None, device="cuda"):
    if os.path.isdir(path):
        frames, fps = standin.read_images(sorted(os.scandir(path), key=lambda e: e.name)), 30
    else:
        frames, fps = standin.read_video(path)
    frames = frames + [frames[-1]] * 4
    F = largest_8n1_leq(len(frames))
    print(f"Target Frames (8n-3): {F - 4}")
    h, w = frames[0].shape[:2]
    tH, tW = (h * scale) // 128 * 128, (w * scale) // 128 * 128
    if tH < 128 or tW < 128:
        raise ValueError(f"input too small for 128-multiples: {w}x{h}")
    return np.stack([standin.centre_crop(standin.upscale(f, scale), tH, tW) for f in frames[:F]]), tH, tW, F, fps


class Pipeline:
    def __call__(self, prompt="", LQ_video=None, num_frames=0, height=0, width=0, cfg_scale=1.0, **settings):
        assert cfg_scale == 1.0
        steps = (num_frames - 1) // 8 - 2
        chunks = [LQ_video[:21]] + [LQ_video[21 + 8 * i: 29 + 8 * i] for i in range(steps - 1)] if steps > 0 else []
        return np.concatenate(chunks)  # no step: "need at least one array to concatenate"


def init_pipeline():
    for path in ("./FlashVSR/diffusion_pytorch_model_streaming_dmd.safetensors", "./FlashVSR/Wan2.1_VAE.pth",
                 "./FlashVSR/LQ_proj_in.ckpt", "../../examples/WanVSR/prompt_tensor/posi_prompt.pth"):
        open(path, "rb").close()
    return Pipeline()


def tensor2video(frames):
    return [Image.fromarray(frame) for frame in frames]


def save_video(frames, save_path, fps=30, quality=5):
    standin.write_video(save_path, [np.asarray(f) for f in frames], fps, "yuv420p", crf=20)


def main():
    RESULT_ROOT = "./results"
    os.makedirs(RESULT_ROOT, exist_ok=True)
    inputs = ["./inputs/example0.mp4", "./inputs/example1.mp4"]
    seed, scale, sparse_ratio = 0, 4, 2.0
    pipe = init_pipeline()
    for p in inputs:
        name = os.path.basename(p.rstrip("/"))
        try:
            LQ, th, tw, F, fps = prepare_input_tensor(p, scale=scale)
        except Exception as e:
            print(f"[Error] {name}: {e}")
            continue
        video = pipe(prompt="", LQ_video=LQ, num_frames=F, height=th, width=tw, cfg_scale=1.0, seed=seed,
                     topk_ratio=sparse_ratio * 768 * 1280 / (th * tw), kv_ratio=3.0, local_range=11, color_fix=True)
        video = tensor2video(video)
        save_video(video, os.path.join(RESULT_ROOT, f"FlashVSR_Full_{name.split('.')[0]}_seed{seed}.mp4"), fps=fps,
                   quality=6)
    print("Done.")


if __name__ == "__main__":
    main()
