/**
 * The stabilised parallel form of the mLSTM cell: log D[t, s] = b_t - b_s + i_s (s <= t) from the
 * cumulative sum b of logsigmoid(f), row maximum m_t, S = (q k^T) * exp(log D - m_t),
 * h~ = S v / max(|rowsum S|, exp(min(-m_t, 80))). Continuing from a state adds the carried memory
 * with weight exp(b_t + m_prev - m_t), which is what the recurrence unrolls to.
 */
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid, stopGradient } from '../ops/activations.ts';
import { mlstmParallelOp } from './parallel-op.ts';
import { NORM_EXP_CAP, type MlstmCellInput, type MlstmCellOutput, type MlstmCellState } from './cell.ts';

export function mlstmParallel(x: MlstmCellInput, state: MlstmCellState | null, wantState = true): MlstmCellOutput {
  const { q, k, v, i, f } = x;
  // Training (zero state, no state out) takes the fused op with its hand-written backward pass.
  if (!state && !wantState) return { h: mlstmParallelOp(q, k, v, i, f), state: null };
  const [B, nh, T, dh] = q.shape;
  const b = tf.cumsum(logSigmoid(f), 2) as tf.Tensor3D; // [B, nh, T]
  const pos = tf.range(0, T, 1, 'int32');
  const future = tf.where(tf.greater(tf.reshape(pos, [1, T]), tf.reshape(pos, [T, 1])), tf.fill([T, T], -Infinity), tf.zeros([T, T]));
  const logD = tf.add(tf.add(tf.sub(tf.expandDims(b, 3), tf.expandDims(b, 2)), tf.expandDims(i, 2)), future); // [B, nh, T, T]
  let m = tf.max(logD, 3) as tf.Tensor3D; // [B, nh, T]
  // Weight of the carried state in row t, before stabilising: b_t + m_prev.
  const carried = state ? tf.add(b, tf.expandDims(state.m, 2)) : null;
  if (carried) m = tf.maximum(m, carried) as tf.Tensor3D;
  m = stopGradient(m) as tf.Tensor3D;
  const D = tf.exp(tf.sub(logD, tf.expandDims(m, 3))); // [B, nh, T, T]
  const S = tf.mul(tf.matMul(q, tf.transpose(k, [0, 1, 3, 2])), D); // [B, nh, T, T]
  let num = tf.matMul(S, v); // [B, nh, T, dh]
  let den = tf.sum(S, 3); // [B, nh, T]
  let wCarried: tf.Tensor | null = null;
  if (state && carried) {
    wCarried = tf.exp(tf.sub(carried, m)); // [B, nh, T]
    // (C q)_i = sum_j C[i, j] q_j: rows of q times C^T.
    const fromC = tf.matMul(q, tf.transpose(state.C, [0, 1, 3, 2])); // [B, nh, T, dh]
    num = tf.add(num, tf.mul(tf.expandDims(wCarried, 3), fromC));
    den = tf.add(den, tf.mul(wCarried, tf.sum(tf.mul(q, tf.expandDims(state.n, 2)), 3)));
  }
  const floor = tf.exp(tf.minimum(tf.neg(m), NORM_EXP_CAP));
  const h = tf.div(num, tf.expandDims(tf.maximum(tf.abs(den), floor), 3)) as tf.Tensor4D;

  // End state: row T-1 of the decay weights applied to every (v_s, k_s).
  const mEnd = tf.reshape(tf.slice(m, [0, 0, T - 1], [B, nh, 1]), [B, nh]) as tf.Tensor2D;
  const wLast = tf.reshape(tf.slice(D, [0, 0, T - 1, 0], [B, nh, 1, T]), [B, nh, T, 1]); // [B, nh, T, 1]
  let C = tf.matMul(tf.transpose(tf.mul(v, wLast), [0, 1, 3, 2]), k) as tf.Tensor4D; // [B, nh, dh, dh]
  let n = tf.sum(tf.mul(k, wLast), 2) as tf.Tensor3D; // [B, nh, dh]
  if (state && wCarried) {
    const wEnd = tf.reshape(tf.slice(wCarried, [0, 0, T - 1], [B, nh, 1]), [B, nh, 1]);
    C = tf.add(C, tf.mul(tf.expandDims(wEnd, 3), state.C)) as tf.Tensor4D;
    n = tf.add(n, tf.mul(wEnd, state.n)) as tf.Tensor3D;
  }
  void dh;
  return { h, state: { C, n, m: mEnd } };
}
