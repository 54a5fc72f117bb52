#!/usr/bin/env bash
# The long-form experiment of issue #13 at tiny scale (reports/longform_dmd/): does InfVSR's cross-chunk
# distribution matching, trained on rollouts of 3 chunks (33 frames), still help on clips of 1,000+ frames?
#
#   train   the recipe infvsr_tiny (the shipped model: DMD over windows of 2 adjacent chunks), then its
#           final stage again from the same upstream stages, same seed and steps, with DMD per chunk only
#           (stages.student.dmd_window=1: no cross-chunk term), and with no DMD at all (losses.dmd=0): for the
#           same 800 steps (800 generator updates; with DMD, 1 in 5 steps updates the generator, TTUR 5) and
#           for the same 160 generator updates (EMA from the same update, 20); and the shipped recipe with the
#           KV cache kept in the graph (stages.student.cache_gradient=true: gradients cross chunks)
#   runs    bicubic and each trained variant over the whole clips of longform_mini (3 clips, 3,200 frames;
#           none is a training source), one torch thread per run, two runs at a time
#   report  the leaderboard and figures in reports/longform_dmd/ (the write-up there is by hand)
#
# bash reports/make_longform_dmd.sh [train] [runs] [report]   (default: all three; each step resumes)
# VARIANTS="infvsr_xchunk infvsr_perchunk" picks variants (default: all), JOBS=2 runs at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${TRAIN:-runs/train}
RUNS=${RUNS:-runs/longform_dmd}
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(train runs report)
# Variants: run name -> overrides of the recipe's final (student) stage.
declare -A VARIANT=([infvsr_xchunk]="" [infvsr_perchunk]="stages.student.dmd_window=1"
                    [infvsr_nodmd]="stages.student.losses.dmd=0"
                    [infvsr_nodmd_g160]="stages.student.losses.dmd=0 stages.student.steps=160 stages.student.ema_start=20"
                    [infvsr_xchunk_cachegrad]="stages.student.cache_gradient=true")
METRICS="metrics=[psnr,ssim,niqe,ewarp_dis,semantic_offline]"
common=(dataset=longform_mini "$METRICS" metrics.niqe.stride=4 threads=1 output_root="$RUNS" progress=false)

train_variant() {  # the upstream stages are copied from the main run, so only the final stage differs
  local name=$1 dir=$TRAIN/infvsr_tiny_${1#infvsr_}
  if [ -z "${VARIANT[$name]}" ]; then
    python -m infvsr_bench train infvsr_tiny output_dir="$TRAIN/infvsr_tiny"
    return
  fi
  mkdir -p "$dir"
  for stage in vae teacher student_init; do
    [ -e "$dir/$stage" ] || cp -r "$TRAIN/infvsr_tiny/$stage" "$dir/$stage"
  done
  python -m infvsr_bench train infvsr_tiny output_dir="$dir" ${VARIANT[$name]}
}

weights_of() {  # a weights folder holding the variant's export where method=infvsr looks for infvsr-tiny
  local dir=$TRAIN/infvsr_tiny; [ -z "${VARIANT[$1]}" ] || dir=$TRAIN/infvsr_tiny_${1#infvsr_}
  mkdir -p "$dir/weights/infvsr"
  cp "$dir/infvsr_tiny.safetensors" "$dir/weights/infvsr/infvsr_tiny.safetensors"
  echo "$dir/weights"
}

ALL=(infvsr_xchunk infvsr_perchunk infvsr_nodmd infvsr_nodmd_g160 infvsr_xchunk_cachegrad)
read -r -a CHOSEN <<< "${VARIANTS:-${ALL[*]}}"
JOBS=${JOBS:-2}

in_parallel() {  # run the commands given as strings, JOBS at a time; fail if any failed
  local pids=() status=0
  for cmd in "$@"; do
    bash -c "$cmd" & pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return $status
}

for step in "${STEPS[@]}"; do
  case $step in
    train)
      train_variant infvsr_xchunk  # the upstream stages first: the others copy them
      for name in "${CHOSEN[@]}"; do [ "$name" = infvsr_xchunk ] || train_variant "$name" & done
      wait ;;
    runs)
      args=$(printf '%q ' "${common[@]}")
      cmds=("python -m infvsr_bench run method=bicubic $args")
      for name in "${CHOSEN[@]}"; do
        cmds+=("python -m infvsr_bench run method=infvsr method.weights=tiny method.weights_dir=$(printf '%q' \
          "$(weights_of "$name")") run_name=$name $args")
      done
      in_parallel "${cmds[@]}" ;;
    report)
      python -m infvsr_bench report "$RUNS/longform_mini" out=reports/longform_dmd/board quality=psnr ;;
    *) echo "unknown step $step (train, runs, report)" >&2; exit 2 ;;
  esac
done
