/**
 * A data-parallel worker process (forked by workers.ts): holds a copy of the model, receives the
 * weights after each update and its shards of each step's batches, and sends back gradient sums.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend/select.ts';
import { XlstmModel, type FormName } from '../core/index.ts';
import { isXlstmError } from '../util/errors.ts';
import { putArray, takeArray } from './exchange.ts';
import { gradientSum, trainableVariables } from './step.ts';
import type { FromWorker, ToWorker } from './worker-protocol.ts';

interface Loaded {
  readonly model: XlstmModel;
  readonly vars: tf.Variable[];
  readonly padId: number;
  readonly form: FormName;
  readonly exchange: string;
}

let loaded: Loaded | null = null;

function send(message: FromWorker): void {
  process.send?.(message);
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init': {
      const info = await selectBackend(message.backend ?? undefined);
      // The initial weights are overwritten by the first step's; init only gives the layout.
      const fresh = XlstmModel.init(message.config, 0);
      const model = fresh.asTrainable();
      fresh.dispose();
      loaded = { model, vars: trainableVariables(model), padId: message.padId, form: message.form, exchange: message.exchange };
      send({ type: 'ready', backend: info.name, detail: info.detail, gpu: process.env.DRI_PRIME ?? null });
      return;
    }
    case 'step': {
      if (!loaded) throw new Error('worker expected an init message before the first step');
      const { model, vars, padId, form, exchange } = loaded;
      if (message.weights) {
        const weights = takeArray(message.weights);
        let offset = 0;
        tf.tidy(() =>
          vars.forEach((v) => {
            v.assign(tf.tensor(weights.subarray(offset, offset + v.size), v.shape, 'float32'));
            offset += v.size;
          }),
        );
      }
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
