/**
 * A worker thread running a TypeScript entry. Node 20 ignores `--import` in a worker's execArgv, so the thread
 * registers tsx itself before loading the entry; tsx is resolved from this file, so any working directory works.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function typeScriptWorker(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const source = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
  register();
  return import(${JSON.stringify(entry.href)});
});`;
  return new Worker(source, { ...options, eval: true });
}
