/**
 * The xLSTM language model: embedding -> blocks by signature -> final LayerNorm -> head.
 * forward() for whole sequences (training, checks), prefill() + step() for generation.
 * Every method is synchronous and allocates tensors: call it inside tf.tidy.
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../util/errors.ts';
import { deriveDims, type Dims, type ModelConfig } from './config.ts';
import { initNamed } from './init.ts';
import { mlstmBlock, mlstmInitState, type MlstmBlockState } from './mlstm/block.ts';
import { formByName, type FormName } from './mlstm/forms.ts';
import { fusedMlstmTraining, mlstmBlockTrain } from './mlstm/train-block.ts';
import type { MlstmForm } from './mlstm/cell.ts';
import { decodeStepGpu } from './gpu/decode-step.ts';
import { onWebgpu } from './gpu/device.ts';
import { cachedPackedWeights, disposePackedWeights, freshPackedState, isPacked, packState, PACKED, unpackState } from './gpu/pack.ts';
import { fusedBlockStep, hasHostKernels, normRowsFused } from './host/kernels.ts';
import { hostModelPrefill } from './host/model-prefill.ts';
import { hostModelStep, hostStepAvailable, hostStepWeights } from './host/model-step.ts';
import { disposeStepWeights } from './host/step-weights.ts';
import { layerNorm } from './ops/norms.ts';
import { slstmBlock, slstmInitState, type SlstmBlockState } from './slstm/block.ts';
import { stateBytesPerRow, type BlockState, type ModelState } from './state.ts';
import { recomputed } from './recompute.ts';
import { blockTensors, mapWeights, packWeights, rebind, unpackWeights, weightEntries, type BlockWeights, type ModelWeights } from './weights.ts';

/** tfjs variable names are global: each trainable copy gets its own prefix. */
let trainableCopies = 0;

/** A tensor as plain data, the form checkpoints read and write. */
export interface NamedArray {
  readonly shape: number[];
  readonly data: Float32Array;
}

