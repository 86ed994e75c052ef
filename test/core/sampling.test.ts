import { describe, expect, it } from 'vitest';
import { logSumExpRow } from '../../src/core/host/math.ts';
import { sampleTokenSimd } from '../../src/core/host/simd/sample-simd.ts';
import {
  keptIds,
  keptIdsScalar,
  sampleToken,
  sampleTokenScalar,
  validateSampling,
  type SamplingParams,
} from '../../src/core/sampling.ts';
import { Rng } from '../../src/util/rng.ts';

/**
 * The oracle, in float64 and written the plain way (sorting the whole vocabulary): kept set = top-k by
 * (logit desc, id asc), then the prefix by weight reaching topP of the kept weight (ties with the last kept
 * token stay in), returned in id order. `w` holds the tempered weights (weightsOf).
 */
function oracleKept(logits: Float32Array, order: number[], w: Float64Array, p: SamplingParams): Int32Array {
  if (p.temperature === 0) return Int32Array.of(order[0]);
  let kept = p.topK > 0 ? order.slice(0, p.topK) : order;
  if (p.topP < 1) {
    const total = kept.reduce((s, j) => s + w[j], 0);
    let mass = 0;
    let cut = kept.length;
    for (let n = 0; n < kept.length; n++) {
      mass += w[kept[n]];
      if (mass >= p.topP * total) {
        cut = n + 1;
        while (cut < kept.length && logits[kept[cut]] === logits[kept[n]]) cut++;
        break;
      }
    }
    kept = kept.slice(0, cut);
  }
  return Int32Array.from(kept).sort();
}

/** Tempered float64 weights e^((l - max) / T) of every id. */
const weightsOf = (logits: Float32Array, order: number[], T: number): Float64Array =>
  Float64Array.from(logits, (l) => (T > 0 ? Math.exp((l - logits[order[0]]) / T) : 0));

/** Ids by (logit desc, id asc). */
const sortedIds = (logits: Float32Array): number[] =>
  Array.from({ length: logits.length }, (_, j) => j).sort((a, b) => logits[b] - logits[a] || a - b);

/**
 * The float64 inverse CDF over `kept` (id order): intervalOf(j) is the [from, to) of u for which a draw of j is
 * right; null when j is not kept or weighs nothing.
 */
function cdfOver(w: Float64Array, kept: ArrayLike<number>): (j: number) => [number, number] | null {
  const at = new Int32Array(w.length).fill(-1);
  const cumulative = new Float64Array(kept.length + 1);
  for (let i = 0; i < kept.length; i++) {
    at[kept[i]] = i;
    cumulative[i + 1] = cumulative[i] + w[kept[i]];
  }
  const total = cumulative[kept.length];
  return (j) => {
    const i = at[j];
    if (i < 0 || !(w[j] > 0)) return null;
    return [cumulative[i] / total, cumulative[i + 1] / total];
  };
}

/** float64 log-sum-exp. */
function logSumExp64(logits: Float32Array): number {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  let z = 0;
  for (const l of logits) z += Math.exp(l - max);
  return max + Math.log(z);
}

/** Where two id lists first differ ('' when they are equal): cheaper than a deep equality on 50k-long lists. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `at ${i}: ${a[i]} against ${b[i]} (lengths ${a.length}, ${b.length})`;
  return '';
}

const subset = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => {
  const inB = new Set<number>();
  for (let i = 0; i < b.length; i++) inB.add(b[i]);
  for (let i = 0; i < a.length; i++) if (!inB.has(a[i])) return false;
  return true;
};

/** Rows that stress the rules: ties, -Infinity, peaks, flat rows, lengths around the block and vector sizes. */
function rows(): { name: string; logits: Float32Array }[] {
  const rng = new Rng(42);
  const out: { name: string; logits: Float32Array }[] = [];
  const normal = (V: number, spread: number) => Float32Array.from({ length: V }, () => rng.normal() * spread);
  // Quantised values make ties common, at the top-k and top-p cuts too.
  const quantised = (V: number, spread: number) => Float32Array.from({ length: V }, () => Math.round(rng.normal() * spread * 4) / 4);
  out.push({ name: 'quantised 50258', logits: quantised(50258, 2) });
  out.push({ name: 'quantised 3001', logits: quantised(3001, 1) });
  out.push({ name: 'normal 50258', logits: normal(50258, 3) });
  const peaked = normal(50258, 2);
  for (let i = 0; i < 20; i++) peaked[rng.int(50258)] = 14 + rng.normal();
  out.push({ name: 'peaked 50258', logits: peaked });
  const holes = quantised(20000, 1.5);
  for (let j = 0; j < holes.length; j += 3) holes[j] = -Infinity;
  holes[0] = -Infinity;
  holes[holes.length - 1] = -Infinity;
  out.push({ name: 'every third -Infinity 20000', logits: holes });
  const few = Float32Array.from({ length: 700 }, (_, j) => (j % 50 === 7 ? Math.round(rng.normal() * 4) / 4 : -Infinity));
  out.push({ name: '14 finite of 700', logits: few });
  out.push({ name: 'all equal 1000', logits: new Float32Array(1000).fill(0.5) });
  for (const V of [1, 2, 3, 5, 63, 64, 65, 129]) out.push({ name: `quantised ${V}`, logits: quantised(V, 1) });
  return out;
}

