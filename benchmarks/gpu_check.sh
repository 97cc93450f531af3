#!/usr/bin/env bash
# One short GPU check of fdsgan-train (about 6-9 minutes on an H100/H200), run from anywhere:
#   OUT=/some/dir bash benchmarks/gpu_check.sh
# It sets up Python if needed (torch==2.14.1 from the machine's wheel store), writes small
# demo-face shards, then measures the paper preset: one-step benchmark with AMP off/on, a
# 100-step fdsgan-train run with AMP on, a 30-step run with AMP off, and a torch.compile step.
# VGG-19 weights are RANDOM (--vgg-random-weights): the machine has no network; the cost is
# the same as with the ImageNet weights, the losses are not meaningful. Results: $OUT/gpu_results.txt
# A CPU smoke test of this script: DEVICE=cpu PRESET=tiny STEPS_ON=3 STEPS_OFF=2 BENCH_STEPS=1 \
#   COMPILE=0 WORKERS=1 bash benchmarks/gpu_check.sh
set -euo pipefail
DEVICE="${DEVICE:-cuda}" PRESET="${PRESET:-paper}" STEPS_ON="${STEPS_ON:-100}"
STEPS_OFF="${STEPS_OFF:-30}" BENCH_STEPS="${BENCH_STEPS:-10}" COMPILE="${COMPILE:-1}" WORKERS="${WORKERS:-8}"
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/fdsgan_gpu_check}"
mkdir -p "$OUT"
RES="$OUT/gpu_results.txt"
WORK="$(mktemp -d /tmp/fdsgan_gpu.XXXX)"
: > "$RES"
say() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$RES"; }
trap 'say "FAILED at line $LINENO (see output above)"' ERR

say "stage 1/6: environment"
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$RES"
fi
need='import torch, torchvision, yaml, click, tqdm, skimage, tensorboard, fdsgan_train'
[ "$DEVICE" = cuda ] && need="$need; assert torch.cuda.is_available()"
PY=python3
if [ -x .venv/bin/python ] && .venv/bin/python -c "$need" 2>/dev/null; then
  PY=.venv/bin/python
elif ! python3 -c "$need" 2>/dev/null; then
  say "installing torch==2.14.1 + the trainer's dependencies into $WORK/venv"
  python3 -m venv "$WORK/venv"
  PY="$WORK/venv/bin/python"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1 "numpy<2" pillow click pyyaml \
    tqdm tensorboard scikit-image
  "$PY" -m pip install -q --no-deps -e .
fi
"$PY" -c 'import torch; c = torch.cuda.is_available(); print("torch", torch.__version__,
      "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if c else "no GPU",
      "bf16", c and torch.cuda.is_bf16_supported())' | tee -a "$RES"

say "stage 2/6: demo-face shards (200 train, 20 val, 256x256)"
"$PY" -c "from fdsgan_train.toy_data import write_toy_shards as w; w('$WORK/data', {'train': 200, 'val': 20}, shard_size=10)"

say "stage 3/6: one training step, $PRESET preset, AMP off and on (benchmarks/train_step.py)"
timeout 240 "$PY" benchmarks/train_step.py --presets "$PRESET" --steps "$BENCH_STEPS" \
  --device "$DEVICE" | tee -a "$RES"

train() {  # name, steps, extra flags...
  local name=$1 steps=$2; shift 2
  timeout 300 "$PY" -m fdsgan_train.cli --data "$WORK/data" --run-dir "$WORK/$name" \
    --config "$PRESET" --vgg-random-weights --device "$DEVICE" --workers "$WORKERS" --max-steps "$steps" \
    --set train.log_every=10 --set train.sample_every=50 --set train.checkpoint_every=1000 "$@" \
    2>&1 | tr '\r' '\n' | grep -v '^train: ' | tail -4
  "$PY" - "$WORK/$name/metrics.jsonl" "$name" <<'PYEOF' | tee -a "$RES"
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1])]
tr = [r for r in rows if r["kind"] == "train"]
steady = tr[1:] or tr  # the first window holds the CUDA warm-up
rate = sum(r["images_per_s"] for r in steady) / len(steady)
val = [r for r in rows if r["kind"] == "val"]
print(f"{sys.argv[2]}: {tr[-1]['step']} steps, {rate:.1f} images/s (steady, incl. data loading), "
      f"peak GPU {max(r.get('gpu_peak_gib', 0) for r in tr):.2f} GiB, "
      f"s2/l1 first {tr[0]['s2/l1']:.3f} last {tr[-1]['s2/l1']:.3f}"
      + (f", val PSNR {val[-1]['psnr_composite']:.2f} vs input {val[-1]['psnr_input']:.2f}" if val else ""))
PYEOF
}
say "stage 4/6: fdsgan-train $PRESET preset, $STEPS_ON steps, AMP on (bf16 where supported)"
train amp_on "$STEPS_ON" --amp
say "stage 5/6: fdsgan-train $PRESET preset, $STEPS_OFF steps, AMP off (fp32)"
train amp_off "$STEPS_OFF" --no-amp

if [ "$COMPILE" = 1 ]; then
  say "stage 6/6: torch.compile, $PRESET preset, AMP on"
  timeout 300 "$PY" benchmarks/train_step.py --presets "$PRESET" --amp on --steps "$BENCH_STEPS" \
    --device "$DEVICE" --compile | tee -a "$RES" || say "torch.compile check failed (exit $?)"
fi
cp "$WORK"/amp_on/samples/*.png "$OUT/" 2>/dev/null || true
say "done: $RES"
