/**
 * Next-token cross-entropy computed without a one-hot: logsumexp of the logits minus the target's
 * logit, taken as a row-wise dot product with the target's head row.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FormName } from './mlstm/forms.ts';
import type { XlstmModel } from './model.ts';
import { logSumExp } from './ops/log-sum-exp.ts';

/**
 * Mean loss over unmasked positions. windows [B, T+1] int32: inputs are the first T tokens,
 * targets the last T; mask [B, T] (1 = counted) is optional.
 */
export function nextTokenLoss(model: XlstmModel, windows: tf.Tensor2D, mask?: tf.Tensor2D, form: FormName = 'parallel'): tf.Scalar {
  const [B, T1] = windows.shape;
  const T = T1 - 1;
  const d = model.dims.d;
  const inputs = tf.slice(windows, [0, 0], [B, T]) as tf.Tensor2D;
  const targets = tf.reshape(tf.slice(windows, [0, 1], [B, T]), [B * T]) as tf.Tensor1D;
  const x = tf.reshape(model.hidden(inputs, form, null, false).x, [B * T, d]) as tf.Tensor2D;
  const lse = logSumExp(model.head(x));
  const headT = model.weights.headT;
  const rows = headT ? tf.transpose(tf.gather(headT, targets, 1)) : tf.gather(model.weights.embedding, targets); // [BT, d]
  const nll = tf.sub(lse, tf.sum(tf.mul(x, rows), 1)); // [BT]
  if (!mask) return tf.mean(nll) as tf.Scalar;
  const m = tf.reshape(tf.cast(mask, 'float32'), [B * T]);
  return tf.div(tf.sum(tf.mul(nll, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
}
