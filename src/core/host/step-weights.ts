/**
 * The decode step's weights as one float32 buffer in the wasm heap, laid out for the whole-model step kernel
 * (model-step.ts): every segment starts on 16 bytes, every matrix [K, N] has its columns padded to a multiple of
 * four (zeros) and is stored in the matMul kernel's panels, and the sLSTM's recurrent blocks are transposed so
 * four outputs are one vector.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BlockKind, Dims } from '../config.ts';
import { weightEntries, type BlockWeights, type ModelWeights } from '../weights.ts';
import type { HostIO } from './io.ts';
import { panelWeights } from './simd/matmul-kernel.ts';

/** n rounded up to a multiple of 4. */
export const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/** Where one block's (or the final norm's) tensors start in the buffer, in floats. */
export type Offsets = Readonly<Record<string, number>>;

export interface StepWeightLayout {
  readonly blocks: readonly Offsets[];
  /** normW, normB of the final LayerNorm */
  readonly final: Offsets;
  readonly size: number;
}

/** A segment: its name, its float count, and for a matrix its [K, N] (stored [K, pad4(N)]). */
type Seg = [name: string, size: number] | [name: string, K: number, N: number];

function blockSegs(kind: BlockKind, dims: Dims): Seg[] {
  const { d, dm, H, nh, dh, P, k } = dims;
  const conv = (C: number): Seg[] => (k > 0 ? [['convW', k * C], ['convB', C]] : []);
  if (kind === 'm') {
    return [
      ['normW', d], ['normB', d], ['wUp', d, dm + H], ['bUp', dm + H], ...conv(dm),
      ['wC', dm, 3 * H + 2 * nh], ['bC', 2 * H + 2 * nh], ['wU', d, 2 * H], ['bU', 2 * H],
      ['outW', H], ['outB', H], ['wDown', H, d], ['bDown', d],
    ];
  }
  return [
    ['normW', d], ['normB', d], ...conv(d), ['wC', d, 2 * H], ['wX', d, 2 * H], ['bG', 4 * H],
    ['Rt', 4 * nh * dh * dh], ['outW', H], ['outB', H], ['wUp', H, 2 * P], ['bUp', 2 * P], ['wDown', P, d], ['bDown', d],
  ];
}

const segFloats = (s: Seg): number => pad4(s.length === 2 ? s[1] : s[1] * pad4(s[2]));

export function stepWeightLayout(dims: Dims): StepWeightLayout {
  let at = 0;
  const place = (segs: Seg[]): Offsets => {
    const out: Record<string, number> = {};
    for (const s of segs) {
      out[s[0]] = at;
      at += segFloats(s);
    }
    return out;
  };
  const blocks = dims.kinds.map((kind) => place(blockSegs(kind, dims)));
  const final = place([['normW', dims.d], ['normB', dims.d]]);
  return { blocks, final, size: at };
}

/**
 * v and the o gate's input come from u = xn W_l + b_l with no nonlinearity between, so the buffer holds the one
 * map xn -> (v, o) instead: wU = W_l W_U [d, 2H] and bU = b_l W_U + b_U, both summed in float64 and rounded once.
 * A step then multiplies d rather than dm (twice d in the reference config) columns for v and o, and streams that
 * many fewer weights.
 */
function valueMap(b: Extract<BlockWeights, { kind: 'm' }>, dims: Dims): { wU: Float32Array; bU: Float32Array } {
  const { d, dm, H } = dims;
  const N = 2 * H;
  const up = b.wUp.dataSync(); // [d, dm + H]: W_l is its first dm columns
  const bUp = b.bUp.dataSync();
  const wU = b.wU.dataSync(); // [dm, 2H]
  const bU = b.bU.dataSync();
  const W = new Float32Array(d * N);
  const row = new Float64Array(N);
  for (let i = 0; i < d; i++) {
    row.fill(0);
    for (let j = 0; j < dm; j++) {
      const l = up[i * (dm + H) + j];
      for (let o = 0; o < N; o++) row[o] += l * wU[j * N + o];
    }
    W.set(row, i * N);
  }
  row.set(bU);
  for (let j = 0; j < dm; j++) for (let o = 0; o < N; o++) row[o] += bUp[j] * wU[j * N + o];
  return { wU: W, bU: Float32Array.from(row) };
}

