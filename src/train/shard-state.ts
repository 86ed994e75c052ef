/**
 * The trainer's side of the shard files (exchange.ts) when its workers own the update: it writes
 * the starting weights and moments there before the workers start, and reads them back into its
 * model and optimizer when it needs them current (to evaluate or save).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { weightEntries, type XlstmModel } from '../core/index.ts';
import { XlstmError } from '../util/errors.ts';
import { STEP_KEY, type AdamW, type OptimizerState } from './adamw.ts';
import { RangeFile, shardFiles } from './exchange.ts';
import { assignFrom, copyOut } from './flat-io.ts';
import { flatLayout, type FlatLayout } from './flat-layout.ts';
import { trainableVariables } from './step.ts';

/** The optimizer's parameters laid end to end; they must be the model's weights in weightEntries order. */
export function optimizerLayout(model: XlstmModel, optimizer: AdamW): FlatLayout {
  const names = weightEntries(model.weights).map(([name]) => name);
  const params = optimizer.parameters;
  if (params.length !== names.length || params.some((p, j) => p.name !== names[j])) {
    throw new XlstmError(
      'INVALID_INPUT',
      `data-parallel workers expected an optimizer over the model's ${names.length} weights in weightEntries order, but got ${params.length} parameters starting ${params[0]?.name}. ` +
        'Hint: build it with optimizerFor(model, config).',
    );
  }
  return flatLayout(params.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
}

/** Creates the shard files and fills them with the model's weights and the optimizer's moments. */
export async function writeStartingState(dir: string, parts: number, layout: FlatLayout, model: XlstmModel, optimizer: AdamW): Promise<void> {
  const names = shardFiles(dir, parts);
  const flat = new Float32Array(layout.total);
  const files = [names.weights, names.m, names.v, ...names.grads].map((f) => RangeFile.create(f, layout.total));
  try {
    await copyOut(trainableVariables(model), flat);
    files[0].write(flat, 0, layout.total);
    const state = optimizer.exportState();
    for (const [k, suffix] of [[1, 'exp_avg'], [2, 'exp_avg_sq']] as const) {
      for (const p of layout.params) flat.set(state.get(`${p.name}.${suffix}`)!.data, p.offset);
      files[k].write(flat, 0, layout.total);
    }
  } finally {
    files.forEach((f) => f.close());
  }
}

/** Loads the shard files (every worker has just written its shard) into the model and the optimizer, whose update count becomes `t`. */
export function readCurrentState(dir: string, parts: number, layout: FlatLayout, vars: readonly tf.Variable[], optimizer: AdamW, t: number): void {
  const names = shardFiles(dir, parts);
  const read = (file: string): Float32Array => {
    const f = RangeFile.open(file);
    try {
      const flat = new Float32Array(layout.total);
      f.read(flat, 0, layout.total);
      return flat;
    } finally {
      f.close();
    }
  };
  assignFrom(vars, read(names.weights));
  const state: OptimizerState = new Map();
  for (const [file, suffix] of [[names.m, 'exp_avg'], [names.v, 'exp_avg_sq']] as const) {
    const flat = read(file);
    for (const p of layout.params) state.set(`${p.name}.${suffix}`, { shape: [...p.shape], data: flat.subarray(p.offset, p.offset + p.size) });
  }
  state.set(STEP_KEY, { shape: [1], data: Float32Array.of(t) });
  optimizer.importState(state);
}
