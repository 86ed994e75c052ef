/**
 * The recurrent mLSTM cell, one step at a time:
 *   m_t = max(logf_t + m_{t-1}, i_t); i' = exp(i_t - m_t); f' = exp(logf_t + m_{t-1} - m_t)
 *   C_t = f' C_{t-1} + i' v_t k_t^T; n_t = f' n_{t-1} + i' k_t
 *   h~ = C_t q_t / max(|n_t . q_t|, exp(min(-m_t, 80)))
 */
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid, stopGradient } from '../ops/activations.ts';
import { NORM_EXP_CAP, type MlstmCellInput, type MlstmCellOutput, type MlstmCellState } from './cell.ts';

/** One step: q, k, v [B, nh, dh]; i, f [B, nh]. Returns h~ [B, nh, dh] and the next state. */
export function mlstmStep(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  i: tf.Tensor2D,
  f: tf.Tensor2D,
  state: MlstmCellState,
): { h: tf.Tensor3D; state: MlstmCellState } {
  const logf = logSigmoid(f);
  const decayed = tf.add(logf, state.m);
  const m = stopGradient(tf.maximum(decayed, i)) as tf.Tensor2D; // [B, nh]
  const iw = tf.exp(tf.sub(i, m)); // [B, nh]
  const fw = tf.exp(tf.sub(decayed, m)); // [B, nh]
  const fw4 = tf.reshape(fw, [...fw.shape, 1, 1]);
  const iw4 = tf.reshape(iw, [...iw.shape, 1, 1]);
  const outer = tf.mul(tf.expandDims(v, 3), tf.expandDims(k, 2)); // [B, nh, dh, dh]: v_i k_j
  const C = tf.add(tf.mul(fw4, state.C), tf.mul(iw4, outer)) as tf.Tensor4D;
  const n = tf.add(tf.mul(tf.expandDims(fw, 2), state.n), tf.mul(tf.expandDims(iw, 2), k)) as tf.Tensor3D;
  const num = tf.squeeze(tf.matMul(C, tf.expandDims(q, 3)), [3]); // [B, nh, dh]
  const den = tf.sum(tf.mul(n, q), 2); // [B, nh]
  const floor = tf.exp(tf.minimum(tf.neg(m), NORM_EXP_CAP));
  const h = tf.div(num, tf.expandDims(tf.maximum(tf.abs(den), floor), 2)) as tf.Tensor3D;
  return { h, state: { C, n, m } };
}

/** The recurrent form over a whole sequence: mlstmStep for t = 0..T-1. */
export function mlstmRecurrent(x: MlstmCellInput, state: MlstmCellState | null, _wantState = true): MlstmCellOutput {
  const [B, nh, T, dh] = x.q.shape;
  let s = state ?? zeroCellState(B, nh, dh);
  const hs: tf.Tensor3D[] = [];
  const at = (t: tf.Tensor4D, j: number) => tf.reshape(tf.slice(t, [0, 0, j, 0], [B, nh, 1, dh]), [B, nh, dh]) as tf.Tensor3D;
  const gate = (t: tf.Tensor3D, j: number) => tf.reshape(tf.slice(t, [0, 0, j], [B, nh, 1]), [B, nh]) as tf.Tensor2D;
  for (let j = 0; j < T; j++) {
    const out = mlstmStep(at(x.q, j), at(x.k, j), at(x.v, j), gate(x.i, j), gate(x.f, j), s);
    hs.push(out.h);
    s = out.state;
  }
  return { h: tf.stack(hs, 2) as tf.Tensor4D, state: s };
}

/** C = n = 0 and m = -inf: the first step then has f' = 0 and i' = 1 exactly. */
export function zeroCellState(B: number, nh: number, dh: number): MlstmCellState {
  return {
    C: tf.zeros([B, nh, dh, dh]),
    n: tf.zeros([B, nh, dh]),
    m: tf.fill([B, nh], -Infinity),
  };
}
