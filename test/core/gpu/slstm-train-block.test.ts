import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import type { Dims } from '../../../src/core/config.ts';
import { gpuOptions } from '../../../src/core/gpu/device.ts';
import { slstmBlockTrainGpu } from '../../../src/core/gpu/slstm-train-block.ts';
import { slstmGradTiling } from '../../../src/core/gpu/slstm-train-grads.ts';
import { slstmBlock } from '../../../src/core/slstm/block.ts';
import type { SlstmWeights } from '../../../src/core/weights.ts';
import { isXlstmError } from '../../../src/util/errors.ts';
import { Rng } from '../../../src/util/rng.ts';
import { expectNoTensorLeak, maxRelDiff } from '../../support/tiny-model.ts';
import { countingDispatches, webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();
// N = 18 rows: more than one 16-row tile, so the conv's halo crosses a tile edge inside a sequence.
const B = 2;
const T = 9;
const d = 16;
const nh = 2;
const dh = 4;
const H = nh * dh;
const P = 11;
const DEFAULT_TILING = { ...slstmGradTiling };
const DEFAULT_OPTIONS = { ...gpuOptions };

const dimsOf = (k: number): Dims => ({
  V: 0,
  d,
  nh,
  dh,
  H,
  dm: 0,
  P,
  k,
  kinds: ['s'],
});

type Arrays = Record<string, { shape: number[]; data: Float32Array }>;

/** x, dy and the weights; gate biases spread so that both branches of the stabiliser's max occur. */
function blockInputs(k: number, seed: number): Arrays {
  const rng = new Rng(seed);
  const out: Arrays = {};
  const put = (name: string, shape: number[], f: (j: number) => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = {
      shape,
      data: Float32Array.from({ length: n }, (_, j) => f(j)),
    };
  };
  const normal =
    (scale: number, shift = 0) =>
    () =>
      shift + scale * rng.normal();
  put('x', [B, T, d], normal(1));
  put('dy', [B, T, d], normal(1));
  put('normW', [d], normal(0.1, 1));
  put('normB', [d], normal(0.1));
  if (k > 0) {
    put('convW', [k, d], normal(0.5));
    put('convB', [d], normal(0.1));
  }
  put('wC', [d, 2 * H], normal(0.4));
  put('wX', [d, 2 * H], normal(0.4));
  put('bG', [4 * H], (j) => (j < H ? 1.5 * rng.normal() : j < 2 * H ? 1 + rng.normal() : 0.1 * rng.normal()));
  put('R', [4, nh, dh, dh], normal(0.3));
  put('outW', [H], normal(0.1, 1));
  put('outB', [H], normal(0.1));
  put('wUp', [H, 2 * P], normal(0.4));
  put('bUp', [2 * P], normal(0.1));
  put('wDown', [P, d], normal(0.3));
  put('bDown', [d], normal(0.1));
  return out;
}

const WEIGHTS = ['normW', 'normB', 'convW', 'convB', 'wC', 'wX', 'bG', 'R', 'outW', 'outB', 'wUp', 'bUp', 'wDown', 'bDown'] as const;

/** The value and gradients (x first, then the weights present) on the active backend, given dy. */
async function run(inp: Arrays, k: number, block: (x: tf.Tensor3D, w: SlstmWeights) => tf.Tensor3D, count?: (n: number) => void) {
  const t = (name: string) => tf.tensor(inp[name].data, inp[name].shape);
  const names = WEIGHTS.filter((n) => inp[n]);
  const x = t('x');
  const dy = t('dy');
  const ws = names.map(t);
  const weightsOf = (vals: tf.Tensor[]): SlstmWeights => {
    const m = Object.fromEntries(names.map((n, j) => [n, vals[j]]));
    return {
      kind: 's',
      convW: null,
      convB: null,
      ...m,
    } as unknown as SlstmWeights;
  };
  const y = block(x as tf.Tensor3D, weightsOf(ws));
  const value = (await y.data()) as Float32Array;
  const f = (...a: tf.Tensor[]) => block(a[0] as tf.Tensor3D, weightsOf(a.slice(1)));
  const { value: grads, dispatches } = countingDispatches(() => tf.grads(f)([x, ...ws], dy));
  count?.(dispatches);
  const out = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  expect(grads.map((g) => g.shape)).toEqual([[B, T, d], ...names.map((n) => inp[n].shape)]);
  tf.dispose([x, dy, y, ...ws, ...grads]);
  return { value, grads: out, names: ['x', ...names], k };
}

/** The oracle: slstmBlock's training path under tfjs autodiff on the cpu backend. */
async function hostRun(inp: Arrays, k: number) {
  await selectBackend('cpu');
  return run(inp, k, (x, w) => slstmBlock(x, w, dimsOf(k), null, false).y);
}

describe.skipIf(reason)(webgpuTitle('the webgpu sLSTM training block', reason), () => {
  afterEach(() => {
    Object.assign(slstmGradTiling, DEFAULT_TILING);
    Object.assign(gpuOptions, DEFAULT_OPTIONS);
  });

  it.each([
    ['conv k = 4', 4, {}, null],
    ['no conv', 0, {}, null],
    // Weight gradients summed over 5 slices of 4 rows (the last one short).
    ['conv k = 4, several row slices', 4, { rowsPerSlice: 4 }, null],
    // The source a hardware adapter gets (sizes as constants), whatever adapter runs the test.
    ['conv k = 4, constant loop bounds', 4, {}, false],
  ] as const)('gives the value and gradients of the autodiffed host block in 3 + 5 dispatches (%s)', async (_label, k, tiling, opaque) => {
    const inp = blockInputs(k, 21 + k);
    const want = await hostRun(inp, k);
    await selectBackend('webgpu');
    Object.assign(slstmGradTiling, tiling);
    if (opaque !== null) gpuOptions.opaqueLoopBounds = opaque;
    let forward = -1;
    let total = -1;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const idsBefore = backend.numDataIds();
    const got = await expectNoTensorLeak(() =>
      run(
        inp,
        k,
        (x, w) => {
          const { value, dispatches } = countingDispatches(() => slstmBlockTrainGpu(x, w, dimsOf(k)));
          forward = dispatches;
          return value;
        },
        (n) => (total = n),
      ),
    );
    // Every temporary buffer is released too (the weight-gradient partials), not only the engine's tensors.
    expect(backend.numDataIds()).toBe(idsBefore);
    expect(forward).toBe(3);
    expect(total - forward).toBe(5);
    expect(maxRelDiff(got.value, want.value)).toBeLessThan(1e-5);
    for (const [j, name] of want.names.entries()) expect(maxRelDiff(got.grads[j], want.grads[j]), name).toBeLessThan(1e-5);
  });

  it('rejects weights whose shapes do not match dims', async () => {
    await selectBackend('webgpu');
    const inp = blockInputs(4, 5);
    const t = (name: string) => tf.tensor(inp[name].data, inp[name].shape);
    const w = Object.fromEntries(WEIGHTS.map((n) => [n, t(n)])) as unknown as SlstmWeights;
    const x = t('x') as tf.Tensor3D;
    let err: unknown = null;
    try {
      slstmBlockTrainGpu(x, w, { ...dimsOf(4), P: P + 1 });
    } catch (e) {
      err = e;
    }
    expect(isXlstmError(err, 'INVALID_INPUT')).toBe(true);
    expect(String(err)).toMatch(/wUp of shape \[8,24\], but got \[8,22\]/);
    tf.dispose([x, ...Object.values(w).filter((v) => v instanceof tf.Tensor)]);
  });
});
