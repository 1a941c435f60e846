#!/usr/bin/env bash
# On the GPU machine, in the repo root (carried with .device and .gl): unpacks Node.js, the
# node_modules and the Vulkan libraries that scripts/gpu/prepare.sh made, builds the native libm
# addon if a compiler is there, then runs the given command with `node` on PATH and Dawn pointed
# at the NVIDIA driver. Example:  scripts/gpu/run.sh npm run bench:gpu
set -euo pipefail
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
export __EGL_VENDOR_LIBRARY_FILENAMES="${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}"
mkdir -p /tmp/virl-node
[ -x /tmp/virl-node/bin/node ] || tar -C /tmp/virl-node -xJf .device/node.tar.xz
[ -d node_modules/webgpu ] || tar -xJf .device/modules.tar.xz
export PATH="/tmp/virl-node/bin:$PATH"
command -v cc >/dev/null && [ -d /tmp/virl-node/include ] && node scripts/build-libm.mjs || true
exec "$@"
