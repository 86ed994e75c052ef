/**
 * AdamW (Loshchilov & Hutter) over tf.Variables, with PyTorch's update order: global gradient-norm
 * clipping, decoupled weight decay on the "decay" group only, bias-corrected moments.
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../util/errors.ts';

export interface AdamWOptions {
  /** [beta1, beta2] (optimizer.betas). */
  readonly betas: readonly [number, number];
  /** Added to sqrt(v_hat) (optimizer.eps). */
  readonly eps: number;
  /** Decoupled decay rate, applied as p <- p * (1 - lr * weightDecay) (optimizer.weight_decay). */
  readonly weightDecay: number;
  /** Clip the global L2 norm of all gradients to this value; 0 or absent: no clipping (trainer.grad_clip). */
  readonly gradClip?: number;
}

/** One trainable tensor; the caller decides the group (no decay on norms, biases and embeddings). */
export interface AdamWParam {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly decay: boolean;
}

/** Optimizer state as it is stored in optimizer.safetensors. */
export type OptimizerState = Map<string, { shape: number[]; data: Float32Array }>;

export interface StepResult {
  /** Global L2 norm of the gradients before clipping. */
  readonly gradNorm: number;
  /** Whether the gradients were scaled down. */
  readonly clipped: boolean;
  /** The norm was NaN or infinite: nothing was updated and the step count did not advance. */
  readonly skipped: boolean;
}

/** The update count in the exported state; float32 holds it exactly up to 2^24. */
export const STEP_KEY = 'step';
const MAX_EXACT_STEP = 2 ** 24;

interface Slot {
  readonly param: AdamWParam;
  readonly m: tf.Variable;
  readonly v: tf.Variable;
}

export class AdamW {
  private readonly slots = new Map<string, Slot>();
  private t = 0;

  constructor(
    params: readonly AdamWParam[],
    private readonly options: AdamWOptions,
  ) {
    checkOptions(options);
    for (const param of params) {
      if (this.slots.has(param.name)) {
        throw new XlstmError('INVALID_INPUT', `AdamW parameters expected unique names, but got ${param.name} twice.`);
      }
      if (param.variable.dtype !== 'float32') {
        throw new XlstmError('INVALID_INPUT', `AdamW parameter ${param.name} expected dtype float32, but got ${param.variable.dtype}.`);
      }
      // Moments are created up front so that step() never allocates a long-lived tensor.
      this.slots.set(param.name, { param, m: zerosVariable(param.variable.shape), v: zerosVariable(param.variable.shape) });
    }
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.t;
  }

  /** The parameters in the order they were given (data-parallel workers lay them end to end so). */
  get parameters(): readonly AdamWParam[] {
    return [...this.slots.values()].map((s) => s.param);
  }

  /** The hyper-parameters it was built with. */
  get settings(): AdamWOptions {
    return this.options;
  }

