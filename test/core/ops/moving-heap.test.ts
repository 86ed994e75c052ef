import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { deriveDims, validateModelConfig, XlstmModel } from '../../../src/core/index.ts';
import { hostIO, type HostIO } from '../../../src/core/host/io.ts';
import { mlstmTrainBackward, mlstmTrainForward, traceNames } from '../../../src/core/mlstm/train-kernels.ts';
import { headLossHost } from '../../../src/core/ops/head-loss-host.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';
import { movingHeap, type MovingHeap } from './moving-heap.ts';

/**
 * The fused kernels never read a view taken before an allocation: on wasm a growing heap detaches
 * every view, which happens only when an allocation grows the heap (the first steps of a fresh
 * process). Each kernel runs on the cpu backend and on a heap that moves at every allocation
 * (moving-heap.ts); the results must agree.
 */
describe('fused kernels on a heap that moves at every allocation', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });
  const rng = new Rng(9);
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

  /** Runs `kernel` on cpu host memory and on a moving heap with the same inputs; returns both outputs. */
  function both(inputs: Record<string, { values: Float32Array | Int32Array; shape: number[]; dtype?: 'int32' }>, kernel: (io: HostIO, inp: Record<string, tf.TensorInfo>) => tf.TensorInfo[]) {
    const cpu = hostIO('cpu', tf.backend());
    const heap: MovingHeap = movingHeap();
    const onCpu: Record<string, tf.TensorInfo> = {};
    const onHeap: Record<string, tf.TensorInfo> = {};
    const held: tf.Tensor[] = [];
    for (const [name, x] of Object.entries(inputs)) {
      const t = tf.tensor(x.values, x.shape, x.dtype ?? 'float32');
      held.push(t);
      onCpu[name] = t;
      onHeap[name] = heap.put(x.values, x.shape, x.dtype);
    }
    const want = kernel(cpu, onCpu).map((t) => {
      const v = Float32Array.from(cpu.view(t));
      cpu.free(t);
      return v;
    });
    const got = kernel(heap, onHeap).map((t) => heap.read(t));
    tf.dispose(held);
    return { want, got };
  }

  it('the mLSTM training forward and backward kernels', () => {
    const cfg = validateModelConfig({ vocab_size: 16, num_layers: 1, signature: [1, 0], inp_dim: 8, head_dim: 4, head_num: 2, p_factor: [2, 1.3333333], ker_size: 4 });
    const dims = deriveDims(cfg);
    const [B, T] = [2, 7];
    const model = XlstmModel.init(cfg, 2);
    const weights: Record<string, { values: Float32Array; shape: number[] }> = {};
    for (const [name, t] of Object.entries(model.weights.blocks[0])) {
      if (t instanceof tf.Tensor) weights[name] = { values: Float32Array.from(t.dataSync(), (v) => v + 0.2 * rng.normal()), shape: t.shape };
    }
    model.dispose();
    const attrs = { nh: dims.nh, dh: dims.dh, dm: dims.dm, k: dims.k };
    const x = { values: values(B * T * dims.d), shape: [B, T, dims.d] };
    const dy = { values: values(B * T * dims.d), shape: [B, T, dims.d] };
    // The backward kernel's trace is the forward kernel's output, run again on each heap.
    const { want, got } = both({ x, dy, ...weights }, (io, inp) => {
      const [y, ...trace] = mlstmTrainForward(io, inp, attrs);
      const bwd = { ...inp };
      traceNames(dims.k).forEach((name, j) => (bwd[name] = trace[j]));
      return [y, ...mlstmTrainBackward(io, bwd, attrs)];
    });
    expect(got.length).toBe(want.length);
    got.forEach((g, j) => expect(maxRelDiff(g, want[j]), `output ${j}`).toBeLessThan(1e-5));
  });

  it('the head and cross-entropy kernel, over two chunks and a padded last one', () => {
    const [N, d, V] = [300, 4, 11];
    const { want, got } = both(
      {
        x: { values: values(N * d), shape: [N, d] },
        W: { values: values(d * V), shape: [d, V] },
        targets: { values: Int32Array.from({ length: N }, () => rng.int(V)), shape: [N], dtype: 'int32' },
        weights: { values: new Float32Array(N).fill(1 / N), shape: [N] },
      },
      (io, inp) => headLossHost(io, inp, { withGrad: true }),
    );
    got.forEach((g, j) => expect(maxRelDiff(g, want[j]), `output ${j}`).toBeLessThan(1e-5));
  });
});
