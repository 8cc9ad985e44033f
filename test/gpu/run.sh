#!/usr/bin/env bash
# The GPU check on an offline GPU host without Node (packed by `npm run bench:gpu` into .gpu/): installs the carried
# Vulkan loader, unpacks node and Dawn, runs test/gpu/check.ts's bundle and prints its JSON. Arguments go to the check
# (e.g. --quick). Run from the repository root: bash .gpu/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${TMPDIR:-/tmp}/sigmatrain-gpu
mkdir -p "$work"
if [ "$(id -u)" = 0 ]; then
  for deb in "$here"/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
else
  for deb in "$here"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
  export LD_LIBRARY_PATH="$work/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA's ICD: where the host has it, unless the loader already finds one.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then export VK_ICD_FILENAMES="$icd"; fi
done
xz -dc "$here/node.xz" > "$work/node" && chmod +x "$work/node"
dawn="$here/node_modules/webgpu/dist/linux-x64"
[ -f "$dawn/dawn.node" ] || xz -dc "$dawn/dawn.node.xz" > "$dawn/dawn.node"
cd "$here"
exec "$work/node" check.mjs "$@"
