# Sourced by the device-side scripts (campaign.sh, multi.sh) from the repository root: unpacks the
# carried folder (bench/gpu/prepare.sh) into /tmp and puts its Node first on PATH. Needs $G.
if [ -z "${SKIP_DEBS:-}" ] && ! ldconfig -p | grep -q libvulkan.so.1; then for f in "$G"/debs/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
python3 -c "import tarfile; [tarfile.open('$G/' + t).extractall('/tmp/' + d) for t, d in (('node-bin.tar.xz', 'node'), ('webgpu_pkg.tar.xz', 'pkg'), ('vklayer.tar.xz', 'vk'))]"
export PATH=/tmp/node/package/bin:$PATH
cp "$G"/*.mjs /tmp/pkg/probe_pkg/
# The device-select layer as an implicit layer, its library named by absolute path; the libraries it
# links come after the system's on the search path, so they only fill in what the image lacks.
mkdir -p /usr/share/vulkan/implicit_layer.d
sed 's#"library_path": *"[^"]*"#"library_path": "/tmp/vk/vklayer/lib/libVkLayer_MESA_device_select.so"#' \
  /tmp/vk/vklayer/VkLayer_MESA_device_select.json > /usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/tmp/vk/vklayer/lib
node --version
nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,memory.total --format=csv || true