/** Every mode: greedy, temperature alone (far from 1 too), top-k (1, small, past the block count, V - 1, V, > V), top-p (tiny to near 1), both. */
function settings(V: number): SamplingParams[] {
  return [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.05, topK: 0, topP: 1 },
    { temperature: 20, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 50, topP: 1 },
    { temperature: 1.3, topK: 1, topP: 1 },
    { temperature: 1, topK: 600, topP: 1 },
    { temperature: 0.8, topK: 2000, topP: 1 },
    { temperature: 1, topK: Math.max(1, V - 1), topP: 1 },
    { temperature: 1, topK: V, topP: 1 },
    { temperature: 1, topK: 10 * V, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 0.5, topK: 0, topP: 0.3 },
    { temperature: 2, topK: 0, topP: 0.999 },
    { temperature: 1, topK: 0, topP: 1e-6 },
    { temperature: 1, topK: 0, topP: 1 - 1e-9 },
    { temperature: 1, topK: 40, topP: 0.8 },
    { temperature: 1.5, topK: 600, topP: 0.5 },
  ];
}

/** Relative change of topP within which float32 weights may move a nucleus's edge. */
const TOP_P_SLACK = 1e-5;
/** Probability mass within which a float32 draw may land in a neighbour of the float64 one. */
const DRAW_SLACK = 1e-5;

interface Impl {
  readonly kept: (logits: Float32Array, p: SamplingParams) => Int32Array;
  readonly sample: (logits: Float32Array, p: SamplingParams, u: number) => { id: number; logprob: number };
  readonly uniforms: number;
}

const IMPLS: Record<string, Impl> = {
  // The SIMD passes wherever WebAssembly SIMD runs (as here: see the test below).
  default: { kept: keptIds, sample: (l, p, u) => sampleToken(l, p, { uniform: () => u }), uniforms: 24 },
  scalar: { kept: keptIdsScalar, sample: sampleTokenScalar, uniforms: 6 },
};

describe.each(Object.keys(IMPLS))('sampling (%s implementation) against the float64 oracle', (implName) => {
  const impl = IMPLS[implName];
  const data = rows().map((r) => ({ ...r, order: sortedIds(r.logits), logZ: logSumExp64(r.logits) }));

  it.each(settings(50258).map((p, i) => [JSON.stringify(p), i] as const))('keeps and draws what the oracle does: %s', (_, index) => {
    const rng = new Rng(7 + index);
    for (const { name, logits, order, logZ } of data) {
      const p = settings(logits.length)[index];
      const got = impl.kept(logits, p);
      const where = `${name} ${JSON.stringify(p)}`;
      const w = weightsOf(logits, order, p.temperature);
      expect(firstDifference(got, got.slice().sort()), where).toBe('');
      if (p.topP < 1 && p.temperature > 0) {
        // Within float32's reach of topP the nucleus may end one token sooner or later, never elsewhere.
        const inner = oracleKept(logits, order, w, { ...p, topP: p.topP * (1 - TOP_P_SLACK) });
        const outer = oracleKept(logits, order, w, { ...p, topP: Math.min(1, p.topP * (1 + TOP_P_SLACK)) });
        expect(subset(inner, got) && subset(got, outer), where).toBe(true);
      } else {
        expect(firstDifference(got, oracleKept(logits, order, w, p)), where).toBe('');
      }
      const us = [0, 1 - 2 ** -53, ...Array.from({ length: impl.uniforms }, () => rng.uniform())];
      const intervalOf = cdfOver(w, got);
      for (const u of us) {
        const { id, logprob } = impl.sample(logits, p, u);
        expect(logits[id], `${where} u=${u}: drew -Infinity`).toBeGreaterThan(-Infinity);
        if (p.temperature === 0) {
          expect(id, where).toBe(order[0]);
        } else {
          const span = intervalOf(id);
          expect(span, `${where} u=${u}: drew ${id}, outside the kept set or weightless`).not.toBeNull();
          const [from, to] = span as [number, number];
          expect(u >= from - DRAW_SLACK && u < to + DRAW_SLACK, `${where} u=${u}: drew ${id} for [${from}, ${to})`).toBe(true);
        }
        if (logZ > -Infinity && Number.isFinite(logits[id])) expect(Math.abs(logprob - (logits[id] - logZ)), where).toBeLessThan(1e-5);
      }
    }
  });

  it('draws with the frequencies of the exact probabilities (chi-square over 20000 draws per mode)', () => {
    const logits = Float32Array.from([1.5, 1, 0.2, -0.3, -2, 0.9, -Infinity, 0.2, 3, -1]);
    const order = sortedIds(logits);
    const modes: SamplingParams[] = [
      { temperature: 1, topK: 0, topP: 1 },
      { temperature: 0.8, topK: 4, topP: 1 },
      { temperature: 1.7, topK: 0, topP: 0.85 },
      { temperature: 1, topK: 6, topP: 0.7 },
    ];
    const rng = new Rng(3);
    const n = 20000;
    for (const p of modes) {
      const w = weightsOf(logits, order, p.temperature);
      const kept = oracleKept(logits, order, w, p);
      const total = kept.reduce((s, j) => s + w[j], 0);
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const id = impl.sample(logits, p, rng.uniform()).id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      expect(subset([...counts.keys()], kept), JSON.stringify(p)).toBe(true);
      const weighted = kept.filter((j) => w[j] > 0);
      const chi = weighted.reduce((s, j) => s + ((counts.get(j) ?? 0) - (n * w[j]) / total) ** 2 / ((n * w[j]) / total), 0);
      // P(chi2 > 27.9) = 0.001 at 9 degrees of freedom, the most any mode here has.
      expect(chi, JSON.stringify(p)).toBeLessThan(27.9);
    }
  });
});

