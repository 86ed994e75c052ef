/**
 * The host cell's passes (cell-passes.ts) through the generated SIMD kernels of cell-kernels.ts, for a HostIO
 * whose tensors live in the wasm heap. The per-head state is a heap temporary held until release(); the
 * per-time-step factors of the decay and the gate gradients are written and read there by the shared
 * JavaScript (T exps a head, against the T^2 weights the kernels form).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { kernelsIn } from '../host/simd/instance.ts';
import type { HostIO } from '../host/io.ts';
import { CELL_STATE, CELL_STATE_ARRAYS, cellFns } from './cell-kernels.ts';
import { decayFactors, gateGradsFrom, type CellPasses, type CellShape } from './cell-passes.ts';

type Info = tf.TensorInfo;

/** The SIMD passes for shape s over io's heap; null without a heap, WebAssembly SIMD, or whole vectors of dh. */
export function simdCellPasses(io: HostIO, s: CellShape): CellPasses | null {
  const { T, nh, dh } = s;
  if (!io.heap || dh % 4 !== 0) return null;
  const heap = io.heap;
  const k = kernelsIn(heap, `mlstm-cell:${nh},${dh}`, () => cellFns({ nh, dh }));
  if (!k) return null;
  const H = nh * dh;
  // float64s as float32 pairs (io allocates float32 tensors), one pair spare to start them on 8 bytes.
  const state = io.alloc([2 * CELL_STATE_ARRAYS * T + 2]);
  const w = (io.addr(state) + 7) & ~7;
  /** State array `a` as a view (made afresh: a heap that grows leaves older views detached). */
  const arr = (a: keyof typeof CELL_STATE): Float64Array => new Float64Array(heap.buffer, w + 8 * T * CELL_STATE[a], T);
  /** The byte address of head j's first column in batch row b of x [N, H]. */
  const head = (x: Info, b: number, j: number): number => io.addr(x) + 4 * (b * T * H + j * dh);
  return {
    gather: (x, b, j, out, transposed) => (transposed ? k.gatherT : k.gather)(head(x, b, j), io.addr(out), T),
    decay: (gates, b, j) => decayFactors(io.view(gates), b, j, s, arr('A'), arr('step'), arr('floor')),
    stabilise: (P, ST) => (ST ? k.stabiliseT(io.addr(P), io.addr(ST), w, T) : k.stabilise(io.addr(P), w, T)),
    normalise: (num, h, b, j) => k.normalise(io.addr(num), head(h, b, j), w, T),
    outputGrad: (g, h, b, j, gz) => k.outputGrad(head(g, b, j), head(h, b, j), io.addr(gz), w, T),
    decayGrad: (dP, S, dPT) => k.decayGrad(io.addr(dP), io.addr(S), io.addr(dPT), w, T),
    put: (from, to, b, j) => k.put(io.addr(from), io.addr(to.t) + 4 * (b * T * to.stride + to.col + j * dh), 4 * to.stride, to.scale, T),
    gateGrads: (gates, to, b, j) => gateGradsFrom(io.view(gates), io.view(to.t), to, b, j, s, arr('row'), arr('col')),
    release: () => io.free(state),
  };
}
