import 'reflect-metadata';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AccessPolicy, ensurePlayground, parseTokenList, Playground } from '../../../src/api/http/index.ts';
import { startTestServer, type TestServer } from '../../support/api-server.ts';
import { chromiumAvailable, launchChromium } from '../../support/chromium.ts';

let t: TestServer;
let browser: Browser;
let page: Page;
/** Every request the page made, and any uncaught page error. */
const requests: string[] = [];
const pageErrors: string[] = [];

const available = chromiumAvailable;

beforeAll(async () => {
  if (!available) return;
  await ensurePlayground();
  t = await startTestServer({ playground: new Playground() });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // ?query= prefills the editor (a feature of our playground page).
  await page.goto(`${t.httpUrl}?query=${encodeURIComponent('{ checkpoints { items { id isDefault } totalCount } }')}`);
  await page.locator('.graphiql-execute-button').waitFor({ timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** The response editor's visible text (Monaco renders spaces as no-break spaces). */
const responseText = async (page: Page): Promise<string> =>
  (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');

describe.skipIf(!available)('the playground in headless Chromium', () => {
  it('serves the page to browsers and GraphQL to API clients on the same path', async () => {
    const html = await fetch(t.httpUrl, { headers: { accept: 'text/html' } });
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(html.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const api = await fetch(`${t.httpUrl}?query=%7Bhealth%7Bphase%7D%7D`, { headers: { accept: 'application/json', 'apollo-require-preflight': '1' } });
    expect(await api.json()).toEqual({ data: { health: { phase: 'SERVING' } } });
  });

  it('runs a checkpoints query from the editor', async () => {
    await page.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(page), { timeout: 30_000 }).toMatch(/"totalCount": 1/);
    expect(await responseText(page)).toMatch(/"id": "tiny"/);
    const origin = new URL(t.httpUrl).origin;
    const outside = requests.filter((u) => !u.startsWith(origin) && !u.startsWith(origin.replace('http', 'ws')) && !u.startsWith('data:'));
    expect(outside).toEqual([]);
  });

  it('runs a generate subscription and shows the tokens as they stream in', async () => {
    // One line: a newline would let Monaco auto-indent and close braces on its own.
    const subscription =
      'subscription { generate(input: { prompts: ["Once upon a time"], maxTokens: 80, seed: 4 }) ' +
      '{ __typename ... on TokenEvent { position text } ... on FinishEvent { finishReason generatedTokens } } }';
    // Replace the editor's text the way a paste does (typing would trigger Monaco's bracket completion).
    await page.locator('.graphiql-query-editor .monaco-editor').first().click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(subscription);
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
        { timeout: 60_000, interval: 10 },
      )
      .toBe(true);
    expect(final).toMatch(/"finishReason": "LENGTH"/);
    expect(final).toMatch(/"generatedTokens": 80/);
    // Several different token events were on the page before the stream finished.
    expect(positions.size).toBeGreaterThan(1);
    expect(pageErrors).toEqual([]);
  });
});

describe.skipIf(!available)('the playground on a server with API tokens', () => {
  const TOKEN = 'playground-read-token-0123';
  let secured: TestServer;
  let tab: Page;

  beforeAll(async () => {
    secured = await startTestServer({ playground: new Playground(), access: new AccessPolicy(parseTokenList(`${TOKEN}:read`, 'test')) });
    tab = await browser.newPage();
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    await tab.goto(`${secured.httpUrl}?query=${encodeURIComponent('{ health { phase } }')}`);
    await tab.locator('.graphiql-execute-button').waitFor({ timeout: 60_000 });
  });

  afterAll(async () => {
    await tab?.close();
    await secured?.close();
  });

  it('is refused without a token, and runs queries and subscriptions once the token is entered', async () => {
    await tab.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(tab), { timeout: 30_000 }).toMatch(/"code": "UNAUTHENTICATED"/);
    await tab.locator('#xlstm-token').fill(TOKEN);
    await tab.locator('#xlstm-token').press('Enter');
    await expect.poll(() => tab.locator('#xlstm-token-state').innerText()).toBe('sent with every request');
    await tab.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(tab), { timeout: 30_000 }).toMatch(/"phase": "SERVING"/);
    const subscription = 'subscription { generate(input: { prompts: ["Hi"], maxTokens: 5 }) { __typename ... on FinishEvent { finishReason } } }';
    await tab.locator('.graphiql-query-editor .monaco-editor').first().click();
    await tab.keyboard.press('ControlOrMeta+A');
    await tab.keyboard.insertText(subscription);
    await tab.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(tab), { timeout: 60_000 }).toMatch(/"finishReason": "LENGTH"/);
    // The token stays in this tab only.
    expect(await tab.evaluate(() => [sessionStorage.getItem('xlstm.apiToken'), localStorage.getItem('xlstm.apiToken')])).toEqual([TOKEN, null]);
    expect(pageErrors).toEqual([]);
  });
});
