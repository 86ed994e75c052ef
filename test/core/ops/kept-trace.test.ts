import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { keepTrace, recording, releaseTrace } from '../../../src/core/ops/kept-trace.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';

/**
 * An op y = 2 x whose backward pass reads a kept trace (the 2): its lifetime across a normal
 * backward pass, a forward pass without a tape, and a backward pass that prunes the op.
 */
function doubled(x: tf.Tensor): tf.Tensor {
  const taped = recording();
  return tf.customGrad((...args) => {
    const xi = args[0] as tf.Tensor;
    const two = tf.fill(xi.shape, 2);
    const trace = taped ? keepTrace([two]) : null;
    const y = tf.mul(xi, two);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor) => {
        if (!trace) throw new Error('no trace');
        const g = tf.mul(dy, trace.tensors[0]);
        releaseTrace(trace);
        return g;
      },
    };
  })(x);
}

describe.each(TEST_BACKENDS)('kept traces on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  it('are read and freed by the backward pass, and never made without a tape', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const before = tf.memory().numTensors;
    const g = tf.grads((a: tf.Tensor) => tf.sum(doubled(a)))([x])[0];
    expect(Array.from(g.dataSync())).toEqual([2, 2, 2]);
    g.dispose();
    tf.tidy(() => {
      doubled(x);
    });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('left by a backward pass that pruned their op are freed when a later tape records', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const z = tf.scalar(4);
    const before = tf.memory().numTensors;
    // The gradient is taken for z only: the doubling is not on its path and its trace stays kept.
    const gz = tf.grads((a: tf.Tensor) => tf.add(tf.sum(doubled(x)), a))([z])[0];
    gz.dispose();
    expect(tf.memory().numTensors).toBe(before + 1);
    const gx = tf.grads((a: tf.Tensor) => tf.sum(doubled(a)))([x])[0];
    gx.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, z]);
  });
});
