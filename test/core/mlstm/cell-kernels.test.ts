import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { jsCellPasses, type CellPasses, type CellShape, type Columns } from '../../../src/core/mlstm/cell-passes.ts';
import { simdCellPasses } from '../../../src/core/mlstm/cell-passes-simd.ts';
import { cellBackward, cellForward, type CellGrads } from '../../../src/core/mlstm/host-cell.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/rel-diff.ts';
import { wasmHost } from '../../support/wasm-host.ts';

/**
 * The generated SIMD passes of the host mLSTM cell against the float64 JavaScript passes, which stay the oracle:
 * the same inputs in the wasm heap, pass by pass over every head, then the whole cell. The kernels form the
 * same float64 products and sums (the decay rows by a recurrence, the sums in two lanes), so each output is
 * within a rounding of its float32 store: TOL = 1e-7 of maxRelDiff (largest error over largest value) is one
 * rounding of the largest value (2^-24 = 6e-8) with room; the largest seen is 4e-15 (most outputs agree bit for
 * bit). A dropped dr, or one pair of a vector's column sums added twice, is 0.07 to 1 off. Gathers are copies
 * and must agree exactly.
 */
const TOL = 1e-7;

const SHAPES: Record<string, CellShape> = {
  // Odd T: rows end in single columns below the diagonal, and T^2 in single floats.
  'B 2, T 13, 3 heads of 4': { B: 2, T: 13, nh: 3, dh: 4 },
  // Shorter than a vector: no row has a whole vector below its diagonal.
  'B 2, T 3, 2 heads of 8': { B: 2, T: 3, nh: 2, dh: 8 },
  // The reference model's heads at the training length.
  'B 2, T 128, 4 heads of 16': { B: 2, T: 128, nh: 4, dh: 16 },
};

/**
 * Gate pre-activations: input gate bias, forget gate bias, spread. Large biases are the stabiliser's extremes: a
 * floor far above or below |r|, and (forget -12) decay weights that underflow TINY within a few steps.
 */
const GATES: Record<string, [number, number, number]> = {
  'random gates': [0, 2, 2],
  'input bias -30': [-30, 3, 1],
  'input bias +30': [30, 3, 1],
  'forget bias -12': [0, -12, 1],
};

const host = wasmHost();

/** A heap tensor of `shape` holding f(normal draw), kept until the test ends. */
function draw(rng: Rng, shape: number[], f: (z: number) => number = (z) => z): tf.TensorInfo {
  const t = host.io.alloc(shape);
  host.made.push(t);
  const v = host.io.view(t);
  for (let i = 0; i < v.length; i++) v[i] = f(rng.normal());
  return t;
}

function zeros(shape: number[]): tf.TensorInfo {
  const t = host.io.alloc(shape);
  host.made.push(t);
  host.io.view(t).fill(0);
  return t;
}

function copy(t: tf.TensorInfo): tf.TensorInfo {
  const c = host.io.alloc(t.shape);
  host.made.push(c);
  host.io.view(c).set(host.io.view(t));
  return c;
}

interface Inputs {
  q: tf.TensorInfo;
  k: tf.TensorInfo;
  v: tf.TensorInfo;
  gates: tf.TensorInfo;
  dh: tf.TensorInfo;
  h: tf.TensorInfo;
}

function inputs(s: CellShape, [iBias, fBias, spread]: [number, number, number], seed: number): Inputs {
  const rng = new Rng(seed);
  const N = s.B * s.T;
  const H = s.nh * s.dh;
  const gates = draw(rng, [N, 2 * s.nh]);
  const gv = host.io.view(gates);
  for (let n = 0; n < N; n++) for (let c = 0; c < 2 * s.nh; c++) gv[n * 2 * s.nh + c] = (c < s.nh ? iBias : fBias) + spread * gv[n * 2 * s.nh + c];
  return { q: draw(rng, [N, H]), k: draw(rng, [N, H], (z) => z / Math.sqrt(s.dh)), v: draw(rng, [N, H]), gates, dh: draw(rng, [N, H]), h: draw(rng, [N, H]) };
}

/**
 * Each pass's outputs, concatenated over the heads, from the passes `P` on the same inputs for every
 * implementation: P and dP in the place of the matMuls' products are drawn from `seed`.
 */
