import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { simdSlstmPasses } from '../../../src/core/slstm/train-pass-kernels.ts';
import { slstmPasses, type SlstmPasses } from '../../../src/core/slstm/train-passes.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/rel-diff.ts';
import { wasmHost } from '../../support/wasm-host.ts';

/**
 * The generated SIMD passes of the sLSTM training kernels (float32) against the JavaScript passes (float64), the
 * oracle: the same inputs in the wasm heap, every output compared by maxRelDiff (largest error over the largest
 * value). TOL is float32's, as in the mLSTM passes' test: a handful of roundings per value, room for exp inside the
 * GeLU (2 ulp) and erfc's fit (1.2e-7 relative), and the norms' sums over dh channels; the gradients of the
 * GroupNorm weight and bias are float64 sums over every row.
 */
const TOL = 1e-6;

interface Widths {
  readonly N: number;
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
}

const SHAPES: Record<string, Widths> = {
  // P odd: the MLP's last vector overlaps the one before it.
  '26 rows, 2 heads of 4, P 11': { N: 26, nh: 2, dh: 4, P: 11 },
  '7 rows, 1 head of 8, P 4': { N: 7, nh: 1, dh: 8, P: 4 },
  // The reference model's widths at the training batch (B 8, T 128).
  '1024 rows, 4 heads of 16, P 85': { N: 1024, nh: 4, dh: 16, P: 85 },
};

const host = wasmHost();

function draw(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const t = tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()), shape);
  host.made.push(t);
  return t;
}

/** Each output of `run` from the SIMD passes and from the oracle, on fresh zeros of the given shapes. */
function both(simd: SlstmPasses, shapes: Record<string, number[]>, run: (p: SlstmPasses, out: Record<string, tf.Tensor>) => void): void {
  const outs = [simd, slstmPasses].map((p) => {
    const out = Object.fromEntries(Object.entries(shapes).map(([name, s]) => [name, tf.zeros(s)]));
    host.made.push(...Object.values(out));
    run(p, out);
    return out;
  });
  for (const name of Object.keys(shapes)) {
    const [got, want] = outs.map((o) => o[name].dataSync() as Float32Array);
    expect(want.some((v) => v !== 0), `${name} is all zeros`).toBe(true);
    expect(maxRelDiff(got, want), name).toBeLessThan(TOL);
  }
}

describe.each(Object.entries(SHAPES))('the sLSTM training passes in SIMD, %s', (_, { N, nh, dh, P }) => {
  const H = nh * dh;
  const simd = (): SlstmPasses => {
    const s = simdSlstmPasses(host.io, { nh, dh, P });
    if (!s) throw new Error('no WebAssembly SIMD in this runtime');
    return s;
  };

  it('assembles the gate pre-activations as the JavaScript pass does', () => {
    const rng = new Rng(1);
    const [ic, zo, bG] = [draw(rng, [N, 2 * H]), draw(rng, [N, 2 * H]), draw(rng, [4 * H])];
    both(simd(), { gx: [N, 4 * H] }, (p, o) => p.gatePreActivations(host.io, ic, zo, bG, o.gx));
  });

  it('runs GroupNorm forward and backward as the JavaScript passes do', () => {
    const rng = new Rng(2);
    // Heads whose values sit far from zero: the mean must be taken out before the variance.
    const hs = tf.add(draw(rng, [N, H]), 3);
    host.made.push(hs);
    const [w, b, dy] = [draw(rng, [H]), draw(rng, [H]), draw(rng, [N, H])];
    both(simd(), { hhat: [N, H], rstd: [N, nh], y: [N, H] }, (p, o) => p.groupNormForward(host.io, nh, hs, w, b, o.hhat, o.rstd, o.y));
    const hhat = tf.zeros([N, H]);
    const rstd = tf.zeros([N, nh]);
    const y = tf.zeros([N, H]);
    host.made.push(hhat, rstd, y);
    slstmPasses.groupNormForward(host.io, nh, hs, w, b, hhat, rstd, y);
    both(simd(), { dhs: [N, H], dW: [H], dB: [H] }, (p, o) => p.groupNormBackward(host.io, nh, dy, hhat, rstd, w, o.dhs, o.dW, o.dB));
  });

  it('runs the gated GeLU forward and backward as the JavaScript passes do', () => {
    const rng = new Rng(3);
    // a over +-6: both of erf's tails.
    const [up, bUp, dz] = [draw(rng, [N, 2 * P], 2), draw(rng, [2 * P]), draw(rng, [N, P])];
    both(simd(), { z: [N, P] }, (p, o) => p.geluGateForward(host.io, up, bUp, o.z));
    both(simd(), { dup: [N, 2 * P], z: [N, P] }, (p, o) => p.geluGateBackward(host.io, up, bUp, dz, o.dup, o.z));
  });
});
