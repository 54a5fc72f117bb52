#!/usr/bin/env bash
# One prepared device session for issues 4 and 5 (~8 min on an H200 after the machine starts).
# Here:   bash benchmarks/fetch_device_wheels.sh
# Device: run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
# Writes to $OUT: session.log and one JSON per step; the numbers go into benchmarks/RESULTS.md.
# Steps run most important first, each under its own timeout, so a slow one cannot eat the rest.
set -u
out=${OUT:-/tmp/gpu_session}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site
fi
exec > >(tee -a "$out/session.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"

step() {  # step NAME SECONDS CMD...: one benchmark, its warnings filtered out of the log
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(date +%T), limit ${limit}s)"
  timeout "$limit" "$@" >"$out/.step" 2>&1
  local rc=$?
  grep -v -e '^W1' -e '^  warnings.warn' "$out/.step"
  rm -f "$out/.step"
  [ "$rc" -eq 0 ] || echo "== $name: exit $rc (124: timed out)"
}

fast="--rope float32 --upscale-on-device --vae-channels-last"
step infvsr 140 python3 benchmarks/infvsr_gpu.py $fast --profile-ops 20 --json "$out/infvsr.json"
step conv3d_forms 60 python3 benchmarks/conv3d_forms.py
step infvsr_norms 160 python3 benchmarks/infvsr_gpu.py $fast --compile-vae-norms --json "$out/infvsr_norms.json"
step metrics 120 python3 benchmarks/metric_set_speed.py --frames 96 --json "$out/metrics.json"
step features 45 python3 benchmarks/feature_speed.py --device cuda --frames 64 --backbones dino clip
step infvsr_norms_dit 240 python3 benchmarks/infvsr_gpu.py $fast --compile-vae-norms --compile \
  --json "$out/infvsr_norms_dit.json"
echo "== done $(date +%T)"
