import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';

import { runnableEntry, typeScriptWorker } from '../../src/util/ts-worker.ts';

/** The first message a worker posts, with its workerData echoed. */
function firstMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('typeScriptWorker', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'xlstm-ts-worker-'));
  // ES modules, as the project's own entries are.
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const echo = (who: string) => `import { parentPort, workerData } from 'node:worker_threads';\nparentPort.postMessage({ who: '${who}', data: workerData });\n`;

  it('runs a TypeScript entry through tsx', async () => {
    const entry = path.join(dir, 'typed.ts');
    writeFileSync(entry, echo('ts').replace("who: 'ts'", "who: 'ts' as string"));
    expect(await firstMessage(typeScriptWorker(pathToFileURL(entry), { workerData: 7 }))).toEqual({ who: 'ts', data: 7 });
  });

  it('runs the bundled <name>.mjs beside a bundle when the .ts entry is not there', async () => {
    writeFileSync(path.join(dir, 'bundled.mjs'), echo('mjs'));
    expect(await firstMessage(typeScriptWorker(pathToFileURL(path.join(dir, 'bundled.ts')), { workerData: 8 }))).toEqual({ who: 'mjs', data: 8 });
  });

  it('names the .mjs for worker processes only where the .ts is absent and the .mjs present', () => {
    writeFileSync(path.join(dir, 'proc.mjs'), echo('mjs'));
    writeFileSync(path.join(dir, 'kept.ts'), echo('ts'));
    expect(runnableEntry(path.join(dir, 'proc.ts'))).toBe(path.join(dir, 'proc.mjs'));
    expect(runnableEntry(path.join(dir, 'kept.ts'))).toBe(path.join(dir, 'kept.ts'));
    expect(runnableEntry(path.join(dir, 'neither.ts'))).toBe(path.join(dir, 'neither.ts'));
  });

  it('prefers the .ts entry when both are there', async () => {
    writeFileSync(path.join(dir, 'both.ts'), echo('ts'));
    writeFileSync(path.join(dir, 'both.mjs'), echo('mjs'));
    expect(await firstMessage(typeScriptWorker(pathToFileURL(path.join(dir, 'both.ts')), { workerData: 9 }))).toEqual({ who: 'ts', data: 9 });
  });
});
