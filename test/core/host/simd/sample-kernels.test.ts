import { describe, expect, it } from 'vitest';
import { largestReaching } from '../../../../src/core/host/simd/kept-lists.ts';
import { RowScratch } from '../../../../src/core/host/simd/row-scratch.ts';
import { BLOCK, BUCKETS } from '../../../../src/core/host/simd/sample-kernels.ts';
import { Rng } from '../../../../src/util/rng.ts';

const f = Math.fround;

/** The scratch loaded with `row` (this runtime has WebAssembly SIMD). */
function load(row: Float32Array): RowScratch {
  const s = RowScratch.load(row);
  if (!s) throw new Error('sample kernels expected WebAssembly SIMD, but this runtime has none');
  return s;
}

/** A histogram bucket as the kernels define it, in float32 steps written out: round(min(511, ((l - max) s) c)). */
function bucketOf(l: number, max: number, s: number, c: number): number {
  const y = f(f(f(l - max) * f(s)) * f(c));
  const top = y < BUCKETS - 1 ? y : BUCKETS - 1; // NaN takes the last bucket
  return f(top + 8388608) - 8388608;
}

/** Rows of awkward lengths (tails past whole vectors and blocks) with ties, -Infinity, ±0 and NaN. */
function rows(): Float32Array[] {
  const rng = new Rng(17);
  const out: Float32Array[] = [];
  for (const V of [1, 3, 4, 63, 64, 65, 127, 1000, 50258]) {
    const row = Float32Array.from({ length: V }, () => Math.round(rng.normal() * 8) / 4);
    for (let j = 0; j < V; j += 7) row[j] = -Infinity;
    if (V > 10) {
      row[3] = NaN;
      row[5] = -0;
      row[V - 1] = 0;
    }
    out.push(row);
  }
  return out;
}

