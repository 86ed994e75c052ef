/**
 * The parallel mLSTM cell from the zero state as ONE differentiable op with a hand-written
 * backward pass. Built from autodiff'd tfjs ops, every intermediate [B, nh, T, T] tensor would be
 * copied for the tape (tfjs clones what each kernel saves); here only q, k, v, i, f are kept and
 * the decay matrix is recomputed in the backward pass.
 *
 * Forward (per batch row and head; m is a constant for the gradient, it cancels exactly):
 *   b = cumsum(logsigmoid(f)); log D[t,s] = b_t - b_s + i_s (s <= t); m_t = max_s log D[t,s]
 *   D = exp(log D - m); S = (q k^T) * D; r = rowsum S; z = max(|r|, exp(min(-m, 80))); h = S v / z
 * Backward, from g = dL/dh:
 *   dS = (g / z) v^T - (rowsum(g * h) / z) * sign(r) [|r| > floor] 1^T
 *   dv = S^T (g / z); dq = (dS * D) k; dk = (dS * D)^T q
 *   dlogD = dS * S; di = colsum dlogD; db = rowsum dlogD - colsum dlogD
 *   dlogf = reverse cumsum db; df = dlogf * sigmoid(-f)
 */
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid } from '../ops/activations.ts';
import { NORM_EXP_CAP } from './cell.ts';

/** The decay weights D, stabilisers m and normaliser floor for given gates (no tape needed). */
function decay(i: tf.Tensor3D, f: tf.Tensor3D) {
  const T = i.shape[2];
  const b = tf.cumsum(logSigmoid(f), 2); // [B, nh, T]
  const pos = tf.range(0, T, 1, 'int32');
  // 0 on and below the diagonal, -inf above: added, it masks with a broadcasting add (tf.where
  // would broadcast its condition through Tile, slow on wasm).
  const future = tf.where(tf.greater(tf.reshape(pos, [1, T]), tf.reshape(pos, [T, 1])), tf.fill([T, T], -Infinity), tf.zeros([T, T]));
  const logD = tf.add(tf.add(tf.sub(tf.expandDims(b, 3), tf.expandDims(b, 2)), tf.expandDims(i, 2)), future); // [B, nh, T, T]
  const m = tf.max(logD, 3); // [B, nh, T]
  const D = tf.exp(tf.sub(logD, tf.expandDims(m, 3)));
  const floor = tf.exp(tf.minimum(tf.neg(m), NORM_EXP_CAP));
  return { D, floor };
}

const kT = (k: tf.Tensor) => tf.transpose(k, [0, 1, 3, 2]);

/** q, k, v [B, nh, T, dh]; i, f [B, nh, T] -> h~ [B, nh, T, dh]. */
export const mlstmParallelOp: (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, i: tf.Tensor3D, f: tf.Tensor3D) => tf.Tensor4D = tf.customGrad(
  (...args) => {
    const [q, k, v, i, f] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor3D];
    const save = args[5] as tf.GradSaveFunc;
    const h = tf.tidy(() => {
      const { D, floor } = decay(i, f);
      const S = tf.mul(tf.matMul(q, kT(k)), D);
      const z = tf.maximum(tf.abs(tf.sum(S, 3)), floor);
      return tf.div(tf.matMul(S, v), tf.expandDims(z, 3)) as tf.Tensor4D;
    });
    save([q, k, v, i, f, h]);
    return {
      value: h,
      gradFunc: (g: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [q, k, v, i, f, h] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor3D, tf.Tensor4D];
        const { D, floor } = decay(i, f);
        const P = tf.matMul(q, kT(k));
        const S = tf.mul(P, D);
        const r = tf.sum(S, 3); // [B, nh, T]
        const z = tf.maximum(tf.abs(r), floor);
        const gz = tf.div(g, tf.expandDims(z, 3)); // [B, nh, T, dh]
        const live = tf.cast(tf.greater(tf.abs(r), floor), 'float32');
        const dr = tf.mul(tf.mul(tf.neg(tf.div(tf.sum(tf.mul(g, h), 3), z)), tf.sign(r)), live); // [B, nh, T]
        const dS = tf.add(tf.matMul(gz, kT(v)), tf.expandDims(dr, 3)); // [B, nh, T, T]
        const dv = tf.matMul(kT(S), gz);
        const dP = tf.mul(dS, D);
        const dq = tf.matMul(dP, k);
        const dk = tf.matMul(kT(dP), q);
        const dlogD = tf.mul(dS, S);
        const col = tf.sum(dlogD, 2); // [B, nh, T]: sum over t for each s
        const db = tf.sub(tf.sum(dlogD, 3), col);
        const dlogf = tf.cumsum(db, 2, false, true);
        const df = tf.mul(dlogf, tf.sigmoid(tf.neg(f)));
        return [dq, dk, dv, col, df];
      },
    };
  },
);
