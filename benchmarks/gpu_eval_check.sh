#!/usr/bin/env bash
# Second GPU check (about 3 minutes): the CUDA paths that gpu_check.sh does not cover.
#   OUT=/some/dir bash benchmarks/gpu_eval_check.sh
# 1. AMP at a larger batch (batch 10 is bound by kernel launches, so AMP shows no gain there);
# 2. a short paper-preset run, then fdsgan-eval of its checkpoint on CUDA (test split);
# 3. torchrun with one process per GPU (NCCL) for a few steps of the tiny preset.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/fdsgan_gpu_eval}"; mkdir -p "$OUT"; RES="$OUT/gpu_eval_results.txt"; : > "$RES"
WORK="$(mktemp -d /tmp/fdsgan_eval.XXXX)"
say() { echo "[gpu_eval $(date +%H:%M:%S)] $*" | tee -a "$RES"; }
trap 'say "FAILED at line $LINENO"' ERR
say "toy shards"
python3 -c "from fdsgan_train.toy_data import write_toy_shards as w; w('$WORK/d', {'train': 120, 'val': 20, 'test': 20}, shard_size=10)"
say "AMP at batch 32, paper preset"
timeout 200 python3 benchmarks/train_step.py --presets paper --steps 10 --batch 32 --device cuda | tee -a "$RES"
say "paper preset, 40 steps, then fdsgan-eval on CUDA"
timeout 200 python3 -m fdsgan_train.cli --data "$WORK/d" --run-dir "$WORK/run" --config paper \
  --vgg-random-weights --device cuda --max-steps 40 --workers 4 2>&1 | tr '\r' '\n' | tail -2 | tee -a "$RES"
timeout 200 python3 -c "from fdsgan_train.cli_eval import eval_main; eval_main()" \
  --checkpoint "$WORK/run/checkpoints/last.pt" --data "$WORK/d" --split test --device cuda \
  --out "$WORK/eval" 2>&1 | tr '\r' '\n' | tail -3 | tee -a "$RES"
head -40 "$WORK/eval/summary.md" | tee -a "$RES"
cp "$WORK/eval/comparison.png" "$OUT/" || true
say "torchrun, 1 process per GPU (NCCL), tiny preset, 6 steps"
timeout 200 torchrun --nproc_per_node="$(nvidia-smi -L | wc -l)" -m fdsgan_train.cli --data "$WORK/d" \
  --run-dir "$WORK/ddp" --config tiny --vgg-random-weights --device cuda --max-steps 6 --workers 2 \
  2>&1 | tr '\r' '\n' | tail -3 | tee -a "$RES"
ls "$WORK/ddp" "$WORK/ddp/checkpoints" | tee -a "$RES"
say "done"
