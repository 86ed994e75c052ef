/**
 * One optimisation step: gradients of the next-token loss over one or more micro-batches (each
 * weighted by its counted targets, so accumulation and data-parallel shards give the gradient of
 * the whole batch's mean loss), then one AdamW update with clipping at the schedule's learning rate.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nextTokenLoss, takesWeightDecay, weightEntries, type FormName, type XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { XlstmError } from '../util/errors.ts';
import { AdamW, type AdamWParam } from './adamw.ts';
import type { RunConfig } from './run-config.ts';

/**
 * Gradients summed over micro-batches: grads[j] = sum_i count_i * dLoss_i/dw_j, where loss_i is
 * micro-batch i's mean over its counted (non-padding) targets. Dividing by `count` gives the
 * gradient of the mean over every counted target.
 */
export interface GradientSum {
  /** One tensor per weight, in weightEntries order; owned by the holder (dispose them). */
  readonly grads: tf.Tensor[];
  /** sum_i count_i * loss_i */
  readonly lossSum: number;
  /** Counted targets. */
  readonly count: number;
}

export interface StepOutcome {
  /** Mean loss over the step's counted targets. */
  readonly loss: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly clipped: boolean;
  readonly lr: number;
  /** Counted targets (tokens trained on). */
  readonly tokens: number;
}

/** Targets of a batch that are not padding: columns 1..T of every row. */
export function countTargets(batch: Batch, padId: number): number {
  let n = 0;
  for (let r = 0; r < batch.batch; r++) {
    const row = r * batch.length;
    for (let t = 1; t < batch.length; t++) if (batch.tokens[row + t] !== padId) n++;
  }
  return n;
}

/** The trainable model's variables in weightEntries order (the order every gradient list uses). */
export function trainableVariables(model: XlstmModel): tf.Variable[] {
  return weightEntries(model.weights).map(([name, t]) => {
    if (!(t instanceof tf.Variable)) {
      throw new XlstmError('INVALID_INPUT', `weight ${name} expected a tf.Variable, but got a plain tensor. Hint: train model.asTrainable().`);
    }
    return t;
  });
}

/** The summed loss of one micro-batch over its counted targets, and its gradients (inside tidy). */
function scaledGradients(model: XlstmModel, vars: tf.Variable[], batch: Batch, padId: number, form: FormName) {
  return tf.tidy(() => {
    const windows = tf.tensor2d(batch.tokens, [batch.batch, batch.length], 'int32');
    const targets = tf.slice(windows, [0, 1], [batch.batch, batch.length - 1]);
    const mask = tf.cast(tf.notEqual(targets, tf.scalar(padId, 'int32')), 'float32') as tf.Tensor2D;
    // The summed loss's gradients are the count-weighted ones directly: no multiply per weight afterwards (on
    // webgpu ~900 dispatches a step).
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, windows, mask, form, 'sum'), vars);
    // A weight the loss does not reach (none today) gets an explicit zero, so every list lines up.
    const scaled = vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
    return { lossSum: value, scaled };
  });
}

/** Gradient sum over `batches` (micro-batches of the same step, or one worker's shards of them). */
export async function gradientSum(model: XlstmModel, batches: readonly Batch[], padId: number, form: FormName = 'parallel'): Promise<GradientSum> {
  const vars = trainableVariables(model);
  let acc: tf.Tensor[] | null = null;
  let lossSum = 0;
  let count = 0;
  for (const batch of batches) {
    const n = countTargets(batch, padId);
    if (n === 0) continue; // a batch of padding only has no loss to follow
    const { lossSum: sum, scaled } = scaledGradients(model, vars, batch, padId, form);
    // One scalar per micro-batch, for the loss history and the divergence check; read
    // asynchronously because webgpu under Node has no synchronous reads.
    lossSum += (await sum.data())[0];
    sum.dispose();
    count += n;
    if (acc === null) acc = scaled;
    else {
      const prev: tf.Tensor[] = acc;
      acc = prev.map((a, j) => tf.add(a, scaled[j]));
      prev.forEach((t) => t.dispose());
      scaled.forEach((t) => t.dispose());
    }
  }
  return { grads: acc ?? vars.map((v) => tf.zerosLike(v)), lossSum, count };
}

