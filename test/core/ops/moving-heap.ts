/**
 * A HostIO over JavaScript memory that moves every tensor's storage on each allocation, as a
 * growing wasm heap does (it detaches every view). A kernel that keeps a view across an
 * allocation then reads undefined (NaN) and its writes are lost: the fused kernels' outputs under
 * this IO equal their outputs under a real backend only if every view is taken afresh.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../../../src/core/host/io.ts';

type Info = tf.TensorInfo;

export interface MovingHeap extends HostIO {
  /** A tensor of this heap holding `values`. */
  put(values: Float32Array | Int32Array, shape: number[], dtype?: 'float32' | 'int32'): Info;
  /** A copy of a tensor's values. */
  read(t: Info): Float32Array;
}

export function movingHeap(): MovingHeap {
  const store = new Map<object, ArrayBuffer>();
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const move = () => {
    for (const [id, buf] of store) store.set(id, structuredClone(buf, { transfer: [buf] }));
  };
  const view = (t: Info): Float32Array => {
    const buf = store.get(t.dataId as object);
    if (!buf) throw new Error('moving heap: tensor was freed');
    return (t.dtype === 'int32' ? new Int32Array(buf) : new Float32Array(buf)) as Float32Array;
  };
  const alloc = (shape: number[]): Info => {
    move();
    const dataId = {};
    store.set(dataId, new ArrayBuffer(4 * size(shape)));
    return { dataId, shape, dtype: 'float32' } as Info;
  };
  return {
    view,
    alloc,
    free: (t) => void store.delete(t.dataId as object),
    // No wasm heap: kernels take their JavaScript paths.
    heap: null,
    addr: () => {
      throw new Error('moving heap: no heap addresses');
    },
    matMul: (a, b) => {
      const [M, K] = a.shape;
      const N = b.shape[1];
      const out = alloc([M, N]);
      const av = view(a);
      const bv = view(b);
      const ov = view(out);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let acc = 0;
          for (let p = 0; p < K; p++) acc += av[i * K + p] * bv[p * N + j];
          ov[i * N + j] = acc;
        }
      }
      move();
      return out;
    },
    put: (values, shape, dtype = 'float32') => {
      const t = alloc(shape);
      const info = { ...t, dtype } as Info;
      view(info).set(values as Float32Array);
      return info;
    },
    read: (t) => Float32Array.from(view(t)),
  };
}
