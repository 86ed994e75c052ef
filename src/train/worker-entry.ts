/**
 * A data-parallel worker process (forked by workers.ts): holds a copy of the model and computes the
 * gradient sums of its rows of each step. Either it sends them back whole (gradient only: the trainer
 * updates and ships the weights) or, started with a shard, it owns that shard's update (worker-shard.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend/select.ts';
import { XlstmModel, type FormName } from '../core/index.ts';
import { isXlstmError } from '../util/errors.ts';
import { putArray, takeArray } from './exchange.ts';
import { assignFrom } from './flat-io.ts';
import { gradientSum, trainableVariables } from './step.ts';
import { ShardReplica } from './worker-shard.ts';
import type { FromWorker, ToWorker } from './worker-protocol.ts';

interface Loaded {
  readonly model: XlstmModel;
  readonly vars: tf.Variable[];
  readonly padId: number;
  readonly form: FormName;
  readonly exchange: string;
  readonly shard: ShardReplica | null;
}

let loaded: Loaded | null = null;

function send(message: FromWorker): void {
  process.send?.(message);
}

function ready(): Loaded {
  if (!loaded) throw new Error('worker expected an init message before the first step');
  return loaded;
}

function shard(): ShardReplica {
  const { shard } = ready();
  if (!shard) throw new Error('worker expected to be started with a shard for a sharded step, but it was started for gradients only');
  return shard;
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init': {
      const info = await selectBackend(message.backend ?? undefined);
      // The initial weights are overwritten by the first step's (or the shard files'); init only gives the layout.
      const fresh = XlstmModel.init(message.config, 0);
      const model = fresh.asTrainable();
      fresh.dispose();
      const vars = trainableVariables(model);
      const replica = message.shard ? new ShardReplica(model, vars, message.shard, message.exchange) : null;
      loaded = { model, vars, padId: message.padId, form: message.form, exchange: message.exchange, shard: replica };
      send({ type: 'ready', backend: info.name, detail: info.detail, gpu: process.env.DRI_PRIME ?? null });
      return;
    }
    case 'step': {
      const { model, vars, padId, form, exchange } = ready();
      if (message.weights) assignFrom(vars, takeArray(message.weights));
      const t0 = performance.now();
      const sum = await gradientSum(model, message.batches, padId, form);
      const t1 = performance.now();
      const flat = tf.tidy(() => tf.concat(sum.grads.map((g) => tf.reshape(g, [-1]))));
      sum.grads.forEach((g) => g.dispose());
      // One asynchronous read: webgpu under Node has no synchronous ones, and each read is a round trip.
      const grads = putArray(exchange, `grads-${process.env.XLSTM_WORKER_INDEX ?? process.pid}.f32`, (await flat.data()) as Float32Array);
      flat.dispose();
      const seconds = { compute: (t1 - t0) / 1000, read: (performance.now() - t1) / 1000 };
      send({ type: 'grads', id: message.id, grads, lossSum: sum.lossSum, count: sum.count, seconds });
      return;
    }
    case 'gradients': {
      const { padId, form } = ready();
      send({ type: 'gradients', id: message.id, ...(await shard().gradients(message.batches, padId, form)) });
      return;
    }
    case 'reduce': {
      const t0 = performance.now();
      const sumsq = shard().reduce(message.count);
      send({ type: 'reduced', id: message.id, sumsq, seconds: (performance.now() - t0) / 1000 });
      return;
    }
    case 'update': {
      const t0 = performance.now();
      shard().update(message);
      send({ type: 'updated', id: message.id, seconds: (performance.now() - t0) / 1000 });
      return;
    }
    case 'pull':
      shard().pull();
      send({ type: 'pulled', id: message.id });
      return;
    case 'stop':
      process.exit(0);
  }
}

// Messages are handled one at a time, in order.
let queue = Promise.resolve();
process.on('message', (message: ToWorker) => {
  queue = queue.then(() => handle(message)).catch((e: unknown) => {
    send({ type: 'error', code: isXlstmError(e) ? e.code : null, message: e instanceof Error ? e.message : String(e) });
    process.exitCode = 1;
    process.disconnect?.();
  });
});
// The trainer went away: nothing left to compute for.
process.on('disconnect', () => process.exit(process.exitCode ?? 0));
