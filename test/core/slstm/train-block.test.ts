import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { deriveDims, modelParams, validateModelConfig, XlstmModel, type ModelConfig } from '../../../src/core/index.ts';
import { slstmBlock } from '../../../src/core/slstm/block.ts';
import { setFusedSlstmTraining, slstmBlockTrain } from '../../../src/core/slstm/train-block.ts';
import type { SlstmWeights } from '../../../src/core/weights.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';
import { finiteDiffGrad, refInit, slstmForward } from '../../support/reference/index.ts';
import { expectNoTensorLeak, maxRelDiff } from '../../support/tiny-model.ts';

/**
 * The sLSTM training block of train-block.ts (host kernels with hand-written backward passes around the scan)
 * against the op-by-op block under tfjs autodiff (a second formulation of the same maths) and against the float64
 * reference with central finite differences. One block: d 8, 2 heads of 4, P 11 (odd: the MLP's columns do not
 * fill whole vectors), T 13, B 2.
 */
const [B, T] = [2, 13];

/** Output agreement with either oracle, relative to the largest output. */
const OUTPUT_RTOL = 1e-5;
/** Gradient agreement with autodiff of the op-by-op block, relative to each gradient's largest entry. */
const GRAD_RTOL = 5e-5;
/** Agreement with finite differences (as loss.test.ts), relative to the gradient's largest entry. */
const FD_RTOL = 1e-3;
/** The floor of every gradient check, relative to the block's largest gradient (rounding of cancelling terms). */
const FLOOR = 1e-6;

function config(ker: number, d = 8, dh = 4): ModelConfig {
  return validateModelConfig({ vocab_size: 16, num_layers: 1, signature: [0, 1], inp_dim: d, head_dim: dh, head_num: 2, p_factor: [2, 1.3333333], ker_size: ker });
}

/** Seeded parameters, every block tensor perturbed (gates, taps and norms all vary), rounded to float32 as tfjs holds them. */
function parameters(cfg: ModelConfig, seed: number): Map<string, Float64Array> {
  const params = refInit(cfg, seed);
  const rng = new Rng(seed + 1);
  for (const [name, v] of params) {
    if (!name.startsWith('blocks.0.')) continue;
    for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i] + 0.4 * rng.normal());
  }
  return params;
}

interface Run {
  readonly y: Float32Array;
  /** The gradients of <dy, y>: x's under 'x', then each block tensor's by its checkpoint name. */
  readonly grads: Map<string, Float32Array>;
}

/** The block's output and gradients through slstmBlockTrain (`fused`) or the op-by-op slstmBlock. */
function run(cfg: ModelConfig, params: Map<string, Float64Array>, x: Float32Array, dy: Float32Array, fused: boolean): Run {
  const dims = deriveDims(cfg);
  const all = modelParams(dims);
  const specs = all.filter((s) => s.name.startsWith('blocks.0.'));
  let out: Run | null = null;
  tf.tidy(() => {
    const tensors = specs.map((s) => tf.tensor(Float32Array.from(params.get(s.name) as Float64Array), [...s.shape]));
    const xt = tf.tensor3d(x, [B, T, dims.d]);
    // The block's packed weights built from the named tensors, so that gradients reach the checkpoint layouts.
    const block = (xi: tf.Tensor, ...named: tf.Tensor[]): tf.Tensor => {
      const byName = new Map(all.map((s) => [s.name, tf.zeros([...s.shape])]));
      specs.forEach((s, j) => byName.set(s.name, named[j]));
      const w = XlstmModel.fromNamed(cfg, byName).weights.blocks[0] as SlstmWeights;
      return fused ? slstmBlockTrain(xi as tf.Tensor3D, w, dims) : slstmBlock(xi as tf.Tensor3D, w, dims, null, false).y;
    };
    setFusedSlstmTraining(fused);
    const y = block(xt, ...tensors).dataSync() as Float32Array;
    const g = tf.grads(block)([xt, ...tensors], tf.tensor3d(dy, [B, T, dims.d])).map((t) => t.dataSync() as Float32Array);
    out = { y, grads: new Map([['x', g[0]], ...specs.map((s, j): [string, Float32Array] => [s.name, g[j + 1]])]) };
  });
  return out as unknown as Run;
}

