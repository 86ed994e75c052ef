/**
 * Every trainable weight laid end to end in one float32 vector, and that vector cut into contiguous
 * shards: data-parallel workers each own one shard's optimizer update and swap the rest as ranges.
 */
import { XlstmError } from '../util/errors.ts';

export interface FlatParam {
  readonly name: string;
  readonly shape: readonly number[];
  /** First element in the flat vector. */
  readonly offset: number;
  readonly size: number;
  /** In AdamW's decay group. */
  readonly decay: boolean;
}

export interface FlatLayout {
  readonly params: readonly FlatParam[];
  /** Elements in all. */
  readonly total: number;
}

/** A run of consecutive elements of a shard that share one decay setting, in shard-relative indices. */
export interface DecayRun {
  readonly from: number;
  readonly to: number;
  readonly decay: boolean;
}

export function flatLayout(params: readonly { readonly name: string; readonly shape: readonly number[]; readonly decay: boolean }[]): FlatLayout {
  let offset = 0;
  const laid = params.map(({ name, shape, decay }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const p = { name, shape: [...shape], offset, size, decay };
    offset += size;
    return p;
  });
  return { params: laid, total: offset };
}

/**
 * `parts` contiguous [start, end) ranges covering [0, total), sizes differing by at most one: element
 * ranges rather than whole tensors, because two tensors (embedding and head) hold most of the weights.
 */
export function shardRanges(total: number, parts: number): [number, number][] {
  if (!Number.isInteger(parts) || parts < 1) {
    throw new XlstmError('INVALID_CONFIG', `shard count expected an integer >= 1, but got ${parts}.`);
  }
  const ranges: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const end = start + Math.floor(total / parts) + (p < total % parts ? 1 : 0);
    ranges.push([start, end]);
    start = end;
  }
  return ranges;
}

/** The decay runs of the flat range [start, end), relative to start. */
export function decayRuns(layout: FlatLayout, start: number, end: number): DecayRun[] {
  const runs: DecayRun[] = [];
  for (const p of layout.params) {
    const from = Math.max(start, p.offset);
    const to = Math.min(end, p.offset + p.size);
    if (from >= to) continue;
    const last = runs[runs.length - 1];
    // Neighbours of one group merge, so the update loop runs over a handful of runs, not 900 tensors.
    if (last && last.decay === p.decay && last.to === from - start) runs[runs.length - 1] = { ...last, to: to - start };
    else runs.push({ from: from - start, to: to - start, decay: p.decay });
  }
  return runs;
}
