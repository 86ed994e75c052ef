/**
 * Draws a run's loss chart into an SVG element: the training loss as one polyline (a vertex per logged step),
 * validation losses as dots, step and loss axes with round tick values. Redrawn whole on every update.
 */
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 320;
const MARGIN = { left: 56, right: 16, top: 24, bottom: 40 };
const TRAIN_COLOUR = '#1f6feb';
const VAL_COLOUR = '#d1570f';

export interface ChartData {
  /** [step, loss], in step order. */
  readonly losses: readonly (readonly [number, number])[];
  readonly valLosses: readonly (readonly [number, number])[];
  /** The x axis spans 0 to this when known, so the curve grows into a fixed frame. */
  readonly maxSteps: number | null;
}

/** About `count` round values (1, 2 or 5 times a power of ten apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function node<K extends keyof SVGElementTagNameMap>(parent: Element, tag: K, attributes: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}

export function drawChart(svg: SVGSVGElement, data: ChartData): void {
  svg.replaceChildren();
  const steps = [...data.losses, ...data.valLosses].map(([s]) => s);
  const values = [...data.losses, ...data.valLosses].map(([, v]) => v).filter(Number.isFinite);
  const xTicks = niceTicks(0, Math.max(1, data.maxSteps ?? 0, ...steps), 6);
  const yTicks = values.length ? niceTicks(Math.min(...values), Math.max(...values), 5) : [0, 1];
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (step: number): number => MARGIN.left + ((step - x0) / (x1 - x0 || 1)) * plotW;
  const y = (loss: number): number => MARGIN.top + (1 - (loss - y0) / (y1 - y0 || 1)) * plotH;
  const fmt = (v: number): string => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

  const axes = node(svg, 'g', { id: 'chart-axes', stroke: '#999', 'stroke-width': 1 });
  node(axes, 'line', { x1: MARGIN.left, y1: MARGIN.top + plotH, x2: MARGIN.left + plotW, y2: MARGIN.top + plotH });
  node(axes, 'line', { x1: MARGIN.left, y1: MARGIN.top, x2: MARGIN.left, y2: MARGIN.top + plotH });
  const labels = node(svg, 'g', { id: 'chart-labels' });
  for (const t of xTicks) {
    node(axes, 'line', { x1: x(t), y1: MARGIN.top + plotH, x2: x(t), y2: MARGIN.top + plotH + 4 });
    node(labels, 'text', { x: x(t), y: MARGIN.top + plotH + 16, 'text-anchor': 'middle' }, fmt(t));
  }
  for (const t of yTicks) {
    node(axes, 'line', { x1: MARGIN.left - 4, y1: y(t), x2: MARGIN.left + plotW, y2: y(t), 'stroke-opacity': t === y0 ? 1 : 0.2 });
    node(labels, 'text', { x: MARGIN.left - 6, y: y(t) + 4, 'text-anchor': 'end' }, fmt(t));
  }
  node(labels, 'text', { x: MARGIN.left + plotW / 2, y: HEIGHT - 6, 'text-anchor': 'middle' }, 'step');
  node(labels, 'text', { x: 14, y: MARGIN.top + plotH / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${MARGIN.top + plotH / 2})` }, 'loss');

  const legend = node(svg, 'g', { id: 'chart-legend' });
  node(legend, 'line', { x1: MARGIN.left + 8, y1: 12, x2: MARGIN.left + 28, y2: 12, stroke: TRAIN_COLOUR, 'stroke-width': 2 });
  node(legend, 'text', { x: MARGIN.left + 32, y: 16 }, 'training loss');
  node(legend, 'circle', { cx: MARGIN.left + 128, cy: 12, r: 4, fill: VAL_COLOUR });
  node(legend, 'text', { x: MARGIN.left + 136, y: 16 }, 'validation loss');

  const finite = data.losses.filter(([, v]) => Number.isFinite(v));
  node(svg, 'polyline', {
    id: 'loss-line',
    fill: 'none',
    stroke: TRAIN_COLOUR,
    'stroke-width': 1.5,
    'stroke-linejoin': 'round',
    points: finite.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
  });
  for (const [s, v] of data.valLosses) {
    if (!Number.isFinite(v)) continue;
    const dot = node(svg, 'circle', { class: 'val-point', cx: x(s).toFixed(1), cy: y(v).toFixed(1), r: 4, fill: VAL_COLOUR });
    node(dot, 'title', {}, `step ${s}: validation loss ${v.toFixed(4)}`);
  }
}
