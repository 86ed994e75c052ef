/**
 * Loads an llm.yaml-style config: YAML -> overrides -> strict validation against the schema, with
 * every missing key taken from the defaults. Every failure is INVALID_CONFIG naming the file, the
 * key path and, where the YAML gives it, the line. The environment is not read here: callers turn
 * environment variables into overrides.
 */
import { readFileSync } from 'node:fs';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { configToObject, validateModelConfig } from '../core/config.ts';
import { XlstmError } from '../util/errors.ts';
import { applyOverridesTracked, type Overrides } from './overrides.ts';
import { DEFAULT_LLM_CONFIG, deepFreeze, LLM_SCHEMA, type LlmConfig, type Rule } from './schema.ts';

export interface LoadLlmConfigOptions {
  /** `['trainer.devices=2']` or `{'trainer.devices': '2'}`; applied after the file, before validation. */
  readonly overrides?: Overrides;
}

interface Context {
  readonly file: string;
  /** Dotted key path -> 1-based line of its key in the file. */
  readonly lines: ReadonlyMap<string, number>;
  readonly origins: ReadonlyMap<string, string>;
}

const show = (v: unknown): string => {
  const text = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/** The override that set `path` or one of its ancestors, if any. */
function originOf(ctx: Context, path: string): string | undefined {
  for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const origin = ctx.origins.get(p.replace(/\[\d+\]$/, ''));
    if (origin) return origin;
  }
  return undefined;
}

/** "FILE" or "FILE, override KEY=VALUE", then the line suffix when the value came from the file. */
function locate(ctx: Context, path: string): { where: string; line: string } {
  const origin = originOf(ctx, path);
  if (origin) return { where: `${ctx.file}, ${origin}`, line: '' };
  const n = ctx.lines.get(path);
  return { where: ctx.file, line: n ? ` (line ${n})` : '' };
}