describe('sample kernels', () => {
  it('blockMax gives each block maximum and the row maximum (NaN never wins), padding the row with -Infinity', () => {
    for (const row of [...rows(), Float32Array.from([NaN, NaN]), Float32Array.of(-Infinity)]) {
      const s = load(row);
      const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
      let want = -Infinity;
      for (let b = 0; b < s.nb; b++) {
        let m = -Infinity;
        for (let j = b * BLOCK; j < Math.min(row.length, (b + 1) * BLOCK); j++) if (row[j] > m) m = row[j];
        // Compared as numbers: the maximum of +0 and -0 may be either.
        expect(s.BM[b] === m, `block ${b} of ${row.length}`).toBe(true);
        if (m > want) want = m;
      }
      expect(max === want, `${row.length}`).toBe(true);
      expect(Array.from(s.L.subarray(row.length))).toEqual(new Array(s.Vp - row.length).fill(-Infinity));
    }
  });

  it("the weights passes' log-sum-exp sums are rowExpSum's bit for bit; W holds float32 exps, S the blocks' sums, a cut zeroes the rest", () => {
    const rng = new Rng(5);
    for (const V of [5, 64, 1001, 50258]) {
      const row = Float32Array.from({ length: V }, () => rng.normal() * 4);
      row[V >> 1] = -Infinity;
      const s = load(row);
      const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
      const n4 = V >> 2;
      const mirror: number = s.k.weightsMirror(s.at.L, s.nv, max, 1, s.at.W, s.at.S, n4);
      expect(mirror).toBe(s.k.rowExpSum(s.at.L, n4, max));
      // At other temperatures the pass takes log-sum-exp's exps beside the weights', with the same result.
      expect(s.k.weightsLogSumExp(s.at.L, s.nv, max, 0.3, s.at.W, s.at.S, n4)).toBe(mirror);
      expect(s.k.weightsCutLogSumExp(s.at.L, s.nv, max, 0.3, s.at.W, s.at.S, row[2], 9, n4)).toBe(mirror);
      s.k.weightsMirror(s.at.L, s.nv, max, 1, s.at.W, s.at.S, n4);
      // The float32 exp of the float32 argument, against float64 exp of the same argument.
      for (let j = 0; j < V; j++) {
        const want = Math.exp(f(row[j] - max));
        if (want > 1e-37) expect(Math.abs(s.W[j] - want) / want).toBeLessThan(3e-7);
        else expect(s.W[j]).toBeLessThan(2e-38);
      }
      for (let b = 0; b < s.nb; b++) {
        let sum = 0;
        for (let j = b * BLOCK; j < (b + 1) * BLOCK; j++) sum += s.W[j];
        expect(Math.abs(s.S[b] - sum)).toBeLessThanOrEqual(1e-15 * sum);
      }
      // A cut keeps logits above a, and those equal to a up to id jt.
      const a = row[7];
      const jt = 300;
      s.k.weightsCut(s.at.L, s.nv, max, 0.5, s.at.W, s.at.S, a, jt);
      for (let j = 0; j < V; j++) {
        const kept = row[j] > a || (row[j] === a && j <= jt);
        const want = Math.exp(f(f(row[j] - max) * 0.5));
        if (!kept) expect(s.W[j]).toBe(0);
        else if (want > 1e-37) expect(Math.abs(s.W[j] - want) / want).toBeLessThan(3e-7);
      }
    }
  });

  it('keeps tempered probabilities within 1e-6 relative of float64 where they reach 1e-4, 5e-6 down to 1e-12', () => {
    const rng = new Rng(8);
    for (const [spread, T] of [[3, 1], [3, 0.7], [1, 2], [5, 0.5], [10, 1], [3, 0.05], [0.2, 20]]) {
      const V = 50258;
      const row = Float32Array.from({ length: V }, () => rng.normal() * spread + 4);
      const s = load(row);
      const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
      s.k.weights(s.at.L, s.nv, max, 1 / T, s.at.W, s.at.S);
      let total32 = 0;
      for (let b = 0; b < s.nb; b++) total32 += s.S[b];
      const w64 = Float64Array.from(row, (l) => Math.exp((l - max) / T));
      const total64 = w64.reduce((a, b) => a + b, 0);
      let worstBig = 0;
      let worstSmall = 0;
      for (let j = 0; j < V; j++) {
        const p64 = w64[j] / total64;
        const rel = Math.abs(s.W[j] / total32 - p64) / p64;
        if (p64 >= 1e-4) worstBig = Math.max(worstBig, rel);
        else if (p64 >= 1e-12) worstSmall = Math.max(worstSmall, rel);
      }
      expect(worstBig, `spread ${spread}, T ${T}`).toBeLessThan(1e-6);
      expect(worstSmall, `spread ${spread}, T ${T}`).toBeLessThan(5e-6);
    }
  });

  it('histogramMass and histogram put every id in the bucket written out in float32, and buckets never rise with the logit', () => {
    const rng = new Rng(11);
    for (const row of rows()) {
      const s = load(row);
      const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
      if (!(max > -Infinity)) continue;
      const invT = 1.7;
      s.k.weights(s.at.L, s.nv, max, invT, s.at.W, s.at.S);
      const mass = new Float64Array(BUCKETS);
      const count = new Float64Array(BUCKETS);
      for (let j = 0; j < s.Vp; j++) {
        const b = bucketOf(s.L[j], max, invT, -8);
        mass[b] += s.W[j];
        count[b] += 1;
      }
      s.H.fill(0);
      s.k.histogramMass(s.at.L, s.at.W, s.nv, max, invT, -8, s.at.H);
      const got = (b: number) => s.H[b] + s.H[BUCKETS + b] + s.H[2 * BUCKETS + b] + s.H[3 * BUCKETS + b];
      for (let b = 0; b < BUCKETS; b++) {
        // NaN logits weigh NaN, in the last bucket.
        if (Number.isNaN(mass[b])) expect(got(b)).toBeNaN();
        else expect(Math.abs(got(b) - mass[b]), `${row.length} bucket ${b}`).toBeLessThanOrEqual(1e-14 * mass[b]);
      }
      // Counting with every vector in (cut = the last bucket) gives exact counts.
      s.H.fill(0);
      s.k.histogram(s.at.L, s.nv, max, invT, -8, BUCKETS - 1, s.at.H);
      for (let b = 0; b < BUCKETS; b++) expect(got(b), `${row.length} bucket ${b}`).toBe(count[b]);
      // Only vectors with a lane up to cutB enter, so the buckets up to it are complete.
      const cutB = bucketOf(row[rng.int(row.length)], max, invT, -8);
      s.H.fill(0);
      s.k.histogram(s.at.L, s.nv, max, invT, -8, Math.min(cutB, BUCKETS - 1), s.at.H);
      for (let b = 0; b <= cutB && b < BUCKETS; b++) expect(got(b)).toBe(count[b]);
    }
    const sorted = Float32Array.from({ length: 4000 }, (_, i) => 30 - i * 0.0173);
    const buckets = Array.from(sorted, (l) => bucketOf(l, 30, 3, -8));
    expect(buckets.every((b, i) => i === 0 || b >= buckets[i - 1])).toBe(true);
    expect(new Set(buckets).size).toBeGreaterThan(400);
  });

  it('the collecting passes list exactly the ids their masks take, in id order, with logits and weights, and stop past cap', () => {
    for (const row of rows()) {
      const s = load(row);
      const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
      if (!(max > -Infinity)) continue;
      s.k.weights(s.at.L, s.nv, max, 1, s.at.W, s.at.S);
      const W = s.W.slice();
      const ids = (keep: (j: number) => boolean) => Array.from({ length: s.Vp }, (_, j) => j).filter(keep);
      const a = row[Math.min(9, row.length - 1)];
      const atLeast = s.collect('collectAtLeast', s.Vp, true, a);
      expect(Array.from(atLeast?.ids ?? [])).toEqual(ids((j) => s.L[j] >= a));
      expect(Array.from(atLeast?.ls ?? [])).toEqual(Array.from(atLeast?.ids ?? [], (j) => s.L[j]));
      expect(Array.from(atLeast?.ws ?? [])).toEqual(Array.from(atLeast?.ids ?? [], (j) => W[j]));
      const cut = s.collect('collectCut', s.Vp, false, a, 40);
      expect(Array.from(cut?.ids ?? [])).toEqual(ids((j) => s.L[j] > a || (s.L[j] === a && j <= 40)));
      expect(cut?.ws).toBeNull();
      const bucket = bucketOf(a, max, 2, -8);
      const inBucket = ids((j) => bucketOf(s.L[j], max, 2, -8) === bucket);
      expect(Array.from(s.collect('collectBucket', s.Vp, false, max, 2, -8, bucket)?.ids ?? [])).toEqual(inBucket);
      // nucleusPass lists the bucket too, and sums each block's weights before it.
      const nucleus = s.collect('nucleusPass', s.Vp, true, max, 2, -8, bucket, s.at.S2);
      expect(Array.from(nucleus?.ids ?? [])).toEqual(inBucket);
      for (let b = 0; b < s.nb; b++) {
        let before = 0;
        for (let j = b * BLOCK; j < (b + 1) * BLOCK; j++) if (bucketOf(s.L[j], max, 2, -8) < bucket) before += W[j];
        expect(Math.abs(s.S2[b] - before)).toBeLessThanOrEqual(1e-15 * before);
      }
      if (inBucket.length > 1) expect(s.collect('collectBucket', inBucket.length - 1, false, max, 2, -8, bucket)).toBeNull();
    }
  });

  it('minFinite skips -Infinity and NaN', () => {
    const s = load(Float32Array.from([-Infinity, 3, NaN, -2.5, -Infinity, 7]));
    expect(s.k.minFinite(s.at.L, s.nv)).toBe(-2.5);
    const none = load(Float32Array.from([-Infinity, NaN]));
    expect(none.k.minFinite(none.at.L, none.nv)).toBe(Infinity);
  });
});

