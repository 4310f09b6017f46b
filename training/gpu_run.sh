#!/usr/bin/env bash
# One CUDA GPU, one command: continue the quality recipe from the shipped weights for at most 12 minutes.
#
#   bash training/gpu_run.sh OUT_DIR [DATA_DIR] [extra lle-train --set overrides ...]
#
# OUT_DIR gets best.safetensors / last.safetensors / val_<step>.safetensors (EMA weights + card), last.pt (resume
# with --resume), train.csv, val.csv, config.resolved.yaml and train.log. DATA_DIR holds sice_pairs/, lol_pairs/,
# fivek_pairs/ and clean/ (default ../shared/data; keep that spelling where you can: the held-out clean photos are
# chosen by hashing their path as configured). Needs Python with torch (CUDA build), numpy, opencv, pyyaml,
# typer, rich and safetensors; lle runs from this checkout (no install). Ship the result with
# training/ship_weights.py (see training/configs/quality.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash training/gpu_run.sh OUT_DIR [DATA_DIR] [--set key=value ...]" >&2
  exit 2
fi
out=$1; shift
data=../shared/data
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then data=$1; shift; fi
for d in sice_pairs lol_pairs fivek_pairs clean; do
  if [ ! -d "$data/$d" ]; then
    echo "error: $data/$d not found (pass the data folder as the second argument)" >&2
    exit 2
  fi
done
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: $PY has no CUDA torch or sees no GPU (set PYTHON=/path/to/python)" >&2
  exit 2
fi
mkdir -p "$out"
workers=$(( $(nproc) > 12 ? 12 : $(nproc) - 1 ))
# 12 minutes including data loading and validations; bf16 autocast; larger batch and crops than the CPU runs
# (same learning-rate schedule shape, warm start from the shipped weights, exposure cap in the loop, roll-off
# added when shipping).
PYTHONPATH=. "$PY" -m lle.cli.app train -c training/configs/quality.yaml \
  --set device=cuda --set amp=bf16 --set "workers=$workers" --set max_minutes=11 \
  --set batch=24 --set val_every=500 --set keep_val_weights=true \
  --set init_weights=lle/weights/quality.safetensors --set "out_dir=$out" \
  --set "data.pairs=[$data/sice_pairs, $data/lol_pairs]" --set "data.val_pairs=[$data/fivek_pairs]" \
  --set "data.clean=[$data/clean]" \
  --set 'model.arch={"width": 16, "depth": 4, "exposure_cap": [0.2, 0.4, 0.25, 0.4, 0.7, 0.7]}' \
  "$@" 2>&1 | tee "$out/train.log"
