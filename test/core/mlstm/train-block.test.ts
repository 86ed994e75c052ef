import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { deriveDims, modelParams, validateModelConfig, XlstmModel, type ModelConfig } from '../../../src/core/index.ts';
import { mlstmBlock } from '../../../src/core/mlstm/block.ts';
import { mlstmParallel } from '../../../src/core/mlstm/parallel.ts';
import { mlstmBlockTrain } from '../../../src/core/mlstm/train-block.ts';
import type { MlstmWeights } from '../../../src/core/weights.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';
import { finiteDiffGrad, mlstmForward, refInit } from '../../support/reference/index.ts';
import { expectNoTensorLeak, maxRelDiff } from '../../support/tiny-model.ts';

/**
 * The fused mLSTM training block (one forward and one hand-written backward kernel) against the
 * op-by-op block under tfjs autodiff (a second formulation of the same maths) and against the
 * float64 reference with central finite differences. One block: d 8, 3 heads of 4, odd T.
 */
const [B, T] = [2, 13];

function config(ker: number): ModelConfig {
  return validateModelConfig({ vocab_size: 16, num_layers: 1, signature: [1, 0], inp_dim: 8, head_dim: 4, head_num: 3, p_factor: [2, 1.3333333], ker_size: ker });
}

/**
 * Seeded parameters with every block tensor perturbed (so that gates, conv taps and norms all
 * vary), rounded to float32 so that the oracle sees the values tfjs holds. `gateBias` overrides
 * the input and forget gate biases (the stabiliser's extremes).
 */
function parameters(cfg: ModelConfig, seed: number, gateBias?: number): Map<string, Float64Array> {
  const params = refInit(cfg, seed);
  const rng = new Rng(seed + 1);
  for (const [name, v] of params) {
    if (!name.startsWith('blocks.0.')) continue;
    for (let i = 0; i < v.length; i++) v[i] += 0.3 * rng.normal();
    if (gateBias !== undefined && /\.(igate|fgate)\.bias$/.test(name)) v.fill(gateBias);
    for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]);
  }
  return params;
}

function inputs(seed: number, d: number, len = T): { x: Float32Array; dy: Float32Array } {
  const rng = new Rng(seed);
  const draw = () => Float32Array.from({ length: B * len * d }, () => rng.normal());
  return { x: draw(), dy: draw() };
}

/** The block's output y [B, T, d] from the fused op (`fused`) or the op-by-op block, and gradients of <dy, y>. */
function run(cfg: ModelConfig, params: Map<string, Float64Array>, x: Float32Array, dy: Float32Array, fused: boolean) {
  const dims = deriveDims(cfg);
  const specs = modelParams(dims).filter((s) => s.name.startsWith('blocks.0.'));
  let out: { y: Float32Array; dx: Float32Array; dw: Map<string, Float32Array> } | null = null;
  tf.tidy(() => {
    const named = specs.map((s) => tf.tensor(Float32Array.from(params.get(s.name) as Float64Array), [...s.shape]));
    const len = x.length / (B * dims.d);
    const xt = tf.tensor3d(x, [B, len, dims.d]);
    const dyt = tf.tensor3d(dy, [B, len, dims.d]);
    // The whole model's named tensors, the block's from `named` (so gradients reach the PyTorch layouts).
    const block = (xi: tf.Tensor, ...ns: tf.Tensor[]): tf.Tensor => {
      const all = new Map<string, tf.Tensor>();
      for (const s of modelParams(dims)) all.set(s.name, tf.zeros([...s.shape]));
      specs.forEach((s, j) => all.set(s.name, ns[j]));
      const w = XlstmModel.fromNamed(cfg, all).weights.blocks[0] as MlstmWeights;
      return fused ? mlstmBlockTrain(xi as tf.Tensor3D, w, dims) : mlstmBlock(xi as tf.Tensor3D, w, dims, mlstmParallel, null, false).y;
    };
    const y = block(xt, ...named).dataSync() as Float32Array;
    const grads = tf.grads(block)([xt, ...named], dyt).map((g) => g.dataSync() as Float32Array);
    out = { y, dx: grads[0], dw: new Map(specs.map((s, j) => [s.name, grads[j + 1]])) };
  });
  return out as unknown as { y: Float32Array; dx: Float32Array; dw: Map<string, Float32Array> };
}

/** sum <dy, block(x)> over both rows in float64, by the reference. */
function refObjective(cfg: ModelConfig, params: Map<string, Float64Array>, x: Float64Array, dy: Float32Array): number {
  const dims = deriveDims(cfg);
  let total = 0;
  for (let b = 0; b < B; b++) {
    const xs = Array.from({ length: T }, (_, t) => x.subarray((b * T + t) * dims.d, (b * T + t + 1) * dims.d));
    const ys = mlstmForward(dims, params, 0, xs, 'parallel');
    ys.forEach((yt, t) => yt.forEach((v, c) => (total += v * dy[(b * T + t) * dims.d + c])));
  }
  return total;
}

