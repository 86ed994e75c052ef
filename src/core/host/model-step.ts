/**
 * The whole decode step of the model (embedding rows, every block, the final LayerNorm) as ONE tfjs kernel on
 * the wasm backend: the generated SIMD kernels (matMuls included) run back to back on the heap, reading the
 * weights from one buffer (step-weights.ts) and the state from one [B, S] row per sequence (gpu/pack.ts
 * layout), writing the next state into a new [B, S] tensor. Only the head's matMul is left to tfjs.
 * Every kernel here treats rows independently, in the same order of operations whatever B is, so a row's
 * results are bit-identical alone or in any batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../../util/errors.ts';
import type { Dims } from '../config.ts';
import { stateSegments, stepLayout } from '../gpu/pack.ts';
import { hostIO, type HostIO } from './io.ts';
import { gelu } from './math.ts';
import { wasmHeap, type Kernels } from './simd/instance.ts';
import { matmulKernels } from './simd/matmul-kernel.ts';
import { mlstmKernels, simdCovers } from './simd/mlstm-kernels.ts';
import { slstmKernels, slstmSimdCovers } from './simd/slstm-kernels.ts';
import type { ModelWeights } from '../weights.ts';
import { cachedStepWeights, pad4, stepWeightLayout, type Offsets, type StepWeightLayout } from './step-weights.ts';

const KERNEL = 'XlstmModelStep';

/** Everything about a model's widths that the step (and the prefill) needs, computed once per model shape. */
export interface Plan {
  readonly dims: Dims;
  readonly weights: StepWeightLayout;
  /** each block's first float in a state row, and its segments' offsets from there */
  readonly stateBase: readonly number[];
  readonly stateSeg: { m: Offsets; s: Offsets };
  readonly stateSize: number;
}

const plans = new Map<string, Plan>();
const keys = new WeakMap<Dims, string>();

export function planKey(dims: Dims): string {
  let key = keys.get(dims);
  if (key === undefined) {
    key = JSON.stringify(dims);
    keys.set(dims, key);
  }
  return key;
}

export function planFor(dims: Dims): Plan {
  const key = planKey(dims);
  let plan = plans.get(key);
  if (!plan) {
    const offsets = (kind: 'm' | 's') => Object.fromEntries(stateSegments(kind, dims).segs.map((s) => [s.name, s.offset]));
    const layout = stepLayout(dims);
    plan = { dims, weights: stepWeightLayout(dims), stateBase: layout.stateBase, stateSeg: { m: offsets('m'), s: offsets('s') }, stateSize: layout.stateSize };
    plans.set(key, plan);
  }
  return plan;
}

export interface StepKernels {
  readonly mm: Kernels;
  readonly m: Kernels;
  readonly s: Kernels;
}

export function kernelsFor(heap: WebAssembly.Memory, dims: Dims): StepKernels | null {
  const { d, nh, dh, dm, P, k } = dims;
  const mm = matmulKernels(heap);
  const m = mlstmKernels(heap, { d, nh, dh, dm, k });
  const s = slstmKernels(heap, { nh, dh, d, P, k });
  return mm && m && s ? { mm, m, s } : null;
}

/**
 * Whether the whole-model step runs here: the wasm backend with an unshared heap, WebAssembly SIMD, and widths
 * the SIMD kernels cover (d, dh, dm multiples of 4). Elsewhere the model steps block by block (kernels.ts).
 */
export function hostStepAvailable(dims: Dims): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const heap = wasmHeap();
  if (!heap) return false;
  const { d, nh, dh, dm, P, k } = dims;
  if (!simdCovers({ d, nh, dh, dm, k }) || !slstmSimdCovers({ nh, dh, d, P, k })) return false;
  return kernelsFor(heap, dims) !== null;
}

/**
 * One decode step: tokens [B] int32, embedding [V, d], the weight buffer's address (hostStepWeights), state
 * [B, S] -> the final-normed hidden rows x [B, d] and the next state [B, S].
 */
