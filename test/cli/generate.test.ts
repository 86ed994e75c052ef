import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { Serving } from '../../src/serve/index.ts';
import { tinyRoot } from '../support/tiny-checkpoint.ts';

const run = promisify(execFile);
const BIN = new URL('../../bin/xlstm.js', import.meta.url).pathname;

let root: string;
let remove: () => Promise<void>;

beforeAll(async () => {
  ({ root, remove } = await tinyRoot(['tiny']));
});

afterAll(async () => {
  await remove?.();
});

const xlstm = (args: string[]) => run(process.execPath, [BIN, 'generate', '--checkpoints-dir', root, ...args], { env: { ...process.env, XLSTM_BACKEND: 'cpu' } });

describe('xlstm generate', () => {
  it('prints exactly the text the server streams for the same request', async () => {
    const { stdout, stderr } = await xlstm(['--checkpoint', 'tiny', '--max-tokens', '12', '--top-k', '50', '--temperature', '0.7', '--seed', '3', 'Once upon a time']);
    // The oracle: the same request through the serving layer in this process.
    await selectBackend('cpu');
    const serving = await Serving.open({ checkpointsRoot: root });
    await serving.loadDefault();
    let text = '';
    for await (const e of await serving.generate({ prompts: ['Once upon a time'], maxTokens: 12, topK: 50, temperature: 0.7, seed: 3 })) {
      if (e.kind === 'token') text += e.text;
    }
    await serving.close();
    expect(stdout).toBe(text);
    expect(stderr).toMatch(/\[0\] LENGTH after 12 tokens \(seed 3\)/);
  });

  it('labels the prompts when there are several', async () => {
    const { stdout, stderr } = await xlstm(['--max-tokens', '3', '--seed', '1', 'first', 'second']);
    expect(stdout).toMatch(/\[0\] /);
    expect(stdout).toMatch(/\[1\] /);
    expect(stderr.match(/LENGTH after 3 tokens/g)).toHaveLength(2);
  });

  it('names the flag of a bad value and exits 1', async () => {
    const failed = await xlstm(['--top-k', '0', 'hi']).catch((e: { code: number; stderr: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr).toMatch(/xlstm: INVALID_INPUT: --top-k expected an integer from 1 to/);
  });
});
