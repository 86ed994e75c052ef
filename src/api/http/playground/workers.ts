/** Tells Monaco (GraphiQL's editor) where our bundled workers are; imported before anything loads Monaco. */
const WORKERS: Record<string, string> = { json: 'json.worker.js', graphql: 'graphql.worker.js' };

(globalThis as { MonacoEnvironment?: unknown }).MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    return new Worker(new URL(`/playground/${WORKERS[label] ?? 'editor.worker.js'}`, location.href));
  },
};
