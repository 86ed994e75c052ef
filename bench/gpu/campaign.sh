#!/usr/bin/env bash
# The ONE command of a GPU measurement campaign, run on the device machine from the repository
# root with .gpu-carry carried (bench/gpu/prepare.sh builds it): our decode and training figures on
# tfjs's webgpu backend over Vulkan, then the PyTorch peer with --device cuda, then the ratios.
# Writes $OUT/{log.txt,ours.json,peer-decode.json,peer-train.json,gpu.json}. Each stage has its own
# time limit, so a slow stage cannot take the others' results with it.
set -uo pipefail
G=${GPU_CARRY:-.gpu-carry}
: "${OUT:?OUT must name the folder for the results}"
REPO=$PWD
exec > >(tee "$OUT/log.txt") 2>&1
T0=$(date +%s)
stage() { echo; echo "== $1 ($(( $(date +%s) - T0 )) s)"; }

stage 'unpack'
source bench/gpu/unpack.sh

stage 'ours: webgpu'
( cd /tmp/pkg/probe_pkg && XLSTM_BACKEND=webgpu XLSTM_WEBGPU_BACKEND=${XLSTM_WEBGPU_BACKEND:-vulkan} \
  timeout "${OURS_TIMEOUT:-240}" node bench.mjs run --root "$REPO" --out "$OUT/ours.json" ${OURS_ARGS:-} )
echo "exit $?"

export PYTHONUNBUFFERED=1
stage 'peer: decode'
timeout "${PEER_DECODE_TIMEOUT:-80}" python3 "$G/reference/bench_ref.py" --device cuda --decode-batches 1,8,64,256 --skip-train --json "$OUT/peer-decode.json"
echo "exit $?"
stage 'peer: train'
timeout "${PEER_TRAIN_TIMEOUT:-200}" python3 "$G/reference/bench_ref.py" --device cuda --decode-batches '' --train-batch 16 \
  --train-seq-lens 256 --train-warmup 1 --train-steps 3 --json "$OUT/peer-train.json"
echo "exit $?"

stage 'serve: GraphQL generate'
GPU_CARRY="$G" bash bench/gpu/serve-stage.sh
echo "exit $?"

stage 'ratios'
( cd /tmp/pkg/probe_pkg && node bench.mjs combine --ours "$OUT/ours.json" --peer-decode "$OUT/peer-decode.json" \
  --peer-train "$OUT/peer-train.json" --out "$OUT/gpu.json" )
stage 'done'
