"""The full-size InfVSR training step (1.3B Wan2.1 DiT, Wan2.1 VAE, Swin-L) on the meta device: one
generator step (3-chunk rollout with the rolling KV cache, pixel crop through the frozen decoder,
cross-chunk DMD against the frozen teacher) and one fake-score step, with its FLOPs counted by
torch.utils.flop_counter and the memory its weights, gradients, AdamW states and EMA need.

No number here is a measurement on a GPU: the FLOPs are counted, the memory is the static part
(activations are not on the meta device), and the time is a lower bound at the GPU's peak.

    python benchmarks/full_size_training_step.py [--crop 256] [--chunks 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from methods.infvsr.architecture import ARCHITECTURES, count_parameters
from methods.infvsr.training.config import DataConfig, LossWeights, StageConfig, TrainConfig
from methods.infvsr.training.tasks import StageContext, StudentTask

H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA's H200 SXM datasheet, dense BF16 tensor-core peak
GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=256, help="GT crop side in pixels (LR is crop/4)")
    parser.add_argument("--chunks", type=int, default=3, help="chunks per rollout: 9 + 12 * (chunks - 1) frames")
    parser.add_argument("--pixel-crop", type=int, default=8, help="latent crop side decoded for the pixel loss")
    args = parser.parse_args()

    arch = ARCHITECTURES.get("infvsr")
    stage = StageConfig(task="student", vae="v", teacher="t", init="t", chunks=args.chunks, crop=[args.crop, args.crop],
                        batch_size=1, losses=LossWeights(latent=0.0, pixel=1.0, perceptual=0.0, temporal=1.0, dmd=0.5),
                        pixel_crop=args.pixel_crop, dmd_window=2, ttur=1, ema=0.99)
    cfg = TrainConfig(name="full_size", architecture=arch.name, autocast=False, data=DataConfig(), stages={"s": stage})
    state = arch.build("meta", seed=None).state_dict()
    t0 = time.perf_counter()
    task = StudentTask(StageContext(cfg, "s", stage, arch, torch.device("meta"), lambda source: (state, arch)))
    frames = stage.frames
    gt = torch.empty(1, 3, frames, args.crop, args.crop, device="meta")
    lr = torch.empty(1, 3, frames, args.crop // 4, args.crop // 4, device="meta")
    with FlopCounterMode(display=False) as counter:
        logs = task.train_step(gt, lr, step=0)
    seconds = time.perf_counter() - t0
    flops = counter.get_total_flops()

    rows = []  # module, parameters, trainable, bytes: fp32 weights + grads + AdamW (2 fp32) (+ fp32 EMA), frozen bf16
    for name, module, trainable, ema in (("student DiT", task.dit, True, stage.ema > 0), ("fake score DiT", task.fake, True, False),
                                         ("teacher DiT (frozen)", task.teacher, False, False),
                                         ("VAE (frozen)", task.vae, False, False), ("Swin-L (frozen)", task.encoder, False, False)):
        n = count_parameters(module)
        per = (4 + 4 + 8 + (4 if ema else 0)) if trainable else 2
        rows.append((name, n, per, n * per))
    print(f"InfVSR full size, one training step on the meta device ({seconds:.1f} s on this CPU, wiring only); "
          f"rollout {frames} frames at {args.crop}x{args.crop} GT, {args.chunks} chunks, latent pixel crop "
          f"{args.pixel_crop}, DMD window 2, TTUR 1 (a generator and a fake step); terms: {sorted(logs)}\n")
    print("| module | parameters | bytes/param | static memory (GiB) |\n|---|---:|---:|---:|")
    for name, n, per, total in rows:
        print(f"| {name} | {n:,} | {per} | {total / GIB:.1f} |")
    print(f"| **total** | {sum(r[1] for r in rows):,} | | **{sum(r[3] for r in rows) / GIB:.1f}** |\n")
    print(f"FLOPs of the step (generator + fake score, forward and backward): {flops / 1e12:.1f} TFLOP; at the H200's "
          f"dense BF16 peak ({H200_BF16_DENSE_TFLOPS:.0f} TFLOP/s) at least {flops / H200_BF16_DENSE_TFLOPS / 1e12:.2f} s "
          "per step (a bound, not a measurement; gradient checkpointing adds a forward).")


if __name__ == "__main__":
    main()
