import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ensurePlayground, Playground } from '../../../src/api/http/index.ts';
import { startTestServer, type TestServer } from '../../support/api-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let t: TestServer;
let browser: Browser;

beforeAll(async () => {
  await ensurePlayground();
  t = await startTestServer({ playground: new Playground() });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** Opens the playground with a query in the editor and records every request the page makes. */
async function open(query: string): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => requests.push(`pageerror: ${e.message}`));
  await page.goto(`${t.httpUrl}?query=${encodeURIComponent(query)}`);
  await page.locator('.graphiql-execute-button').waitFor({ timeout: 60_000 });
  return { page, requests };
}

/** The response editor's visible text (Monaco renders spaces as no-break spaces). */
const responseText = async (page: Page): Promise<string> =>
  (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');

describe.skipIf(!existsSync(CHROMIUM))('the playground in headless Chromium', () => {
  it('serves the page to browsers and GraphQL to API clients on the same path', async () => {
    const html = await fetch(t.httpUrl, { headers: { accept: 'text/html' } });
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(html.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const api = await fetch(`${t.httpUrl}?query=%7Bhealth%7Bphase%7D%7D`, { headers: { accept: 'application/json', 'apollo-require-preflight': '1' } });
    expect(await api.json()).toEqual({ data: { health: { phase: 'SERVING' } } });
  });

  it('runs a checkpoints query from the editor', async () => {
    const { page, requests } = await open('{ checkpoints { items { id isDefault } totalCount } }');
    await page.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(page), { timeout: 30_000 }).toMatch(/"totalCount": 1/);
    expect(await responseText(page)).toMatch(/"id": "tiny"/);
    const origin = new URL(t.httpUrl).origin;
    const outside = requests.filter((u) => !u.startsWith(origin) && !u.startsWith(origin.replace('http', 'ws')) && !u.startsWith('data:'));
    expect(outside).toEqual([]);
    await page.close();
  });

  it('runs a generate subscription and shows the tokens as they stream in', async () => {
    const subscription = `subscription {
  generate(input: { prompts: ["Once upon a time"], maxTokens: 300, seed: 4 }) {
    __typename
    ... on TokenEvent { position text }
    ... on FinishEvent { finishReason generatedTokens }
  }
}`;
    const { page, requests } = await open(subscription);
    await page.locator('.graphiql-execute-button').click();
    // The response pane shows the latest event: sample it while the stream runs.
    const positions = new Set<number>();
    let final = '';
    await expect
      .poll(
        async () => {
          final = await responseText(page);
          const at = /"position": (\d+)/.exec(final);
          if (at) positions.add(Number(at[1]));
          return /"finishReason"/.test(final);
        },
        { timeout: 60_000, interval: 5 },
      )
      .toBe(true);
    expect(final).toMatch(/"finishReason": "LENGTH"/);
    expect(final).toMatch(/"generatedTokens": 300/);
    // Several different token events were on the page before the stream finished.
    expect(positions.size).toBeGreaterThan(1);
    expect(requests.filter((u) => u.startsWith('pageerror'))).toEqual([]);
    await page.close();
  });
});
