/**
 * The update of a worker that owns every weight on a webgpu device (one worker, `devices: 1`): the gradients, the
 * moments and the weights stay on the device, the gradient norm is reduced there (one number read back), and
 * AdamW runs as WGSL (core/gpu/adamw.ts). A ShardReplica in its place reads every gradient back, updates in
 * JavaScript and uploads every weight again, each step. The trainer's copy (the shard files) is written when it
 * asks for it (pull), as ShardReplica's is.
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamwStepsGpu } from '../core/gpu/adamw.ts';
import type { FormName, XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { RangeFile, shardFiles } from './exchange.ts';
import { assignFrom, copyOut } from './flat-io.ts';
import { flatLayout } from './flat-layout.ts';
import { gradientSum } from './step.ts';
import type { ShardInit } from './worker-protocol.ts';

export class DeviceShard {
  private readonly total: number;
  private readonly files: { weights: RangeFile; m: RangeFile; v: RangeFile };
  private m: tf.Tensor[];
  private v: tf.Tensor[];
  /** This step's gradient sums, then (reduce) their means. */
  private grads: tf.Tensor[] = [];

  constructor(
    private readonly model: XlstmModel,
    private readonly vars: tf.Variable[],
    private readonly init: ShardInit,
    exchange: string,
  ) {
    if (init.parts !== 1 || init.decay.length !== vars.length) {
      throw new Error(`a device shard expected to own all ${vars.length} weights alone, but got part ${init.index} of ${init.parts} with ${init.decay.length} decay flags`);
    }
    this.total = flatLayout(vars.map((v, j) => ({ name: v.name, shape: v.shape, decay: init.decay[j] }))).total;
    const names = shardFiles(exchange, 1);
    this.files = { weights: RangeFile.open(names.weights), m: RangeFile.open(names.m), v: RangeFile.open(names.v) };
    // The trainer wrote the starting weights and moments before starting the worker.
    const flat = new Float32Array(this.total);
    this.files.weights.read(flat, 0, this.total);
    assignFrom(vars, flat);
    this.m = this.upload(this.files.m, flat);
    this.v = this.upload(this.files.v, flat);
  }

  /** A file of the flat layout as one tensor per weight. */
  private upload(file: RangeFile, scratch: Float32Array): tf.Tensor[] {
    file.read(scratch, 0, this.total, 0);
    let at = 0;
    return this.vars.map((w) => {
      const t = tf.tensor(scratch.slice(at, at + w.size), w.shape, 'float32');
      at += w.size;
      return t;
    });
  }

  /** Gradient sums of the step's rows, kept on the device for reduce. */
  async gradients(batches: readonly Batch[], padId: number, form: FormName): Promise<{ lossSum: number; count: number; load: number; compute: number; send: number }> {
    tf.dispose(this.grads);
    const t0 = performance.now();
    const sum = await gradientSum(this.model, batches, padId, form);
    this.grads = sum.grads;
    return { lossSum: sum.lossSum, count: sum.count, load: 0, compute: (performance.now() - t0) / 1000, send: 0 };
  }

  /** The mean gradients (times 1/count in float32, as ShardReplica and applyGradientSum); their sum of squares. */
  async reduce(count: number): Promise<number> {
    const inv = Math.fround(1 / count);
    const sums = this.grads;
    this.grads = tf.tidy(() => sums.map((g) => tf.mul(g, inv)));
    tf.dispose(sums);
    const squares = tf.tidy(() => tf.stack(this.grads.map((g) => tf.sum(tf.square(g)))));
    try {
      // Per-weight sums in float32 on the device, their total in float64 here.
      return ((await squares.data()) as Float32Array).reduce((s, x) => s + x, 0);
    } finally {
      squares.dispose();
    }
  }

  /** AdamW on every weight with the mean gradients, clipped by `scale`. */
  update(step: { lr: number; t: number; scale: number }): void {
    const { betas, eps, weightDecay } = this.init.optimizer;
    const out = adamwStepsGpu(
      this.vars.map((p, j) => ({ p, g: this.grads[j], m: this.m[j], v: this.v[j], weightDecay: this.init.decay[j] ? weightDecay : 0 })),
      step.t,
      { lr: step.lr, b1: betas[0], b2: betas[1], eps, weightDecay, gradScale: step.scale },
    );
    tf.dispose([...this.grads, ...this.m, ...this.v]);
    this.grads = [];
    this.vars.forEach((w, j) => {
      w.assign(out[j].p);
      out[j].p.dispose();
    });
    this.m = out.map((o) => o.m);
    this.v = out.map((o) => o.v);
  }

  /** The weights and moments to the shard files, where the trainer reads them. */
  async pull(): Promise<void> {
    const flat = new Float32Array(this.total);
    for (const [tensors, file] of [[this.vars, this.files.weights], [this.m, this.files.m], [this.v, this.files.v]] as const) {
      await copyOut(tensors, flat);
      file.write(flat, 0, this.total);
    }
  }
}
