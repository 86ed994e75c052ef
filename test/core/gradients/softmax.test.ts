/** The Softmax kernel, and logSoftmax / logSigmoid, whose customGrad must run with only our registrations. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('softmax gradients', () => {
  it('softmax over the last axis', () => {
    const rng = new Rng(41);
    checkGradient((x) => tf.softmax(x), [normal(rng, [2, 3, 4], 2)], rng);
  });
  it('logSoftmax over the last axis', () => {
    const rng = new Rng(43);
    checkGradient((x) => tf.logSoftmax(x), [normal(rng, [3, 5], 2)], rng);
  });
  it('logSigmoid', () => {
    const rng = new Rng(47);
    checkGradient((x) => tf.logSigmoid(x), [normal(rng, [2, 5], 3)], rng);
  });
  it('cross-entropy through logSoftmax and a gather of the targets', () => {
    const rng = new Rng(53);
    const targets = [2, 0, 4];
    checkGradient(
      (logits) => {
        const logp = tf.logSoftmax(logits); // [3, 5]
        const flat = tf.reshape(logp, [-1]); // [15]
        const picked = tf.gather(flat, tf.tensor1d(targets.map((t, row) => row * 5 + t), 'int32'));
        return tf.neg(tf.mean(picked));
      },
      [normal(rng, [3, 5], 2)],
      rng,
    );
  });
});