const maxAbs = (g: ArrayLike<number>): number => Array.from(g).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * Checks two gradient sets tensor by tensor: |a - b| <= rtol max|b| + 1e-6 * (the largest gradient
 * of the block). The floor is needed by the input-gate bias: a per-head shift of every input gate
 * cancels between S and its normaliser, so its exact gradient is ~0 and float32 leaves rounding of
 * the size of the cancelled terms.
 */
function expectGradsClose(got: Map<string, Float32Array>, want: Map<string, Float32Array>, blockScale: number, rtol: number): void {
  for (const [name, g] of want) {
    const a = got.get(name) as Float32Array;
    let err = 0;
    for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(a[i] - g[i]));
    expect(err, name).toBeLessThanOrEqual(rtol * maxAbs(g) + 1e-6 * blockScale);
  }
}

describe.each(TEST_BACKENDS)('the fused mLSTM training block on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  describe.each([4, 0])('ker_size %d', (ker) => {
    const cfg = config(ker);
    const d = cfg.inp_dim;
    const params = parameters(cfg, 11);
    const { x, dy } = inputs(5, d);

    it('gives the output of the float64 reference', () => {
      const want = new Float64Array(B * T * d);
      const dims = deriveDims(cfg);
      for (let b = 0; b < B; b++) {
        const xs = Array.from({ length: T }, (_, t) => Float64Array.from(x.subarray((b * T + t) * d, (b * T + t + 1) * d)));
        mlstmForward(dims, params, 0, xs, 'parallel').forEach((yt, t) => want.set(yt, (b * T + t) * d));
      }
      expect(maxRelDiff(run(cfg, params, x, dy, true).y, want)).toBeLessThan(1e-5);
    });

    it('gives the output and every gradient of the op-by-op block under autodiff', () => {
      const fused = run(cfg, params, x, dy, true);
      const ops = run(cfg, params, x, dy, false);
      expect(maxRelDiff(fused.y, ops.y)).toBeLessThan(1e-5);
      const all = new Map([['x', ops.dx], ...ops.dw]);
      expectGradsClose(new Map([['x', fused.dx], ...fused.dw]), all, Math.max(...[...all.values()].map(maxAbs)), 5e-5);
    });

    it('matches central finite differences of the float64 reference for x and every tensor', () => {
      const fused = run(cfg, params, x, dy, true);
      const x64 = Float64Array.from(x);
      const blockScale = Math.max(maxAbs(fused.dx), ...[...fused.dw.values()].map(maxAbs));
      const check = (name: string, param: Float64Array, g: Float32Array, salt: number) => {
        const idx = [...new Set([0, param.length - 1, (salt * 7919) % param.length, (salt * 104729 + 13) % param.length])];
        const fd = finiteDiffGrad(() => refObjective(cfg, params, x64, dy), param, idx);
        // Tolerance as in loss.test.ts, the floor scaled to the block's largest gradient (expectGradsClose).
        idx.forEach((i, j) => {
          expect(Math.abs(g[i] - fd[j]), `${name}[${i}]: fused ${g[i]}, finite differences ${fd[j]}`).toBeLessThanOrEqual(1e-3 * maxAbs(g) + 1e-6 * blockScale);
        });
      };
      check('x', x64, fused.dx, 1);
      [...fused.dw].forEach(([name, g], salt) => check(name, params.get(name) as Float64Array, g, salt + 2));
    });
  });

  // Gates at +-30 over 40 steps: the stabiliser moves every step, and at -30 the decay weights
  // fall below the running product's cut-off (1e-300) after about 23 steps.
  it.each([30, -30])('stays finite and equal to the op-by-op block with gate biases of %d', (bias) => {
    const cfg = config(4);
    const params = parameters(cfg, 3, bias);
    const { x, dy } = inputs(8, cfg.inp_dim, 40);
    const fused = run(cfg, params, x, dy, true);
    const ops = run(cfg, params, x, dy, false);
    expect([...fused.y, ...fused.dx].every(Number.isFinite)).toBe(true);
    expect(maxRelDiff(fused.y, ops.y)).toBeLessThan(1e-5);
    const all = new Map([['x', ops.dx], ...ops.dw]);
    expectGradsClose(new Map([['x', fused.dx], ...fused.dw]), all, Math.max(...[...all.values()].map(maxAbs)), 5e-5);
  });

  it('leaves no tensors behind, with or without a backward pass', async () => {
    const cfg = config(4);
    const model = XlstmModel.init(cfg, 1);
    const w = model.weights.blocks[0] as MlstmWeights;
    const dims = deriveDims(cfg);
    const x = tf.randomNormal([B, T, cfg.inp_dim]) as tf.Tensor3D;
    await expectNoTensorLeak(() => tf.tidy(() => void mlstmBlockTrain(x, w, dims).dataSync()));
    await expectNoTensorLeak(() => tf.tidy(() => void tf.grads((xi: tf.Tensor) => tf.sum(mlstmBlockTrain(xi as tf.Tensor3D, w, dims)))([x])[0].dataSync()));
    x.dispose();
    model.dispose();
  });
});
