/**
 * Flat layouts for the fused WebGPU decode step: every block's weights in one buffer, and every
 * block's state for one sequence in one row of a [B, S] tensor. A WebGPU dispatch binds at most
 * a handful of buffers (8 by default, 16 on Mesa), far fewer than a model has tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BlockKind, Dims } from '../config.ts';
import type { BlockState, ModelState } from '../state.ts';
import { weightEntries, type BlockWeights, type ModelWeights } from '../weights.ts';

export interface Segment {
  readonly name: string;
  readonly size: number;
  readonly offset: number;
}

function segments(list: [string, number][]): { segs: Segment[]; size: number } {
  let offset = 0;
  const segs = list.map(([name, size]) => {
    const s = { name, size, offset };
    offset += size;
    return s;
  });
  return { segs, size: offset };
}

/** The packed weights of one block kind, in the order the WGSL reads them (names are MlstmWeights / SlstmWeights keys). */
export function weightSegments(kind: BlockKind, dims: Dims): { segs: Segment[]; size: number } {
  const { d, dm, H, nh, dh, P, k } = dims;
  const conv = (C: number): [string, number][] => (k > 0 ? [['convW', k * C], ['convB', C]] : []);
  if (kind === 'm') {
    return segments([
      ['normW', d], ['normB', d], ['wUp', d * (dm + H)], ['bUp', dm + H], ...conv(dm),
      ['wC', dm * (3 * H + 2 * nh)], ['bC', 2 * H + 2 * nh], ['wU', dm * 2 * H], ['bU', 2 * H],
      ['outW', H], ['outB', H], ['wDown', H * d], ['bDown', d],
    ]);
  }
  return segments([
    ['normW', d], ['normB', d], ...conv(d), ['wC', d * 2 * H], ['wX', d * 2 * H], ['bG', 4 * H],
    ['R', 4 * nh * dh * dh], ['outW', H], ['outB', H], ['wUp', H * 2 * P], ['bUp', 2 * P], ['wDown', P * d], ['bDown', d],
  ]);
}

/** One sequence's state of one block kind, in the state records' key order (per-row sizes). */
export function stateSegments(kind: BlockKind, dims: Dims): { segs: Segment[]; size: number } {
  const { d, dm, H, nh, dh, k } = dims;
  const conv = (C: number): [string, number][] => (k > 0 ? [['conv', (k - 1) * C]] : []);
  if (kind === 'm') return segments([...conv(dm), ['C', nh * dh * dh], ['n', H], ['m', nh]]);
  return segments([...conv(d), ['c', H], ['n', H], ['h', H], ['m', H]]);
}

/** Where each block starts in the packed weights and in a state row; the final norm follows the blocks. */
export interface StepLayout {
  readonly weightBase: readonly number[];
  readonly stateBase: readonly number[];
  readonly finalNorm: number;
  readonly weightSize: number;
  readonly stateSize: number;
}

export function stepLayout(dims: Dims): StepLayout {
  const weightBase: number[] = [];
  const stateBase: number[] = [];
  let w = 0;
  let s = 0;
  for (const kind of dims.kinds) {
    weightBase.push(w);
    stateBase.push(s);
    w += weightSegments(kind, dims).size;
    s += stateSegments(kind, dims).size;
  }
  return { weightBase, stateBase, finalNorm: w, weightSize: w + 2 * dims.d, stateSize: s };
}

/** The packed weights [weightSize] of a model (a new tensor). */
export function packWeightsFlat(w: ModelWeights, dims: Dims): tf.Tensor1D {
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    w.blocks.forEach((b, i) => {
      for (const seg of weightSegments(dims.kinds[i], dims).segs) {
        const t = (b as unknown as Record<string, tf.Tensor | null>)[seg.name as keyof BlockWeights];
        if (!t || t.size !== seg.size) throw new Error(`packed weights: block ${i} ${seg.name} expected ${seg.size} values, but got ${t?.size ?? 'none'}`);
        parts.push(tf.reshape(t, [-1]));
      }
    });
    parts.push(w.normW, w.normB);
    return tf.concat(parts) as tf.Tensor1D;
  });
}

