import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { freshPackedState, isPacked, packState, packWeightsFlat, stateSegments, stepLayout, unpackState, weightSegments } from '../../../src/core/gpu/pack.ts';
import { REFERENCE_CONFIG, deriveDims, weightEntries } from '../../../src/core/index.ts';
import { seededTiny, TINY } from '../../support/tiny-model.ts';

// The layouts are plain tfjs ops: checked on the cpu backend, with no adapter needed.
describe('packed layouts for the fused WebGPU step', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('packs every weight once, in its block\'s segments, then the final norm', () => {
    const { model } = seededTiny();
    const dims = model.dims;
    const layout = stepLayout(dims);
    const flat = packWeightsFlat(model.weights, dims).dataSync();
    const { headT, embedding } = model.weights;
    // Everything but the embedding and the head travels, each value exactly once.
    const packedCount = weightEntries(model.weights).filter(([, t]) => t !== headT && t !== embedding).reduce((n, [, t]) => n + t.size, 0);
    expect(flat.length).toBe(packedCount);
    expect(layout.weightSize).toBe(flat.length);
    model.weights.blocks.forEach((b, i) => {
      for (const seg of weightSegments(dims.kinds[i], dims).segs) {
        const t = (b as unknown as Record<string, tf.Tensor>)[seg.name];
        const at = layout.weightBase[i] + seg.offset;
        expect(Array.from(flat.subarray(at, at + seg.size)), `block ${i} ${seg.name}`).toEqual(Array.from(t.dataSync()));
      }
    });
    expect(Array.from(flat.subarray(layout.finalNorm, layout.finalNorm + dims.d))).toEqual(Array.from(model.weights.normW.dataSync()));
    model.dispose();
  });

  it('builds the fresh packed state that packing every block\'s fresh state gives', () => {
    const { model } = seededTiny();
    tf.tidy(() => {
      const blocks = model.initState(3); // per-block records on cpu
      expect(isPacked(blocks)).toBe(false);
      const want = packState(blocks, model.dims)[0].packed.dataSync();
      const got = freshPackedState(3, model.dims)[0].packed;
      expect(got.shape).toEqual([3, stepLayout(model.dims).stateSize]);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want));
      expect(Array.from(freshPackedState(1, model.dims)[0].packed.dataSync())).toEqual(Array.from(want.subarray(0, want.length / 3)));
    });
    model.dispose();
  });

  it('round-trips a state through one row per sequence', () => {
    const { model } = seededTiny();
    tf.tidy(() => {
      const prompt = tf.tensor2d([[1, 2, 3, 4, 5], [9, 8, 7, 6, 5]], undefined, 'int32');
      const state = model.prefill(prompt).state; // per-block records on cpu
      expect(isPacked(state)).toBe(false);
      const packed = packState(state, model.dims);
      expect(isPacked(packed)).toBe(true);
      expect(packed[0].packed.shape).toEqual([2, stepLayout(model.dims).stateSize]);
      const back = unpackState(packed, model.dims);
      state.forEach((b, i) => {
        for (const [key, t] of Object.entries(b)) {
          expect(back[i][key].shape, `${i}.${key}`).toEqual(t.shape);
          expect(Array.from(back[i][key].dataSync()), `${i}.${key}`).toEqual(Array.from(t.dataSync()));
        }
      });
    });
    model.dispose();
  });

  it('holds 86,240 floats per sequence at the reference size (345 KB)', () => {
    const dims = deriveDims(REFERENCE_CONFIG);
    expect(stepLayout(dims).stateSize).toBe(56 * stateSegments('m', dims).size + 8 * stateSegments('s', dims).size);
    expect(stepLayout(dims).stateSize).toBe(86_240);
    expect(stateSegments('m', deriveDims(TINY)).segs.map((s) => s.name)).toEqual(['conv', 'C', 'n', 'm']);
  });
});
