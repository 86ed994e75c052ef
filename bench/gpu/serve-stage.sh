#!/usr/bin/env bash
# The GPU campaign's serve stage: `xlstm serve` from the carried bundle on webgpu, the GraphQL generate
# client against it (bench/gpu/generate-client.ts), then SIGTERM and a check that the server drains and
# exits 0. Writes $OUT/serve.json (the client's figures, the server's start and stop) and
# $OUT/serve-log.txt (the server's output). Every wait has a limit, so the stage cannot hang a campaign.
# Run from the repository root after campaign.sh's unpack stage (node on PATH, webgpu_pkg in /tmp/pkg):
#   bash bench/gpu/serve-stage.sh
# Settings (environment): SERVE_PKG_ROOT (/tmp/pkg), SERVE_NODE_BIN (/tmp/node/package/bin), SERVE_BACKEND
# (webgpu), XLSTM_WEBGPU_BACKEND (vulkan), SERVE_PORT (0: a free one), SERVE_ARGS (more `xlstm serve` flags),
# SERVE_READY_TIMEOUT (90 s), SERVE_CLIENT_TIMEOUT (180 s), SERVE_STOP_TIMEOUT (20 s), and the client's
# GEN_MAX_TOKENS (64), GEN_BATCHES (1,64), GEN_CLIENTS (8), GEN_CLIENT_PROMPTS (8), GEN_TEMPERATURE (0),
# GEN_SAMPLED (1: the clients again, sampling), GEN_SEED (7), GEN_TIMEOUT (60 s per run), GEN_WARMUP_TOKENS (4): at most about 6.5 minutes. The server
# prefills prompts one at a time as tfjs ops (~925 kernels each for moby-small), so a 64-prompt run waits
# for 64 prefills before its last prompt's first token.
set -uo pipefail
G=${GPU_CARRY:-.gpu-carry}
: "${OUT:?OUT must name the folder for the results}"
OUT=$(cd "$OUT" && pwd)
REPO=$PWD
PKG=${SERVE_PKG_ROOT:-/tmp/pkg}
export PATH=${SERVE_NODE_BIN:-/tmp/node/package/bin}:$PATH
READY_TIMEOUT=${SERVE_READY_TIMEOUT:-90}
STOP_TIMEOUT=${SERVE_STOP_TIMEOUT:-20}
export GEN_TIMEOUT=${GEN_TIMEOUT:-60}
WORK=$(mktemp -d /tmp/serve-stage-XXXXXX)
LOG=$OUT/serve-log.txt
SPID=
cleanup() {
  [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# An outer `timeout` (TERM) still takes the server down with the stage.
trap 'exit 143' TERM INT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The bundles and their native/data files, merged into the unpacked webgpu_pkg (python3: no xz needed).
python3 -c "import tarfile; tarfile.open('$G/serve_pkg.tar.xz').extractall('$PKG')" || { echo "serve-stage: could not unpack $G/serve_pkg.tar.xz into $PKG"; exit 1; }
cd "$PKG/probe_pkg"
node --version

# XLSTM_ROOT: the bundle lives outside the repository (config/, package.json, data/ are found there);
# runs and their database go to a temporary XLSTM_HOME, so nothing is written into the working tree.
T0=$(now)
XLSTM_BACKEND=${SERVE_BACKEND:-webgpu} XLSTM_WEBGPU_BACKEND=${XLSTM_WEBGPU_BACKEND:-vulkan} XLSTM_ROOT=$REPO \
  XLSTM_HOME=$WORK/home XLSTM_CHECKPOINTS=${SERVE_CHECKPOINTS:-$REPO/checkpoints} \
  node xlstm.mjs serve --host 127.0.0.1 --port "${SERVE_PORT:-0}" --no-playground \
  --max-active 256 --max-queued 1024 --max-prompts 256 ${SERVE_ARGS:-} > "$LOG" 2>&1 &
SPID=$!

# Ready: the log names the URL once the model is loaded and warmed up; /readyz must then answer 200.
URL=
READY=false
while [ "$(since "$T0" | cut -d. -f1)" -lt "$READY_TIMEOUT" ]; do
  kill -0 "$SPID" 2>/dev/null || break
  [ -z "$URL" ] && URL=$(grep -o 'at http://[^ ]*/graphql' "$LOG" | head -1 | cut -c4-)
  if [ -n "$URL" ] && timeout 10 node -e "fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))" "${URL%/graphql}/readyz"; then
    READY=true
    break
  fi
  sleep 1
done
READY_S=$(since "$T0")
echo "server ready: $READY after $READY_S s ($URL)"
grep -m1 '^backend:' "$LOG"

CLIENT_RC=
if [ "$READY" = true ]; then
  timeout "${SERVE_CLIENT_TIMEOUT:-180}" node generate-client.mjs --url "$URL" --out "$WORK/client.json"
  CLIENT_RC=$?
  echo "client exit $CLIENT_RC"
else
  if kill -0 "$SPID" 2>/dev/null; then echo "serve-stage: the server was not ready within $READY_TIMEOUT s; its log ends:"
  else echo "serve-stage: the server exited before it was ready; its log ends:"; fi
  tail -20 "$LOG"
fi

# Stop: SIGTERM must drain and exit 0 within STOP_TIMEOUT.
STOP_T0=$(now)
SERVER_EXIT=
if kill -0 "$SPID" 2>/dev/null; then
  kill -TERM "$SPID"
  while kill -0 "$SPID" 2>/dev/null && [ "$(since "$STOP_T0" | cut -d. -f1)" -lt "$STOP_TIMEOUT" ]; do sleep 0.2; done
  if kill -0 "$SPID" 2>/dev/null; then
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SERVER_EXIT=killed
  fi
fi
if [ -z "$SERVER_EXIT" ]; then
  wait "$SPID" 2>/dev/null
  SERVER_EXIT=$?
fi
STOP_S=$(since "$STOP_T0")
SPID=
echo "server exit $SERVER_EXIT after SIGTERM ($STOP_S s)"

READY=$READY READY_S=$READY_S URL=$URL CLIENT_RC=$CLIENT_RC SERVER_EXIT=$SERVER_EXIT STOP_S=$STOP_S LOG=$LOG \
  timeout 30 node -e '
const fs = require("node:fs");
const e = process.env;
let client = null;
try { client = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch {}
const log = fs.readFileSync(e.LOG, "utf8");
const server = {
  url: e.URL || null,
  ready: e.READY === "true",
  readyS: Number(e.READY_S),
  backendLine: (log.match(/^backend: .*$/m) || [null])[0],
  stopS: Number(e.STOP_S),
  exit: e.SERVER_EXIT === "killed" ? "killed" : Number(e.SERVER_EXIT),
  drained: /^stopped$/m.test(log),
};
const ok = server.ready && server.exit === 0 && client !== null && client.ok === true && e.CLIENT_RC === "0";
fs.writeFileSync(process.argv[2], JSON.stringify({ ok, server, clientExit: e.CLIENT_RC === "" ? null : Number(e.CLIENT_RC), client }, null, 2) + "\n");
console.log(`serve stage ${ok ? "ok" : "FAILED"}: ${process.argv[2]}`);
process.exit(ok ? 0 : 1);
' "$WORK/client.json" "$OUT/serve.json"
