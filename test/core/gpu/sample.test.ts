import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { keptIdsGpu, sampleTokensGpu } from '../../../src/core/gpu/sample.ts';
import { keptIds, keptIdsScalar, sampleTokenScalar, type SamplingParams } from '../../../src/core/sampling.ts';
import { Rng } from '../../../src/util/rng.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();

/** temperature, topK, topP, u: one row of sampleTokensGpu's settings. */
type Setting = readonly [number, number, number, number];

const paramsOf = (s: Setting): SamplingParams => ({ temperature: s[0], topK: s[1], topP: s[2] });

/** Rows of logits of length V with different shapes, each from its own seed. */
const shapes = {
  normal: (V: number, seed: number) => {
    const rng = new Rng(seed);
    return Float32Array.from({ length: V }, () => 3 * rng.normal());
  },
  /** Logits on a grid of 1/2: many ties, at the top-k cut and at the nucleus's end. */
  tied: (V: number, seed: number) => {
    const rng = new Rng(seed);
    return Float32Array.from({ length: V }, () => Math.round(2 * rng.normal()) / 2);
  },
  /** Six finite logits (two tied for the maximum), the rest -Infinity. */
  sparse: (V: number) => {
    const row = new Float32Array(V).fill(-Infinity);
    [3, 17, Math.floor(V / 2), V - 40, V - 2, V - 1].forEach((j, i) => (row[j] = [1, 2.5, 2.5, -1, 0, 0.25][i]));
    return row;
  },
  /** One token far above the rest: a nucleus of one. */
  peaked: (V: number, seed: number) => {
    const row = shapes.normal(V, seed);
    row[V >> 1] = 25;
    return row;
  },
};

/** Rows [rows.length, V] drawn by sampleTokensGpu, with the kept sets that the kernel decided. */
async function onDevice(rows: readonly Float32Array[], settings: readonly Setting[]) {
  const V = rows[0].length;
  const data = new Float32Array(rows.length * V);
  rows.forEach((r, i) => data.set(r, i * V));
  const logits = tf.tensor2d(data, [rows.length, V]);
  const flat = Float32Array.from(settings.flat());
  try {
    const { ids, logprobs } = sampleTokensGpu(logits, flat);
    const [id, logprob] = [await ids.data(), await logprobs.data()];
    tf.dispose([ids, logprobs]);
    return { id, logprob, kept: await keptIdsGpu(logits, flat) };
  } finally {
    logits.dispose();
  }
}

/**
 * Cumulative weights over total of a kept set walked in id order (float64): a draw with u this close
 * to one of them may go either way once sums run in float32 in another order.
 */
function boundaries(row: Float32Array, p: SamplingParams): number[] {
  const kept = keptIdsScalar(row, p);
  let max = -Infinity;
  for (const l of row) if (l > max) max = l;
  const invT = 1 / p.temperature;
  const w = Array.from(kept, (j) => Math.exp((row[j] - max) * invT));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  return w.map((x) => (acc += x) / total);
}

const nearBoundary = (u: number, cdf: readonly number[]) => cdf.some((c) => Math.abs(u - c) < 1e-5);

