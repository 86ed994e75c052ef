/**
 * CPU time per decode step of one thread's rows, by phase, as a DecodePool worker spends it: the blocks with
 * the final LayerNorm (one whole-model kernel on wasm, else one kernel per block), the head matMul, and host
 * sampling (greedy, with each row's log-sum-exp). `wholeStep` false forces the per-block kernels, for comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedBlockStep, hasHostKernels, normRowsFused } from '../../src/core/host/kernels.ts';
import { hostView } from '../../src/core/host/io.ts';
import { hostStepAvailable } from '../../src/core/host/model-step.ts';
import { unpackState } from '../../src/core/gpu/pack.ts';
import { sampleRow } from '../../src/serve/sample-row.ts';
import { disposeState, GREEDY, keepState, Rng, type ModelState, type XlstmModel } from './core-api.ts';

export interface StepPhases {
  readonly rows: number;
  /** CPU ms per step, all phases */
  readonly total: number;
  /** embedding rows, every block and the final LayerNorm */
  readonly blocks: number;
  readonly head: number;
  readonly sample: number;
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/**
 * `warmup` untimed steps, then `steps` timed ones; null off the host backends (no fused kernels there). Warm up
 * for some dozens of steps: V8 runs generated WebAssembly through its baseline compiler until it is hot.
 */
export function benchStepPhases(model: XlstmModel, B: number, warmup = 8, steps = 32, wholeStep?: boolean): StepPhases | null {
  if (!hasHostKernels()) return null;
  const { V } = model.dims;
  const rng = new Rng(B);
  let tokens = Int32Array.from({ length: B }, () => rng.int(V));
  // The whole-model kernel where it runs (wasm), else the per-block kernels with their per-block states.
  const whole = wholeStep ?? hostStepAvailable(model.dims);
  let state: ModelState = keepState(tf.tidy(() => (whole ? model.initState(B) : unpackState(model.initState(B), model.dims))));
  const sum = { blocks: 0, head: 0, sample: 0 };
  const one = (timed: boolean) => {
    const t0 = cpuMs();
    const out = tf.tidy(() => {
      const ids = tf.tensor1d(tokens, 'int32');
      if (whole) {
        const r = model.hostStepHidden(ids, state);
        return { x: r.x, state: keepState(r.state) } as unknown as tf.TensorContainer;
      }
      let x = tf.gather(model.weights.embedding, ids) as tf.Tensor2D;
      const next = model.weights.blocks.map((w, i) => {
        const r = fusedBlockStep(x, w, model.dims, state[i]);
        x = r.y;
        return r.state;
      });
      return { x: normRowsFused(x, model.weights.normW, model.weights.normB), state: keepState(next) } as unknown as tf.TensorContainer;
    }) as unknown as { x: tf.Tensor2D; state: ModelState };
    const t1 = cpuMs();
    const logits = tf.tidy(() => model.head(out.x));
    const t2 = cpuMs();
    // sync: the rows are read in place, as the pool's workers read them.
    const view = hostView(logits) ?? (logits.dataSync() as Float32Array);
    tokens = Int32Array.from({ length: B }, (_, i) => sampleRow(view.subarray(i * V, (i + 1) * V), GREEDY, 0, null).id);
    const t3 = cpuMs();
    logits.dispose();
    out.x.dispose();
    disposeState(state);
    state = out.state;
    if (timed) {
      sum.blocks += t1 - t0;
      sum.head += t2 - t1;
      sum.sample += t3 - t2;
    }
  };
  for (let j = 0; j < warmup; j++) one(false);
  const c0 = cpuMs();
  for (let j = 0; j < steps; j++) one(true);
  const total = (cpuMs() - c0) / steps;
  disposeState(state);
  return { rows: B, total, blocks: sum.blocks / steps, head: sum.head / steps, sample: sum.sample / steps };
}
