import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { configureGpuKernels, gpuOptions } from '../../../src/core/gpu/device.ts';
import { isPacked } from '../../../src/core/gpu/pack.ts';
import type { ModelState, XlstmModel } from '../../../src/core/index.ts';
import { refInitState, refStep, type RefState } from '../../support/reference/index.ts';
import { loadFixture, maxRelDiff, modelFromParams, seededTiny, TINY } from '../../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();
const ids = (t: number) => [t % 64, (t * 5 + 1) % 64, 63 - t];

/** Logits of 8 greedy-free steps of a batch of 3 on the active backend, read asynchronously. */
async function stepLogits(model: XlstmModel, steps: number): Promise<Float32Array[]> {
  let state: ModelState = tf.tidy(() => model.initState(3));
  const rows: Float32Array[] = [];
  for (let t = 0; t < steps; t++) {
    const out = tf.tidy(() => model.step(tf.tensor1d(ids(t), 'int32'), state));
    for (const b of state) for (const x of Object.values(b)) x.dispose();
    rows.push((await out.logits.data()) as Float32Array);
    out.logits.dispose();
    state = out.state;
  }
  for (const b of state) for (const x of Object.values(b)) x.dispose();
  return rows;
}

describe.skipIf(reason)(webgpuTitle('the fused WebGPU decode step', reason), () => {
  it.each(['tiny', 'noconv'] as const)('equals the cpu backend fused step over 8 steps of a batch of 3 (%s fixture)', async (name) => {
    const fx = loadFixture(name);
    await selectBackend('cpu');
    const cpuModel = modelFromParams(fx.config, fx.params);
    const want = await stepLogits(cpuModel, 8);
    cpuModel.dispose();
    await selectBackend('webgpu');
    const model = modelFromParams(fx.config, fx.params);
    const got = await stepLogits(model, 8);
    model.dispose();
    got.forEach((row, t) => expect(maxRelDiff(row, want[t]), `step ${t}`).toBeLessThan(1e-5));
  });

  it('gives the same logits with constant loop bounds (the variant compiled for GPUs)', async () => {
    const fx = loadFixture('tiny');
    await selectBackend('webgpu');
    const model = modelFromParams(fx.config, fx.params);
    const software = gpuOptions.opaqueLoopBounds;
    configureGpuKernels({ softwareAdapter: !software });
    const other = await stepLogits(model, 3);
    configureGpuKernels({ softwareAdapter: software });
    const usual = await stepLogits(model, 3);
    model.dispose();
    other.forEach((row, t) => expect(maxRelDiff(row, usual[t]), `step ${t}`).toBeLessThan(1e-6));
  });

  describe('a seeded tiny model', () => {
    let model: XlstmModel;
    let params: Map<string, Float64Array>;
    beforeAll(async () => {
      await selectBackend('webgpu');
      ({ model, params } = seededTiny(TINY, 3));
    });
    afterAll(() => model.dispose());

    it('matches the float64 reference step for every row over 10 steps, with the state packed', async () => {
      let state = tf.tidy(() => model.initState(3));
      expect(isPacked(state)).toBe(true);
      let refs: RefState[] = [0, 1, 2].map(() => refInitState(TINY));
      let worst = 0;
      for (let t = 0; t < 10; t++) {
        const out = tf.tidy(() => model.step(tf.tensor1d(ids(t), 'int32'), state));
        state.forEach((b) => Object.values(b).forEach((x) => x.dispose()));
        state = out.state;
        const got = (await out.logits.data()) as Float32Array;
        out.logits.dispose();
        refs = refs.map((s, r) => {
          const ref = refStep(TINY, params, ids(t)[r], s);
          const V = TINY.vocab_size;
          worst = Math.max(worst, maxRelDiff(got.subarray(r * V, (r + 1) * V), ref.logits));
          return ref.state;
        });
      }
      state.forEach((b) => Object.values(b).forEach((x) => x.dispose()));
      expect(worst).toBeLessThan(1e-4);
    });

    it('gives a row the same logits alone and beside other rows', async () => {
      const run = async (tokens: number[][]) => {
        let state = tf.tidy(() => model.initState(tokens.length));
        let last: Float32Array = new Float32Array();
        for (let t = 0; t < tokens[0].length; t++) {
          const out = tf.tidy(() => model.step(tf.tensor1d(tokens.map((row) => row[t]), 'int32'), state));
          state.forEach((b) => Object.values(b).forEach((x) => x.dispose()));
          state = out.state;
          last = (await out.logits.data()) as Float32Array;
          out.logits.dispose();
        }
        state.forEach((b) => Object.values(b).forEach((x) => x.dispose()));
        return last;
      };
      const row = [5, 17, 2, 40, 63];
      const alone = await run([row]);
      const batched = await run([[1, 2, 3, 4, 5], row, [60, 61, 62, 63, 0]]);
      const V = TINY.vocab_size;
      expect(maxRelDiff(batched.subarray(V, 2 * V), alone)).toBeLessThan(1e-6);
    });
  });
});
