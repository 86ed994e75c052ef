import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { blockPasses, type BlockPasses, type Rows } from '../../../src/core/mlstm/block-passes.ts';
import { simdBlockPasses } from '../../../src/core/mlstm/block-passes-simd.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/rel-diff.ts';
import { wasmHost } from '../../support/wasm-host.ts';

/**
 * The generated SIMD passes of the mLSTM training block (float32) against the JavaScript passes (float64), which
 * stay the oracle: the same inputs in the wasm heap, every output compared by maxRelDiff (largest error over the
 * largest value). TOL is float32's: a handful of roundings (2^-24 = 6e-8 each) per value, with room for the exp
 * inside sigmoid (2 ulp) and the norms' sums over up to 64 channels; the largest seen is 2.1e-7. The weight and
 * bias gradients (float64 sums of float32 products) meet it as well. A conv tap off by 1e-4 is 3e-6 to 5e-5 off.
 */
const TOL = 1e-6;

const SHAPES: Record<string, Rows> = {
  // Odd rows and heads, 2nh = 6 gate columns (not a whole vector).
  'B 2, T 13, d 8, 3 heads of 4, dm 16, k 4': { B: 2, T: 13, d: 8, nh: 3, dh: 4, H: 12, dm: 16, k: 4 },
  // Sequences shorter than the conv window: every row is a head row, and a tail row, of the conv.
  'B 3, T 2, d 8, 3 heads of 4, dm 16, k 4': { B: 3, T: 2, d: 8, nh: 3, dh: 4, H: 12, dm: 16, k: 4 },
  'B 2, T 5, d 12, 1 head of 8, dm 20, k 2': { B: 2, T: 5, d: 12, nh: 1, dh: 8, H: 8, dm: 20, k: 2 },
  // The reference model's widths; at the training batch, gradients are sums over 1024 rows.
  'B 2, T 19, d 64, 4 heads of 16, dm 128, k 4': { B: 2, T: 19, d: 64, nh: 4, dh: 16, H: 64, dm: 128, k: 4 },
  'B 8, T 128, d 64, 4 heads of 16, dm 128, k 4': { B: 8, T: 128, d: 64, nh: 4, dh: 16, H: 64, dm: 128, k: 4 },
};

const host = wasmHost();
let simd: BlockPasses;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** A tensor of `shape` in the heap with values f(normal draw). */
function draw(rng: Rng, shape: number[], f: (z: number) => number = (z) => z): tf.Tensor {
  const t = tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => f(rng.normal())), shape);
  host.made.push(t);
  return t;
}

function zeros(shape: number[]): tf.Tensor {
  const t = tf.zeros(shape);
  host.made.push(t);
  return t;
}

/** A copy with data of its own (a clone would share t's): for the inputs a pass writes in place. */
function copy(t: tf.Tensor): tf.Tensor {
  const own = tf.add(t, 0);
  host.made.push(own);
  return own;
}

/** Outputs of the SIMD pass and the oracle, each run on fresh zeros of the given shapes. */
function both(shapes: Record<string, number[]>, run: (p: BlockPasses, out: Record<string, tf.Tensor>) => void): Record<string, [Float32Array, Float32Array]> {
  const outs = [simd, blockPasses].map((p) => {
    const out = Object.fromEntries(Object.entries(shapes).map(([name, s]) => [name, zeros(s)]));
    run(p, out);
    return out;
  });
  return Object.fromEntries(Object.keys(shapes).map((name) => [name, [outs[0][name].dataSync() as Float32Array, outs[1][name].dataSync() as Float32Array]]));
}

function expectClose(results: Record<string, [Float32Array, Float32Array]>): void {
  for (const [name, [got, want]] of Object.entries(results)) {
    expect(want.some((v) => v !== 0), `${name} is all zeros`).toBe(true);
    expect(maxRelDiff(got, want), name).toBeLessThan(TOL);
  }
}

