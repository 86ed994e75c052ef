#!/usr/bin/env bash
# Issue 8's ONE call on a machine with several GPUs (device kind nvidia-h200-x2 or larger), from the
# repository root with .gpu-carry carried (bench/gpu/prepare.sh): shows which adapter a worker
# pinned to each GPU sees, then runs bench/gpu/multi.ts (1 GPU, N GPUs, and the loss-curve check).
# Writes $OUT/{multi-log.txt,multi.json}.
set -uo pipefail
G=${GPU_CARRY:-.gpu-carry}
: "${OUT:?OUT must name the folder for the results}"
exec > >(tee "$OUT/multi-log.txt") 2>&1
T0=$(date +%s)
stage() { echo; echo "== $1 ($(( $(date +%s) - T0 )) s)"; }

stage 'unpack'
source bench/gpu/unpack.sh

stage 'adapters: the device-select layer, then what a worker pinned to each GPU sees'
cd /tmp/pkg/probe_pkg
# Asking Dawn for an adapter name that exists nowhere makes it list every adapter it can see.
LIST="import { create, globals } from 'webgpu'; Object.assign(globalThis, globals);
create(['backend=vulkan', 'adapter=none-such']).requestAdapter().then((a) => console.log('adapter', a), (e) => console.log(String(e.message ?? e).split('\n').slice(1).join(' | ')));"
MESA_VK_DEVICE_SELECT=list timeout 60 node --input-type=module -e "$LIST" || true
for bus in $(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader | tr 'A-F' 'a-f'); do
  tag=$(echo "$bus" | sed -E 's/^0*([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/pci-\1_\2_\3_\4/')
  echo "DRI_PRIME=$tag: $(DRI_PRIME=$tag MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1 timeout 60 node --input-type=module -e "$LIST")"
done

stage 'multi: 1 GPU, N GPUs, loss curves'
# The cards this container was given, in nvidia-smi's order (its sysfs may list others).
export XLSTM_GPUS=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader | paste -sd, -)
echo "XLSTM_GPUS=$XLSTM_GPUS"
XLSTM_WEBGPU_BACKEND=${XLSTM_WEBGPU_BACKEND:-vulkan} timeout "${MULTI_TIMEOUT:-420}" \
  node multi.mjs --worker /tmp/pkg/probe_pkg/worker.mjs --out "$OUT/multi.json" ${MULTI_ARGS:-}
echo "exit $?"
stage 'done'
