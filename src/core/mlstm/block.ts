/**
 * The mLSTM block (DESIGN "mLSTM block"): pre-norm, up-projections, causal conv, q/k/v and gates,
 * the cell in a chosen form, output gate, GroupNorm, skip, silu(r) gating and the down projection.
 * Returns the residual output x + f(LN(x)).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import { silu } from '../ops/activations.ts';
import { causalConv, convHistory } from '../ops/causal-conv.ts';
import { groupNorm, layerNorm } from '../ops/norms.ts';
import type { MlstmWeights } from '../weights.ts';
import type { MlstmCellState, MlstmForm } from './cell.ts';
import { zeroCellState } from './recurrent.ts';

/** Per-sequence state: the conv history (absent when k = 0) and the cell's (C, n, m). */
export interface MlstmBlockState extends MlstmCellState {
  readonly conv?: tf.Tensor3D; // [B, k-1, dm]
}

export function mlstmInitState(B: number, dims: Dims): MlstmBlockState {
  const cell = zeroCellState(B, dims.nh, dims.dh);
  return dims.k > 0 ? { conv: tf.zeros([B, dims.k - 1, dims.dm]), ...cell } : cell;
}

/** [B, T, H] -> [B, nh, T, dh] */
function heads(x: tf.Tensor, B: number, T: number, nh: number, dh: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [B, T, nh, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, T, nh] -> [B, nh, T] */
function gates(x: tf.Tensor): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
}

/** x [B, T, d] -> (x + f(LN(x)) [B, T, d], state after the sequence). */
export function mlstmBlock(
  x: tf.Tensor3D,
  w: MlstmWeights,
  dims: Dims,
  form: MlstmForm,
  state: MlstmBlockState | null,
  wantState: boolean,
): { y: tf.Tensor3D; state: MlstmBlockState | null } {
  const { d, dm, H, nh, dh, k } = dims;
  const [B, T] = x.shape;
  const xn = tf.reshape(layerNorm(x, w.normW, w.normB), [B * T, d]);
  const [u2, r] = tf.split(tf.add(tf.matMul(xn, w.wUp), w.bUp), [dm, H], 1); // [BT, dm], [BT, H]
  let c = u2;
  let conv: tf.Tensor3D | undefined;
  if (k > 0 && w.convW && w.convB) {
    const u3 = tf.reshape(u2, [B, T, dm]) as tf.Tensor3D;
    c = tf.reshape(silu(causalConv(u3, w.convW, w.convB, state?.conv)), [B * T, dm]);
    if (wantState) conv = convHistory(u3, k, state?.conv);
  }
  const [qkif, skip] = tf.split(tf.matMul(c, w.wC), [2 * H + 2 * nh, H], 1);
  const [q, kRaw, ig, fg] = tf.split(tf.add(qkif, w.bC), [H, H, nh, nh], 1);
  const kScaled = tf.mul(kRaw, 1 / Math.sqrt(dh)); // the key is scaled after its bias
  const [v, og] = tf.split(tf.add(tf.matMul(u2, w.wU), w.bU), [H, H], 1);
  const cell = form(
    {
      q: heads(q, B, T, nh, dh),
      k: heads(kScaled, B, T, nh, dh),
      v: heads(v, B, T, nh, dh),
      i: gates(tf.reshape(ig, [B, T, nh])),
      f: gates(tf.reshape(fg, [B, T, nh])),
    },
    state ? { C: state.C, n: state.n, m: state.m } : null,
    wantState,
  );
  const hTilde = tf.reshape(tf.transpose(cell.h, [0, 2, 1, 3]), [B * T, H]); // [BT, H]
  const h = tf.mul(tf.sigmoid(og), hTilde);
  const y = tf.mul(tf.add(groupNorm(h, nh, w.outW, w.outB), skip), silu(r)); // [BT, H]
  const out = tf.add(tf.matMul(y, w.wDown), w.bDown); // [BT, d]
  return {
    y: tf.add(x, tf.reshape(out, [B, T, d])) as tf.Tensor3D,
    state: cell.state && conv ? { conv, ...cell.state } : cell.state,
  };
}