export function hostModelStep(
  dims: Dims, tokens: tf.Tensor1D, embedding: tf.Tensor2D, weights: number, state: tf.Tensor2D,
): { x: tf.Tensor2D; state: tf.Tensor2D } {
  const S = planFor(dims).stateSize;
  if (state.shape[1] !== S || state.shape[0] !== tokens.shape[0]) {
    throw new XlstmError('INVALID_INPUT', `the packed decode state expected shape [${tokens.shape[0]}, ${S}], but got [${state.shape}]. Hint: pass the state this model's initState, prefill or step returned.`);
  }
  const [x, next] = tf.engine().runKernel(KERNEL, { tokens, embedding, state }, { plan: planKey(dims), weights }) as tf.Tensor[];
  return { x: x as tf.Tensor2D, state: next as tf.Tensor2D };
}

/** Activation scratch of B rows, kept per backend and grown on demand (stale contents: written before read). */
const scratchByIO = new WeakMap<HostIO, { info: tf.TensorInfo; floats: number }>();

export function scratchAddr(io: HostIO, floats: number): number {
  let s = scratchByIO.get(io);
  if (!s || s.floats < floats) {
    if (s) io.free(s.info);
    s = { info: io.alloc([floats]), floats };
    scratchByIO.set(io, s);
  }
  return io.addr(s.info);
}

/** Byte addresses of the activation buffers of B rows, carved from one scratch allocation. */
function carve(base: number, B: number, dims: Dims): Record<string, number> {
  const { d, dm, H, nh, P } = dims;
  const sizes: Record<string, number> = {
    x0: B * d, x1: B * d, xn: B * d, down: B * d,
    up: B * pad4(dm + H), u: B * dm, c: B * dm, cc: B * pad4(3 * H + 2 * nh), uu: B * 2 * H, y: B * H, gates: B * nh * 3,
    cIn: B * d, g1: B * 2 * H, g2: B * 2 * H, upm: B * pad4(2 * P), z: B * pad4(P), work: 4 * H,
  };
  return addresses(base, sizes);
}

/** Byte addresses of named float buffers laid end to end from `base` (each a multiple of four floats, at least four); `end` follows the last. */
export function addresses(base: number, sizes: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  let at = base;
  for (const [name, n] of Object.entries(sizes)) {
    out[name] = at;
    at += 4 * pad4(Math.max(n, 1));
  }
  out.end = at;
  return out;
}

function scratchFloats(B: number, dims: Dims): number {
  return carve(0, B, dims).end / 4;
}

registerPlanKernel(KERNEL, 'the whole-model step', 'hostModelStep', stepKernel);

/**
 * Registers a whole-model kernel on wasm: its attrs name a plan (planFor) and the weight buffer; it runs with the
 * backend's HostIO, which must have an unshared heap.
 */
export function registerPlanKernel(
  kernelName: string,
  what: string,
  entry: string,
  run: (io: HostIO, plan: Plan, inputs: Record<string, tf.TensorInfo>, weights: number) => tf.TensorInfo[],
): void {
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const io = hostIO('wasm', backend as tf.KernelBackend);
      const a = attrs as unknown as { plan: string; weights: number };
      const plan = plans.get(a.plan);
      if (!plan || !io.heap) {
        throw new Error(
          `${what} expected a known plan and an unshared wasm heap, but got plan ${plan ? 'found' : 'missing'}, heap ${io.heap ? 'found' : 'missing'}. ` +
            `Hint: call it through ${entry} after hostStepAvailable(dims).`,
        );
      }
      return run(io, plan, inputs as Record<string, tf.TensorInfo>, a.weights);
    },
  });
}

