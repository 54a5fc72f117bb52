#!/usr/bin/env bash
# Regenerates reports/example/ from real runs on the embedded benchmark longform_mini, offline:
# every method that runs here (bicubic, lanczos, Real-ESRGAN x4plus and animevideov3) and every
# metric with shipped or no weights, in two PSNR/SSIM protocols (basicsr and DOVE's). Bicubic and
# Lanczos score whole clips (1,000-1,200 frames: the drift figures are the point of a long-form
# benchmark); Real-ESRGAN runs at ~0.3 frames/s on 2 CPU cores, so its runs stop after
# SLOW_FRAMES frames per clip (default 100) and the report shows them as partial, never ranked
# against whole clips. About an hour on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SLOW_FRAMES=${SLOW_FRAMES:-100}
RUNS=${RUNS:-runs/example}
METRICS="metrics=[psnr,ssim,psnr_dove,ssim_dove,niqe,ewarp_dis,tof,semantic_offline]"
common=(dataset=longform_mini "$METRICS" output_root="$RUNS" progress=false)
python -m infvsr_bench run method=bicubic "${common[@]}"
python -m infvsr_bench run method=lanczos "${common[@]}"
python -m infvsr_bench run method=realesrgan method.model=realesr-animevideov3 max_frames="$SLOW_FRAMES" \
  run_name=realesrgan_animevideov3 "${common[@]}"
python -m infvsr_bench run method=realesrgan max_frames="$SLOW_FRAMES" run_name=realesrgan_x4plus "${common[@]}"
rm -rf reports/example
python -m infvsr_bench report "$RUNS/longform_mini" out=reports/example quality=psnr reference=infvsr_paper
