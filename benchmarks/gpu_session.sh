#!/usr/bin/env bash
# Prepared device checks for issues 4 and 5. Steps run in the order given (default: all, most
# important first), each under its own timeout so a slow one cannot eat the rest.
# Here:   bash benchmarks/fetch_device_wheels.sh        (wheels the GPU image lacks, into .whl/)
# Device: run(command="bash benchmarks/gpu_session.sh infvsr conv3d_forms infvsr_norms metrics features",
#             carry=[".whl"], timeout_s=600)   then, on the warm machine, the variants that call suggests:
#         run(command="bash benchmarks/gpu_session.sh infvsr_taps_summed infvsr_norms_dit", carry=[".whl"])
# Writes $OUT/session.log and one JSON per InfVSR/metrics step; the numbers go into benchmarks/RESULTS.md.
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

infvsr() {  # infvsr NAME SECONDS [extra flags]: the 720p benchmark with the fast defaults
  local name=$1 limit=$2
  shift 2
  step "$name" "$limit" python3 benchmarks/infvsr_gpu.py --rope float32 --upscale-on-device --vae-channels-last \
    "$@" --json "$out/$name.json"
}

run_step() {
  case $1 in
    infvsr) infvsr infvsr 150 --profile-ops 20 ;;
    conv3d_forms) step conv3d_forms 60 python3 benchmarks/conv3d_forms.py ;;
    infvsr_norms) infvsr infvsr_norms 180 --compile-vae-norms ;;
    infvsr_taps_summed) infvsr infvsr_taps_summed 150 --vae-conv-form taps_summed ;;
    infvsr_taps_stacked) infvsr infvsr_taps_stacked 150 --vae-conv-form taps_stacked ;;
    infvsr_norms_dit) infvsr infvsr_norms_dit 240 --compile-vae-norms --compile ;;
    metrics) step metrics 150 python3 benchmarks/metric_set_speed.py --frames 96 --method-fps 13.4 --json "$out/metrics.json" ;;
    features) step features 45 python3 benchmarks/feature_speed.py --device cuda --frames 64 --backbones dino clip ;;
    *) echo "unknown step $1" ;;
  esac
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(infvsr conv3d_forms infvsr_norms metrics features infvsr_taps_summed infvsr_norms_dit)
for s in "${steps[@]}"; do run_step "$s"; done
echo "== done $(date +%T)"
