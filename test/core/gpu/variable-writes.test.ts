import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { assignFrom } from '../../../src/train/flat-io.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();

describe.skipIf(reason)(webgpuTitle('weights assigned from a flat array on webgpu', reason), () => {
  it('lands in the variables, leaves work recorded before it and tensors sharing a variable\'s data as they were', async () => {
    await selectBackend('webgpu');
    // The initial tensor is let go, as training code does: the variable alone holds its data.
    const variable = (t: tf.Tensor) => {
      const v = tf.variable(t);
      t.dispose();
      return v;
    };
    const a = variable(tf.tensor2d([1, 2, 3, 4], [2, 2]));
    const b = variable(tf.tensor1d([5, 6, 7]));
    const c = variable(tf.tensor1d([8, 9]));
    // Each on the GPU, and a's values read back (tfjs then keeps a copy on the CPU, which must not go stale).
    await tf.addN([tf.sum(a), tf.sum(b), tf.sum(c)]).data();
    expect(Array.from(await a.data())).toEqual([1, 2, 3, 4]);
    // A clone shares c's data: c cannot be written in place without changing it too.
    const shared = tf.clone(c);
    // Recorded, not yet submitted: it must still read the old values.
    const before = tf.add(tf.sum(a), tf.sum(b));
    const flat = Float32Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    assignFrom([a, b, c], flat);
    // The caller may reuse its array at once: nothing reads it after the call.
    flat.fill(-1);
    expect(Array.from(await a.data())).toEqual([10, 20, 30, 40]);
    expect(Array.from(await b.data())).toEqual([50, 60, 70]);
    expect(Array.from(await c.data())).toEqual([80, 90]);
    expect(Array.from(await shared.data())).toEqual([8, 9]);
    expect((await before.data())[0]).toBe(10 + 18);
    // Used again after the write: the kernels read the new values, not a stale copy.
    expect((await tf.sum(tf.mul(a, 2)).data())[0]).toBe(200);
    tf.dispose([a, b, c, before, shared]);
  });
});