function stepKernel(io: HostIO, plan: Plan, inp: Record<string, tf.TensorInfo>, W: number): tf.TensorInfo[] {
  const heap = io.heap as WebAssembly.Memory;
  const { dims } = plan;
  const { d, V } = dims;
  const B = inp.tokens.shape[0];
  const S = plan.stateSize;
  const tokens = new Int32Array(heap.buffer, io.addr(inp.tokens), B).slice();
  for (const t of tokens) {
    if (!(t >= 0 && t < V)) throw new XlstmError('INVALID_INPUT', `token ids expected integers in [0, ${V}), but got ${t}. Hint: encode with this model's tokenizer.`);
  }
  // Every allocation comes first: growing the heap would detach the views below.
  const xOut = io.alloc([B, d]);
  const sOut = io.alloc([B, S]);
  const a = carve(scratchAddr(io, scratchFloats(B, dims)), B, dims);
  const k = kernelsFor(heap, dims) as StepKernels;
  const F = new Float32Array(heap.buffer);
  const emb = io.addr(inp.embedding) >> 2;
  for (let r = 0; r < B; r++) F.copyWithin((a.x0 >> 2) + r * d, emb + tokens[r] * d, emb + (tokens[r] + 1) * d);
  const st = { inp: io.addr(inp.state), out: io.addr(sOut), row: 4 * S };
  let x = a.x0;
  let xNext = a.x1;
  dims.kinds.forEach((kind, i) => {
    const w = (name: string) => W + 4 * plan.weights.blocks[i][name];
    const base = 4 * plan.stateBase[i];
    if (kind === 'm') mlstmBlock(k, F, dims, a, w, x, xNext, B, st, base, plan.stateSeg.m);
    else slstmBlock(k, F, dims, a, w, x, xNext, B, st, base, plan.stateSeg.s);
    [x, xNext] = [xNext, x];
  });
  k.m.norm(x, W + 4 * plan.weights.final.normW, W + 4 * plan.weights.final.normB, io.addr(xOut), B);
  return [xOut, sOut];
}

/** Byte addresses of the old and new state and the byte length of a row. */
interface StateAt {
  readonly inp: number;
  readonly out: number;
  readonly row: number;
}

function mlstmBlock(
  k: StepKernels, F: Float32Array, dims: Dims, a: Record<string, number>, w: (name: string) => number,
  x: number, xNext: number, B: number, st: StateAt, base: number, seg: Offsets,
): void {
  const { d, dm, H, nh, dh } = dims;
  const Wc = pad4(3 * H + 2 * nh);
  const Wup = pad4(dm + H);
  const { mm, m } = k;
  m.norm(x, w('normW'), w('normB'), a.xn, B);
  mm.mm(a.xn, d, w('wUp'), a.up, Wup, d, Wup / 4, B);
  for (let r = 0; r < B; r++) {
    const inRow = st.inp + r * st.row + base;
    const outRow = st.out + r * st.row + base;
    if (dims.k > 0) {
      m.conv(a.up + 4 * r * Wup, w('bUp'), w('convW'), w('convB'), inRow + 4 * seg.conv, a.u + 4 * r * dm, a.c + 4 * r * dm, outRow + 4 * seg.conv, 1);
    } else {
      const up = (a.up >> 2) + r * Wup, bUp = w('bUp') >> 2, u = (a.u >> 2) + r * dm;
      for (let j = 0; j < dm; j++) F[u + j] = F[up + j] + F[bUp + j];
    }
  }
  const c = dims.k > 0 ? a.c : a.u;
  mm.mm(c, dm, w('wC'), a.cc, Wc, dm, Wc / 4, B);
  mm.mm(a.xn, d, w('wU'), a.uu, 2 * H, d, (2 * H) / 4, B);
  const scale = 1 / Math.sqrt(dh);
  for (let r = 0; r < B; r++) {
    const inRow = st.inp + r * st.row + base;
    const outRow = st.out + r * st.row + base;
    m.cell(
      a.cc + 4 * r * Wc, a.uu + 8 * r * H, a.up + 4 * r * Wup, w('bC'), w('bU'), w('bUp'), w('outW'), w('outB'),
      inRow + 4 * seg.C, inRow + 4 * seg.n, inRow + 4 * seg.m, outRow + 4 * seg.C, outRow + 4 * seg.n, outRow + 4 * seg.m,
      a.y + 4 * r * H, a.gates, 1, scale,
    );
  }
  mm.mm(a.y, H, w('wDown'), a.down, d, H, d / 4, B);
  m.residual(x, a.down, w('bDown'), xNext, B);
}