function passOutputs(P: CellPasses, s: CellShape, x: Inputs, seed: number): Record<string, number[]> {
  const { B, T, nh, dh } = s;
  const N = B * T;
  const rng = new Rng(seed);
  const out: Record<string, number[]> = {};
  const keep = (name: string, t: tf.TensorInfo): void => void (out[name] ??= []).push(...host.io.view(t));
  const cols = (stride: number, col: number, scale: number): Columns => ({ t: zeros([N, stride]), stride, col, scale });
  const dgates = cols(2 * nh + 3, 3, 1);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < nh; j++) {
      for (const [name, from, transposed] of [['gather q', x.q, false], ['gatherT k', x.k, true]] as const) {
        const g = zeros(transposed ? [dh, T] : [T, dh]);
        P.gather(from, b, j, g, transposed);
        keep(name, g);
      }
      P.decay(x.gates, b, j);
      const S = draw(rng, [T, T]);
      const ST = draw(rng, [T, T]); // stale contents: the pass zeroes what it does not write
      P.stabilise(S, ST);
      keep('stabilise S', S);
      keep('stabilise ST', ST);
      const S2 = draw(rng, [T, T]);
      P.stabilise(S2, null);
      keep('stabilise without ST', S2);
      const h = zeros([N, nh * dh]);
      P.normalise(draw(rng, [T, dh]), h, b, j);
      keep('normalise', h);
      const gz = zeros([T, dh]);
      P.outputGrad(x.dh, x.h, b, j, gz);
      keep('outputGrad', gz);
      const dP = draw(rng, [T, T]);
      const dPT = draw(rng, [T, T]);
      P.decayGrad(dP, S, dPT);
      keep('decayGrad dP', dP);
      keep('decayGrad dPT', dPT);
      const put = cols(nh * dh + 8, 4, 1 / 3);
      P.put(draw(rng, [T, dh]), put, b, j);
      keep('put', put.t);
      P.gateGrads(x.gates, dgates, b, j);
    }
  }
  keep('gateGrads', dgates.t);
  return out;
}

function expectClose(got: Record<string, ArrayLike<number>>, want: Record<string, ArrayLike<number>>): void {
  for (const name of Object.keys(want)) {
    const w = want[name];
    expect(Array.from(w).some((v) => v !== 0), `${name} is all zeros`).toBe(true);
    expect(Array.from(w).every(Number.isFinite), `${name} is finite`).toBe(true);
    if (name.startsWith('gather')) expect(Array.from(got[name]), name).toEqual(Array.from(w));
    else expect(maxRelDiff(got[name], w), name).toBeLessThan(TOL);
  }
}

describe.each(Object.entries(SHAPES))('SIMD cell passes at %s', (_, s) => {
  const passes = (): [CellPasses, CellPasses] => {
    const simd = simdCellPasses(host.io, s);
    if (!simd) throw new Error('no WebAssembly SIMD in this runtime');
    return [simd, jsCellPasses(host.io, s)];
  };

  it.each(Object.entries(GATES))('each pass equals the JavaScript pass with %s', (_, gates) => {
    const x = inputs(s, gates, 1);
    const [simd, js] = passes();
    expectClose(passOutputs(simd, s, x, 2), passOutputs(js, s, x, 2));
    simd.release();
  });

  it.each(Object.entries(GATES))('the whole cell, forward and backward, equals the JavaScript cell with %s', (_, gates) => {
    const { B, T, nh, dh } = s;
    const N = B * T;
    const H = nh * dh;
    const x = inputs(s, gates, 3);
    const results = passes().map((P) => {
      const h = zeros([N, H]);
      cellForward(host.io, x.q, x.k, x.v, x.gates, h, s, P);
      const Wc = 3 * H + 2 * nh;
      const dcc = zeros([N, Wc]);
      const duu = zeros([N, 2 * H]);
      const grads: CellGrads = {
        dq: { t: dcc, stride: Wc, col: 0, scale: 1 },
        dk: { t: dcc, stride: Wc, col: H, scale: 1 / Math.sqrt(dh) },
        dgates: { t: dcc, stride: Wc, col: 2 * H, scale: 1 },
        dv: { t: duu, stride: 2 * H, col: 0, scale: 1 },
      };
      cellBackward(host.io, x.q, x.k, x.v, x.gates, copy(h), x.dh, s, grads, P);
      P.release();
      const cc = host.io.view(dcc);
      const part = (from: number, width: number): number[] =>
        Array.from({ length: N * width }, (_, i) => cc[Math.floor(i / width) * Wc + from + (i % width)]);
      return { h: host.io.view(h).slice(), dq: part(0, H), dk: part(H, H), dgates: part(2 * H, 2 * nh), dv: host.io.view(duu).slice() };
    });
    expectClose(results[0], results[1]);
  });
});
