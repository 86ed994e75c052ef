import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { slstmScanGpu } from '../../../src/core/gpu/slstm-scan.ts';
import { slstmScanFrom, slstmScanTrain } from '../../../src/core/slstm/scan.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();
const B = 2;
const T = 9;
const nh = 2;
const dh = 8;
const H = nh * dh;

function draw(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

describe.skipIf(reason)(webgpuTitle('the sLSTM scan kernels', reason), () => {
  const gx = draw(B * T * 4 * H, 1, 1.5);
  const R = draw(4 * nh * dh * dh, 2, 0.3);

  it.each([
    ['a fresh state (m = -inf)', null],
    ['a carried state', { c: draw(B * H, 3), n: Float32Array.from(draw(B * H, 4), (v) => 1 + Math.abs(v)), h: draw(B * H, 5, 0.5), m: draw(B * H, 6) }],
  ] as const)('continue %s like the float64 host scan', async (_label, s0) => {
    const state = s0 ?? { c: new Float32Array(B * H), n: new Float32Array(B * H), h: new Float32Array(B * H), m: new Float32Array(B * H).fill(-Infinity) };
    const want = slstmScanFrom(gx, R, state, { B, T, nh, dh });
    await selectBackend('webgpu');
    const out = tf.tidy(() => {
      const t2 = (a: Float32Array) => tf.tensor2d(a, [B, H]);
      return slstmScanGpu(tf.tensor3d(gx, [B, T, 4 * H]), tf.tensor4d(R, [4, nh, dh, dh]), { c: t2(state.c), n: t2(state.n), h: t2(state.h), m: t2(state.m) });
    });
    expect(maxRelDiff(await out.hs.data(), want.hs)).toBeLessThan(1e-5);
    for (const k of ['c', 'n', 'h', 'm'] as const) expect(maxRelDiff(await out[k].data(), want.state[k]), k).toBeLessThan(1e-5);
    tf.dispose(Object.values(out));
  });
});
