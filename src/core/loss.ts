/** Next-token cross-entropy of a model on token windows, through the fused head-loss op. */
import * as tf from '@tensorflow/tfjs-core';
import type { FormName } from './mlstm/forms.ts';
import type { XlstmModel } from './model.ts';
import { headLoss } from './ops/head-loss.ts';

/**
 * Mean loss over unmasked positions (`sum`: their sum). windows [B, T+1] int32: inputs are the first T
 * tokens, targets the last T; mask [B, T] (1 = counted) is optional.
 */
export function nextTokenLoss(
  model: XlstmModel, windows: tf.Tensor2D, mask?: tf.Tensor2D, form: FormName = 'parallel', reduction: 'mean' | 'sum' = 'mean',
): tf.Scalar {
  const [B, T1] = windows.shape;
  const T = T1 - 1;
  const d = model.dims.d;
  const inputs = tf.slice(windows, [0, 0], [B, T]) as tf.Tensor2D;
  const targets = tf.reshape(tf.slice(windows, [0, 1], [B, T]), [B * T]) as tf.Tensor1D;
  const x = tf.reshape(model.hidden(inputs, form, null, false).x, [B * T, d]) as tf.Tensor2D;
  const m = mask ? tf.reshape(tf.cast(mask, 'float32'), [B * T]) : tf.ones([B * T]);
  const weights = (reduction === 'sum' ? m : tf.div(m, tf.maximum(tf.sum(m), 1))) as tf.Tensor1D;
  // A tied head is the embedding transposed; the transpose carries the gradient back to it.
  const W = model.weights.headT ?? (tf.transpose(model.weights.embedding) as tf.Tensor2D);
  return headLoss(x, W, targets, weights);
}
