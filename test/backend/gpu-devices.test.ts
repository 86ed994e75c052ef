import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { deviceSelectLayerInstalled, driPrimeTag, pciGpus, pinWorkerGpu } from '../../src/backend/gpu-devices.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'xlstm-sysfs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fake /sys/bus/pci/devices entry, the two files pciGpus reads. */
function device(address: string, cls: string, vendor: string): void {
  mkdirSync(path.join(root, address), { recursive: true });
  writeFileSync(path.join(root, address, 'class'), `${cls}\n`);
  writeFileSync(path.join(root, address, 'vendor'), `${vendor}\n`);
}

// A GPU server as lspci shows one: a BMC's VGA, two 3D controllers out of order, a NIC, a bridge.
device('0000:03:00.0', '0x030000', '0x1a03'); // ASPEED BMC graphics
device('0000:9a:00.0', '0x030200', '0x10de'); // H200
device('0000:18:00.0', '0x030200', '0x10de'); // H200
device('0000:41:00.0', '0x020000', '0x15b3'); // network controller
device('0000:00:00.0', '0x060000', '0x8086'); // host bridge
device('0000:c1:00.0', '0x030000', '0x1002'); // an AMD card on VGA class

describe('GPUs by PCI address', () => {
  it('should list 3D controllers and GPU vendors on VGA class in bus order, and skip a BMC', () => {
    expect(pciGpus(root, '')).toEqual(['0000:18:00.0', '0000:9a:00.0', '0000:c1:00.0']);
  });

  it('should list nothing where there is no sysfs', () => {
    expect(pciGpus(path.join(root, 'missing'), '')).toEqual([]);
  });

  it("should take XLSTM_GPUS over sysfs, in nvidia-smi's spelling too", () => {
    expect(pciGpus(root, '00000000:9A:00.0, 0000:18:00.0')).toEqual(['0000:18:00.0', '0000:9a:00.0']);
    expect(() => pciGpus(root, 'gpu0')).toThrow(/XLSTM_GPUS expected PCI addresses of the form DDDD:BB:DD.F, but got "gpu0"/);
  });

  it("should write addresses in the DRI_PRIME form Mesa's device-select layer parses", () => {
    expect(driPrimeTag('0000:9A:00.0')).toBe('pci-0000_9a_00_0');
    expect(() => driPrimeTag('9a:00.0')).toThrow(/PCI address expected the form DDDD:BB:DD.F, but got "9a:00.0"/);
  });

  it('should pin worker i to GPU i, round-robin beyond the count, and leave a pinned or single worker alone', () => {
    const gpus = pciGpus(root, '');
    const envs = [0, 1, 2, 3].map((i) => {
      const env: NodeJS.ProcessEnv = {};
      return { env, pinned: pinWorkerGpu(env, i, 4, gpus) };
    });
    expect(envs.map((e) => e.pinned)).toEqual(['0000:18:00.0', '0000:9a:00.0', '0000:c1:00.0', '0000:18:00.0']);
    expect(envs[1].env).toEqual({ DRI_PRIME: 'pci-0000_9a_00_0', MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' });
    const preset: NodeJS.ProcessEnv = { DRI_PRIME: 'pci-0000_18_00_0' };
    expect(pinWorkerGpu(preset, 1, 2, gpus)).toBeNull();
    expect(preset).toEqual({ DRI_PRIME: 'pci-0000_18_00_0' });
    expect(pinWorkerGpu({}, 0, 1, gpus)).toBeNull();
    expect(pinWorkerGpu({}, 0, 2, ['0000:18:00.0'])).toBeNull();
  });

  it("should find the layer's manifest where the Vulkan loader looks", () => {
    const dir = path.join(root, 'implicit_layer.d');
    expect(deviceSelectLayerInstalled([dir])).toBe(false);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'VkLayer_MESA_device_select.json'), '{}');
    expect(deviceSelectLayerInstalled([path.join(root, 'none'), dir])).toBe(true);
  });
});
