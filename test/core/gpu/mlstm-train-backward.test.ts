import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { gpuOptions } from '../../../src/core/gpu/device.ts';
import { mlstmBackwardTiling, mlstmTrainBackwardGpu, registerMlstmTrainBackwardGpu } from '../../../src/core/gpu/mlstm-train-backward.ts';
import '../../../src/core/mlstm/train-block.ts';
import { traceNames, type MlstmTrainAttrs } from '../../../src/core/mlstm/train-kernels.ts';
import { isXlstmError } from '../../../src/util/errors.ts';
import { Rng } from '../../../src/util/rng.ts';
import { expectNoTensorLeak, maxRelDiff } from '../../support/tiny-model.ts';
import { countingDispatches, webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();
const B = 2;
const T = 7;
const d = 16;
const nh = 2;
const dh = 4;
const dm = 32;
const H = nh * dh;
const DEFAULT_TILING = { ...mlstmBackwardTiling };
const DEFAULT_OPTIONS = { ...gpuOptions };

type Arrays = Record<string, { shape: number[]; data: Float32Array }>;

/** Inputs of the block: x, the weights (gates spread so that the stabiliser moves) and dy. */
function blockInputs(k: number, seed: number): Arrays {
  const rng = new Rng(seed);
  const out: Arrays = {};
  const put = (name: string, shape: number[], f: (j: number) => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = { shape, data: Float32Array.from({ length: n }, (_, j) => f(j)) };
  };
  const normal = (scale: number, shift = 0) => () => shift + scale * rng.normal();
  put('x', [B, T, d], normal(1));
  put('dy', [B, T, d], normal(1));
  put('normW', [d], normal(0.1, 1));
  put('normB', [d], normal(0.1));
  put('wUp', [d, dm + H], normal(0.3));
  put('bUp', [dm + H], normal(0.1));
  if (k > 0) {
    put('convW', [k, dm], normal(0.5));
    put('convB', [dm], normal(0.1));
  }
  put('wC', [dm, 3 * H + 2 * nh], normal(0.25));
  // q and k biases small, input gates wide, forget gates around 2: both branches of the max in m_t.
  put('bC', [2 * H + 2 * nh], (j) => (j < 2 * H ? 0.1 * rng.normal() : j < 2 * H + nh ? 1.5 * rng.normal() : 2 + rng.normal()));
  put('wU', [dm, 2 * H], normal(0.25));
  put('bU', [2 * H], normal(0.1));
  put('outW', [H], normal(0.1, 1));
  put('outB', [H], normal(0.1));
  put('wDown', [H, d], normal(0.3));
  put('bDown', [d], normal(0.1));
  return out;
}

const WEIGHTS = ['normW', 'normB', 'wUp', 'bUp', 'convW', 'convB', 'wC', 'bC', 'wU', 'bU', 'outW', 'outB', 'wDown', 'bDown'];

/** Names of the backward kernel's outputs, in order. */
const gradNames = (k: number) => ['dx', ...WEIGHTS.filter((w) => k > 0 || !w.startsWith('conv'))];

const attrsOf = (k: number): MlstmTrainAttrs => ({ nh, dh, dm, k });

/** On cpu: the host forward kernel's trace, then the host backward kernel's gradients (the oracle). */
async function hostRun(inp: Arrays, k: number): Promise<{ trace: Arrays; grads: Float32Array[] }> {
  await selectBackend('cpu');
  const t = (name: string) => tf.tensor(inp[name].data, inp[name].shape);
  const weights = Object.fromEntries(WEIGHTS.filter((w) => inp[w]).map((w) => [w, t(w)]));
  const x = t('x');
  const dy = t('dy');
  const attrs = attrsOf(k) as unknown as tf.NamedAttrMap;
  const [y, ...outs] = tf.engine().runKernel('XlstmMlstmTrainForward', { x, ...weights }, attrs) as tf.Tensor[];
  const names = traceNames(k);
  const trace: Arrays = {};
  for (const [j, name] of names.entries()) trace[name] = { shape: outs[j].shape, data: (await outs[j].data()) as Float32Array };
  const bwd = tf.engine().runKernel('XlstmMlstmTrainBackward', { dy, x, ...weights, ...Object.fromEntries(names.map((n, j) => [n, outs[j]])) }, attrs) as tf.Tensor[];
  const grads = await Promise.all(bwd.map(async (g) => (await g.data()) as Float32Array));
  tf.dispose([y, x, dy, ...outs, ...bwd, ...Object.values(weights)]);
  return { trace, grads };
}

describe.skipIf(reason)(webgpuTitle('the webgpu backward kernel of the mLSTM training block', reason), () => {
  afterEach(() => {
    Object.assign(mlstmBackwardTiling, DEFAULT_TILING);
    Object.assign(gpuOptions, DEFAULT_OPTIONS);
  });

  it.each([
    ['conv k = 4, default tiling, one row tile', 4, {}, null],
    ['no conv, default tiling, one row tile', 0, {}, null],
    // 3-row sub-tiles, 2 workgroups (3 sub-tiles each, the last one empty), 32 threads; the cell in
    // chunks of 4 steps, staging 3 at a time.
    ['conv k = 4, several tiles, sub-tiles and chunks', 4, { rows: 3, maxTiles: 2, threads: 32, cellThreads: 4, staged: 3 }, null],
    // The source a hardware adapter gets (sizes as constants), whatever adapter runs the test.
    ['conv k = 4, constant loop bounds', 4, { rows: 3, maxTiles: 2, cellThreads: 4, staged: 3 }, false],
  ] as const)('gives the host kernel gradients in 5 dispatches (%s)', async (_label, k, tiling, opaque) => {
    const inp = blockInputs(k, 11 + k);
    const want = await hostRun(inp, k);
    await selectBackend('webgpu');
    registerMlstmTrainBackwardGpu();
    registerMlstmTrainBackwardGpu(); // idempotent
    Object.assign(mlstmBackwardTiling, tiling);
    if (opaque !== null) gpuOptions.opaqueLoopBounds = opaque;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const idsBefore = backend.numDataIds();
    const got = await expectNoTensorLeak(async () => {
      const all = { ...inp, ...want.trace };
      const tensors = Object.fromEntries(Object.entries(all).map(([name, a]) => [name, tf.tensor(a.data, a.shape)]));
      const { value: grads, dispatches } = countingDispatches(
        () => tf.engine().runKernel('XlstmMlstmTrainBackward', tensors, attrsOf(k) as unknown as tf.NamedAttrMap) as tf.Tensor[],
      );
      expect(dispatches).toBe(5);
      const out = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
      tf.dispose([...grads, ...Object.values(tensors)]);
      return out;
    });
    // Every temporary buffer is released too, not only the engine's tensors.
    expect(backend.numDataIds()).toBe(idsBefore);
    const names = gradNames(k);
    expect(got.length).toBe(names.length);
    for (const [j, name] of names.entries()) {
      expect(got[j].length, name).toBe(want.grads[j].length);
      expect(maxRelDiff(got[j], want.grads[j]), name).toBeLessThan(1e-5);
    }
  });

  it('names the trace tensors it is missing', async () => {
    await selectBackend('webgpu');
    const x = tf.zeros([B, T, d]);
    let error: unknown = null;
    try {
      mlstmTrainBackwardGpu({ x, dy: x }, attrsOf(4));
    } catch (e) {
      error = e;
    }
    x.dispose();
    expect(isXlstmError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toMatch(/got none for normW, .*hhat, rstd2, convW, c, sa\./);
  });
});
