/**
 * The runs page's script (bundled by esbuild, never run by Node): lists runs, starts fine-tunes, and shows the
 * selected run's stored history and then its live runProgress events as a loss chart, a stats line and samples.
 */
import { Api } from './api.ts';
import { drawChart } from './chart.ts';
import { byStep, RunView, TERMINAL, type ProgressEvent, type RunDetail } from './run-view.ts';

const RUNS = `query Runs { runs(first: 50) { items { id kind phase step maxSteps } } }`;
const CHECKPOINTS = `query Checkpoints { checkpoints(first: 100) { items { id isDefault } } }`;
const RUN = `query Run($id: ID!) {
  run(id: $id) { id kind phase step maxSteps baseCheckpoint error { code message } metrics { step loss lr tokensPerSecond valLoss samples } }
}`;
const PROGRESS = `subscription Progress($id: ID!) {
  runProgress(id: $id) { kind phase step maxSteps loss lr tokensPerSecond valLoss samples error { code message } }
}`;
const START_FINE_TUNE = `mutation StartFineTune($input: StartFineTuneInput!) { startFineTune(input: $input) { id } }`;
const CANCEL = `mutation Cancel($id: ID!) { cancelRun(id: $id) { id phase } }`;
/** Queued and running runs change without the page hearing of it (started elsewhere): the list is asked again. */
const LIST_REFRESH_MS = 3_000;

interface RunRow {
  readonly id: string;
  readonly kind: string;
  readonly phase: string;
  readonly step: number;
  readonly maxSteps: number | null;
}

const byId = <T extends Element>(id: string): T => document.getElementById(id) as unknown as T;
const api = new Api();
let selected: { view: RunView; stop: () => void } | null = null;

function report(e: unknown): void {
  byId<HTMLElement>('status').textContent = e instanceof Error ? e.message : String(e);
}

function clearReport(): void {
  byId<HTMLElement>('status').textContent = '';
}

function cell(row: HTMLTableRowElement, content: string | Node): void {
  row.insertCell().append(content);
}

async function refreshRuns(): Promise<void> {
  const { runs } = await api.request<{ runs: { items: RunRow[] } }>(RUNS);
  const rows = runs.items.map((run) => {
    const row = document.createElement('tr');
    row.dataset.runId = run.id;
    if (run.id === selected?.view.id) row.className = 'selected';
    const open = document.createElement('button');
    open.type = 'button';
    open.textContent = run.id;
    open.dataset.runId = run.id;
    open.addEventListener('click', () => select(run.id));
    cell(row, open);
    cell(row, run.kind);
    cell(row, run.phase);
    cell(row, run.maxSteps === null ? String(run.step) : `${run.step} / ${run.maxSteps}`);
    return row;
  });
  byId<HTMLElement>('runs-body').replaceChildren(...rows);
}

async function loadCheckpoints(): Promise<void> {
  const { checkpoints } = await api.request<{ checkpoints: { items: { id: string; isDefault: boolean }[] } }>(CHECKPOINTS);
  const select = byId<HTMLSelectElement>('ft-checkpoint');
  const keep = select.value;
  select.replaceChildren(...checkpoints.items.map((c) => new Option(c.isDefault ? `${c.id} (default)` : c.id, c.id, false, keep ? c.id === keep : c.isDefault)));
}

/** Everything after the first frame's worth of events is drawn once. */
let drawPending = false;
function redraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    if (selected) render(selected.view);
  });
}

const number = (v: number | null | undefined, format: (v: number) => string): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : format(v));

/** Sample texts render as text, never as markup: they are model output. */
let samplesShown = -1;
function renderSamples(view: RunView): void {
  if (view.samples.size === samplesShown) return;
  samplesShown = view.samples.size;
  const box = byId<HTMLElement>('samples');
  if (view.samples.size === 0) {
    const none = document.createElement('p');
    none.className = 'muted';
    none.textContent = 'none yet (they come with each evaluation)';
    box.replaceChildren(none);
    return;
  }
  const parts: Node[] = [];
  for (const [step, texts] of byStep(view.samples).reverse()) {
    const heading = document.createElement('h3');
    heading.textContent = `step ${step}`;
    parts.push(heading);
    for (const text of texts) {
      const pre = document.createElement('pre');
      pre.className = 'sample';
      pre.textContent = text;
      parts.push(pre);
    }
  }
  box.replaceChildren(...parts);
}

