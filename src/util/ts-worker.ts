/**
 * A worker thread running a TypeScript entry. Node 20 ignores `--import` in a worker's execArgv, so the thread
 * registers tsx itself before loading the entry; tsx is resolved from this file, so any working directory works.
 * A bundled build (esbuild, where `import.meta.url` is the bundle's and there is no tsx) carries each entry
 * bundled beside it as `<name>.mjs`, which runs as it is.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function typeScriptWorker(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const bundled = new URL(entry.href.replace(/\.ts$/, '.mjs'));
  if (entry.protocol === 'file:' && !existsSync(fileURLToPath(entry)) && existsSync(fileURLToPath(bundled))) return new Worker(bundled, options);
  const source = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
  register();
  return import(${JSON.stringify(entry.href)});
});`;
  return new Worker(source, { ...options, eval: true });
}
