/** The mLSTM cell's state and the per-head inputs all three forms share. */
import type * as tf from '@tensorflow/tfjs-core';

/**
 * C [B, nh, dh, dh] with C[i, j] accumulating v_i k_j; n [B, nh, dh]; m [B, nh] the log-space
 * stabiliser (-Infinity before the first input).
 */
export interface MlstmCellState {
  readonly C: tf.Tensor4D;
  readonly n: tf.Tensor3D;
  readonly m: tf.Tensor2D;
}

/** q, k (already scaled by 1/sqrt(dh)), v [B, nh, T, dh]; input and forget pre-activations [B, nh, T]. */
export interface MlstmCellInput {
  readonly q: tf.Tensor4D;
  readonly k: tf.Tensor4D;
  readonly v: tf.Tensor4D;
  readonly i: tf.Tensor3D;
  readonly f: tf.Tensor3D;
}

export interface MlstmCellOutput {
  /** h~ [B, nh, T, dh] */
  readonly h: tf.Tensor4D;
  /** The state after the sequence; null when it was not asked for. */
  readonly state: MlstmCellState | null;
}

/** The normaliser's lower bound is exp(min(-m, NORM_EXP_CAP)): exp(-m) alone overflows float32. */
export const NORM_EXP_CAP = 80;

/**
 * A cell form: the whole sequence, continuing from `state` when given (else C = n = 0, m = -inf).
 * `wantState` asks for the state after the sequence (prefill); training leaves it false.
 */
export type MlstmForm = (x: MlstmCellInput, state: MlstmCellState | null, wantState: boolean) => MlstmCellOutput;