function fail(ctx: Context, path: string, expected: string, got: unknown): never {
  const { where, line } = locate(ctx, path);
  const subject = path === '' ? '' : `${path} `;
  throw new XlstmError('INVALID_CONFIG', `${where}: ${subject}expected ${expected}, but got ${show(got)}${line}.`);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function failUnknown(ctx: Context, path: string, unknown: string[], allowed: string[]): never {
  const { where, line } = locate(ctx, join(path, unknown[0]));
  const close = allowed.find((k) => editDistance(k, unknown[0]) <= 2);
  const subject = path === '' ? 'the top level' : path;
  throw new XlstmError(
    'INVALID_CONFIG',
    `${where}: ${subject} has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}${line}. ` +
      `Hint: allowed keys are ${allowed.join(', ')}${close ? `; did you mean "${close}"?` : '.'}`,
  );
}

function check(rule: Rule, raw: unknown, def: unknown, path: string, ctx: Context): unknown {
  if (raw === undefined) return def;
  switch (rule.kind) {
    case 'leaf':
      if (!rule.ok(raw)) fail(ctx, path, rule.expected, raw);
      return raw;
    case 'section': {
      // An empty section (`trainer:` with every key commented out) is YAML null: all defaults.
      const src = raw === null ? {} : raw;
      const allowed = Object.keys(rule.fields);
      if (!isMapping(src)) fail(ctx, path, `a mapping with keys ${allowed.join(', ')}`, raw);
      const unknown = Object.keys(src).filter((k) => !allowed.includes(k));
      if (unknown.length > 0) failUnknown(ctx, path, unknown, allowed);
      const d = def as Record<string, unknown>;
      return Object.fromEntries(allowed.map((k) => [k, check(rule.fields[k], src[k], d[k], join(path, k), ctx)]));
    }
    case 'model':
      return checkModel(raw, def as LlmConfig['model'], path, ctx);
  }
}

/** Merges the model keys over the defaults, then lets core validate; its messages get our location. */
function checkModel(raw: unknown, def: LlmConfig['model'], path: string, ctx: Context): unknown {
  const src = raw === null ? {} : raw;
  if (!isMapping(src)) fail(ctx, path, 'a mapping of model keys', raw);
  const overridden = [...ctx.origins.entries()].filter(([p]) => p === path || p.startsWith(`${path}.`)).map(([, o]) => o);
  const where = overridden.length > 0 ? `${ctx.file}, ${overridden.join(', ')}` : ctx.file;
  try {
    return validateModelConfig({ ...configToObject(def), ...src }, `${where}: ${path}`);
  } catch (e) {
    if (!(e instanceof XlstmError) || overridden.length > 0) throw e;
    // core names the key as "model.KEY" or "unknown key KEY"; point at its line when the file has it.
    const key = /: model\.([A-Za-z_]+(?:\[\d\])?)/.exec(e.message)?.[1] ?? /unknown keys? ([A-Za-z_]+)/.exec(e.message)?.[1];
    const line = key ? (ctx.lines.get(join(path, key)) ?? ctx.lines.get(join(path, key.replace(/\[\d\]$/, '')))) : undefined;
    if (line === undefined) throw e;
    const at = e.message.includes('. Hint:') ? e.message.indexOf('. Hint:') : e.message.length - 1;
    throw new XlstmError('INVALID_CONFIG', `${e.message.slice(0, at)} (line ${line})${e.message.slice(at)}`, { cause: e });
  }
}

/** Checks relations between keys that each look fine alone. */
function crossCheck(config: LlmConfig, ctx: Context): void {
  const { trainer, data } = config;
  if (trainer.max_steps === null && trainer.max_epochs === null) {
    fail(ctx, 'trainer.max_steps', 'an integer >= 1 when trainer.max_epochs is null (a run needs a limit)', null);
  }
  if (trainer.checkpoint.save_top_k > 0 && data.val_split === 0) {
    fail(
      ctx,
      'trainer.checkpoint.save_top_k',
      '0 when data.val_split is 0 (there is no validation loss to rank checkpoints by)',
      trainer.checkpoint.save_top_k,
    );
  }
}

function validateWith(raw: unknown, ctx: Context): LlmConfig {
  if (raw !== null && raw !== undefined && !isMapping(raw)) {
    fail(ctx, '', `a mapping with sections ${Object.keys(LLM_SCHEMA.fields).join(', ')}`, raw);
  }
  const checked = check(LLM_SCHEMA, raw ?? {}, DEFAULT_LLM_CONFIG, '', ctx) as LlmConfig;
  crossCheck(checked, ctx);
  // A private deep copy: the caller's raw objects (and override values) stay theirs and unfrozen.
  return deepFreeze(structuredClone(checked));
}

/** Validates an already parsed config (`file` names it in messages) and returns it deeply frozen. */
export function validateLlmConfig(raw: unknown, file = 'config'): LlmConfig {
  return validateWith(raw, { file, lines: new Map(), origins: new Map() });
}

function lineMap(node: unknown, path: string, counter: LineCounter, out: Map<string, number>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const p = join(path, String(pair.key.value));
      if (pair.key.range) out.set(p, counter.linePos(pair.key.range[0]).line);
      lineMap(pair.value, p, counter, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const p = `${path}[${i}]`;
      if (isNode(item) && item.range) out.set(p, counter.linePos(item.range[0]).line);
      lineMap(item, p, counter, out);
    });
  }
}

/** Parses YAML text (`file` names it in messages), applies overrides, validates. */
export function parseLlmConfig(text: string, file: string, options: LoadLlmConfigOptions = {}): LlmConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: true });
  // Warnings (an unknown tag, say) would otherwise be dropped silently: strict means they fail too.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new XlstmError('INVALID_CONFIG', `${file}: expected valid YAML, but got ${problem.message}`);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new XlstmError('INVALID_CONFIG', `${file}: expected plain YAML data, but got ${(e as Error).message}`, { cause: e });
  }
  const lines = new Map<string, number>();
  lineMap(doc.contents, '', counter, lines);
  const { raw: merged, origins } = options.overrides
    ? applyOverridesTracked(raw, options.overrides, file)
    : { raw, origins: new Map<string, string>() };
  return validateWith(merged, { file, lines, origins });
}

/** Reads and validates a config file; `file` is used as given in messages. */
export function loadLlmConfig(file: string, options: LoadLlmConfigOptions = {}): LlmConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf-8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const got = code === 'ENOENT' ? 'nothing is there' : `it cannot be read (${code ?? (e as Error).message})`;
    throw new XlstmError('INVALID_CONFIG', `${file} expected a readable YAML config file, but ${got}. Hint: check the path.`, { cause: e });
  }
  return parseLlmConfig(text, file, options);
}
