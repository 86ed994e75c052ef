/**
 * The parallel mLSTM cell from the zero state on host memory (cpu and wasm backends), forward and
 * backward, for the fused training block (train-block.ts). The same equations as parallel-op.ts,
 * one batch row and head at a time: the products run as plain 2-D matMuls on the backend's kernel
 * (on wasm a batched matMul takes a slow path, 10x slower than XNNPACK's 2-D one), the decay
 * weights and every [T, T] pointwise step run as the passes of cell-passes.ts: generated SIMD
 * kernels over the wasm heap (cell-passes-simd.ts) where there are, else float64 JavaScript.
 *
 * Rows are n = b*T + t; q, k, v, h~ are [N, H] with head j in columns [j*dh, (j+1)*dh);
 * gates [N, 2nh] hold the input gate of head j in column j and its forget gate in column nh + j.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { jsCellPasses, type CellPasses, type CellShape, type Columns } from './cell-passes.ts';
import { simdCellPasses } from './cell-passes-simd.ts';

export type { CellShape, Columns } from './cell-passes.ts';

type Info = tf.TensorInfo;

/** The SIMD passes where the wasm heap and WebAssembly SIMD allow, else the float64 JavaScript ones. */
export function cellPassesFor(io: HostIO, s: CellShape): CellPasses {
  return simdCellPasses(io, s) ?? jsCellPasses(io, s);
}

function forEachHead(B: number, nh: number, run: (b: number, j: number) => void): void {
  for (let b = 0; b < B; b++) for (let j = 0; j < nh; j++) run(b, j);
}

/** h~ [N, H] from q, k (already scaled), v [N, H] and gates [N, 2nh]: writes `h`. */
export function cellForward(io: HostIO, q: Info, k: Info, v: Info, gates: Info, h: Info, s: CellShape, passes?: CellPasses): void {
  const { B, T, nh, dh } = s;
  const P = passes ?? cellPassesFor(io, s);
  try {
    forEachHead(B, nh, (b, j) => {
      const Qh = io.alloc([T, dh]);
      const KT = io.alloc([dh, T]);
      const Vh = io.alloc([T, dh]);
      P.gather(q, b, j, Qh, false);
      P.gather(k, b, j, KT, true);
      P.gather(v, b, j, Vh, false);
      P.decay(gates, b, j);
      const S = io.matMul(Qh, KT); // [T, T]: q k^T, made S in place
      P.stabilise(S, null);
      const num = io.matMul(S, Vh); // [T, dh]
      P.normalise(num, h, b, j);
      for (const x of [Qh, KT, Vh, S, num]) io.free(x);
    });
  } finally {
    if (!passes) P.release();
  }
}

/**
 * Destinations of the cell's gradients: dq, dk (with respect to the scaled key), dv with H columns
 * each; dgates with 2nh (input gates, then forget gates, as in `gates`).
 */
export interface CellGrads {
  readonly dq: Columns;
  readonly dk: Columns;
  readonly dv: Columns;
  readonly dgates: Columns;
}

/**
 * Gradients of the cell from dh [N, H], given its inputs and its output h~ (m a constant: it
 * cancels between numerator and normaliser). Per head, with gz = dh / z:
 *   dr = -rowsum(dh * h~) / z * sign(r) [|r| > floor];  dS = gz v^T + dr 1^T
 *   dv = S^T gz;  dP = dS * D;  dq = dP k;  dk = dP^T q
 *   dlogD = dS * S;  di = colsum dlogD;  db = rowsum dlogD - colsum dlogD
 *   df = (reverse cumsum db) * sigmoid(-f)
 */
export function cellBackward(io: HostIO, q: Info, k: Info, v: Info, gates: Info, h: Info, dh_: Info, s: CellShape, out: CellGrads, passes?: CellPasses): void {
  const { B, T, nh, dh } = s;
  const P = passes ?? cellPassesFor(io, s);
  try {
    forEachHead(B, nh, (b, j) => {
      // Every [T, T] matrix is the left operand: the right one is packed by XNNPACK on each call,
      // so it is kept to the small [T, dh] and [dh, T] ones. S^T and dP^T are written beside S, dP.
      const Qh = io.alloc([T, dh]);
      const Kh = io.alloc([T, dh]);
      const KT = io.alloc([dh, T]);
      const VT = io.alloc([dh, T]);
      const gz = io.alloc([T, dh]);
      const ST = io.alloc([T, T]);
      const dPT = io.alloc([T, T]);
      P.gather(q, b, j, Qh, false);
      P.gather(k, b, j, Kh, false);
      P.gather(k, b, j, KT, true);
      P.gather(v, b, j, VT, true);
      P.decay(gates, b, j);
      const S = io.matMul(Qh, KT);
      P.stabilise(S, ST);
      P.outputGrad(dh_, h, b, j, gz);
      const dP = io.matMul(gz, VT); // [T, T]: gz v^T, made dP in place
      P.decayGrad(dP, S, dPT);
      const dqh = io.matMul(dP, Kh); // dP k: [T, dh]
      const dkh = io.matMul(dPT, Qh); // dP^T q: [T, dh]
      const dvh = io.matMul(ST, gz); // S^T gz: [T, dh]
      P.put(dqh, out.dq, b, j);
      P.put(dkh, out.dk, b, j);
      P.put(dvh, out.dv, b, j);
      P.gateGrads(gates, out.dgates, b, j);
      for (const x of [Qh, Kh, KT, VT, gz, ST, dPT, S, dP, dqh, dkh, dvh]) io.free(x);
    });
  } finally {
    if (!passes) P.release();
  }
}