function slstmBlock(
  k: StepKernels, F: Float32Array, dims: Dims, a: Record<string, number>, w: (name: string) => number,
  x: number, xNext: number, B: number, st: StateAt, base: number, seg: Offsets,
): void {
  const { d, H } = dims;
  const { mm, s } = k;
  s.norm(x, w('normW'), w('normB'), a.xn, B);
  if (dims.k > 0) {
    for (let r = 0; r < B; r++) {
      const inRow = st.inp + r * st.row + base;
      const outRow = st.out + r * st.row + base;
      s.conv(a.xn + 4 * r * d, 0, w('convW'), w('convB'), inRow + 4 * seg.conv, 0, a.cIn + 4 * r * d, outRow + 4 * seg.conv, 1);
    }
  }
  mm.mm(dims.k > 0 ? a.cIn : a.xn, d, w('wC'), a.g1, 2 * H, d, (2 * H) / 4, B);
  mm.mm(a.xn, d, w('wX'), a.g2, 2 * H, d, (2 * H) / 4, B);
  for (let r = 0; r < B; r++) {
    const inRow = st.inp + r * st.row + base;
    const outRow = st.out + r * st.row + base;
    s.cell(
      a.g1 + 8 * r * H, a.g2 + 8 * r * H, w('bG'), w('Rt'),
      inRow + 4 * seg.c, inRow + 4 * seg.n, inRow + 4 * seg.h, inRow + 4 * seg.m,
      outRow + 4 * seg.c, outRow + 4 * seg.n, outRow + 4 * seg.h, outRow + 4 * seg.m,
      w('outW'), w('outB'), a.y + 4 * r * H, a.work, 1,
    );
  }
  slstmMlp(k, F, dims, a, w, x, xNext, B);
}

/** The sLSTM block's gated GeLU MLP and residual over `rows` rows of a.y (the cell's output), into xNext. */
export function slstmMlp(
  k: StepKernels, F: Float32Array, dims: Dims, a: Record<string, number>, w: (name: string) => number,
  x: number, xNext: number, rows: number,
): void {
  const { d, H, P } = dims;
  const Pp = pad4(P);
  const Up = pad4(2 * P);
  const { mm, s } = k;
  mm.mm(a.y, H, w('wUp'), a.upm, Up, H, Up / 4, rows);
  // The SIMD MLP covers whole groups of four columns; the rest run here, in float64 (as slstm-step.ts).
  const from = 4 * Math.floor(P / 4);
  const bUp = w('bUp') >> 2;
  s.mlp(a.upm, Up, w('bUp'), a.z, Pp, rows);
  for (let r = 0; r < rows; r++) {
    const up = (a.upm >> 2) + r * Up;
    const z = (a.z >> 2) + r * Pp;
    for (let j = from; j < P; j++) F[z + j] = gelu(F[up + j] + F[bUp + j]) * (F[up + P + j] + F[bUp + P + j]);
  }
  mm.mm(a.z, Pp, w('wDown'), a.down, d, P, d / 4, rows);
  s.residual(x, a.down, w('bDown'), xNext, rows);
}

/** The byte address of the step's weight buffer for a weight set (built on first use, rebuilt when a weight changes). */
export function hostStepWeights(w: ModelWeights, dims: Dims): number {
  return cachedStepWeights(w, dims, planFor(dims).weights, hostIO('wasm', tf.backend()));
}