describe.each(Object.entries(SHAPES))('SIMD block passes at %s', (_, R) => {
  const N = R.B * R.T;
  const { d, nh, H, dm, k } = R;
  const Wc = 3 * H + 2 * nh;

  beforeAll(() => {
    const p = simdBlockPasses(host.io, R);
    if (!p) throw new Error('no WebAssembly SIMD in this runtime');
    simd = p;
  });

  it('layerNormForward, layerNormOutput and layerNormBackward', () => {
    const rng = new Rng(1);
    const x = draw(rng, [N, d], (z) => 3 + 2 * z);
    const [w, b] = [draw(rng, [d]), draw(rng, [d])];
    expectClose(both({ xhat: [N, d], rstd: [N], xn: [N, d] }, (p, o) => p.layerNormForward(host.io, R, x, w, b, o.xhat, o.rstd, o.xn)));
    const xhat0 = draw(rng, [N, d]);
    expectClose(both({ xn: [N, d] }, (p, o) => p.layerNormOutput(host.io, R, xhat0, w, b, o.xn)));
    const [dxn, dres, xhat] = [draw(rng, [N, d]), draw(rng, [N, d]), draw(rng, [N, d])];
    const rstd = draw(rng, [N], (z) => Math.exp(0.5 * z));
    expectClose(both({ dx: [N, d], dW: [d], dB: [d] }, (p, o) => p.layerNormBackward(host.io, R, dxn, xhat, rstd, w, dres, o.dx, o.dW, o.dB)));
  });

  it('splitUp and splitProjections', () => {
    const rng = new Rng(2);
    const [up, bUp] = [draw(rng, [N, dm + H], (z) => 3 * z), draw(rng, [dm + H])];
    expectClose(both({ u: [N, dm], sir: [N, H], sr: [N, H] }, (p, o) => p.splitUp(host.io, R, up, bUp, o.u, o.sir, o.sr)));
    const [cc, uu, bC, bU] = [draw(rng, [N, Wc], (z) => 3 * z), draw(rng, [N, 2 * H], (z) => 3 * z), draw(rng, [Wc]), draw(rng, [2 * H])];
    const shapes = { q: [N, H], kk: [N, H], v: [N, H], gates: [N, 2 * nh], skip: [N, H], so: [N, H] };
    expectClose(both(shapes, (p, o) => p.splitProjections(host.io, R, cc, uu, bC, bU, { q: o.q, kk: o.kk, v: o.v, gates: o.gates, skip: o.skip, so: o.so })));
  });

  it('gatingForward, gatingOutput, gatingBackward and residualOut', () => {
    const rng = new Rng(3);
    const t: Record<string, tf.Tensor> = {
      ht: draw(rng, [N, H]),
      so: draw(rng, [N, H], sigmoid),
      skip: draw(rng, [N, H]),
      sir: draw(rng, [N, H], (z) => 2 * z * sigmoid(2 * z)),
      sr: draw(rng, [N, H], (z) => sigmoid(2 * z)),
      hhat: draw(rng, [N, H]),
      rstd2: draw(rng, [N, nh], (z) => Math.exp(0.5 * z)),
      outW: draw(rng, [H]),
      outB: draw(rng, [H]),
    };
    expectClose(both({ hhat: [N, H], rstd2: [N, nh], y: [N, H] }, (p, o) => p.gatingForward(host.io, R, t, t.outW, t.outB, o.hhat, o.rstd2, o.y)));
    expectClose(both({ y: [N, H] }, (p, o) => p.gatingOutput(host.io, R, t, o.y)));
    const dy = draw(rng, [N, H]);
    const shapes = { dup: [N, dm + H], dcc: [N, Wc], duu: [N, 2 * H], dht: [N, H], dOutW: [H], dOutB: [H] };
    const got = both(shapes, (p, o) => p.gatingBackward(host.io, R, t, dy, { dup: o.dup, dcc: o.dcc, duu: o.duu, dht: o.dht, dOutW: o.dOutW, dOutB: o.dOutB }));
    expectClose(got);
    const [x, down, bias] = [draw(rng, [N, d]), draw(rng, [N, d]), draw(rng, [d])];
    expectClose(both({ out: [N, d] }, (p, o) => p.residualOut(host.io, R, x, down, bias, o.out)));
  });

  it('causalConvSilu and causalConvBackward', () => {
    const rng = new Rng(4);
    const [u, w, bias] = [draw(rng, [N, dm]), draw(rng, [k, dm]), draw(rng, [dm])];
    expectClose(both({ c: [N, dm], sa: [N, dm] }, (p, o) => p.causalConvSilu(host.io, R, u, w, bias, o.c, o.sa)));
    const a = draw(rng, [N, dm], (z) => 2 * z);
    const sa = tf.sigmoid(a);
    const c = tf.mul(a, sa);
    host.made.push(sa, c);
    const [dc, du] = [draw(rng, [N, dm]), draw(rng, [N, dm])];
    // dc and du are consumed: each pass gets copies.
    const got = both({ dup: [N, dm + H], dW: [k, dm], dB: [dm] }, (p, o) => p.causalConvBackward(host.io, R, copy(dc), c, sa, u, w, copy(du), o.dup, o.dW, o.dB));
    // dup's last H columns are the gating's: not written here.
    const cols = (m: Float32Array): Float32Array => Float32Array.from({ length: N * dm }, (_, i) => m[Math.floor(i / dm) * (dm + H) + (i % dm)]);
    got.dup = [cols(got.dup[0]), cols(got.dup[1])];
    expectClose(got);
  });

  it('tells a conv with one tap off by 1e-4 from the right one, at the first and the last tap', () => {
    const rng = new Rng(5);
    const [u, w, bias] = [draw(rng, [N, dm]), draw(rng, [k, dm]), draw(rng, [dm])];
    const conv = (p: BlockPasses, weights: tf.Tensor): Float32Array => {
      const c = zeros([N, dm]);
      p.causalConvSilu(host.io, R, u, weights, bias, c, zeros([N, dm]));
      return c.dataSync() as Float32Array;
    };
    const want = conv(blockPasses, w);
    expect(maxRelDiff(conv(simd, w), want)).toBeLessThan(TOL);
    for (const tap of [0, k - 1]) {
      // Tap 0 reaches only rows t >= k - 1: none where T < k.
      if (tap === 0 && R.T < k) continue;
      const wv = w.dataSync().slice();
      wv[tap * dm + 5] *= 1 + 1e-4;
      const off = tf.tensor(wv, [k, dm]);
      host.made.push(off);
      expect(maxRelDiff(conv(simd, off), want), `tap ${tap}`).toBeGreaterThan(TOL);
    }
  });
});
