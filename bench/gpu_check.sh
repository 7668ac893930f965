#!/usr/bin/env bash
# The GPU check of issue #13, one script, at most 8 minutes on one GPU (every part has its own time limit):
#   1. the DAAA step against a plain supervised step (what `fit` runs) in images/s, ResNet-50 at 224 px,
#      float32 / mixed_float16 / mixed_bfloat16                                 (bench/adapt_step.py)
#   2. the same for the digit CNN at 32 px                                      (bench/adapt_step.py)
#   3. one CycleGAN step at 256 px (9-block ResNet generator, 70x70 PatchGAN)  (bench/cyclegan_step.py)
#   4. the DAAA step under MirroredStrategy over all visible GPUs against one  (bench/mirrored_step.py)
# Usage: bench/gpu_check.sh [--smoke]     (--smoke: tiny sizes on the CPU, seconds per part: checks that it runs)
# Prints the JSON lines of each benchmark under a header; a part that fails or runs out of time says so and the
# script goes on. PYTHON=... picks the interpreter (default: python).
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "${1:-}" = "--smoke" ]; then
  SMOKE=1
  export CUDA_VISIBLE_DEVICES=""
  # float16 kernels on a CPU are very slow (one digit-CNN step under mixed_float16 took 113 s on the 2-core
  # development machine), so the smoke run leaves mixed_float16 to the GPU run; mixed_bfloat16 is fast on CPUs.
  PRECISIONS="float32,mixed_bfloat16"
  RESNET="--resnet_size=32 --resnet_batch=4 --resnet_taps=blocks --rounds=1 --steps=1"
  RESNET_PRECISIONS="float32"
  DIGITS="--digit_batch=16 --rounds=1 --steps=1"
  CYCLEGAN="--image_size=32 --batch_size=1 --gen_width=8 --gen_blocks=1 --disc_width=8 --disc_layers=2 --iters=1"
  MIRRORED="--arch=digit_cnn --image_size=32 --per_replica_batch=8 --steps=2 --warmup=1"
  LIMITS=(600 300 300 300)  # generous: the 2-core development machine is shared (load ~10)
else
  SMOKE=0
  PRECISIONS="float32,mixed_float16,mixed_bfloat16"
  RESNET="--resnet_size=224 --resnet_batch=32 --rounds=5 --steps=3"
  RESNET_PRECISIONS="$PRECISIONS"
  DIGITS="--digit_batch=64 --rounds=5 --steps=20"
  CYCLEGAN="--image_size=256 --batch_size=1 --gen_width=64 --gen_blocks=9 --disc_width=64 --disc_layers=3 --iters=10"
  MIRRORED="--arch=resnet50 --image_size=224 --per_replica_batch=32 --precision=mixed_float16 --steps=10 --warmup=3"
  LIMITS=(80 50 80 100)  # part 1 runs once per precision: 3 x 80 s; 470 s in all, plus the device check
fi

part() {  # part <seconds> <title> <command...>
  local limit=$1 title=$2
  shift 2
  echo "== $title (limit ${limit} s)"
  local t0=$SECONDS out rc
  out=$(timeout "$limit" "$@" 2>&1)
  rc=$?
  echo "$out" | grep '^{' || true
  if [ $rc -eq 124 ]; then
    echo "!! timed out after ${limit} s"
  elif [ $rc -ne 0 ]; then
    echo "!! failed (exit $rc); last lines:"
    echo "$out" | tail -5
  fi
  echo "   ($((SECONDS - t0)) s)"
}

echo "== devices"
"$PY" -c "import tensorflow as tf; print('tensorflow', tf.__version__, '| GPUs:', [d.name for d in tf.config.list_physical_devices('GPU')] or 'none (CPU)')" 2>&1 | tail -1
if [ "$SMOKE" = 0 ] && command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

for p in ${RESNET_PRECISIONS//,/ }; do
  part "${LIMITS[0]}" "1. DAAA step vs plain step, ResNet-50, $p (images/s: daaa_images_per_s, plain_images_per_s)" \
    "$PY" bench/adapt_step.py --archs=resnet50 --precisions="$p" $RESNET
done
part "${LIMITS[1]}" "2. DAAA step vs plain step, digit CNN" \
  "$PY" bench/adapt_step.py --archs=digit_cnn --precisions="$PRECISIONS" $DIGITS
part "${LIMITS[2]}" "3. CycleGAN step (images/s per domain)" \
  "$PY" bench/cyclegan_step.py --precisions="$PRECISIONS" --translate_images=0 $CYCLEGAN
part "${LIMITS[3]}" "4. MirroredStrategy over all visible devices vs one (weak scaling)" \
  "$PY" bench/mirrored_step.py $MIRRORED
echo "== done in $SECONDS s"
