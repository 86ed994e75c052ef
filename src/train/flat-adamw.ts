/**
 * AdamW's update (adamw.ts, PyTorch's order) on one range of flat float32 arrays, in plain
 * JavaScript: how a data-parallel worker updates the shard of the weights it owns. One fused pass
 * over the elements instead of ten tfjs kernels per tensor, each of which allocates its output.
 */
import type { AdamWOptions } from './adamw.ts';
import type { DecayRun } from './flat-layout.ts';

/** One shard's weights and moments, indexed from the shard's start. */
export interface FlatSlots {
  readonly p: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export interface FlatStep {
  readonly lr: number;
  /** 1-based update count, for the bias corrections. */
  readonly t: number;
  /** The clipping factor (clipScale), 1 when the norm is below the clip. */
  readonly scale: number;
}

/**
 * Applies one update with the mean gradient `g` of the shard (left as it is). The arithmetic is float64 per element, stored as float32; tfjs's kernels round after
 * every operation, so the two differ by float32 rounding only.
 */
export function flatAdamwStep(slots: FlatSlots, g: Float32Array, runs: readonly DecayRun[], options: AdamWOptions, step: FlatStep): void {
  const { p, m, v } = slots;
  const [b1, b2] = options.betas;
  const stepSize = step.lr / (1 - b1 ** step.t);
  const invSqrtBc2 = 1 / Math.sqrt(1 - b2 ** step.t);
  const { eps } = options;
  const scale = step.scale;
  for (const run of runs) {
    const keep = run.decay && options.weightDecay !== 0 ? 1 - step.lr * options.weightDecay : 1;
    for (let i = run.from; i < run.to; i++) {
      const gi = g[i] * scale; // exact when scale is 1
      const m1 = m[i] * b1 + gi * (1 - b1);
      const v1 = v[i] * b2 + gi * gi * (1 - b2);
      m[i] = m1;
      v[i] = v1;
      p[i] = p[i] * keep - stepSize * (m1 / (Math.sqrt(v1) * invSqrtBc2 + eps));
    }
  }
}

