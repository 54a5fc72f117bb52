#!/usr/bin/env bash
# Regenerates reports/example/ from real runs on the embedded benchmark longform_mini, offline:
# every method that runs here (bicubic, lanczos, Real-ESRGAN x4plus and animevideov3) and the
# offline metrics, PSNR/SSIM in two protocols (basicsr and DOVE's). Bicubic and Lanczos score whole
# clips (1,000-1,200 frames: the drift figures are the point of a long-form benchmark), with the
# semantic drift metric on every 4th frame (stride 4) to keep this under an hour on 2 CPU cores;
# NIQE (~0.6 s/frame on CPU) is left out. Real-ESRGAN runs at ~0.3 frames/s on 2 CPU cores, so
# its runs stop after SLOW_FRAMES frames per clip (default 50) and the report shows them as
# "first frames", never ranked against whole clips.
set -euo pipefail
cd "$(dirname "$0")/.."
SLOW_FRAMES=${SLOW_FRAMES:-50}
RUNS=${RUNS:-runs/example}
METRICS="metrics=[psnr,ssim,psnr_dove,ssim_dove,ewarp_dis,tof,semantic_offline]"
common=(dataset=longform_mini "$METRICS" metrics.semantic_offline.stride=4 output_root="$RUNS" progress=false)
python -m infvsr_bench run method=bicubic "${common[@]}"
python -m infvsr_bench run method=lanczos "${common[@]}"
python -m infvsr_bench run method=realesrgan method.model=realesr-animevideov3 max_frames="$SLOW_FRAMES" \
  run_name=realesrgan_animevideov3 "${common[@]}"
python -m infvsr_bench run method=realesrgan max_frames="$SLOW_FRAMES" run_name=realesrgan_x4plus "${common[@]}"
rm -rf reports/example
python -m infvsr_bench report "$RUNS/longform_mini" out=reports/example quality=psnr reference=infvsr_paper
