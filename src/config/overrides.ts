/**
 * Dotted-key overrides of a parsed config (`trainer.devices=2`, or `{'trainer.devices': '2'}` from
 * CLI flags). String values are read as YAML, so `2` is a number and `[0.9, 0.99]` a list.
 */
import { parseDocument } from 'yaml';
import { XlstmError } from '../util/errors.ts';

export type Overrides = readonly string[] | Readonly<Record<string, unknown>>;

export interface AppliedOverrides {
  readonly raw: Record<string, unknown>;
  /** Dotted key path -> the override that set it, for error messages. */
  readonly origins: ReadonlyMap<string, string>;
}

const KEY_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(where: string, message: string): never {
  throw new XlstmError('INVALID_CONFIG', `${where}: ${message}`);
}

/** A value as YAML, as strictly as a config file: warnings (an unknown tag such as !!js/function) fail too. */
function parseValue(text: string, where: string): unknown {
  const refuse = (why: string): never => fail(where, `value expected YAML, but got ${JSON.stringify(text)} (${why.split('\n')[0]}).`);
  const doc = parseDocument(text);
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) return refuse(problem.message);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return refuse((e as Error).message);
  }
}

/** The overrides as [key path, value, label] in the order given. */
function entries(overrides: Overrides, file: string): Array<[string, unknown, string]> {
  if (Array.isArray(overrides)) {
    return (overrides as readonly string[]).map((item) => {
      const eq = typeof item === 'string' ? item.indexOf('=') : -1;
      if (eq <= 0) fail(file, `override expected KEY=VALUE such as trainer.devices=2, but got ${JSON.stringify(item)}.`);
      const label = `override ${item}`;
      return [item.slice(0, eq).trim(), parseValue(item.slice(eq + 1), `${file}, ${label}`), label];
    });
  }
  return Object.entries(overrides).map(([key, value]) => {
    const label = `override ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
    return [key, typeof value === 'string' ? parseValue(value, `${file}, ${label}`) : value, label];
  });
}

/** Applies overrides to a copy of `raw` and records which key paths they set. */
export function applyOverridesTracked(raw: unknown, overrides: Overrides, file = 'config'): AppliedOverrides {
  if (raw !== null && raw !== undefined && !isMapping(raw)) {
    fail(file, `expected a mapping of sections, but got ${JSON.stringify(raw)}.`);
  }
  const out: Record<string, unknown> = raw ? structuredClone(raw) : {};
  const origins = new Map<string, string>();
  for (const [key, value, label] of entries(overrides, file)) {
    const where = `${file}, ${label}`;
    if (!KEY_PATH.test(key) || key.split('.').some((k) => FORBIDDEN.has(k))) {
      fail(where, `key expected a dotted path of names such as trainer.devices, but got ${JSON.stringify(key)}.`);
    }
    const parts = key.split('.');
    let node = out;
    parts.slice(0, -1).forEach((part, i) => {
      if (node[part] === undefined || node[part] === null) node[part] = {};
      if (!isMapping(node[part])) {
        fail(where, `${parts.slice(0, i + 1).join('.')} expected a mapping to set ${parts.slice(i + 1).join('.')} in, but got ${JSON.stringify(node[part])}.`);
      }
      node = node[part] as Record<string, unknown>;
    });
    node[parts[parts.length - 1]] = structuredClone(value);
    origins.set(key, label);
  }
  return { raw: out, origins };
}

/** Applies overrides to a copy of `raw`; validate the result with validateLlmConfig. */
export function applyOverrides(raw: unknown, overrides: Overrides, file = 'config'): Record<string, unknown> {
  return applyOverridesTracked(raw, overrides, file).raw;
}
