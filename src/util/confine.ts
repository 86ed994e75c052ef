/**
 * Keeps names and paths that arrive from outside (checkpoint ids, config names, dataset paths) inside the folder
 * they are meant for: `..`, absolute paths elsewhere, symbolic links pointing out, NUL bytes and over-long names are
 * refused with INVALID_INPUT before anything touches the file system with them.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

import { XlstmError } from './errors.ts';

/** Longest path accepted (Linux's PATH_MAX). */
export const MAX_PATH_CHARS = 4096;
/** Longest single name (a file system's NAME_MAX); folder names we create add a suffix, so ids stay below. */
export const MAX_SEGMENT_CHARS = 255;

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface NameRule {
  /** What a good value is, for the message: "a checkpoint id (a folder name of letters, digits, '.', '_' or '-')". */
  readonly what: string;
  readonly hint: string;
  /** Default 128. */
  readonly maxLength?: number;
}

export interface PathRule {
  /** Names the root in the message ("the data root"). */
  readonly rootName?: string;
  readonly hint?: string;
  /** Where relative paths start (default: the root itself), e.g. the working directory a config was written for. */
  readonly base?: string;
}

const show = (v: unknown): string => {
  if (typeof v !== 'string') return v === undefined ? 'nothing' : typeof v;
  const text = JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return v.length > 80 ? `${text} (${v.length} characters)` : text;
};

function refuse(field: string, expected: string, got: unknown, why: string, hint: string): never {
  // The reason leads the hint, so the message keeps the platform's "expected x, but got y. Hint:" shape.
  throw new XlstmError('INVALID_INPUT', `${field} expected ${expected}, but got ${show(got)}. Hint: it ${why}; ${hint}`);
}

/** Why `value` is no safe single folder or file name, or null when it is one. */
function nameProblem(value: unknown, maxLength: number): string | null {
  if (typeof value !== 'string') return 'is not a string';
  if (value === '') return 'is empty';
  if (value.includes('\0')) return 'contains a NUL byte';
  if (value.length > maxLength) return `is longer than ${maxLength} characters`;
  if (value.includes('/') || value.includes('\\')) return 'contains a path separator';
  if (value.includes('..')) return "contains '..'";
  if (!/^[A-Za-z0-9]/.test(value)) return `starts with ${JSON.stringify(value[0])}`;
  if (!SAFE_NAME.test(value)) return "has characters other than letters, digits, '.', '_' and '-'";
  return null;
}

/** A single name (no separators, no dot names) that can be joined to a root safely; returns it unchanged. */
export function confineName(value: unknown, field: string, rule: NameRule): string {
  const problem = nameProblem(value, rule.maxLength ?? 128);
  if (problem) refuse(field, rule.what, value, problem, rule.hint);
  return value as string;
}

/** True when `child` is `root` itself or below it (both absolute and normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * The absolute path of `candidate` (relative to `rule.base` or `root`, or absolute inside it), checked without touching the
 * file system: no NUL byte, no `..` segment, no over-long path or segment, nothing outside `root`.
 */
export function confinePath(root: string, candidate: unknown, field: string, rule: PathRule = {}): string {
  const base = path.resolve(root);
  const rootName = rule.rootName ?? 'the root';
  const expected = `a path inside ${rootName} ${base}`;
  const hint = rule.hint ?? `use a path inside ${base}, relative to ${path.resolve(rule.base ?? base)}.`;
  if (typeof candidate !== 'string') refuse(field, expected, candidate, 'is not a string', hint);
  if (candidate === '') refuse(field, expected, candidate, 'is empty', hint);
  if (candidate.includes('\0')) refuse(field, expected, candidate, 'contains a NUL byte', hint);
  if (candidate.length > MAX_PATH_CHARS) refuse(field, expected, candidate, `is longer than ${MAX_PATH_CHARS} characters`, hint);
  const segments = candidate.split(/[\\/]/);
  if (segments.includes('..')) refuse(field, expected, candidate, "has a '..' segment", hint);
  if (segments.some((s) => s.length > MAX_SEGMENT_CHARS)) refuse(field, expected, candidate, `has a name longer than ${MAX_SEGMENT_CHARS} characters`, hint);
  const resolved = path.resolve(rule.base ?? base, candidate);
  if (!isInside(base, resolved)) refuse(field, expected, candidate, `is outside ${rootName}`, hint);
  return resolved;
}

/**
 * confinePath, then the same check on the real path: the deepest part of the path that exists is resolved through
 * its symbolic links, and must still be inside the root's real path. The path itself need not exist yet.
 */
export async function confineRealPath(root: string, candidate: unknown, field: string, rule: PathRule = {}): Promise<string> {
  const resolved = confinePath(root, candidate, field, rule);
  const base = path.resolve(root);
  const realRoot = await fsp.realpath(base).catch(() => base);
  let existing = resolved;
  let rest = '';
  for (;;) {
    const real = await fsp.realpath(existing).catch(() => null);
    if (real !== null) {
      const full = rest === '' ? real : path.join(real, rest);
      if (!isInside(realRoot, full)) {
        const rootName = rule.rootName ?? 'the root';
        refuse(
          field,
          `a path inside ${rootName} ${base}`,
          candidate,
          `leads through a symbolic link to ${full}, outside ${rootName}`,
          rule.hint ?? 'copy the data inside the root instead of linking to it.',
        );
      }
      return resolved;
    }
    const parent = path.dirname(existing);
    if (parent === existing) return resolved;
    rest = rest === '' ? path.basename(existing) : path.join(path.basename(existing), rest);
    existing = parent;
  }
}