export class XlstmModel {
  readonly dims: Dims;
  private tiedHeadT: tf.Tensor2D | null = null;

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.dims = deriveDims(config);
  }

  /** Copies named PyTorch-layout tensors into the runtime layout; the caller keeps and disposes `named`. */
  static fromNamed(config: ModelConfig, named: ReadonlyMap<string, tf.Tensor>): XlstmModel {
    return new XlstmModel(config, packWeights(named, deriveDims(config), config.tie_weights === true));
  }

  /** From plain named arrays (a loaded checkpoint); tensors are created and owned by the model. */
  static fromArrays(config: ModelConfig, arrays: ReadonlyMap<string, NamedArray>): XlstmModel {
    const named = new Map([...arrays].map(([name, a]) => [name, tf.tensor(a.data, [...a.shape])] as const));
    try {
      return XlstmModel.fromNamed(config, named);
    } finally {
      for (const t of named.values()) t.dispose();
    }
  }

  /** Named PyTorch-layout arrays for a checkpoint (reads the weights back from the device). */
  toArrays(): Map<string, NamedArray> {
    const named = this.toNamed();
    const out = new Map<string, NamedArray>();
    for (const [name, t] of named) {
      out.set(name, { shape: [...t.shape], data: t.dataSync() as Float32Array });
      t.dispose();
    }
    return out;
  }

  /** A freshly initialised model (DESIGN's initialisation), reproducible from `seed`. */
  static init(config: ModelConfig, seed: number): XlstmModel {
    const named = initNamed(deriveDims(config), seed);
    try {
      return XlstmModel.fromNamed(config, named);
    } finally {
      for (const t of named.values()) t.dispose();
    }
  }

  /**
   * A trainable copy: every weight becomes a tf.Variable named by its packed name (weightEntries),
   * so tf.variableGrads differentiates the loss with respect to all of them.
   */
  asTrainable(): XlstmModel {
    return new XlstmModel(this.config, mapWeights(this.weights, (t, name) => tf.variable(t, true, `xlstm${++trainableCopies}/${name}`)));
  }

  /** Named PyTorch-layout tensors for a checkpoint (new tensors, owned by the caller). */
  toNamed(): Map<string, tf.Tensor> {
    return unpackWeights(this.weights, this.dims);
  }

  /** Logits of every position: tokens [B, T] int32 -> [B, T, V]. */
  forward(tokens: tf.Tensor2D, form: FormName = 'parallel'): tf.Tensor3D {
    const [B, T] = tokens.shape;
    if (form === 'recurrent') {
      let state = this.initState(B);
      const rows: tf.Tensor2D[] = [];
      for (let t = 0; t < T; t++) {
        const out = this.step(tf.reshape(tf.slice(tokens, [0, t], [B, 1]), [B]) as tf.Tensor1D, state);
        rows.push(out.logits);
        state = out.state;
      }
      return tf.stack(rows, 1) as tf.Tensor3D;
    }
    const { x } = this.hidden(tokens, form, null, false);
    return tf.reshape(this.head(tf.reshape(x, [B * T, this.dims.d]) as tf.Tensor2D), [B, T, this.dims.V]) as tf.Tensor3D;
  }

  /**
   * The final-normed hidden states x [B, T, d] of a sequence, continuing from `state` when given.
   * `wantState` asks for the state after the sequence; without it (and without a state) the
   * blocks take their differentiable training paths.
   */
  hidden(tokens: tf.Tensor2D, form: FormName, state: ModelState | null, wantState: boolean): { x: tf.Tensor3D; state: ModelState | null } {
    this.checkTokens(tokens);
    if (state && isPacked(state)) state = unpackState(state, this.dims);
    const cell = formByName(form);
    let x = tf.gather(this.weights.embedding, tokens) as unknown as tf.Tensor3D; // [B, T, d]
    const next: BlockState[] = [];
    this.weights.blocks.forEach((w, i) => {
      const s = state ? state[i] : null;
      const keep = wantState || s !== null;
      if (!keep && form === 'parallel' && fusedMlstmTraining()) {
        // The fused mLSTM op keeps a compact trace, so the few sLSTM blocks can keep their tape
        // instead of being recomputed: the activations of all blocks fit, and a forward pass is saved.
        x = w.kind === 'm' ? mlstmBlockTrain(x, w, this.dims) : tf.tidy(() => this.block(x, w, cell, null, false).y);
        return;
      }
      if (!keep) {
        x = recomputed((xi: tf.Tensor, ws: tf.Tensor[]) => this.block(xi as tf.Tensor3D, rebind(w, ws), cell, null, false).y, x, blockTensors(w)) as tf.Tensor3D;
        return;
      }
      // One scope per block: its temporaries are freed before the next block runs.
      const out = tf.tidy(() => {
        const r = this.block(x, w, cell, s, true);
        return { y: r.y, state: r.state } as unknown as tf.TensorContainer;
      }) as unknown as { y: tf.Tensor3D; state: BlockState | null };
      x = out.y;
      if (out.state) next.push(out.state);
    });
    return { x: layerNorm(x, this.weights.normW, this.weights.normB) as tf.Tensor3D, state: wantState ? next : null };
  }

  /** One block over a sequence: x [B, T, d] -> x + f(LN(x)), and its state when asked for. */
  private block(x: tf.Tensor3D, w: BlockWeights, cell: MlstmForm, s: BlockState | null, keep: boolean): { y: tf.Tensor3D; state: BlockState | null } {
    const r = w.kind === 'm'
      ? mlstmBlock(x, w, this.dims, cell, s as MlstmBlockState | null, keep)
      : slstmBlock(x, w, this.dims, s as SlstmBlockState | null, keep);
    return { y: r.y, state: (r.state ?? null) as unknown as BlockState | null };
  }

  /** Hidden [N, d] -> logits [N, V]. */
  head(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, this.weights.headT ?? this.tiedHead());
  }

  /**
   * The tied head as [d, V]: a transposed matMul is 10-30x slower on wasm than a plain one. A
   * trainable embedding changes every step, so it is transposed per call; a frozen one once.
   */
  private tiedHead(): tf.Tensor2D {
    const e = this.weights.embedding;
    if (e instanceof tf.Variable) return tf.transpose(e);
    this.tiedHeadT ??= tf.keep(tf.transpose(e));
    return this.tiedHeadT;
  }

  /**
   * Consumes whole prompts and projects only the last position: tokens [B, T] -> logits [B, V] and the state
   * after the prompt. On wasm (with SIMD) and no `form` asked for, the whole prompt runs as one kernel in the
   * recurrent form (host/model-prefill.ts): bit for bit what stepping the tokens gives. Elsewhere, or when a
   * form is named, in that mLSTM form (default chunkwise).
   */
  prefill(tokens: tf.Tensor2D, state?: ModelState, form?: FormName): { logits: tf.Tensor2D; state: ModelState } {
    const [B, T] = tokens.shape;
    if (form === undefined && T > 0 && hostStepAvailable(this.dims)) return this.hostPrefill(tokens, state ?? tf.tidy(() => this.initState(B)));
    form ??= 'chunkwise';
    const out = this.hidden(tokens, form, state ?? null, true);
    const last = tf.reshape(tf.slice(out.x, [0, T - 1, 0], [B, 1, this.dims.d]), [B, this.dims.d]) as tf.Tensor2D;
    return { logits: this.head(last), state: this.stateForm(out.state as ModelState) };
  }

  /** The prompt as one wasm kernel for all blocks and positions (host/model-prefill.ts) plus the head of the last position. */
  hostPrefill(tokens: tf.Tensor2D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    this.checkTokens(tokens);
    const packed = packState(state, this.dims)[0][PACKED] as tf.Tensor2D;
    const out = hostModelPrefill(this.dims, tokens, this.weights.embedding, hostStepWeights(this.weights, this.dims), packed);
    return { logits: this.head(out.x), state: [{ [PACKED]: out.state }] };
  }

  /**
   * One token per row: tokens [B] int32 -> logits [B, V] and the next state. On wasm (with SIMD)
   * all blocks run as one kernel; on the cpu backend each block runs as one fused kernel; on
   * webgpu the whole step is one WGSL dispatch; elsewhere it runs as the same ops as forward().
   */
  step(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    if (hostStepAvailable(this.dims)) return this.hostStep(tokens, state);
    if (hasHostKernels()) return this.fusedStep(tokens, state);
    return onWebgpu() ? this.gpuStep(tokens, state) : this.opStep(tokens, state);
  }

  /** The decode step as one wasm kernel for all blocks (host/model-step.ts) plus the head. */
  hostStep(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    const out = this.hostStepHidden(tokens, state);
    return { logits: this.head(out.x), state: out.state };
  }

  /** hostStep without the head: the final-normed hidden rows x [B, d] and the next (packed) state. */
  hostStepHidden(tokens: tf.Tensor1D, state: ModelState): { x: tf.Tensor2D; state: ModelState } {
    this.checkTokens(tokens);
    const packed = packState(state, this.dims)[0][PACKED] as tf.Tensor2D;
    const out = hostModelStep(this.dims, tokens, this.weights.embedding, hostStepWeights(this.weights, this.dims), packed);
    return { x: out.x, state: [{ [PACKED]: out.state }] };
  }

  /**
   * The decode step as one dispatch (gpu/decode-step.ts) plus the head. The state travels packed,
   * one [B, S] row per sequence (gpu/pack.ts): a dispatch cannot bind every block's tensors.
   */
  gpuStep(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    this.checkTokens(tokens);
    const packed = packState(state, this.dims)[0][PACKED] as tf.Tensor2D;
    const weights = cachedPackedWeights(this.weights, this.dims);
    const out = decodeStepGpu(this.dims, tokens, this.weights.embedding, weights, packed);
    return { logits: this.head(out.x), state: [{ [PACKED]: out.state }] };
  }

  /** The decode step through the fused block kernels (host/kernels.ts). */
  fusedStep(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    this.checkTokens(tokens);
    if (isPacked(state)) state = unpackState(state, this.dims);
    let x = tf.gather(this.weights.embedding, tokens) as tf.Tensor2D; // [B, d]
    const next = this.weights.blocks.map((w, i) => {
      const out = fusedBlockStep(x, w, this.dims, state[i]);
      x = out.y;
      return out.state;
    });
    return { logits: this.head(normRowsFused(x, this.weights.normW, this.weights.normB)), state: this.stateForm(next) };
  }

  /** The decode step built from tfjs ops, the recurrent form of forward() for T = 1. */
  opStep(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    const B = tokens.shape[0];
    const out = this.hidden(tf.reshape(tokens, [B, 1]) as tf.Tensor2D, 'recurrent', state, true);
    return { logits: this.head(tf.reshape(out.x, [B, this.dims.d]) as tf.Tensor2D), state: this.stateForm(out.state as ModelState) };
  }

  /** The state of B fresh sequences. */
  initState(B: number): ModelState {
    if (this.packsState()) return freshPackedState(B, this.dims);
    return this.dims.kinds.map((kind) => (kind === 'm' ? mlstmInitState(B, this.dims) : slstmInitState(B, this.dims)) as unknown as BlockState);
  }

  /**
   * States leave the model in one form per backend, so that batches can be concatenated: packed (one row per
   * sequence) where the step runs as one kernel, on webgpu and on wasm; per-block records elsewhere.
   */
  private stateForm(state: ModelState): ModelState {
    return this.packsState() ? packState(state, this.dims) : state;
  }

  private packsState(): boolean {
    return onWebgpu() || hostStepAvailable(this.dims);
  }

  /** Parameters, counting a tied head once. */
  parameterCount(): number {
    return weightEntries(this.weights).reduce((n, [, t]) => n + t.size, 0);
  }

  stateBytesPerSequence(): number {
    return tf.tidy(() => stateBytesPerRow(this.initState(1)));
  }

  dispose(): void {
    this.tiedHeadT?.dispose();
    disposePackedWeights(this.weights);
    disposeStepWeights(this.weights);
    for (const [, t] of weightEntries(this.weights)) t.dispose();
  }

  private checkTokens(tokens: tf.Tensor): void {
    if (tokens.dtype !== 'int32') {
      throw new XlstmError('INVALID_INPUT', `tokens expected dtype int32, but got ${tokens.dtype}.`);
    }
  }
}
