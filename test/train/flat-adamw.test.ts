import { describe, expect, it } from 'vitest';
import { clipScale } from '../../src/train/adamw.ts';
import { flatAdamwStep } from '../../src/train/flat-adamw.ts';
import { decayRuns, flatLayout, shardRanges } from '../../src/train/flat-layout.ts';
import { expectRelClose, problem, referenceAdamW, SPECS } from './support/adamw-reference.ts';

const OPTIONS = { betas: [0.9, 0.95] as const, eps: 1e-8, weightDecay: 0.1, gradClip: 0.5 };
const LRS = [1e-2, 3e-2, 2e-2, 1e-2];
const layout = flatLayout(SPECS);

/** Runs the problem through flatAdamwStep on `parts` shards of the flat vector, as the workers do. */
function shardedRun(parts: number, seed: number, gradScale: number) {
  const { init, grads } = problem(seed, LRS.length, gradScale);
  const p = new Float32Array(layout.total);
  init.forEach((x, k) => p.set(x, layout.params[k].offset));
  const m = new Float32Array(layout.total);
  const v = new Float32Array(layout.total);
  const shards = shardRanges(layout.total, parts);
  const clipped: boolean[] = [];
  grads.forEach((stepGrads, t0) => {
    const g = new Float32Array(layout.total);
    stepGrads.forEach((x, k) => g.set(x, layout.params[k].offset));
    // Each shard's sum of squares, added in shard order: the workers' share of the global norm.
    const norm = Math.sqrt(shards.reduce((s, [a, b]) => s + g.subarray(a, b).reduce((q, x) => q + x * x, 0), 0));
    const scale = clipScale(OPTIONS.gradClip, norm);
    clipped.push(scale < 1);
    for (const [a, b] of shards) {
      flatAdamwStep({ p: p.subarray(a, b), m: m.subarray(a, b), v: v.subarray(a, b) }, g.subarray(a, b), decayRuns(layout, a, b), OPTIONS, {
        lr: LRS[t0],
        t: t0 + 1,
        scale,
      });
    }
  });
  const unflat = (x: Float32Array) => layout.params.map((q) => x.subarray(q.offset, q.offset + q.size));
  return { p: unflat(p), m: unflat(m), v: unflat(v), clipped, ref: referenceAdamW(init, grads, LRS, OPTIONS) };
}

describe('flat AdamW on shards of the weights', () => {
  it.each([1, 2, 3, 7])('should match a float64 AdamW with clipping and decay groups over %i shard(s)', (parts) => {
    const run = shardedRun(parts, 11, 3);
    expect(run.clipped).toEqual([true, true, true, true]);
    SPECS.forEach((s, k) => {
      expectRelClose(run.p[k], run.ref.p[k], `param ${s.name}`);
      expectRelClose(run.m[k], run.ref.m[k], `exp_avg ${s.name}`);
      expectRelClose(run.v[k], run.ref.v[k], `exp_avg_sq ${s.name}`);
    });
  });

  it('should leave gradients below the clip unscaled', () => {
    const run = shardedRun(2, 12, 1e-3);
    expect(run.clipped.some((c) => c)).toBe(false);
    SPECS.forEach((s, k) => expectRelClose(run.p[k], run.ref.p[k], `param ${s.name}`));
  });

  it('should cut the vector into contiguous shards whose sizes differ by at most one', () => {
    expect(shardRanges(10, 3)).toEqual([
      [0, 4],
      [4, 7],
      [7, 10],
    ]);
    expect(shardRanges(2, 3)).toEqual([
      [0, 1],
      [1, 2],
      [2, 2],
    ]);
    expect(() => shardRanges(10, 0)).toThrow(/shard count expected an integer >= 1, but got 0/);
  });

  it('should give each shard its decay runs, merging neighbours of one group', () => {
    const l = flatLayout([
      { name: 'a', shape: [3, 4], decay: true },
      { name: 'b', shape: [2], decay: true },
      { name: 'c', shape: [5], decay: false },
      { name: 'd', shape: [2, 4], decay: true },
    ]);
    expect(l.total).toBe(27);
    expect(l.params.map((q) => q.offset)).toEqual([0, 12, 14, 19]);
    expect(decayRuns(l, 10, 22)).toEqual([
      { from: 0, to: 4, decay: true },
      { from: 4, to: 9, decay: false },
      { from: 9, to: 12, decay: true },
    ]);
    expect(decayRuns(l, 15, 16)).toEqual([{ from: 0, to: 1, decay: false }]);
  });
});
