/**
 * `xlstm serve`: the composition root of the server. Loads the default checkpoint, serves GraphQL on one port,
 * and on SIGINT/SIGTERM drains (no new work, open streams end with CANCELLED) and exits 0.
 */
import 'reflect-metadata';
import { memory } from '@tensorflow/tfjs-core';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { ApiServer, createMetrics, Playground } from '../api/http/index.ts';
import { decodeThreadsOn, resolveDecodeThreads, Serving, type ServeLimits } from '../serve/index.ts';
import { openStore } from '../store/index.ts';
import { XlstmError } from '../util/errors.ts';
import { API_ENV_USAGE, apiSettings } from './api-settings.ts';
import { configFolderSource } from './config-source.ts';
import { intFlag } from './int-flag.ts';
import { CHECKPOINTS_DIR, CONFIG_DIR, packageVersion, REPO_ROOT } from './paths.ts';
import { createRunQueue } from './runs.ts';
import { startBackend } from './runtime.ts';

export const SERVE_USAGE = `xlstm serve [--port N] [--host H] [--checkpoint ID|DIR] [--checkpoints-dir DIR]
            [--max-active N] [--max-queued N] [--max-tokens N] [--max-prompts N] [--max-prompt-tokens N]
            [--decode-threads N] [--no-playground]
  --port          default XLSTM_PORT or 4000 (0 picks a free port)
  --host          default XLSTM_HOST or 127.0.0.1
  --checkpoint    the checkpoint served by default: an id under the checkpoints folder, or a checkpoint folder;
                  default: the one named in checkpoints/DEFAULT, or the only one there
  --checkpoints-dir  default XLSTM_CHECKPOINTS or the repository's checkpoints/
  --max-tokens, --max-prompts, --max-prompt-tokens   caps on one generate request (defaults 1024, 16, 2048)
  --decode-threads  worker threads that decode each loaded model on the cpu and wasm backends, each with its own
                  copy of the model; 1 decodes in the server's thread (as other backends always do);
                  default XLSTM_DECODE_THREADS or one per core
  runs            recorded under XLSTM_HOME (default .xlstm); fine-tune datasets must lie under XLSTM_DATA
                  (default the repository's data/)
${API_ENV_USAGE}`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      checkpoint: { type: 'string', short: 'c' },
      'checkpoints-dir': { type: 'string' },
      'max-active': { type: 'string' },
      'max-queued': { type: 'string' },
      'max-tokens': { type: 'string' },
      'max-prompts': { type: 'string' },
      'max-prompt-tokens': { type: 'string' },
      'decode-threads': { type: 'string' },
      'no-playground': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${SERVE_USAGE}\n`);
    return;
  }
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const port = intFlag('--port', values.port ?? process.env.XLSTM_PORT, 0, 65535) ?? 4000;
  const host = values.host ?? process.env.XLSTM_HOST ?? '127.0.0.1';
  const { root, id } = await locateCheckpoint(values.checkpoint, values['checkpoints-dir'] ?? process.env.XLSTM_CHECKPOINTS ?? CHECKPOINTS_DIR);
  const decodeThreads = resolveDecodeThreads(intFlag('--decode-threads', values['decode-threads'] ?? process.env.XLSTM_DECODE_THREADS, 1, 256));
  const limits: Partial<ServeLimits> = dropUndefined({
    maxActive: intFlag('--max-active', values['max-active'], 1),
    maxQueued: intFlag('--max-queued', values['max-queued'], 0),
    maxTokens: intFlag('--max-tokens', values['max-tokens'], 1),
    maxPrompts: intFlag('--max-prompts', values['max-prompts'], 1),
    maxPromptTokens: intFlag('--max-prompt-tokens', values['max-prompt-tokens'], 1),
  });
  // Before anything heavy: a server that would be open to the network without tokens does not start.
  const api = await apiSettings(process.env, host);
  for (const warning of api.warnings) log(`warning: ${warning}`);
  const backend = await startBackend(log);
  const metrics = createMetrics();
  const serving = await Serving.open({ checkpointsRoot: root, defaultCheckpoint: id, limits, observer: metrics.observer, decodeThreads });
  const decoding = decodeThreadsOn(backend.name, decodeThreads);
  log(decoding > 1 ? `decoding on ${decoding} worker threads (--decode-threads)` : 'decoding in the server thread');
  const loaded = await serving.loadDefault();
  // Training and fine-tuning runs: records under XLSTM_HOME, checkpoints beside the served ones,
  // gradients in worker processes so a training step never blocks the server's event loop.
  const store = openStore(path.resolve(process.env.XLSTM_HOME ?? '.xlstm'));
  const runs = createRunQueue({
    store,
    checkpointsRoot: serving.catalogue.root,
    configDir: CONFIG_DIR,
    workDir: REPO_ROOT,
    dataRoot: path.resolve(process.env.XLSTM_DATA ?? path.join(REPO_ROOT, 'data')),
    backend: backend.name,
    isolate: true,
    log,
  });
  runs.start();
  const playground = values['no-playground'] ? null : new Playground();
  const server = await ApiServer.create({
    serving,
    configs: configFolderSource(CONFIG_DIR),
    metrics,
    version: packageVersion(),
    backend: () => backend.name,
    backendDetail: () => backend.detail,
    exposeInternals: process.env.NODE_ENV === 'development',
    playground,
    access: api.access,
    limits: api.limits,
    memory: () => memory(),
    extraContext: { runs },
  });
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const url = await server.listen(port, host);
  log(`serving checkpoint ${loaded} at ${url} (ws ${url.replace(/^http/, 'ws')}; open it in a browser for the playground)`);
  // Bundle the playground now (only when missing or stale) rather than on the first visit.
  playground?.prepare().catch((e: unknown) => log(`playground unavailable: ${(e as Error).message}`));
  const received = await signal;
  log(`${received}: draining (no new work; open streams end with CANCELLED)`);
  await server.drain();
  await runs.close();
  store.close();
  log('stopped');
}

/** --checkpoint as an id under the root, or as a folder (whose parent then becomes the root). */
async function locateCheckpoint(value: string | undefined, root: string): Promise<{ root: string; id: string | undefined }> {
  if (value === undefined) return { root, id: undefined };
  const looksLikePath = value.includes('/') || value.includes(path.sep) || value.startsWith('.');
  if (!looksLikePath) return { root, id: value };
  const dir = path.resolve(value);
  const stat = await fsp.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) {
    throw new XlstmError('CHECKPOINT_NOT_FOUND', `--checkpoint expected a checkpoint id or folder, but ${dir} is not a folder. Hint: list checkpoints/ for ids.`);
  }
  return { root: path.dirname(dir), id: path.basename(dir) };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
