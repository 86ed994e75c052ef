import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AccessPolicy, ensurePlayground, parseTokenList, Playground } from '../../../src/api/http/index.ts';
import { createRunQueue } from '../../../src/cli/runs.ts';
import { openStore, type Store } from '../../../src/store/index.ts';
import type { RunQueue } from '../../../src/train/index.ts';
import { startTestServer, type TestServer } from '../../support/api-server.ts';
import { chromiumAvailable, launchChromium } from '../../support/chromium.ts';

const available = chromiumAvailable;

const STEPS = 30;
/** Evaluations at steps 0, 15 and 30. */
const VAL_EVERY = 15;

let t: TestServer;
let home: string;
let store: Store;
let queue: RunQueue;
let browser: Browser;
let page: Page;
const requests: string[] = [];
const pageErrors: string[] = [];
/** Console errors of the open server's page: a CSP violation (a blocked style or script) lands here. */
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!available) return;
  await ensurePlayground();
  home = mkdtempSync(path.join(tmpdir(), 'xlstm-runs-page-'));
  writeFileSync(
    path.join(home, 'story.txt'),
    'Once upon a time there was a little fox who lived in a quiet wood. Every morning the fox ran to the river to drink, ' +
      'and every evening it came back to sleep under the old oak tree. One day the fox met a rabbit who was lost. '.repeat(4),
  );
  store = openStore(home);
  t = await startTestServer({
    playground: new Playground(),
    // In-process training (wasm: the GPT-2-vocabulary head trains several times faster there than on cpu); the
    // page sees each step's event as the loop yields between steps.
    backend: 'wasm',
    extraContext: (root) => {
      queue = createRunQueue({ store, checkpointsRoot: root, configDir: path.join(home, 'config'), workDir: home, backend: 'wasm' });
      return { runs: queue };
    },
  });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await queue?.close();
  await t?.close();
  store?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

const origin = (): string => new URL(t.httpUrl).origin;
/** Vertices of the training-loss polyline as drawn in the SVG. */
const lossPoints = async (p: Page): Promise<number> => ((await p.locator('#loss-line').getAttribute('points')) ?? '').trim().split(/\s+/).filter(Boolean).length;
const valPoints = (p: Page): Promise<number> => p.locator('#chart circle.val-point').count();
const phaseOnPage = (p: Page): Promise<string> => p.locator('#run-phase').innerText();

