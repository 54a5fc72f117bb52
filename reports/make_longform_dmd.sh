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
#   keep    copy each variant's exported model into reports/longform_dmd/weights/ (sha256 in SHA256SUMS), so
#           the runs and the report can be redone on a fresh clone without the ~2.5 h of training; the
#           shipped infvsr-tiny is infvsr_xchunk and is not copied when the retrained file is the same
#   runs    bicubic and each trained variant over the whole clips of longform_mini (3 clips, 3,200 frames;
#           none is a training source), one torch thread per run, two runs at a time; a variant's model is
#           the one just trained, else the kept copy (checked against SHA256SUMS), else (xchunk) the shipped one
#   report  the leaderboard and figures in reports/longform_dmd/ (the write-up there is by hand)
#
# bash reports/make_longform_dmd.sh [train] [keep] [runs] [report]   (default: all four; each step resumes)
# bash reports/make_longform_dmd.sh runs report                      (from the kept models, ~1 h)
# VARIANTS="infvsr_xchunk infvsr_perchunk" picks variants (default: all), JOBS=2 runs at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${TRAIN:-runs/train}
RUNS=${RUNS:-runs/longform_dmd}
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(train keep runs report)
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

KEPT=reports/longform_dmd/weights
SHIPPED=methods/infvsr/tiny/infvsr_tiny.safetensors

trained_of() {  # the variant's freshly trained export (may not exist)
  local dir=$TRAIN/infvsr_tiny; [ -z "${VARIANT[$1]}" ] || dir=$TRAIN/infvsr_tiny_${1#infvsr_}
  echo "$dir/infvsr_tiny.safetensors"
}

keep_variant() {  # copy the export into $KEPT unless it is the shipped file; record its sha256
  local src; src=$(trained_of "$1")
  [ -f "$src" ] || { echo "keep: $1 is not trained ($src missing): run the train step first" >&2; return 1; }
  if [ "$1" = infvsr_xchunk ] && cmp -s "$src" "$SHIPPED"; then
    echo "keep: $1 retrained is byte-identical to the shipped $SHIPPED: not copied"; return
  fi
  mkdir -p "$KEPT"
  cp "$src" "$KEPT/$1.safetensors"
  (cd "$KEPT" && { grep -v " $1.safetensors\$" SHA256SUMS 2>/dev/null || true; sha256sum "$1.safetensors"; } \
    | sort -k2 > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
}

model_of() {  # the model a variant runs with: just trained, else kept (checked), else shipped (xchunk only)
  local trained; trained=$(trained_of "$1")
  if [ -f "$trained" ]; then echo "$trained"; return; fi
  if [ -f "$KEPT/$1.safetensors" ]; then
    (cd "$KEPT" && grep " $1.safetensors\$" SHA256SUMS | sha256sum --quiet -c -) >&2 \
      || { echo "$KEPT/$1.safetensors does not match $KEPT/SHA256SUMS" >&2; return 1; }
    echo "$KEPT/$1.safetensors"; return
  fi
  if [ "$1" = infvsr_xchunk ]; then echo "$SHIPPED"; return; fi
  echo "no model for $1: run the train step (or keep its export in $KEPT)" >&2; return 1
}

weights_of() {  # a weights folder holding the variant's model where method=infvsr looks for infvsr-tiny
  local model dir=$RUNS/weights/$1
  model=$(model_of "$1") || return 1
  mkdir -p "$dir/infvsr"
  cp "$model" "$dir/infvsr/infvsr_tiny.safetensors"
  echo "$dir"
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
    keep)
      for name in "${CHOSEN[@]}"; do keep_variant "$name"; done ;;
    runs)
      args=$(printf '%q ' "${common[@]}")
      cmds=("python -m infvsr_bench run method=bicubic $args")
      for name in "${CHOSEN[@]}"; do
        weights=$(weights_of "$name")
        cmds+=("python -m infvsr_bench run method=infvsr method.weights=tiny method.weights_dir=$(printf '%q' "$weights") run_name=$name $args")
      done
      in_parallel "${cmds[@]}" ;;
    report)
      python -m infvsr_bench report "$RUNS/longform_mini" out=reports/longform_dmd/board quality=psnr ;;
    *) echo "unknown step $step (train, keep, runs, report)" >&2; exit 2 ;;
  esac
done