describe('sampleToken', () => {
  it('runs on the SIMD passes in this runtime (so the tests above check them, not only the fallback)', () => {
    expect(sampleTokenSimd(Float32Array.from([0, 1, 2]), { temperature: 1, topK: 0, topP: 1 }, 0.5)).not.toBeNull();
  });

  it('reports the log-probability under the raw softmax, and without logZ the normaliser logSumExpRow gives, bit for bit', () => {
    const logits = Float32Array.from([2, 1, 0, -1]);
    const z = Math.log([2, 1, 0, -1].reduce((s, x) => s + Math.exp(x), 0));
    const out = sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, { uniform: () => 0.5 });
    expect(out.id).toBe(0);
    expect(out.logprob).toBeCloseTo(2 - z, 6);
    expect(sampleTokenScalar(logits, { temperature: 0, topK: 0, topP: 1 }, 0.5).logprob).toBeCloseTo(2 - z, 12);
    // Decoders compare logprobs computed with and without a given logZ exactly.
    const rng = new Rng(9);
    for (const V of [7, 4096, 50258]) {
      const row = Float32Array.from({ length: V }, () => rng.normal() * 3);
      row[V >> 1] = -Infinity;
      for (const p of settings(V)) {
        const u = rng.uniform();
        const { id, logprob } = sampleToken(row, p, { uniform: () => u });
        expect(logprob, `${V} ${JSON.stringify(p)}`).toBe(row[id] - logSumExpRow(row));
        expect(sampleToken(row, p, { uniform: () => u }, 1.25)).toEqual({ id, logprob: row[id] - 1.25 });
      }
    }
  });

  it('draws the argmax of a row with no finite logit, and never a -Infinity token otherwise', () => {
    const none = new Float32Array(9).fill(-Infinity);
    const one = new Float32Array(9).fill(-Infinity);
    one[5] = -3;
    for (const p of settings(9)) {
      for (const u of [0, 0.5, 1 - 2 ** -53]) {
        expect(sampleToken(none, p, { uniform: () => u }).id).toBe(0);
        expect(sampleTokenScalar(none, p, u).id).toBe(0);
        expect(sampleToken(one, p, { uniform: () => u }).id).toBe(5);
        expect(sampleTokenScalar(one, p, u).id).toBe(5);
      }
    }
  });

  it('consumes exactly one uniform per call, greedy included', () => {
    let calls = 0;
    const counting = { uniform: () => (calls++, 0.25) };
    const all = settings(3);
    for (const p of all) sampleToken(Float32Array.from([0, 1, 2]), p, counting);
    expect(calls).toBe(all.length);
  });

  it.each([
    [{ temperature: -1, topK: 0, topP: 1 }, /temperature expected a finite number >= 0, but got -1/],
    [{ temperature: 1, topK: -2, topP: 1 }, /topK expected an integer >= 0, but got -2/],
    [{ temperature: 1, topK: 0, topP: 0 }, /topP expected a number in \(0, 1\], but got 0/],
    [{ temperature: 1, topK: 0, topP: 1.5 }, /topP expected a number in \(0, 1\], but got 1.5/],
  ])('validateSampling refuses %j', (p, message) => {
    expect(() => validateSampling(p)).toThrow(message);
  });
});