function render(view: RunView): void {
  byId<HTMLElement>('run-title').textContent = `${view.id}${view.kind ? ` (${view.kind.toLowerCase()}${view.baseCheckpoint ? ` of ${view.baseCheckpoint}` : ''})` : ''}`;
  byId<HTMLElement>('run-live').textContent = view.live;
  byId<HTMLElement>('run-phase').textContent = view.phase || '…';
  const latest = view.latest;
  byId<HTMLElement>('stat-step').textContent = `${latest?.step ?? 0}${view.maxSteps === null ? '' : ` / ${view.maxSteps}`}`;
  byId<HTMLElement>('stat-loss').textContent = number(latest?.loss, (v) => v.toFixed(4));
  byId<HTMLElement>('stat-val').textContent = number(byStep(view.valLosses).at(-1)?.[1], (v) => v.toFixed(4));
  byId<HTMLElement>('stat-lr').textContent = number(latest?.lr, (v) => v.toExponential(2));
  byId<HTMLElement>('stat-tps').textContent = number(latest?.tokensPerSecond, (v) => String(Math.round(v)));
  byId<HTMLButtonElement>('run-cancel').hidden = !view.active || view.phase === 'CANCELLING';
  byId<HTMLElement>('run-error').textContent = view.error ? `${view.error.code}: ${view.error.message}` : '';
  drawChart(byId<SVGSVGElement>('chart'), { losses: byStep(view.losses), valLosses: byStep(view.valLosses), maxSteps: view.maxSteps });
  renderSamples(view);
}

/**
 * Subscribes first and asks for the history meanwhile: events that happen between the two answers are in
 * one or the other (or both, which the view's step maps absorb), never in neither.
 */
function select(id: string): void {
  selected?.stop();
  const view = new RunView(id);
  samplesShown = -1;
  const stop = api.subscribe<{ runProgress: ProgressEvent }>(
    PROGRESS,
    { id },
    {
      next: ({ runProgress }) => {
        const before = view.phase;
        view.apply(runProgress);
        if (runProgress.kind === 'PHASE' && runProgress.phase !== before) void refreshRuns().catch(report);
        redraw();
      },
      error: (e) => {
        view.live = 'lost';
        report(e);
        redraw();
      },
      complete: () => {
        view.live = 'ended';
        redraw();
      },
    },
  );
  selected = { view, stop };
  byId<HTMLElement>('run-detail').hidden = false;
  for (const row of byId<HTMLElement>('runs-body').querySelectorAll('tr')) row.classList.toggle('selected', row.dataset.runId === id);
  render(view);
  api
    .request<{ run: RunDetail | null }>(RUN, { id })
    .then(({ run }) => {
      if (selected?.view !== view) return;
      if (!run) throw new Error(`run ${id} expected to exist, but the server has none by that id`);
      view.load(run);
      // A run that ended before the subscription started may complete it without a live event.
      if (TERMINAL.has(view.phase) && view.live === 'connecting') view.live = 'ended';
      redraw();
    })
    .catch(report);
}

function fineTuneInput(form: HTMLFormElement): Record<string, unknown> {
  const field = (name: string): string => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const input: Record<string, unknown> = { checkpoint: field('checkpoint'), dataset: field('dataset') };
  for (const name of ['steps', 'batchSize', 'maxLength', 'valCheckInterval']) if (field(name)) input[name] = Number.parseInt(field(name), 10);
  if (field('learningRate')) input.learningRate = Number(field('learningRate'));
  const overrides = field('overrides')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (overrides.length) input.overrides = overrides;
  return input;
}

function showTokenState(): void {
  byId<HTMLElement>('xlstm-token-state').textContent = api.token ? 'sent with every request' : 'no token sent';
}

function reloadAll(): void {
  clearReport();
  Promise.all([refreshRuns(), loadCheckpoints()]).catch(report);
}

byId<HTMLInputElement>('xlstm-token').value = api.token;
showTokenState();
byId<HTMLFormElement>('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!api.setToken(byId<HTMLInputElement>('xlstm-token').value)) return;
  showTokenState();
  reloadAll();
  if (selected) select(selected.view.id);
});

byId<HTMLFormElement>('finetune-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  const button = form.querySelector('button') as HTMLButtonElement;
  button.disabled = true;
  clearReport();
  api
    .request<{ startFineTune: { id: string } }>(START_FINE_TUNE, { input: fineTuneInput(form) })
    .then(async ({ startFineTune }) => {
      select(startFineTune.id);
      await refreshRuns();
    })
    .catch(report)
    .finally(() => {
      button.disabled = false;
    });
});

byId<HTMLButtonElement>('run-cancel').addEventListener('click', () => {
  if (!selected) return;
  api.request(CANCEL, { id: selected.view.id }).catch(report);
});

reloadAll();
setInterval(() => {
  refreshRuns().catch(report);
}, LIST_REFRESH_MS);