describe.skipIf(reason)(webgpuTitle('sampleTokensGpu (webgpu)', reason), () => {
  it('should keep what keptIdsScalar and keptIds keep, for ties at the cuts, -Infinity entries, topK >= V and topP = 1', async () => {
    await selectBackend('webgpu');
    const V = 1500;
    const settings: Setting[] = [
      [1, 0, 1, 0.5],
      [0.7, 10, 1, 0.5],
      [1.5, 1, 1, 0.5],
      [1, V, 1, 0.5],
      [1, V + 7, 1, 0.5],
      [1, 8, 1, 0.5],
      [0.5, 0, 0.9, 0.5],
      [2, 0, 0.3, 0.5],
      [1, 40, 0.8, 0.5],
      [0.9, 200, 0.95, 0.5],
      [0.05, 0, 0.99, 0.5],
    ];
    const rows = Object.values(shapes).map((shape, i) => shape(V, 10 + i));
    const cases = rows.flatMap((row) => settings.map((s) => ({ row, s })));
    const got = await onDevice(
      cases.map((c) => c.row),
      cases.map((c) => c.s),
    );
    cases.forEach(({ row, s }, i) => {
      const want = keptIdsScalar(row, paramsOf(s));
      expect(Array.from(got.kept[i]), `case ${i}: ${s}`).toEqual(Array.from(want));
      expect(Array.from(keptIds(row, paramsOf(s))), `case ${i}: ${s} (SIMD)`).toEqual(Array.from(want));
      // The draw comes from the kept set, and never from -Infinity.
      expect(want, `case ${i}`).toContain(got.id[i]);
      expect(row[got.id[i]]).toBeGreaterThan(-Infinity);
    });
    // The sets the cases were meant to test really arise: a tie cut inside a group of equal logits, -Infinity kept.
    const tied = rows[1];
    const top10 = keptIdsScalar(tied, paramsOf(settings[1]));
    const last = Math.min(...Array.from(top10, (j) => tied[j]));
    expect(tied.filter((l) => l === last).length).toBeGreaterThan(top10.filter((j) => tied[j] === last).length);
    expect(Array.from(keptIdsScalar(rows[2], paramsOf(settings[5])), (j) => rows[2][j])).toContain(-Infinity);
  }, 60_000);

  it("should draw sampleTokenScalar's ids for uniforms away from CDF boundaries, with its log-probabilities", async () => {
    await selectBackend('webgpu');
    const V = 1000;
    const kinds: [number, number, number][] = [
      [1, 0, 1],
      [0.8, 30, 1],
      [1.2, 0, 0.7],
      [1, 50, 0.9],
      [0.6, 5, 1],
    ];
    const rng = new Rng(5);
    const rows: Float32Array[] = [];
    const settings: Setting[] = [];
    let skipped = 0;
    for (const row of [shapes.normal(V, 1), shapes.tied(V, 2)]) {
      for (const k of kinds) {
        const cdf = boundaries(row, paramsOf([...k, 0]));
        for (let n = 0; n < 12; n++) {
          // u as the kernel sees it (float32), so that both sides draw with the same number.
          const u = Math.fround(rng.uniform());
          if (nearBoundary(u, cdf)) {
            skipped++;
            continue;
          }
          rows.push(row);
          settings.push([...k, u]);
        }
      }
    }
    expect(skipped).toBeLessThan(5);
    const got = await onDevice(rows, settings);
    settings.forEach((s, i) => {
      const want = sampleTokenScalar(rows[i], paramsOf(s), s[3]);
      expect(got.id[i], `case ${i}: ${s}`).toBe(want.id);
      expect(Math.abs(got.logprob[i] - want.logprob), `case ${i}: ${s}`).toBeLessThan(1e-5);
    });
    // Many distinct tokens were drawn: the walk over the ranges is exercised, not just the first id.
    expect(new Set(got.id).size).toBeGreaterThan(30);
  }, 60_000);

  it('should give greedy rows the argmax (lowest id among equal maxima) whatever topK and topP, beside sampled rows', async () => {
    await selectBackend('webgpu');
    const V = 700;
    const tie = shapes.normal(V, 3);
    tie[100] = tie[400] = 40;
    const lastMax = shapes.normal(V, 4);
    lastMax[V - 1] = 40;
    const rows = [tie, shapes.normal(V, 5), lastMax, shapes.sparse(V), tie];
    const settings: Setting[] = [
      [0, 0, 1, 0.3],
      [1, 0, 1, 0.99],
      [0, 5, 0.5, 0.9],
      [0, 0, 1, 0.1],
      [1, 2, 1, 0.99],
    ];
    const got = await onDevice(rows, settings);
    for (const i of [0, 2, 3]) {
      const want = sampleTokenScalar(rows[i], paramsOf(settings[i]), settings[i][3]);
      expect(got.id[i], `row ${i}`).toBe([100, V - 1, 17][[0, 2, 3].indexOf(i)]);
      expect(got.id[i]).toBe(want.id);
      expect(Math.abs(got.logprob[i] - want.logprob), `row ${i}`).toBeLessThan(1e-5);
    }
    // Top-2 of the tied row keeps 100 and 400; u = 0.99 takes the later one.
    expect(got.id[4]).toBe(400);
  }, 60_000);

  it("should give each row the same id and log-probability whatever its batch mates", async () => {
    await selectBackend('webgpu');
    const V = 900;
    const rows = [shapes.normal(V, 21), shapes.tied(V, 22), shapes.peaked(V, 23)];
    const settings: Setting[] = [
      [0.9, 20, 0.95, 0.42],
      [1.1, 0, 0.6, 0.77],
      [1, 0, 1, 0.5],
    ];
    const together = await onDevice(rows, settings);
    const mates = [shapes.normal(V, 30), shapes.sparse(V)];
    const mateSettings: Setting[] = [
      [0, 0, 1, 0.1],
      [2, 3, 0.5, 0.9],
    ];
    for (let i = 0; i < rows.length; i++) {
      const alone = await onDevice([rows[i]], [settings[i]]);
      const mixed = await onDevice([mates[0], rows[i], mates[1]], [mateSettings[0], settings[i], mateSettings[1]]);
      expect([alone.id[0], mixed.id[1]], `row ${i}`).toEqual([together.id[i], together.id[i]]);
      expect([alone.logprob[0], mixed.logprob[1]], `row ${i}`).toEqual([together.logprob[i], together.logprob[i]]);
    }
  }, 60_000);

  it('should keep and draw as the host does on a row of the reference vocabulary (V = 50,258)', async () => {
    await selectBackend('webgpu');
    const V = 50258;
    const row = shapes.normal(V, 8);
    const kinds: [number, number, number][] = [
      [1, 0, 1],
      [0.8, 50, 1],
      [1, 0, 0.9],
      [0.7, 1000, 0.95],
    ];
    const rng = new Rng(11);
    const settings = kinds.map((k): Setting => {
      const cdf = boundaries(row, paramsOf([...k, 0]));
      let u = Math.fround(rng.uniform());
      while (nearBoundary(u, cdf)) u = Math.fround(rng.uniform());
      return [...k, u];
    });
    const got = await onDevice(
      settings.map(() => row),
      settings,
    );
    settings.forEach((s, i) => {
      expect(Array.from(got.kept[i]), `${s}`).toEqual(Array.from(keptIdsScalar(row, paramsOf(s))));
      const want = sampleTokenScalar(row, paramsOf(s), s[3]);
      expect(got.id[i], `${s}`).toBe(want.id);
      expect(Math.abs(got.logprob[i] - want.logprob), `${s}`).toBeLessThan(1e-5);
    });
  }, 120_000);

  it('should refuse settings that do not match the rows of logits', async () => {
    await selectBackend('webgpu');
    const logits = tf.zeros([2, 10]) as tf.Tensor2D;
    expect(() => sampleTokensGpu(logits, new Float32Array(4))).toThrow(/expected 8 values/);
    logits.dispose();
  });
});
