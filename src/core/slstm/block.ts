/**
 * The sLSTM block (DESIGN "sLSTM block"): pre-norm, causal conv, the gate input projections for
 * all T at once, the recurrent scan, GroupNorm and the gated GeLU MLP. Returns x + f(LN(x)).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import { gelu, silu } from '../ops/activations.ts';
import { causalConv, convHistory } from '../ops/causal-conv.ts';
import { groupNorm, layerNorm } from '../ops/norms.ts';
import type { SlstmWeights } from '../weights.ts';
import { onWebgpu } from '../gpu/device.ts';
import { slstmScanGpu } from '../gpu/slstm-scan.ts';
import { slstmBlockTrainGpu } from '../gpu/slstm-train-block.ts';
import { slstmScanFrom, slstmScanTrain, zeroScanState } from './scan.ts';
import { fusedSlstmTraining, slstmBlockTrain } from './train-block.ts';

/** Per-sequence state, [B, H] each (conv [B, k-1, d], absent when k = 0). */
export interface SlstmBlockState {
  readonly conv?: tf.Tensor3D;
  readonly c: tf.Tensor2D;
  readonly n: tf.Tensor2D;
  readonly h: tf.Tensor2D;
  readonly m: tf.Tensor2D;
}

export function slstmInitState(B: number, dims: Dims): SlstmBlockState {
  const z = zeroScanState(B, dims.H);
  const cell = {
    c: tf.tensor2d(z.c, [B, dims.H]),
    n: tf.tensor2d(z.n, [B, dims.H]),
    h: tf.tensor2d(z.h, [B, dims.H]),
    m: tf.tensor2d(z.m, [B, dims.H]),
  };
  return dims.k > 0 ? { conv: tf.zeros([B, dims.k - 1, dims.d]), ...cell } : cell;
}

/**
 * x [B, T, d] -> x + f(LN(x)). With `state` null and `wantState` false this is the differentiable
 * training path from the zero state; otherwise the scan continues from `state` and returns the next one.
 */
export function slstmBlock(
  x: tf.Tensor3D,
  w: SlstmWeights,
  dims: Dims,
  state: SlstmBlockState | null,
  wantState: boolean,
): { y: tf.Tensor3D; state: SlstmBlockState | null } {
  // On webgpu the training path is one op of a few dispatches instead of ~170 autodiffed ones.
  if (onWebgpu() && !state && !wantState) return { y: slstmBlockTrainGpu(x, w, dims), state: null };
  // On cpu and wasm it is three ops with hand-written backward passes (train-block.ts).
  if (fusedSlstmTraining() && !state && !wantState) return { y: slstmBlockTrain(x, w, dims), state: null };
  const { d, H, nh, dh, P, k } = dims;
  const [B, T] = x.shape;
  const xn3 = layerNorm(x, w.normW, w.normB) as tf.Tensor3D;
  const xn = tf.reshape(xn3, [B * T, d]);
  let c = xn;
  let conv: tf.Tensor3D | undefined;
  if (k > 0 && w.convW && w.convB) {
    c = tf.reshape(silu(causalConv(xn3, w.convW, w.convB, state?.conv)), [B * T, d]);
    if (wantState) conv = convHistory(xn3, k, state?.conv);
  }
  const gx = tf.reshape(tf.add(tf.concat([tf.matMul(c, w.wC), tf.matMul(xn, w.wX)], 1), w.bG), [B, T, 4 * H]) as tf.Tensor3D;
  let hs: tf.Tensor;
  let next: SlstmBlockState | null = null;
  if (onWebgpu()) {
    // WebGPU under Node cannot read back synchronously: the scan runs as WGSL kernels on the device.
    const out = slstmScanGpu(gx, w.R, state ?? slstmInitState(B, dims));
    hs = out.hs;
    const cell = { c: out.c, n: out.n, h: out.h, m: out.m };
    next = conv ? { conv, ...cell } : cell;
  } else if (!state && !wantState) {
    hs = slstmScanTrain(gx, w.R);
  } else {
    const s0 = state
      ? { c: state.c.dataSync() as Float32Array, n: state.n.dataSync() as Float32Array, h: state.h.dataSync() as Float32Array, m: state.m.dataSync() as Float32Array }
      : zeroScanState(B, H);
    // sync: the scan runs on the host
    const out = slstmScanFrom(gx.dataSync() as Float32Array, w.R.dataSync() as Float32Array, s0, { B, T, nh, dh });
    hs = tf.tensor3d(out.hs, [B, T, H]);
    const cell = {
      c: tf.tensor2d(out.state.c, [B, H]),
      n: tf.tensor2d(out.state.n, [B, H]),
      h: tf.tensor2d(out.state.h, [B, H]),
      m: tf.tensor2d(out.state.m, [B, H]),
    };
    next = conv ? { conv, ...cell } : cell;
  }
  const y = groupNorm(tf.reshape(hs, [B * T, H]), nh, w.outW, w.outB);
  const [a, b] = tf.split(tf.add(tf.matMul(y, w.wUp), w.bUp), [P, P], 1);
  const out = tf.add(tf.matMul(tf.mul(gelu(a), b), w.wDown), w.bDown);
  return { y: tf.add(x, tf.reshape(out, [B, T, d])) as tf.Tensor3D, state: next };
}
