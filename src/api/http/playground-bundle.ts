/**
 * Bundles the playground (GraphiQL, React, Monaco and its workers) and the runs page's script into static files
 * with esbuild, so neither page loads anything from outside the server. Run by `npm run build:playground`, and by
 * the server on first use when the bundle is missing or stale.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');
export const PLAYGROUND_DIR = path.join(ROOT, 'dist', 'playground');
/** The page scripts, one output file each (app.js, runs.js), served under /playground/. */
const ENTRIES = { app: path.join(HERE, 'playground', 'app.ts'), runs: path.join(HERE, 'runs-page', 'app.ts') };
// Every file of both folders, so editing any module a page imports makes the bundle stale.
const SOURCES = ['playground', 'runs-page'].flatMap((folder) =>
  readdirSync(path.join(HERE, folder))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => path.join(HERE, folder, f)),
);
const STAMP = 'stamp.json';

const WORKERS = {
  'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
  'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
};

/** What the bundle was built from: our sources and the versions of what they bundle. */
export function bundleStamp(): string {
  const require = createRequire(import.meta.url);
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(`${path.relative(HERE, file)}\n`).update(readFileSync(file));
  for (const pkg of ['graphiql', 'react', 'react-dom', 'graphql-ws', 'esbuild']) {
    const version = (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
    hash.update(`${pkg}@${version}\n`);
  }
  return hash.digest('hex');
}

/** True when `dir` holds a bundle built from the current sources. */
export async function isBundleCurrent(dir: string = PLAYGROUND_DIR): Promise<boolean> {
  const stamp = await fsp.readFile(path.join(dir, STAMP), 'utf8').catch(() => null);
  if (stamp === null) return false;
  try {
    return (JSON.parse(stamp) as { stamp: string }).stamp === bundleStamp();
  } catch {
    return false;
  }
}

/**
 * Builds into a temporary folder and renames it into place, so a reader (or a second builder in another
 * process) never sees half a bundle.
 */
export async function buildPlayground(dir: string = PLAYGROUND_DIR): Promise<void> {
  const esbuild = await import('esbuild').catch((e: unknown) => {
    throw new Error(`the playground bundle expected esbuild (a devDependency) to be installed, but importing it failed: ${String(e)}. Hint: run npm install, or npm run build:playground where it is.`);
  });
  const temp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  const common = {
    bundle: true,
    minify: true,
    outdir: temp,
    absWorkingDir: ROOT,
    logLevel: 'warning' as const,
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none' as const,
  };
  try {
    await esbuild.build({
      ...common,
      entryPoints: ENTRIES,
      format: 'esm',
      loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file' },
    });
    await esbuild.build({ ...common, entryPoints: WORKERS, format: 'iife' });
    await fsp.writeFile(path.join(temp, STAMP), JSON.stringify({ stamp: bundleStamp(), built: new Date().toISOString() }));
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(temp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another process finished first: its bundle is as good as ours.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
  } finally {
    await fsp.rm(temp, { recursive: true, force: true });
  }
}

/** Builds the bundle unless a current one is there. */
export async function ensurePlayground(dir: string = PLAYGROUND_DIR): Promise<void> {
  if (!(await isBundleCurrent(dir))) await buildPlayground(dir);
}

// `npm run build:playground` (also run by prestart). Without esbuild (an install without devDependencies) it
// only warns: the server then answers the playground's assets with 503 and this hint, and the API still runs.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const hasEsbuild = await import('esbuild').then(
    () => true,
    () => false,
  );
  if (!hasEsbuild) {
    console.warn('playground not bundled: esbuild (a devDependency) is not installed. Hint: npm install, then npm run build:playground.');
  } else {
    await ensurePlayground();
    console.log(`playground bundle ready in ${PLAYGROUND_DIR} (${Date.now() - started} ms)`);
  }
}