/** Adds gradient sums (of several workers); the inputs are disposed. */
export function addGradientSums(parts: readonly GradientSum[]): GradientSum {
  if (parts.length === 1) return parts[0];
  const grads = parts[0].grads.map((_, j) => tf.addN(parts.map((p) => p.grads[j])));
  for (const p of parts) p.grads.forEach((t) => t.dispose());
  return {
    grads,
    lossSum: parts.reduce((s, p) => s + p.lossSum, 0),
    count: parts.reduce((s, p) => s + p.count, 0),
  };
}

/** AdamW over the model's variables: decay on matrices only (takesWeightDecay), options from the config. */
export function optimizerFor(
  model: XlstmModel,
  config: { readonly optimizer: RunConfig['optimizer']; readonly trainer: Pick<RunConfig['trainer'], 'grad_clip'> },
): AdamW {
  const params: AdamWParam[] = weightEntries(model.weights).map(([name, t]) => ({
    name,
    variable: t as tf.Variable,
    decay: takesWeightDecay(name, t),
  }));
  return new AdamW(params, {
    betas: [config.optimizer.betas[0], config.optimizer.betas[1]],
    eps: config.optimizer.eps,
    weightDecay: config.optimizer.weight_decay,
    gradClip: config.trainer.grad_clip,
  });
}

/** The failure of a step whose loss or gradient is NaN or infinite; the caller saves nothing after it. */
export function divergence(step: number, what: 'loss' | 'gradient norm', value: number): XlstmError {
  return new XlstmError(
    'INVALID_CONFIG',
    `training step ${step} expected a finite ${what}, but got ${value}. ` +
      'Hint: lower optimizer.lr, raise trainer.warmup_steps or set trainer.grad_clip; no checkpoint was written for this step.',
  );
}

/** The step's mean loss, or the reason to stop before updating: no counted target, or a non-finite loss. */
export function checkedLoss(lossSum: number, count: number, step: number): number {
  if (count === 0) {
    throw new XlstmError('INVALID_INPUT', `training step ${step} expected at least one target token, but every row was padding.`);
  }
  const loss = lossSum / count;
  if (!Number.isFinite(loss)) throw divergence(step, 'loss', loss);
  return loss;
}

/**
 * Applies one update from a gradient sum (consumed: its tensors are disposed). `step` is the
 * 1-based number of this update, for messages. A non-finite loss or gradient norm throws before
 * anything changes (AdamW leaves weights and moments alone on a non-finite norm).
 */
export function applyGradientSum(adamw: AdamW, names: readonly string[], sum: GradientSum, lr: number, step: number): StepOutcome {
  try {
    const loss = checkedLoss(sum.lossSum, sum.count, step);
    const mean = tf.tidy(() => {
      const inv = tf.scalar(1 / sum.count);
      return sum.grads.map((g) => tf.mul(g, inv));
    });
    try {
      const result = adamw.step(new Map(names.map((name, j) => [name, mean[j]])), lr);
      if (result.skipped) throw divergence(step, 'gradient norm', result.gradNorm);
      return { loss, gradNorm: result.gradNorm, clipped: result.clipped, lr, tokens: sum.count };
    } finally {
      mean.forEach((t) => t.dispose());
    }
  } finally {
    sum.grads.forEach((t) => t.dispose());
  }
}

/** One whole step in this process: gradients over the micro-batches, then the update. */
export async function localStep(
  model: XlstmModel,
  adamw: AdamW,
  batches: readonly Batch[],
  options: { readonly padId: number; readonly lr: number; readonly step: number; readonly form?: FormName },
): Promise<StepOutcome> {
  const sum = await gradientSum(model, batches, options.padId, options.form);
  const names = weightEntries(model.weights).map(([name]) => name);
  return applyGradientSum(adamw, names, sum, options.lr, options.step);
}
