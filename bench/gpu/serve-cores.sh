#!/usr/bin/env bash
# bench:serve on the device machine's CPU cores (wasm, no GPU), from the carried bundles (bench/gpu/prepare.sh,
# prepare-serve.sh): the same server, bare pool and lean clients as on the 2-core development machine, where
# the server's main thread, V8's helpers and the clients take cores the decode threads need. Here they have
# cores of their own, so the ratio shows what the server itself costs. Run from the repository root:
#   OUT=... bash bench/gpu/serve-cores.sh
# Settings: SERVE_DECODE_THREADS (the decode thread counts to run, default "2 8"), SERVE_BENCH_ARGS (more flags).
# Writes $OUT/serve-cores-<threads>.json and $OUT/serve-cores-log.txt.
set -uo pipefail
G=${GPU_CARRY:-.gpu-carry}
: "${OUT:?OUT must name the folder for the results}"
OUT=$(cd "$OUT" && pwd)
REPO=$PWD
exec > >(tee "$OUT/serve-cores-log.txt") 2>&1
SKIP_DEBS=1 source bench/gpu/unpack.sh >/dev/null
python3 -c "import tarfile; tarfile.open('$G/serve_pkg.tar.xz').extractall('/tmp/pkg')" || { echo "serve-cores: could not unpack $G/serve_pkg.tar.xz"; exit 1; }
cd /tmp/pkg/probe_pkg
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
for t in ${SERVE_DECODE_THREADS:-2 8}; do
  echo "== decode threads $t"
  XLSTM_BACKEND=wasm XLSTM_ROOT=$REPO XLSTM_HOME=$(mktemp -d) XLSTM_SERVE_BIN=$PWD/xlstm.mjs \
    timeout 280 node serve-bench.mjs --checkpoints-dir "$REPO/checkpoints" --decode-threads "$t" \
    --out "$OUT/serve-cores-$t.json" ${SERVE_BENCH_ARGS:-}
  echo "exit $?"
done
