/** The chunkwise mLSTM form: the parallel form inside chunks, the state (C, n, m) carried across them. */
import * as tf from '@tensorflow/tfjs-core';
import type { MlstmCellInput, MlstmCellOutput, MlstmCellState } from './cell.ts';
import { mlstmParallel } from './parallel.ts';

/** Chunk length: the T x T decay matrix shrinks to L x L per chunk. */
export const DEFAULT_CHUNK = 64;

export function mlstmChunkwise(x: MlstmCellInput, state: MlstmCellState | null, wantState = true, chunk = DEFAULT_CHUNK): MlstmCellOutput {
  const [B, nh, T, dh] = x.q.shape;
  if (T <= chunk) return mlstmParallel(x, state, wantState);
  let s = state;
  const hs: tf.Tensor4D[] = [];
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const L = Math.min(chunk, T - t0);
    const cut4 = (t: tf.Tensor4D) => tf.slice(t, [0, 0, t0, 0], [B, nh, L, dh]) as tf.Tensor4D;
    const cut3 = (t: tf.Tensor3D) => tf.slice(t, [0, 0, t0], [B, nh, L]) as tf.Tensor3D;
    // Every chunk but the last hands its state on; the last one only when asked.
    const last = t0 + L >= T;
    const out = mlstmParallel({ q: cut4(x.q), k: cut4(x.k), v: cut4(x.v), i: cut3(x.i), f: cut3(x.f) }, s, !last || wantState);
    hs.push(out.h);
    s = out.state;
  }
  return { h: tf.concat(hs, 2) as tf.Tensor4D, state: wantState ? s : null };
}
