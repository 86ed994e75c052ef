/**
 * Serves the runs page on GET /runs: a static skeleton whose script (the `runs` entry of the playground bundle,
 * under /playground/) lists runs, starts fine-tunes and draws a run's curves live from runProgress. Its
 * Content-Security-Policy allows nothing but this server, and no inline script or style except the page's own.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

import { ASSET_PREFIX } from './playground.ts';

export const RUNS_PATH = '/runs';

const STYLE = `
body { margin: 0; font: 14px system-ui, sans-serif; color: #222; }
header { display: flex; flex-wrap: wrap; gap: 0.5em 1em; align-items: center; padding: 0.4em 1em; border-bottom: 1px solid #ddd; }
header h1 { font-size: 16px; margin: 0 1em 0 0; }
header form { display: flex; gap: 0.5em; align-items: center; }
#xlstm-token { width: 22em; }
#status { color: #b00020; padding: 0 1em; min-height: 1.4em; white-space: pre-wrap; }
main { display: grid; grid-template-columns: minmax(18em, 26em) 1fr; gap: 1em; padding: 0 1em 1em; }
h2 { font-size: 15px; margin: 0.8em 0 0.4em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.2em 0.4em; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
#runs-body button { font: inherit; background: none; border: none; padding: 0; color: #0550ae; cursor: pointer; text-decoration: underline; }
#runs-body tr.selected { background: #eef4ff; }
#finetune-form { display: grid; grid-template-columns: auto 1fr; gap: 0.3em 0.6em; align-items: center; }
#finetune-form textarea { font: 12px ui-monospace, monospace; }
#finetune-form button { grid-column: 2; justify-self: start; }
#run-stats { display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; margin: 0.4em 0; }
#run-stats b { font-weight: 600; }
.run-view { display: grid; grid-template-columns: minmax(0, 2fr) minmax(14em, 1fr); gap: 1em; align-items: start; }
#chart { width: 100%; height: auto; border: 1px solid #eee; }
#chart text { font: 11px system-ui, sans-serif; fill: #555; }
#samples { max-height: 30em; overflow: auto; }
#samples h3 { font-size: 13px; margin: 0.6em 0 0.2em; }
#samples pre { white-space: pre-wrap; margin: 0 0 0.3em; padding: 0.3em; background: #f6f8fa; font: 12px ui-monospace, monospace; }
.muted { color: #666; }
`;

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

const CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  `style-src 'self' 'sha256-${STYLE_HASH}'`,
  "img-src 'self' data:",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xLSTM runs</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>xLSTM runs</h1>
<a href="/graphql">GraphQL playground</a>
<form id="token-form">
<label for="xlstm-token">API token</label>
<input id="xlstm-token" name="token" type="password" autocomplete="off" placeholder="leave empty on a server without tokens">
<button type="submit">Use token</button>
<span id="xlstm-token-state" class="muted"></span>
</form>
</header>
<div id="status" role="status"></div>
<main>
<section>
<h2>Runs</h2>
<table>
<thead><tr><th>id</th><th>kind</th><th>phase</th><th>step</th></tr></thead>
<tbody id="runs-body"></tbody>
</table>
<h2>Fine-tune a checkpoint</h2>
<form id="finetune-form">
<label for="ft-checkpoint">checkpoint</label><select id="ft-checkpoint" name="checkpoint" required></select>
<label for="ft-dataset">dataset</label><input id="ft-dataset" name="dataset" required placeholder="a .txt or .jsonl file, or a folder, on the server">
<label for="ft-steps">steps</label><input id="ft-steps" name="steps" type="number" min="1" placeholder="100">
<label for="ft-lr">learning rate</label><input id="ft-lr" name="learningRate" type="number" min="0" step="any" placeholder="0.0001">
<label for="ft-batch">batch size</label><input id="ft-batch" name="batchSize" type="number" min="1" placeholder="8">
<label for="ft-length">tokens per row</label><input id="ft-length" name="maxLength" type="number" min="2" placeholder="128">
<label for="ft-val">validate every</label><input id="ft-val" name="valCheckInterval" type="number" min="1" placeholder="a fifth of steps">
<label for="ft-overrides">overrides</label><textarea id="ft-overrides" name="overrides" rows="3" placeholder="one key=value a line, e.g. trainer.log_every_n_steps=1"></textarea>
<button type="submit">Start fine-tune</button>
</form>
</section>
<section id="run-detail" hidden>
<h2><span id="run-title"></span> <span id="run-live" class="muted"></span></h2>
<div id="run-stats">
<span>phase <b id="run-phase"></b></span>
<span>step <b id="stat-step"></b></span>
<span>loss <b id="stat-loss"></b></span>
<span>val loss <b id="stat-val"></b></span>
<span>lr <b id="stat-lr"></b></span>
<span>tokens/s <b id="stat-tps"></b></span>
<button id="run-cancel" type="button" hidden>Cancel run</button>
</div>
<div id="run-error"></div>
<div class="run-view">
<svg id="chart" viewBox="0 0 640 320" role="img" aria-label="training and validation loss by step"></svg>
<div><h2>Sample generations</h2><div id="samples"><p class="muted">none yet (they come with each evaluation)</p></div></div>
</div>
</section>
</main>
<script type="module" src="${ASSET_PREFIX}runs.js"></script>
</body>
</html>
`;

/** The page; the bundle is prepared meanwhile, so its script is not late (it is built with the playground's). */
export function serveRunsPage(res: ServerResponse, assets: { prepare(): Promise<void> }): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': CSP,
    'cache-control': 'no-cache',
  });
  res.end(PAGE);
  assets.prepare().catch(() => {});
}