describe('largestReaching', () => {
  /** The plain way: sort by logit, descending, and add until the mass reaches needed. */
  function oracle(ls: Float32Array, ws: Float32Array | null, needed: number): number {
    const idx = Array.from(ls, (_, i) => i).filter((i) => !Number.isNaN(ls[i]) && (!ws || (ws[i] > 0 && ls[i] > -Infinity)));
    idx.sort((a, b) => (ls[b] === ls[a] ? 0 : ls[b] > ls[a] ? 1 : -1));
    let mass = 0;
    for (const i of idx) {
      mass += ws ? ws[i] : 1;
      if (mass >= needed) return ls[i];
    }
    return idx.length > 0 ? ls[idx[idx.length - 1]] : -Infinity;
  }

  it('finds the largest logit whose tail weight reaches the need: counts (with -Infinity, NaN, ±0) and weights', () => {
    const rng = new Rng(23);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + rng.int(trial % 10 === 0 ? 3000 : 60);
      const ls = Float32Array.from({ length: n }, () => {
        const r = rng.uniform();
        return r < 0.1 ? -Infinity : r < 0.13 ? NaN : r < 0.16 ? -0 : Math.round(rng.normal() * 6) / 3;
      });
      const ws = Float32Array.from({ length: n }, () => (rng.uniform() < 0.1 ? 0 : rng.uniform()));
      const total = ws.reduce((a, b) => a + b, 0);
      // Compared as numbers: -0 and +0 keep the same ids.
      for (const needed of [1, 1 + rng.int(n), n + 1]) expect(largestReaching(ls, null, needed) === oracle(ls, null, needed), `${trial} count ${needed}`).toBe(true);
      for (const needed of [1e-9, rng.uniform() * total, total * 2]) expect(largestReaching(ls, ws, needed) === oracle(ls, ws, needed), `${trial} mass ${needed}`).toBe(true);
    }
  });
});
