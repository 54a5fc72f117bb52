#!/usr/bin/env bash
# Regenerates reports/example/ from real runs on the embedded benchmark longform_mini, offline:
# every method that runs here (bicubic, lanczos, Real-ESRGAN x4plus and animevideov3) and every
# metric with shipped or no weights. The first 100 frames of each clip keep this to ~25 minutes on
# 2 CPU cores (Real-ESRGAN x4plus runs at ~0.3 frames/s on CPU); pass MAX_FRAMES=... to change it.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FRAMES=${MAX_FRAMES:-100}
RUNS=${RUNS:-runs/example}
METRICS="metrics=[psnr,ssim,niqe,ewarp_dis,tof,semantic_offline]"
common=(dataset=longform_mini "$METRICS" max_frames="$MAX_FRAMES" output_root="$RUNS" progress=false)
python -m infvsr_bench run method=bicubic "${common[@]}"
python -m infvsr_bench run method=lanczos "${common[@]}"
python -m infvsr_bench run method=realesrgan run_name=realesrgan_x4plus "${common[@]}"
python -m infvsr_bench run method=realesrgan method.model=realesr-animevideov3 run_name=realesrgan_animevideov3 "${common[@]}"
rm -rf reports/example
python -m infvsr_bench report "$RUNS/longform_mini" out=reports/example quality=psnr
