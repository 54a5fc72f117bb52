"""Real-ESRGAN (ncnn) vs bicubic on the embedded benchmark: fidelity, sharpness and flicker.

Runs ``infvsr_bench run`` (in-process, same arguments as ``python -m infvsr_bench run``) for each
method on ``longform_mini`` with ``save_outputs=true``, then measures the saved outputs:

* sharpness (no reference): variance of the 3x3 Laplacian and mean Sobel gradient magnitude of
  the BT.601 luma (0-255), averaged over frames; GT is measured the same way for scale.
* flicker: the ``ewarp_dis`` metric (E*warp with DIS flow), plus the flow-free temporal difference
  TD = mean_t mean_p |Y_t - Y_{t-1}| of the output next to the GT's TD, for scale.

Usage: python benchmarks/realesrgan_vs_bicubic.py [--max-frames 60] [--max-clips 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infvsr_bench.app.cli import compose, main
from infvsr_bench.io.readers import open_video
from infvsr_bench.results.record import read_run_record, read_table

RUNS = {  # run name -> method overrides
    "bicubic": ["method=bicubic"],
    "realesrgan-x4plus": ["method=realesrgan", "method.model=realesrgan-x4plus"],
    "realesrgan-animevideov3": ["method=realesrgan", "method.model=realesr-animevideov3"],
}


def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 Y (16-235 scale as skimage's rgb2ycbcr) of a uint8 RGB frame, float64."""
    r, g, b = (frame[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def measure(path: Path, max_frames: int) -> dict[str, float]:
    lap, grad, td = [], [], []
    prev = None
    for i, frame in enumerate(open_video(path).iter_frames()):
        if i >= max_frames:
            break
        y = luma(frame)
        lap.append(ndimage.laplace(y, mode="reflect").var())
        grad.append(np.hypot(ndimage.sobel(y, 0, mode="reflect"), ndimage.sobel(y, 1, mode="reflect")).mean())
        if prev is not None:
            td.append(np.abs(y - prev).mean())
        prev = y
    return {"laplacian_var": float(np.mean(lap)), "gradient_mean": float(np.mean(grad)),
            "temporal_diff": float(np.mean(td)) if td else float("nan")}


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--max-clips", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--out", default="", help="run folder root (default: a temporary folder)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="realesrgan_vs_bicubic_"))
    metrics = ["psnr", "ssim", "ewarp_dis"]
    common = ["dataset=longform_mini", f"output_root={out}", f"max_frames={args.max_frames}",
              f"max_clips={args.max_clips}", "save_outputs=true", "progress=false",
              f"metrics=[{','.join(metrics)}]"]

    cfg = compose(["dataset=longform_mini"])
    from omegaconf import OmegaConf

    from vsr_datasets.benchmark import load_dataset

    dataset = load_dataset(OmegaConf.to_container(cfg.dataset, resolve=True))  # builds it on first use
    clips = dataset.clips[: args.max_clips]

    rows = []
    for run in args.runs:
        t0 = time.perf_counter()
        code = main(["run", *common, *RUNS[run], f"run_name={run}"])
        wall = time.perf_counter() - t0
        run_dir = out / "longform_mini" / run
        table = read_table(run_dir / "clips.parquet")
        record = read_run_record(run_dir)
        for _, row in table.iterrows():
            if row["status"] != "ok":
                print(f"{run} {row['clip']}: failed ({row['reason']})")
                continue
            output = next((run_dir / "outputs").glob(f"{row['clip']}.*"))
            stats = measure(output, args.max_frames)
            result = {"run": run, "clip": row["clip"], "frames": int(row["frames"]), "psnr": row["psnr"],
                      "ssim": row["ssim"], **stats, "method_fps": row["method_fps"], "wall_s": wall,
                      "parameters": record.method["parameters"], "device": record.method["device"]}
            result["ewarp_dis"] = row["ewarp_dis"]
            rows.append(result)
        if code not in (0, 1):
            raise SystemExit(f"run {run} failed with exit code {code}")
    for clip in clips:
        stats = measure(clip.gt, args.max_frames)
        rows.append({"run": "GT (reference)", "clip": clip.name, "frames": args.max_frames, **stats})

    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print()
    print(f"longform_mini, {args.max_clips} clip(s), first {args.max_frames} frames; LR 80x60 -> 320x240; "
          "flicker: ewarp_dis")
    print(table.drop(columns=["wall_s"], errors="ignore").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"runs in {out}")


if __name__ == "__main__":
    main_cli()
