/**
 * Which GPU a data-parallel worker process uses. Dawn's Node binding takes the first adapter whose
 * name matches, and identical cards (two H200s) share one name, so a worker cannot pick "the
 * second H200" through Dawn. It is pinned one layer down instead: Mesa's Vulkan device-select
 * layer (libVkLayer_MESA_device_select, Debian's mesa-vulkan-drivers) reorders the physical devices
 * so that the one at DRI_PRIME=pci-DOMAIN_BUS_DEV_FN comes first, and with
 * MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE shows that one only. Workers are numbered by PCI
 * address, the order nvidia-smi uses by default.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SYSFS = '/sys/bus/pci/devices';

/** Vendors whose VGA-class devices are compute GPUs; a server's BMC (ASPEED, Matrox) also shows up as VGA. */
const GPU_VENDORS = new Set(['0x10de', '0x1002', '0x8086']);

/** Where the Vulkan loader looks for implicit layers (system-wide). */
const LAYER_DIRS = ['/usr/share/vulkan/implicit_layer.d', '/etc/vulkan/implicit_layer.d', '/usr/local/share/vulkan/implicit_layer.d'];

function readTrimmed(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The machine's GPUs as PCI addresses ("0000:18:00.0"), sorted: XLSTM_GPUS when set (comma-separated,
 * e.g. from `nvidia-smi --query-gpu=pci.bus_id`: a container's sysfs may list cards it was not
 * given), else 3D controllers (class 0x0302) and VGA controllers (0x0300) of GPU vendors in sysfs.
 * Empty where there are none (CPU-only machines, macOS).
 */
export function pciGpus(root = SYSFS, listed = process.env.XLSTM_GPUS): string[] {
  if (listed?.trim()) return listed.split(',').map(normaliseAddress).sort();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      const cls = readTrimmed(path.join(root, name, 'class'));
      const vendor = readTrimmed(path.join(root, name, 'vendor'));
      return cls.startsWith('0x0302') || (cls.startsWith('0x0300') && GPU_VENDORS.has(vendor));
    })
    .sort();
}

/** nvidia-smi writes an 8-digit domain ("00000000:18:00.0") in capitals; sysfs a 4-digit one. */
export function normaliseAddress(address: string): string {
  const m = /^0*([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(address.trim());
  if (!m) throw new Error(`XLSTM_GPUS expected PCI addresses of the form DDDD:BB:DD.F, but got "${address.trim()}".`);
  return `${m[1]}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase();
}

/** "0000:18:00.0" -> "pci-0000_18_00_0", the DRI_PRIME form Mesa's device-select layer parses. */
export function driPrimeTag(address: string): string {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(address);
  if (!m) throw new Error(`PCI address expected the form DDDD:BB:DD.F, but got "${address}".`);
  return `pci-${m[1]}_${m[2]}_${m[3]}_${m[4]}`.toLowerCase();
}

/** Whether Mesa's device-select layer is installed where the Vulkan loader finds implicit layers. */
export function deviceSelectLayerInstalled(dirs: readonly string[] = LAYER_DIRS): boolean {
  return dirs.some((dir) => existsSync(path.join(dir, 'VkLayer_MESA_device_select.json')));
}

/**
 * The environment of worker `index` of `workers`: pinned to GPU `index` when the machine has at
 * least that many and the caller has not pinned the worker already (DRI_PRIME set). Returns the
 * PCI address it was pinned to, or null when nothing was pinned.
 */
export function pinWorkerGpu(env: NodeJS.ProcessEnv, index: number, workers: number, gpus: readonly string[] = pciGpus()): string | null {
  if (workers < 2 || env.DRI_PRIME !== undefined || gpus.length < 2) return null;
  // More workers than GPUs share them round-robin (two workers on one card still train correctly).
  const address = gpus[index % gpus.length];
  env.DRI_PRIME = driPrimeTag(address);
  env.MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE = '1';
  return address;
}
