/**
 * Serves the playground: the page on GET /graphql (Accept: text/html) and its bundled assets under /playground/.
 * The page's Content-Security-Policy allows nothing but this server, so it works offline by construction.
 */
import { promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

import { ensurePlayground, PLAYGROUND_DIR } from './playground-bundle.ts';

export const ASSET_PREFIX = '/playground/';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
};

const CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "worker-src 'self'",
  // Monaco and GraphiQL inject style elements at run time.
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xLSTM GraphQL playground</title>
<link rel="stylesheet" href="${ASSET_PREFIX}app.css">
<style>html, body, #root { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="root"></div>
<script type="module" src="${ASSET_PREFIX}app.js"></script>
</body>
</html>
`;

export interface PlaygroundOptions {
  /** Where the bundle lives (dist/playground). */
  readonly dir?: string;
  /** Build a missing or stale bundle on first request (needs esbuild, a devDependency). Default true. */
  readonly build?: boolean;
}

export class Playground {
  private ready: Promise<void> | null = null;
  private readonly cache = new Map<string, Buffer>();
  private readonly dir: string;

  constructor(private readonly options: PlaygroundOptions = {}) {
    this.dir = options.dir ?? PLAYGROUND_DIR;
  }

  /** Browsers asking for /graphql get the page; API clients (Accept: application/json) go to GraphQL. */
  static wantsPage(req: IncomingMessage): boolean {
    return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
  }

  /** Makes sure the bundle exists (building it when allowed); the first call does the work. */
  prepare(): Promise<void> {
    this.ready ??= (this.options.build ?? true ? ensurePlayground(this.dir) : fsp.access(path.join(this.dir, 'app.js'))).catch((e: unknown) => {
      this.ready = null;
      throw e;
    });
    return this.ready;
  }

  page(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': CSP,
      'cache-control': 'no-cache',
    });
    res.end(PAGE);
    // Start bundling while the browser parses the page, so the assets are not late.
    this.prepare().catch(() => {});
  }

  /** Serves /playground/<file>; false when the path is not an asset of ours. */
  async asset(pathname: string, res: ServerResponse): Promise<boolean> {
    const name = pathname.slice(ASSET_PREFIX.length);
    // Only flat file names from our bundle: nothing with a separator or a leading dot can escape the folder.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || !(path.extname(name) in TYPES)) return false;
    try {
      await this.prepare();
    } catch (e) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`the playground bundle expected to be built, but it is not: ${(e as Error).message}\nHint: run npm run build:playground.\n`);
      return true;
    }
    let body = this.cache.get(name);
    if (!body) {
      const read = await fsp.readFile(path.join(this.dir, name)).catch(() => null);
      if (!read) return false;
      body = read;
      this.cache.set(name, body);
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(name)], 'cache-control': 'public, max-age=3600' });
    res.end(body);
    return true;
  }
}
