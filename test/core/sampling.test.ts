import { describe, expect, it } from 'vitest';
import { sampleToken, validateSampling, type SamplingParams } from '../../src/core/sampling.ts';
import { Rng } from '../../src/util/rng.ts';

/**
 * The oracle: the same rules written the plain way, sorting the whole vocabulary.
 * Kept set = top-k by (logit desc, id asc), then the prefix by weight reaching topP (ties with the
 * last kept token stay in); the draw walks the kept set in id order with the same uniform.
 */
function oracle(logits: Float32Array, p: SamplingParams, u: number): number {
  const V = logits.length;
  const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => logits[b] - logits[a] || a - b);
  if (p.temperature === 0) return order[0];
  const max = logits[order[0]];
  const w = (j: number) => Math.exp((logits[j] - max) / p.temperature);
  let kept = p.topK > 0 ? order.slice(0, p.topK) : order;
  if (p.topP < 1) {
    const total = kept.reduce((s, j) => s + w(j), 0);
    let mass = 0;
    let cut = kept.length;
    for (let n = 0; n < kept.length; n++) {
      mass += w(kept[n]);
      if (mass >= p.topP * total) {
        cut = n + 1;
        while (cut < kept.length && logits[kept[cut]] === logits[kept[n]]) cut++;
        break;
      }
    }
    kept = kept.slice(0, cut);
  }
  const ids = [...kept].sort((a, b) => a - b);
  const total = ids.reduce((s, j) => s + w(j), 0);
  let left = u * total;
  for (const j of ids) {
    left -= w(j);
    if (left < 0) return j;
  }
  return ids[ids.length - 1];
}

/** A uniform source that hands out a fixed value, to compare both sides on the same draw. */
const fixed = (u: number) => ({ uniform: () => u });

function randomLogits(rng: Rng, V: number, spread: number): Float32Array {
  // Quantised values make ties common, which exercises the tie rules.
  return Float32Array.from({ length: V }, () => Math.round(rng.normal() * spread * 4) / 4);
}

describe('sampleToken', () => {
  const settings: SamplingParams[] = [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 50, topP: 1 },
    { temperature: 1.3, topK: 1, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 0.5, topK: 0, topP: 0.3 },
    { temperature: 1, topK: 40, topP: 0.8 },
    { temperature: 2, topK: 0, topP: 0.999 },
  ];

  it.each(settings)('picks exactly what the sort-everything oracle picks for %j', (p) => {
    const rng = new Rng(42);
    for (let trial = 0; trial < 60; trial++) {
      const logits = randomLogits(rng, trial % 3 === 0 ? 50258 : 3000, 1 + (trial % 5));
      const u = rng.uniform();
      expect(sampleToken(logits, p, fixed(u)).id).toBe(oracle(logits, p, u));
    }
  });

  it('reports the log-probability under the raw softmax', () => {
    const logits = Float32Array.from([2, 1, 0, -1]);
    const z = Math.log([2, 1, 0, -1].reduce((s, x) => s + Math.exp(x), 0));
    const out = sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, fixed(0.5));
    expect(out.id).toBe(0);
    expect(out.logprob).toBeCloseTo(2 - z, 12);
  });

  it('draws with the right frequencies (chi-square over 20000 draws)', () => {
    const logits = Float32Array.from([1.5, 1, 0.2, -0.3, -2, 0.9]);
    const p = { temperature: 0.8, topK: 4, topP: 1 };
    const weights = Array.from(logits, (l) => Math.exp(l / 0.8));
    const keep = [0, 1, 5, 2];
    const total = keep.reduce((s, j) => s + weights[j], 0);
    const counts = new Array(6).fill(0);
    const rng = new Rng(7);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, p, rng).id]++;
    expect(counts[3] + counts[4]).toBe(0);
    const chi = keep.reduce((s, j) => s + (counts[j] - (n * weights[j]) / total) ** 2 / ((n * weights[j]) / total), 0);
    // 3 degrees of freedom: P(chi2 > 16.3) = 0.001.
    expect(chi).toBeLessThan(16.3);
  });

  it('consumes exactly one uniform per call, greedy included', () => {
    let calls = 0;
    const counting = { uniform: () => (calls++, 0.25) };
    for (const p of settings) sampleToken(Float32Array.from([0, 1, 2]), p, counting);
    expect(calls).toBe(settings.length);
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