describe.skipIf(!available)('the runs page in headless Chromium', () => {
  it('is served as HTML with a self-only CSP when the playground is on', async () => {
    const res = await fetch(new URL('/runs', t.httpUrl));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/connect-src 'self' ws: wss:/);
    expect(csp).not.toMatch(/unsafe-inline|https?:/);
    expect(await res.text()).toMatch(/<script type="module" src="\/playground\/runs\.js">/);
  });

  it('starts a fine-tune from its form and draws the loss curve growing live until SUCCEEDED', async () => {
    await page.goto(new URL('/runs', t.httpUrl).href);
    await expect.poll(() => page.locator('#ft-checkpoint option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)), { timeout: 60_000 }).toEqual(['tiny']);
    await page.locator('#ft-dataset').fill(path.join(home, 'story.txt'));
    await page.locator('#ft-steps').fill(String(STEPS));
    await page.locator('#ft-lr').fill('0.001');
    await page.locator('#ft-batch').fill('2');
    await page.locator('#ft-length').fill('16');
    await page.locator('#ft-val').fill(String(VAL_EVERY));
    await page.locator('#ft-overrides').fill('trainer.log_every_n_steps=1\ninference.token_lim=4');
    await page.locator('#finetune-form button[type=submit]').click();

    // The queue is not started yet: the run waits QUEUED while the page subscribes, so it sees every step.
    await expect.poll(() => phaseOnPage(page), { timeout: 10_000 }).toBe('QUEUED');
    await expect.poll(() => page.locator('#run-live').innerText()).toBe('live');
    const [run] = store.runs.list({ first: 10 }).items;
    expect(run).toMatchObject({ kind: 'FINETUNE', phase: 'QUEUED' });
    expect(await page.locator('#run-title').innerText()).toContain(run.id);
    expect(await page.locator(`#runs-body button[data-run-id="${run.id}"]`).count()).toBe(1);
    expect(await lossPoints(page)).toBe(0);

    queue.start();
    const whileRunning: number[] = [];
    let phase = '';
    await expect
      .poll(
        async () => {
          const count = await lossPoints(page);
          phase = await phaseOnPage(page);
          if (phase === 'RUNNING') whileRunning.push(count);
          return phase;
        },
        { timeout: 90_000, interval: 50 },
      )
      .toMatch(/SUCCEEDED|FAILED|CANCELLED/);
    expect(phase).toBe('SUCCEEDED');

    // Sampled at least twice while RUNNING, never shrinking, and seen growing.
    const distinct = [...new Set(whileRunning)];
    expect(whileRunning.length).toBeGreaterThanOrEqual(2);
    expect(whileRunning).toEqual([...whileRunning].sort((a, b) => a - b));
    expect(distinct.length).toBeGreaterThanOrEqual(2);

    // Every step drawn once; evaluations at 0, 15 and 30 as dots; the stats line reports the end.
    await expect.poll(() => lossPoints(page)).toBe(STEPS);
    expect(await valPoints(page)).toBe(STEPS / VAL_EVERY + 1);
    expect(await page.locator('#stat-step').innerText()).toBe(`${STEPS} / ${STEPS}`);
    expect(Number(await page.locator('#stat-loss').innerText())).toBeGreaterThan(0);
    expect(await page.locator('#samples pre.sample').count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#run-live').innerText()).toBe('ended');
    await expect.poll(() => page.locator(`#runs-body tr[data-run-id="${run.id}"] td:nth-child(3)`).innerText(), { timeout: 10_000 }).toBe('SUCCEEDED');
    expect(store.runs.require(run.id).phase).toBe('SUCCEEDED');
  });

  it('draws a finished run from its stored history when selected in a freshly loaded page', async () => {
    await page.reload();
    const [run] = store.runs.list({ first: 10 }).items;
    const open = page.locator(`#runs-body button[data-run-id="${run.id}"]`);
    await open.waitFor({ timeout: 10_000 });
    await open.click();
    await expect.poll(() => phaseOnPage(page)).toBe('SUCCEEDED');
    // log_every_n_steps=1 stored every step; the history query alone gives the same picture as the live run.
    await expect.poll(() => lossPoints(page)).toBe(STEPS);
    expect(await valPoints(page)).toBe(STEPS / VAL_EVERY + 1);
  });

  it('made no request outside the server and raised no page or console error', () => {
    const outside = requests.filter((u) => !u.startsWith(origin()) && !u.startsWith(origin().replace('http', 'ws')));
    expect(outside).toEqual([]);
    expect(requests.some((u) => u.endsWith('/playground/runs.js'))).toBe(true);
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});

describe.skipIf(!available)('the runs page on a server with API tokens', () => {
  const TOKEN = 'runs-page-read-token-0123';
  let secured: TestServer;
  let readQueue: RunQueue;
  let tab: Page;

  beforeAll(async () => {
    secured = await startTestServer({
      playground: new Playground(),
      backend: 'wasm',
      access: new AccessPolicy(parseTokenList(`${TOKEN}:read`, 'test')),
      // The same store: the run of the first server is listed here too (this queue never starts).
      extraContext: (root) => {
        readQueue = createRunQueue({ store, checkpointsRoot: root, configDir: path.join(home, 'config'), workDir: home, backend: 'wasm' });
        return { runs: readQueue };
      },
    });
    tab = await browser.newPage();
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    await tab.goto(new URL('/runs', secured.httpUrl).href);
  });

  afterAll(async () => {
    await tab?.close();
    await readQueue?.close();
    await secured?.close();
  });

  it('is refused without a token, lists runs with a read token, and cannot start a fine-tune with it', async () => {
    await expect.poll(() => tab.locator('#status').innerText(), { timeout: 10_000 }).toMatch(/UNAUTHENTICATED/);
    expect(await tab.locator('#runs-body tr').count()).toBe(0);
    await tab.locator('#xlstm-token').fill(TOKEN);
    await tab.locator('#xlstm-token').press('Enter');
    const [run] = store.runs.list({ first: 10 }).items;
    await tab.locator(`#runs-body button[data-run-id="${run.id}"]`).waitFor({ timeout: 10_000 });
    expect(await tab.locator('#xlstm-token-state').innerText()).toBe('sent with every request');
    expect(await tab.evaluate(() => [sessionStorage.getItem('xlstm.apiToken'), localStorage.getItem('xlstm.apiToken')])).toEqual([TOKEN, null]);
    // Subscriptions carry the token too: the finished run's stream opens and ends.
    await tab.locator(`#runs-body button[data-run-id="${run.id}"]`).click();
    await expect.poll(() => tab.locator('#run-live').innerText(), { timeout: 10_000 }).toBe('ended');
    expect(await lossPoints(tab)).toBe(STEPS);
    // Mutations need admin.
    await tab.locator('#ft-dataset').fill(path.join(home, 'story.txt'));
    await tab.locator('#finetune-form button[type=submit]').click();
    await expect.poll(() => tab.locator('#status').innerText()).toMatch(/FORBIDDEN/);
    expect(store.runs.list({ first: 10 }).items).toHaveLength(1);
    expect(pageErrors).toEqual([]);
  });
});

describe.skipIf(!available)('the runs page with the playground off', () => {
  it('is not served (404, like any unknown path)', async () => {
    // The same backend as the other server of this file: switching it would strand that server's tensors.
    const off = await startTestServer({ playground: null, backend: 'wasm' });
    try {
      const res = await fetch(new URL('/runs', off.httpUrl));
      expect(res.status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
