/** The tensors a model config requires, compared against what a file or a caller actually has. */
import { deriveDims, type ModelConfig } from '../core/config.ts';
import { modelParams } from '../core/params.ts';

export interface LayoutDiff {
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
  /** name, the shape the config gives, the shape found. */
  readonly misshaped: ReadonlyArray<readonly [string, readonly number[], readonly number[]]>;
}

/** Name -> shape of every tensor `config` needs; head.weight is left out when `withHead` is false (tied). */
export function expectedShapes(config: ModelConfig, withHead: boolean): Map<string, readonly number[]> {
  const specs = modelParams(deriveDims(config)).filter((p) => withHead || p.name !== 'head.weight');
  return new Map(specs.map((p) => [p.name, p.shape]));
}

export function diffLayout(expected: ReadonlyMap<string, readonly number[]>, found: ReadonlyMap<string, readonly number[]>): LayoutDiff {
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  const unexpected = [...found.keys()].filter((n) => !expected.has(n));
  const misshaped: Array<readonly [string, readonly number[], readonly number[]]> = [];
  for (const [name, shape] of found) {
    const want = expected.get(name);
    if (want && (want.length !== shape.length || want.some((n, i) => n !== shape[i]))) misshaped.push([name, want, shape]);
  }
  return { missing, unexpected, misshaped };
}

export const layoutMatches = (d: LayoutDiff): boolean =>
  d.missing.length === 0 && d.unexpected.length === 0 && d.misshaped.length === 0;

/** Every problem in one sentence per kind, so one error lists all of them. */
export function describeLayoutDiff(d: LayoutDiff): string {
  const parts: string[] = [];
  if (d.missing.length > 0) parts.push(`missing ${d.missing.length}: ${d.missing.join(', ')}`);
  if (d.unexpected.length > 0) parts.push(`unexpected ${d.unexpected.length}: ${d.unexpected.join(', ')}`);
  if (d.misshaped.length > 0) {
    const items = d.misshaped.map(([n, want, got]) => `${n} expected [${want.join(', ')}], but got [${got.join(', ')}]`);
    parts.push(`wrong shape ${d.misshaped.length}: ${items.join('; ')}`);
  }
  return parts.join('; ');
}