/** The packed state's single record key: a ModelState of one record { packed: [B, S] }. */
export const PACKED = 'packed';

export function isPacked(state: ModelState): boolean {
  return state.length === 1 && PACKED in state[0];
}

/** Per-block states -> one [B, S] row per sequence. */
export function packState(state: ModelState, dims: Dims): ModelState {
  if (isPacked(state)) return state;
  const B = Object.values(state[0])[0].shape[0];
  const parts: tf.Tensor[] = [];
  state.forEach((b, i) => {
    for (const seg of stateSegments(dims.kinds[i], dims).segs) parts.push(tf.reshape(b[seg.name], [B, seg.size]));
  });
  return [{ [PACKED]: tf.concat(parts, 1) }];
}

const freshRows = new Map<string, Float32Array>();

/**
 * The packed state of B fresh sequences, without building and concatenating every block's tensors (~300 ops):
 * zeros, but -Infinity in each block's stabiliser m, as mlstmInitState and slstmInitState start them.
 */
export function freshPackedState(B: number, dims: Dims): ModelState {
  const key = JSON.stringify(dims);
  let row = freshRows.get(key);
  if (!row) {
    const { stateBase, stateSize } = stepLayout(dims);
    row = new Float32Array(stateSize);
    dims.kinds.forEach((kind, i) => {
      const m = stateSegments(kind, dims).segs.find((seg) => seg.name === 'm') as Segment;
      row!.fill(-Infinity, stateBase[i] + m.offset, stateBase[i] + m.offset + m.size);
    });
    freshRows.set(key, row);
  }
  const one = tf.tensor2d(row, [1, row.length]);
  if (B === 1) return [{ [PACKED]: one }];
  const all = tf.tile(one, [B, 1]);
  one.dispose();
  return [{ [PACKED]: all }];
}

/** One [B, S] row per sequence -> per-block state records (the forms' layout). */
export function unpackState(state: ModelState, dims: Dims): ModelState {
  if (!isPacked(state)) return state;
  const all = state[0][PACKED] as tf.Tensor2D;
  const B = all.shape[0];
  const { stateBase } = stepLayout(dims);
  const shapes = (kind: BlockKind): Record<string, number[]> =>
    kind === 'm'
      ? { conv: [B, dims.k - 1, dims.dm], C: [B, dims.nh, dims.dh, dims.dh], n: [B, dims.nh, dims.dh], m: [B, dims.nh] }
      : { conv: [B, dims.k - 1, dims.d], c: [B, dims.H], n: [B, dims.H], h: [B, dims.H], m: [B, dims.H] };
  return dims.kinds.map((kind, i) => {
    const out: BlockState = {};
    for (const seg of stateSegments(kind, dims).segs) {
      out[seg.name] = tf.reshape(tf.slice(all, [0, stateBase[i] + seg.offset], [B, seg.size]), shapes(kind)[seg.name]);
    }
    return out;
  });
}

/** Packed weights are cached per weight set and rebuilt when any weight tensor changes (Variable.assign swaps dataIds). */
const cache = new WeakMap<ModelWeights, { ids: tf.DataId[]; packed: tf.Tensor1D }>();

export function cachedPackedWeights(w: ModelWeights, dims: Dims): tf.Tensor1D {
  const ids = weightEntries(w).map(([, t]) => t.dataId);
  const hit = cache.get(w);
  if (hit && hit.ids.length === ids.length && hit.ids.every((id, j) => id === ids[j])) return hit.packed;
  hit?.packed.dispose();
  const packed = tf.keep(packWeightsFlat(w, dims));
  cache.set(w, { ids, packed });
  return packed;
}

/** Frees a weight set's packed copy (model disposal). */
export function disposePackedWeights(w: ModelWeights): void {
  cache.get(w)?.packed.dispose();
  cache.delete(w);
}
