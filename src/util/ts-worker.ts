/**
 * A worker thread running a TypeScript entry. Node 20 ignores `--import` in a worker's execArgv, so the thread
 * registers tsx itself before loading the entry; tsx is resolved from this file, so any working directory works.
 * A bundled build (esbuild, where `import.meta.url` is the bundle's and there is no tsx) carries each entry
 * bundled beside it as `<name>.mjs`, which runs as it is (runnableEntry finds it; worker processes use it too).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A TypeScript entry's path, or its bundled `<name>.mjs` beside it where the `.ts` is not there. */
export function runnableEntry(entry: string): string {
  const bundled = entry.replace(/\.ts$/, '.mjs');
  return entry.endsWith('.ts') && !existsSync(entry) && existsSync(bundled) ? bundled : entry;
}

export function typeScriptWorker(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const path = entry.protocol === 'file:' ? runnableEntry(fileURLToPath(entry)) : null;
  if (path?.endsWith('.mjs')) return new Worker(pathToFileURL(path), options);
  const source = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
  register();
  return import(${JSON.stringify(entry.href)});
});`;
  return new Worker(source, { ...options, eval: true });
}
