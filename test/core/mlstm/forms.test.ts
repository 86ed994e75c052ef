import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import type { MlstmCellInput, MlstmCellOutput, MlstmCellState } from '../../../src/core/mlstm/cell.ts';
import { mlstmChunkwise } from '../../../src/core/mlstm/chunkwise.ts';
import { mlstmParallel } from '../../../src/core/mlstm/parallel.ts';
import { mlstmRecurrent } from '../../../src/core/mlstm/recurrent.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';

const [B, nh, T, dh] = [2, 3, 23, 4];

/**
 * Seeded cell inputs with gates spread over +-8 so the stabiliser moves. q and k are positive so
 * that n . q never cancels to ~0: where it does, h~ is ill-conditioned and float32 forms differ by
 * rounding alone, which says nothing about the forms.
 */
function inputs(seed: number): MlstmCellInput {
  const rng = new Rng(seed);
  const draw = (shape: number[], std: number, positive = false) =>
    tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, () => (positive ? Math.abs(rng.normal()) : rng.normal()) * std), shape);
  return {
    q: draw([B, nh, T, dh], 1, true) as tf.Tensor4D,
    k: draw([B, nh, T, dh], 0.5, true) as tf.Tensor4D,
    v: draw([B, nh, T, dh], 1) as tf.Tensor4D,
    i: draw([B, nh, T], 4) as tf.Tensor3D,
    f: draw([B, nh, T], 4) as tf.Tensor3D,
  };
}

const flat = (out: MlstmCellOutput) => {
  const s = out.state as MlstmCellState;
  return [out.h.dataSync(), s.C.dataSync(), s.n.dataSync(), s.m.dataSync()];
};

describe.each(TEST_BACKENDS)('mLSTM cell forms on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  it.each([1, 3, 8, 22])('chunkwise with chunks of %d equals the parallel and recurrent forms (outputs and end state)', (chunk) => {
    tf.tidy(() => {
      const x = inputs(chunk);
      const want = flat(mlstmRecurrent(x, null));
      for (const got of [flat(mlstmParallel(x, null)), flat(mlstmChunkwise(x, null, true, chunk))]) {
        got.forEach((g, j) => expect(maxRelDiff(g, want[j])).toBeLessThan(1e-5));
      }
    });
  });

  it('the training op (no state) gives the same h~ as the stateful parallel form', () => {
    tf.tidy(() => {
      const x = inputs(5);
      expect(maxRelDiff(mlstmParallel(x, null, false).h.dataSync(), mlstmParallel(x, null, true).h.dataSync())).toBeLessThan(1e-6);
    });
  });

  it('continues from a carried state exactly as one pass over the whole sequence', () => {
    tf.tidy(() => {
      const x = inputs(99);
      const whole = mlstmRecurrent(x, null);
      const cut = (t: tf.Tensor, from: number, len: number) =>
        t.rank === 4 ? tf.slice(t, [0, 0, from, 0], [B, nh, len, dh]) : tf.slice(t, [0, 0, from], [B, nh, len]);
      const part = (from: number, len: number): MlstmCellInput => ({
        q: cut(x.q, from, len) as tf.Tensor4D,
        k: cut(x.k, from, len) as tf.Tensor4D,
        v: cut(x.v, from, len) as tf.Tensor4D,
        i: cut(x.i, from, len) as tf.Tensor3D,
        f: cut(x.f, from, len) as tf.Tensor3D,
      });
      const first = mlstmParallel(part(0, 10), null);
      const second = mlstmParallel(part(10, T - 10), first.state);
      const h = tf.concat([first.h, second.h], 2);
      expect(maxRelDiff(h.dataSync(), whole.h.dataSync())).toBeLessThan(1e-5);
      expect(maxRelDiff((second.state as MlstmCellState).C.dataSync(), (whole.state as MlstmCellState).C.dataSync())).toBeLessThan(1e-5);
    });
  });
});
