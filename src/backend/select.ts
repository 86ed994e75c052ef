/**
 * Picks and initialises the tfjs backend: XLSTM_BACKEND when set, else the first available of
 * tensorflow (tfjs-node-gpu, then tfjs-node; optional installs), webgpu, wasm, cpu.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { XlstmError } from '../util/errors.ts';
import { loadWebgpu } from './webgpu.ts';
import '../core/gradients/index.ts';

export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  readonly name: BackendName;
  /** What runs underneath: the native package, the GPU adapter, the wasm features. */
  readonly detail: string;
}

const require = createRequire(import.meta.url);

/** `explicit`: the backend was named (XLSTM_BACKEND), so a merely usable device is enough. */
type Loader = (explicit: boolean) => Promise<string | null>;

/** Each loader registers its backend and returns a description, or null when it is unavailable. */
const loaders: Record<BackendName, Loader> = {
  async tensorflow() {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        require.resolve(pkg);
      } catch {
        continue;
      }
      await import(pkg);
      return pkg;
    }
    return null;
  },
  // Dawn through the optional `webgpu` package; auto-detection takes hardware adapters only.
  webgpu: (explicit) => loadWebgpu(explicit),
  async wasm() {
    await import('@tensorflow/tfjs-backend-wasm');
    return 'XNNPACK, SIMD, 1 thread under Node';
  },
  async cpu() {
    await import('@tensorflow/tfjs-backend-cpu');
    return 'plain JavaScript kernels';
  },
};

let current: BackendInfo | null = null;

/**
 * Initialises the requested backend (or the first available one) and returns what was chosen.
 * A named backend that cannot start is an error, never a silent fallback.
 */
export async function selectBackend(requested?: string): Promise<BackendInfo> {
  if (requested !== undefined && requested !== '' && !(BACKENDS as readonly string[]).includes(requested)) {
    throw new XlstmError('BACKEND', `XLSTM_BACKEND expected one of ${BACKENDS.join(', ')}, but got "${requested}".`);
  }
  const order: readonly BackendName[] = requested ? [requested as BackendName] : BACKENDS;
  for (const name of order) {
    const detail = await loaders[name](Boolean(requested)).catch((e: unknown) => {
      if (requested) throw new XlstmError('BACKEND', `backend ${name} failed to load: ${String(e)}`, { cause: e });
      return null;
    });
    if (detail === null) {
      if (requested) throw new XlstmError('BACKEND', `backend ${name} is not available on this machine. Hint: unset XLSTM_BACKEND to pick the first available one.`);
      continue;
    }
    // PROD silences tfjs's console banners (we log the backend ourselves) and its debug checks.
    tf.env().set('PROD', true);
    const ok = await tf.setBackend(name);
    if (!ok) {
      if (requested) throw new XlstmError('BACKEND', `backend ${name} did not initialise.`);
      continue;
    }
    await tf.ready();
    current = { name, detail };
    return current;
  }
  throw new XlstmError('BACKEND', 'no tfjs backend could be initialised.');
}

/** The backend chosen by the last selectBackend call. */
export function currentBackend(): BackendInfo | null {
  return current;
}
