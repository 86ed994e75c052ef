import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { deriveDims, modelParams, nextTokenLoss, XlstmModel, type FormName, type ModelConfig } from '../../src/core/index.ts';
import { setFusedMlstmTraining } from '../../src/core/mlstm/train-block.ts';
import { TEST_BACKENDS } from '../support/backends.ts';
import { finiteDiffGrad, refLoss } from '../support/reference/index.ts';
import { loadFixture } from '../support/tiny-model.ts';

/**
 * Gradients of every parameter tensor against central finite differences of the float64
 * reference loss. float32 backprop through ~20 ops keeps about 5 significant digits of each
 * gradient, so an entry may differ from the float64 derivative by 1e-3 of that tensor's
 * largest gradient, plus a 1e-6 floor: some gradients are exactly zero (a constant shift of every
 * sLSTM input-gate pre-activation cancels between c and n), and float32 leaves ~1e-10 there.
 */
const GRAD_RTOL = 1e-3;
const GRAD_ATOL = 1e-6;

const windows = [
  [25, 63, 16, 27, 17, 55, 13, 12, 33, 7],
  [7, 18, 24, 45, 28, 48, 61, 32, 45, 2],
];
const mask = [
  [1, 1, 1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 0, 1, 1, 1, 1, 0],
];

/** A few entries of each tensor: first, last and two seeded ones between. */
function sampleIndices(size: number, salt: number): number[] {
  const picks = new Set([0, size - 1, (salt * 7919) % size, (salt * 104729 + 13) % size]);
  return [...picks];
}

function tfGrads(config: ModelConfig, params: Map<string, Float64Array>, form: FormName, withMask: boolean, rows = windows): Map<string, Float32Array> {
  const specs = modelParams(deriveDims(config));
  const tensors = specs.map((s) => tf.tensor(Float32Array.from(params.get(s.name) as Float64Array), [...s.shape]));
  const grads = tf.tidy(() =>
    tf.grads((...ts: tf.Tensor[]) => {
      const model = XlstmModel.fromNamed(config, new Map(specs.map((s, j) => [s.name, ts[j]])));
      const w = tf.tensor2d(rows, undefined, 'int32');
      return nextTokenLoss(model, w, withMask ? tf.tensor2d(mask) : undefined, form);
    })(tensors),
  );
  const out = new Map(specs.map((s, j) => [s.name, grads[j].dataSync() as Float32Array]));
  tf.dispose([...tensors, ...grads]);
  return out;
}

const fdCache = new Map<string, number[]>();

describe.each(TEST_BACKENDS)('gradients of the loss on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  describe.each(['tiny', 'noconv'] as const)('the %s fixture', (name) => {
    const fx = loadFixture(name);
    // The oracle sees the float32 values the model holds.
    const params = new Map([...fx.params].map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
    const tokens = windows.map((w) => w.slice(0, -1));
    const targets = windows.map((w) => w.slice(1));

    it.each([
      ['parallel', false],
      ['parallel', true],
    ] as const)('match finite differences of the float64 reference for every tensor (%s form, mask %s)', (form, withMask) => {
      const grads = tfGrads(fx.config, params, form, withMask);
      let worst = 0;
      for (const [salt, spec] of modelParams(deriveDims(fx.config)).entries()) {
        const p = params.get(spec.name) as Float64Array;
        const g = grads.get(spec.name) as Float32Array;
        const idx = sampleIndices(p.length, salt + 1);
        // The float64 oracle does not depend on the backend: computed once, reused by the other.
        const key = `${name} ${withMask} ${spec.name}`;
        const fd = fdCache.get(key) ?? finiteDiffGrad(() => refLoss(fx.config, params, tokens, targets, withMask ? mask : undefined), p, idx);
        fdCache.set(key, fd);
        const scale = Math.max(...Array.from(g, Math.abs));
        idx.forEach((i, j) => {
          const err = Math.abs(g[i] - fd[j]);
          worst = Math.max(worst, err / (scale + GRAD_ATOL / GRAD_RTOL));
          expect(err, `${spec.name}[${i}]: tfjs ${g[i]}, finite differences ${fd[j]}`).toBeLessThanOrEqual(GRAD_RTOL * scale + GRAD_ATOL);
        });
      }
      expect(worst).toBeLessThan(GRAD_RTOL);
    });

    // On cpu and wasm the parallel form trains through the fused mLSTM op (mlstm/train-block.ts).
    it('gives the same gradients through the fused mLSTM training op as op by op', () => {
      const fused = tfGrads(fx.config, params, 'parallel', true);
      setFusedMlstmTraining(false);
      let ops: Map<string, Float32Array>;
      try {
        ops = tfGrads(fx.config, params, 'parallel', true);
      } finally {
        setFusedMlstmTraining(true);
      }
      for (const [k, g] of ops) {
        const o = fused.get(k) as Float32Array;
        const scale = Math.max(...Array.from(g, Math.abs));
        const err = Math.max(...Array.from(g, (v, i) => Math.abs(v - o[i])));
        expect(err, k).toBeLessThanOrEqual(1e-4 * scale + GRAD_ATOL);
      }
    });

    // Training runs the parallel or chunkwise form; the recurrent form serves generation only.
    it('gives the same gradients in the chunkwise form (two chunks of 64 and one of 2) as in the parallel form', () => {
      const long = [Array.from({ length: 131 }, (_, t) => (t * 37 + 11) % 64)];
      const par = tfGrads(fx.config, params, 'parallel', false, long);
      for (const form of ['chunkwise'] as const) {
        const other = tfGrads(fx.config, params, form, false, long);
        for (const [k, g] of par) {
          const o = other.get(k) as Float32Array;
          const scale = Math.max(...Array.from(g, Math.abs));
          const err = Math.max(...Array.from(g, (v, i) => Math.abs(v - o[i])));
          expect(err, `${form} ${k}`).toBeLessThanOrEqual(1e-4 * scale + GRAD_ATOL);
        }
      }
    });
  });
});
