/**
 * A data-parallel worker's side of a sharded update (workers.ts `step`): a full replica of the
 * model for gradients, every weight as one flat array, and AdamW's moments for the one shard of that
 * array the worker owns. Workers swap gradient shards (a reduce-scatter through the exchange files),
 * each updates its own shard, and each reads the others' new shards before its next gradients.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { FormName, XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { RangeFile, shardFiles } from './exchange.ts';
import { flatAdamwStep } from './flat-adamw.ts';
import { assignFrom, copyOut } from './flat-io.ts';
import { decayRuns, flatLayout, shardRanges, type DecayRun } from './flat-layout.ts';
import { gradientSum } from './step.ts';
import type { ShardInit } from './worker-protocol.ts';

const seconds = (since: number): number => (performance.now() - since) / 1000;

export class ShardReplica {
  private readonly ranges: [number, number][];
  private readonly start: number;
  private readonly end: number;
  private readonly runs: DecayRun[];
  /** Every weight, laid end to end: this worker's shard is current, the others as of `othersBehind`. */
  private readonly weights: Float32Array;
  /** This worker's gradient sum of the step, laid out like the weights. */
  private readonly grads: Float32Array;
  /** The shard's mean gradient over every worker, once reduced. */
  private readonly mean: Float32Array;
  /** The other workers' parts of this worker's shard, in worker order. */
  private readonly incoming: Float32Array[];
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private readonly files: { weights: RangeFile; m: RangeFile; v: RangeFile; grads: RangeFile[] };
  /** The model's variables lag behind `weights`. */
  private varsBehind = true;
  /** The weights file holds newer shards of the other workers than `weights`. */
  private othersBehind = false;

  constructor(
    private readonly model: XlstmModel,
    private readonly vars: tf.Variable[],
    private readonly init: ShardInit,
    exchange: string,
  ) {
    if (init.decay.length !== vars.length) {
      throw new Error(`worker expected decay flags for its ${vars.length} weights, but got ${init.decay.length}`);
    }
    const layout = flatLayout(vars.map((v, j) => ({ name: v.name, shape: v.shape, decay: init.decay[j] })));
    this.ranges = shardRanges(layout.total, init.parts);
    [this.start, this.end] = this.ranges[init.index];
    this.runs = decayRuns(layout, this.start, this.end);
    const size = this.end - this.start;
    this.weights = new Float32Array(layout.total);
    this.grads = new Float32Array(layout.total);
    this.mean = new Float32Array(size);
    this.incoming = Array.from({ length: init.parts - 1 }, () => new Float32Array(size));
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    const names = shardFiles(exchange, init.parts);
    this.files = {
      weights: RangeFile.open(names.weights),
      m: RangeFile.open(names.m),
      v: RangeFile.open(names.v),
      grads: names.grads.map((f) => RangeFile.open(f)),
    };
    // The trainer wrote the starting weights and moments before starting the workers.
    this.files.weights.read(this.weights, 0, layout.total);
    this.files.m.read(this.m, this.start, this.end, 0);
    this.files.v.read(this.v, this.start, this.end, 0);
  }

  /** Gradients of this worker's rows; every other worker's shard of them goes to this worker's grads file. */
  async gradients(batches: readonly Batch[], padId: number, form: FormName): Promise<{ lossSum: number; count: number; load: number; compute: number; send: number }> {
    const t0 = performance.now();
    if (this.othersBehind) {
      this.ranges.forEach(([s, e], j) => j !== this.init.index && this.files.weights.read(this.weights, s, e));
      this.othersBehind = false;
    }
    if (this.varsBehind) {
      assignFrom(this.vars, this.weights);
      this.varsBehind = false;
    }
    const t1 = performance.now();
    const sum = await gradientSum(this.model, batches, padId, form);
    const t2 = performance.now();
    try {
      await copyOut(sum.grads, this.grads);
    } finally {
      sum.grads.forEach((g) => g.dispose());
    }
    const mine = this.files.grads[this.init.index];
    this.ranges.forEach(([s, e], j) => j !== this.init.index && mine.write(this.grads, s, e));
    return { lossSum: sum.lossSum, count: sum.count, load: (t1 - t0) / 1000, compute: (t2 - t1) / 1000, send: seconds(t2) };
  }

  /**
   * The shard's mean gradient: every worker's part added in worker order (so the sum does not depend
   * on which worker owns the shard), in float32, times 1/count in float32 as applyGradientSum does.
   * Returns its sum of squares. The last addition, the scaling and the squares share one pass: the
   * shard is 20 MB of each operand, so passes over memory are what this costs.
   */
  reduce(count: number): number {
    const parts: Float32Array[] = [];
    let other = 0;
    for (let j = 0; j < this.init.parts; j++) {
      if (j === this.init.index) parts.push(this.grads.subarray(this.start, this.end));
      else {
        const into = this.incoming[other++];
        this.files.grads[j].read(into, this.start, this.end, 0);
        parts.push(into);
      }
    }
    const { mean } = this;
    let acc = parts[0];
    for (let k = 1; k < parts.length - 1; k++) {
      const part = parts[k];
      for (let i = 0; i < mean.length; i++) mean[i] = acc[i] + part[i];
      acc = mean;
    }
    const inv = Math.fround(1 / count);
    let sumsq = 0;
    if (parts.length === 1) {
      for (let i = 0; i < mean.length; i++) {
        const g = Math.fround(acc[i] * inv);
        mean[i] = g;
        sumsq += g * g;
      }
    } else {
      const last = parts[parts.length - 1];
      for (let i = 0; i < mean.length; i++) {
        const g = Math.fround(Math.fround(acc[i] + last[i]) * inv);
        mean[i] = g;
        sumsq += g * g;
      }
    }
    return sumsq;
  }

  /** AdamW on the shard with the reduced gradient, then the shard goes to the weights file. */
  update(step: { lr: number; t: number; scale: number }): void {
    flatAdamwStep({ p: this.weights.subarray(this.start, this.end), m: this.m, v: this.v }, this.mean, this.runs, this.init.optimizer, step);
    this.files.weights.write(this.weights, this.start, this.end);
    this.varsBehind = true;
    this.othersBehind = this.init.parts > 1;
  }

  /** The shard's weights and moments to the shard files, where the trainer reads them. */
  pull(): void {
    this.files.weights.write(this.weights, this.start, this.end);
    this.files.m.write(this.m, this.start, this.end, 0);
    this.files.v.write(this.v, this.start, this.end, 0);
  }
}
