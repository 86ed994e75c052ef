/** One thread of bench/lib/roofline.ts: times tf.matMul on the given shapes on its own backend and reports GFLOP/s. */
import * as tf from '@tensorflow/tfjs-core';
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../../src/backend/select.ts';
import { Rng } from '../../src/util/rng.ts';

interface Job {
  readonly backend: 'cpu' | 'wasm';
  readonly rows: number;
  /** [in, out] of each weight matrix */
  readonly shapes: [number, number][];
  readonly seconds: number;
}

const job = workerData as Job;
await selectBackend(job.backend);
const rng = new Rng(7);
const random = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const pairs = job.shapes.map(([k, n]) => [tf.tensor2d(random(job.rows * k), [job.rows, k]), tf.tensor2d(random(k * n), [k, n])] as const);
const flopsPerPass = job.shapes.reduce((f, [k, n]) => f + 2 * job.rows * k * n, 0);
const pass = () => {
  for (const [a, b] of pairs) tf.matMul(a, b).dispose();
};
pass();
let passes = 0;
const t0 = performance.now();
while (performance.now() - t0 < job.seconds * 1000) {
  pass();
  passes++;
}
const secs = (performance.now() - t0) / 1000;
parentPort?.postMessage((passes * flopsPerPass) / secs / 1e9);