/** The buffer's contents for a weight set (reads every weight back from the backend once). */
export function stepWeightData(w: ModelWeights, dims: Dims, layout: StepWeightLayout): Float32Array {
  const out = new Float32Array(layout.size);
  const { nh, dh } = dims;
  w.blocks.forEach((b, i) => {
    const at = layout.blocks[i];
    const src: Record<string, tf.Tensor | Float32Array | null> = { ...(b as unknown as Record<string, tf.Tensor | null>) };
    if (b.kind === 'm') Object.assign(src, valueMap(b, dims));
    for (const s of blockSegs(dims.kinds[i], dims)) {
      const name = s[0];
      if (name === 'Rt') {
        // R [4, nh, out, in] -> [4, nh, in, out]
        const R = (b as Extract<BlockWeights, { kind: 's' }>).R.dataSync();
        for (let blk = 0; blk < 4 * nh; blk++) {
          const base = blk * dh * dh;
          for (let o = 0; o < dh; o++) for (let j = 0; j < dh; j++) out[at.Rt + base + j * dh + o] = R[base + o * dh + j];
        }
        continue;
      }
      const t = src[name] as tf.Tensor | Float32Array;
      const data = t instanceof Float32Array ? t : (t.dataSync() as Float32Array);
      if (s.length === 2) {
        out.set(data, at[name]);
        continue;
      }
      const [, K, N] = s;
      const Np = pad4(N);
      let src4 = data;
      if (Np !== N) {
        src4 = new Float32Array(K * Np);
        for (let r = 0; r < K; r++) src4.set(data.subarray(r * N, (r + 1) * N), r * Np);
      }
      panelWeights(src4, K, Np, out, at[name]);
    }
  });
  out.set(w.normW.dataSync(), layout.final.normW);
  out.set(w.normB.dataSync(), layout.final.normB);
  return out;
}

/** A weight set's buffer: where it lives, and the tensors (and their data) it was built from. */
interface Built {
  readonly tensors: tf.Tensor[];
  readonly ids: tf.DataId[];
  readonly io: HostIO;
  readonly info: tf.TensorInfo;
}

const cache = new WeakMap<ModelWeights, Built>();
let builds = 0;
/** A number per build of a live buffer, by its address: a rebuilt buffer gets a new one, even at a freed one's address. */
const buildAt = new Map<number, number>();

/** The build number of the step buffer at `address`, so that a copy of it can tell whether it is still current. */
export function stepWeightsBuildAt(address: number): number | undefined {
  return buildAt.get(address);
}

/**
 * The byte address of a weight set's buffer in the wasm heap, built on first use and rebuilt when any weight
 * tensor changes (Variable.assign swaps dataIds; the check walks a kept list, as a step cannot afford
 * weightEntries' allocations). The buffer is the backend's memory, not a tensor: it belongs to the model, like
 * the model's own weights, and is freed with them (disposeStepWeights).
 */
export function cachedStepWeights(w: ModelWeights, dims: Dims, layout: StepWeightLayout, io: HostIO): number {
  let hit = cache.get(w);
  if (!hit || hit.io !== io || !unchanged(hit.tensors, hit.ids)) {
    if (hit) release(hit);
    const data = stepWeightData(w, dims, layout);
    const info = io.alloc([layout.size]);
    buildAt.set(io.addr(info), ++builds);
    new Float32Array((io.heap as WebAssembly.Memory).buffer, io.addr(info), layout.size).set(data);
    const tensors = weightEntries(w).map(([, t]) => t);
    hit = { tensors, ids: tensors.map((t) => t.dataId), io, info };
    cache.set(w, hit);
  }
  return hit.io.addr(hit.info);
}

function unchanged(tensors: readonly tf.Tensor[], ids: readonly tf.DataId[]): boolean {
  for (let j = 0; j < tensors.length; j++) if (tensors[j].dataId !== ids[j]) return false;
  return true;
}

/** Frees a weight set's step buffer (model disposal). */
export function disposeStepWeights(w: ModelWeights): void {
  const hit = cache.get(w);
  if (hit) release(hit);
  cache.delete(w);
}

function release(hit: Built): void {
  buildAt.delete(hit.io.addr(hit.info));
  hit.io.free(hit.info);
}