  /**
   * Applies one update with learning rate `lr` (the schedule's value for this step). `grads` is keyed
   * by parameter name and stays owned by the caller; a parameter without a gradient is left
   * untouched, moments and decay included (as in PyTorch). Returns the pre-clip gradient norm.
   */
  step(grads: ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>, lr: number): StepResult {
    checkLearningRate(lr);
    const entries = grads instanceof Map ? [...grads] : Object.entries(grads);
    for (const [name, g] of entries) {
      const slot = this.slots.get(name);
      if (!slot) {
        throw new XlstmError('INVALID_INPUT', `AdamW gradient ${name} expected to name a parameter, but got no parameter of that name.`);
      }
      if (!tf.util.arraysEqual(g.shape, slot.param.variable.shape)) {
        throw new XlstmError('INVALID_INPUT', `AdamW gradient ${name} expected shape [${slot.param.variable.shape}], but got [${g.shape}].`);
      }
    }
    if (entries.length === 0) return { gradNorm: 0, clipped: false, skipped: false };

    // sync: the norm is read back once per update, to decide on clipping and to report it.
    const norm = tf.tidy(() => tf.sqrt(tf.addN(entries.map(([, g]) => tf.sum(tf.square(g))))));
    const gradNorm = norm.dataSync()[0];
    norm.dispose();
    // Deviation from PyTorch, which would write NaN into every parameter: a non-finite gradient
    // leaves the model and the moments as they were, and the caller sees `skipped`.
    if (!Number.isFinite(gradNorm)) return { gradNorm, clipped: false, skipped: true };
    const scale = clipScale(this.options.gradClip ?? 0, gradNorm);

    this.t += 1;
    const [b1, b2] = this.options.betas;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    tf.tidy(() => {
      const beta1 = tf.scalar(b1);
      const beta2 = tf.scalar(b2);
      const oneMinusB1 = tf.scalar(1 - b1);
      const oneMinusB2 = tf.scalar(1 - b2);
      const stepSize = tf.scalar(lr / bc1);
      const sqrtBc2 = tf.scalar(Math.sqrt(bc2));
      const eps = tf.scalar(this.options.eps);
      const decay = tf.scalar(1 - lr * this.options.weightDecay);
      const gradScale = tf.scalar(scale);
      for (const [name, raw] of entries) {
        const { param, m, v } = this.slots.get(name)!;
        const g = scale < 1 ? tf.mul(raw, gradScale) : raw;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, oneMinusB1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), oneMinusB2));
        // PyTorch's form: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps);
        const p = param.decay && this.options.weightDecay !== 0 ? tf.mul(param.variable, decay) : param.variable;
        param.variable.assign(tf.sub(p, tf.mul(stepSize, tf.div(m1, denom))));
        m.assign(m1);
        v.assign(v1);
      }
    });
    return { gradNorm, clipped: scale < 1, skipped: false };
  }

  /** The state for optimizer.safetensors: `<name>.exp_avg`, `<name>.exp_avg_sq` and `step`. */
  exportState(): OptimizerState {
    if (this.t >= MAX_EXACT_STEP) {
      throw new XlstmError('INVALID_INPUT', `AdamW step count expected below ${MAX_EXACT_STEP} to be stored as float32, but got ${this.t}.`);
    }
    const state: OptimizerState = new Map();
    for (const [name, { m, v }] of this.slots) {
      // Copies: some backends hand out their own buffer, which the next update would overwrite.
      state.set(`${name}.exp_avg`, { shape: [...m.shape], data: Float32Array.from(m.dataSync()) });
      state.set(`${name}.exp_avg_sq`, { shape: [...v.shape], data: Float32Array.from(v.dataSync()) });
    }
    state.set(STEP_KEY, { shape: [1], data: Float32Array.of(this.t) });
    return state;
  }

  /**
   * Restores exported state so that training continues bit for bit. Every missing, unexpected
   * or wrongly shaped entry is reported at once, and nothing changes unless all of them match.
   */
  importState(state: OptimizerState): void {
    const problems: string[] = [];
    const expected = new Map<string, number[]>([[STEP_KEY, [1]]]);
    for (const [name, { m }] of this.slots) {
      expected.set(`${name}.exp_avg`, m.shape);
      expected.set(`${name}.exp_avg_sq`, m.shape);
    }
    for (const [key, shape] of expected) {
      const entry = state.get(key);
      if (!entry) problems.push(`missing ${key}`);
      else if (!tf.util.arraysEqual(entry.shape, shape) || entry.data.length !== tf.util.sizeFromShape(shape)) {
        problems.push(`${key} has shape [${entry.shape}] instead of [${shape}]`);
      }
    }
    for (const key of state.keys()) if (!expected.has(key)) problems.push(`unexpected ${key}`);
    const t = state.get(STEP_KEY)?.data[0];
    if (t !== undefined && !(Number.isInteger(t) && t >= 0)) problems.push(`step is ${t}, not a count`);
    if (problems.length > 0) {
      throw new XlstmError(
        'CHECKPOINT_CORRUPT',
        `optimizer state expected the moments of the ${this.slots.size} parameters being trained, but got: ${problems.join('; ')}. ` +
          'Hint: the checkpoint was written for another model or parameter grouping; start the optimizer fresh instead.',
      );
    }
    for (const [name, { m, v }] of this.slots) {
      tf.tidy(() => {
        // slice(): the cpu backend would otherwise adopt the caller's array as its storage.
        m.assign(tf.tensor(state.get(`${name}.exp_avg`)!.data.slice(), m.shape, 'float32'));
        v.assign(tf.tensor(state.get(`${name}.exp_avg_sq`)!.data.slice(), v.shape, 'float32'));
      });
    }
    this.t = t!;
  }

  /** Frees the moment variables; the parameters belong to the model. */
  dispose(): void {
    for (const { m, v } of this.slots.values()) {
      m.dispose();
      v.dispose();
    }
    this.slots.clear();
  }
}

/** The factor gradients are multiplied by: PyTorch's clip_grad_norm_ scales by max_norm / (norm + 1e-6) when that is below 1. */
export function clipScale(clip: number, gradNorm: number): number {
  return clip > 0 ? Math.min(1, clip / (gradNorm + 1e-6)) : 1;
}

/** Throws unless `lr` is a learning rate AdamW can apply (finite, >= 0). */
export function checkLearningRate(lr: number): void {
  if (!(lr >= 0 && Number.isFinite(lr))) {
    throw new XlstmError('INVALID_INPUT', `AdamW learning rate expected a finite number >= 0, but got ${lr}.`);
  }
}

function zerosVariable(shape: number[]): tf.Variable {
  const zeros = tf.zeros(shape, 'float32');
  const variable = tf.variable(zeros, false);
  zeros.dispose(); // the variable holds its own reference to the data
  return variable;
}

function checkOptions(o: AdamWOptions): void {
  const fail = (key: string, expected: string, got: unknown): never => {
    throw new XlstmError('INVALID_CONFIG', `${key} expected ${expected}, but got ${String(got)}.`);
  };
  o.betas.forEach((b, i) => {
    if (!(b >= 0 && b < 1)) fail(`optimizer.betas[${i}]`, 'a number in [0, 1)', b);
  });
  if (!(o.eps > 0 && Number.isFinite(o.eps))) fail('optimizer.eps', 'a positive finite number', o.eps);
  if (!(o.weightDecay >= 0 && Number.isFinite(o.weightDecay))) fail('optimizer.weight_decay', 'a finite number >= 0', o.weightDecay);
  const clip = o.gradClip ?? 0;
  if (!(clip >= 0 && Number.isFinite(clip))) fail('trainer.grad_clip', 'a finite number >= 0 (0 disables clipping)', clip);
}