/** <dy, block(x)> over both rows in float64, by the reference. */
function refObjective(cfg: ModelConfig, params: Map<string, Float64Array>, x: Float64Array, dy: Float32Array): number {
  const d = cfg.inp_dim;
  let total = 0;
  for (let b = 0; b < B; b++) {
    const xs = Array.from({ length: T }, (_, t) => x.subarray((b * T + t) * d, (b * T + t + 1) * d));
    slstmForward(deriveDims(cfg), params, 0, xs).forEach((yt, t) => yt.forEach((v, c) => (total += v * dy[(b * T + t) * d + c])));
  }
  return total;
}

const maxAbs = (g: ArrayLike<number>): number => Array.from(g).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function expectLikeOpByOp(cfg: ModelConfig, params: Map<string, Float64Array>, x: Float32Array, dy: Float32Array): void {
  const fused = run(cfg, params, x, dy, true);
  const ops = run(cfg, params, x, dy, false);
  expect(maxRelDiff(fused.y, ops.y)).toBeLessThan(OUTPUT_RTOL);
  expect(fused.grads.size).toBe(ops.grads.size);
  const scale = Math.max(...[...ops.grads.values()].map(maxAbs));
  for (const [name, want] of ops.grads) {
    const got = fused.grads.get(name) as Float32Array;
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    expect(err, name).toBeLessThanOrEqual(GRAD_RTOL * maxAbs(want) + FLOOR * scale);
  }
}

describe.each(TEST_BACKENDS)('the sLSTM training block on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  afterEach(() => setFusedSlstmTraining(true));

  describe.each([4, 0])('ker_size %d', (ker) => {
    const cfg = config(ker);
    const d = cfg.inp_dim;
    const params = parameters(cfg, 17);
    const rng = new Rng(9);
    const x = Float32Array.from({ length: B * T * d }, () => rng.normal());
    const dy = Float32Array.from({ length: B * T * d }, () => rng.normal());

    it('gives the output of the float64 reference', () => {
      const want = new Float64Array(B * T * d);
      for (let b = 0; b < B; b++) {
        const xs = Array.from({ length: T }, (_, t) => Float64Array.from(x.subarray((b * T + t) * d, (b * T + t + 1) * d)));
        slstmForward(deriveDims(cfg), params, 0, xs).forEach((yt, t) => want.set(yt, (b * T + t) * d));
      }
      expect(maxRelDiff(run(cfg, params, x, dy, true).y, want)).toBeLessThan(OUTPUT_RTOL);
    });

    it('gives the output and every gradient of the op-by-op block under autodiff', () => {
      expectLikeOpByOp(cfg, params, x, dy);
    });

    it('matches central finite differences of the float64 reference for x and every tensor', () => {
      const fused = run(cfg, params, x, dy, true);
      const x64 = Float64Array.from(x);
      const scale = Math.max(...[...fused.grads.values()].map(maxAbs));
      [...fused.grads].forEach(([name, g], salt) => {
        const param = name === 'x' ? x64 : (params.get(name) as Float64Array);
        const idx = [...new Set([0, param.length - 1, (salt * 7919 + 3) % param.length, (salt * 104729 + 11) % param.length])];
        const fd = finiteDiffGrad(() => refObjective(cfg, params, x64, dy), param, idx);
        idx.forEach((i, j) => {
          expect(Math.abs(g[i] - fd[j]), `${name}[${i}]: fused ${g[i]}, finite differences ${fd[j]}`).toBeLessThanOrEqual(FD_RTOL * maxAbs(g) + FLOOR * scale);
        });
      });
    });
  });

  // Widths no SIMD kernel covers (d 6, heads of 3): on wasm every pass and the scan take their JavaScript forms.
  it('gives the op-by-op block\'s output and gradients at widths the SIMD kernels do not cover', () => {
    const cfg = config(4, 6, 3);
    const rng = new Rng(4);
    const draw = () => Float32Array.from({ length: B * T * 6 }, () => rng.normal());
    expectLikeOpByOp(cfg, parameters(cfg, 5), draw(), draw());
  });

  it('leaves no tensors behind, with or without a backward pass', async () => {
    const cfg = config(4);
    const model = XlstmModel.init(cfg, 1);
    const w = model.weights.blocks[0] as SlstmWeights;
    const dims = deriveDims(cfg);
    const x = tf.randomNormal([B, T, cfg.inp_dim]) as tf.Tensor3D;
    await expectNoTensorLeak(() => tf.tidy(() => void slstmBlockTrain(x, w, dims).dataSync()));
    await expectNoTensorLeak(() => tf.tidy(() => void tf.grads((xi: tf.Tensor) => tf.sum(slstmBlockTrain(xi as tf.Tensor3D, w, dims)))([x])[0].dataSync()));
    x.dispose();
    model.dispose();
  });
});
