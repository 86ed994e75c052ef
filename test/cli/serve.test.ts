import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GENERATE, type EventJson } from '../support/api-server.ts';
import { tinyRoot } from '../support/tiny-checkpoint.ts';

const BIN = new URL('../../bin/xlstm.js', import.meta.url).pathname;

let root: string;
let remove: () => Promise<void>;

beforeAll(async () => {
  ({ root, remove } = await tinyRoot(['tiny']));
});

afterAll(async () => {
  await remove?.();
});

/** Starts `xlstm serve` on a free port and resolves with its GraphQL URL once it says it is serving. */
function startServe(): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--checkpoints-dir', root, '--no-playground'], {
    env: { ...process.env, XLSTM_BACKEND: 'cpu' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const log: string[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line);
      const url = /serving checkpoint tiny at (http:\/\/\S+\/graphql)/.exec(line)?.[1];
      if (url) resolve({ child, url, exit });
    });
    void exit.then((code) => reject(new Error(`xlstm serve exited with ${code} before serving:\n${log.join('\n')}`)));
  });
}

describe('xlstm serve', () => {
  it('serves the default checkpoint, and on SIGINT ends open streams with CANCELLED and exits 0', async () => {
    const { child, url, exit } = await startServe();
    const health = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ health { phase backend modelsLoaded } }"}' });
    expect(await health.json()).toEqual({ data: { health: { phase: 'SERVING', backend: 'cpu', modelsLoaded: 1 } } });
    const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const events: EventJson[] = [];
    let firstToken!: () => void;
    const started = new Promise<void>((r) => (firstToken = r));
    let completed!: () => void;
    const complete = new Promise<void>((r) => (completed = r));
    client.subscribe<{ generate: EventJson }>(
      { query: GENERATE, variables: { input: { prompts: ['Once upon a time'], maxTokens: 1000 } } },
      { next: (r) => (events.push(r.data!.generate), firstToken()), error: () => completed(), complete: () => completed() },
    );
    await started;
    child.kill('SIGINT');
    await complete;
    expect(events.at(-1)).toMatchObject({ __typename: 'FinishEvent', finishReason: 'CANCELLED' });
    expect(await exit).toBe(0);
    await client.dispose();
  });
});
