/**
 * The whole decode step of the model as ONE WGSL dispatch on the webgpu backend: one workgroup
 * per sequence embeds its token and runs every block (mLSTM and sLSTM, DESIGN's equations) and
 * the final LayerNorm, reading the packed weights (pack.ts) and the packed state row. Sequences
 * never interact in a step, so no synchronisation crosses workgroups. The head (one matMul) and
 * sampling follow as separate dispatches: three per token in all, instead of about 5,000 ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import { NORM_EPS } from '../ops/norms.ts';
import { NORM_EXP_CAP } from '../mlstm/cell.ts';
import { gpuOptions, runProgram, WGSL_MATH, type GpuProgram } from './device.ts';
import { stateSegments, stepLayout, weightSegments } from './pack.ts';

const STEP = 'XlstmGpuDecodeStep';
/** Threads per sequence: one per output of the widest projection (4H = 256 at the reference size). */
const WG = 256;

const f = (x: number): string => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** Segment offsets of one block kind as WGSL constants, e.g. M_WUP. */
function offsets(prefix: string, segs: { name: string; offset: number }[]): string {
  return segs.map((s) => `const ${prefix}${s.name.toUpperCase()} = ${s.offset}u;`).join('\n');
}

/** The loop-bound sizes: WGSL constants, or private variables set from the uniforms (gpuOptions). */
const SIZES = ['D', 'DM', 'H', 'NH', 'DH', 'P', 'K', 'NQK'] as const;

function stepProgram(dims: Dims, opaque: boolean): GpuProgram {
  const { d, dm, H, nh, dh, P, k } = dims;
  const layout = stepLayout(dims);
  const mw = weightSegments('m', dims).segs;
  const sw = weightSegments('s', dims).segs;
  const ms = stateSegments('m', dims).segs;
  const ss = stateSegments('s', dims).segs;
  const NQK = 3 * H + 2 * nh;
  const conv = (C: string, src: string, wOff: string, sOff: string, dst: string) =>
    k > 0
      ? /* wgsl */ `
  for (var j = lid; j < ${C}; j += WG) {
    let x = ${src}[j];
    var acc = W[wb + ${wOff}CONVB + j];
    for (var tap = 0u; tap + 1u < K; tap++) { acc += W[wb + ${wOff}CONVW + tap * ${C} + j] * sIn[si + ${sOff}CONV + tap * ${C} + j]; }
    acc += W[wb + ${wOff}CONVW + (K - 1u) * ${C} + j] * x;
    ${dst}[j] = silu(acc);
    // The history keeps the last k-1 inputs, oldest first.
    ${k > 1 ? `for (var tap = 0u; tap + 2u < K; tap++) { sOut[so + ${sOff}CONV + tap * ${C} + j] = sIn[si + ${sOff}CONV + (tap + 1u) * ${C} + j]; }
    sOut[so + ${sOff}CONV + (K - 2u) * ${C} + j] = x;` : ''}
  }`
      : `for (var j = lid; j < ${C}; j += WG) { ${dst}[j] = ${src}[j]; }`;
  const NB = dims.kinds.length;
  return {
    key: `decode-step-${opaque ? 'opaque-' : ''}${JSON.stringify(dims)}`,
    code: /* wgsl */ `
// Sizes, then one (kind, weight offset, state offset, 0) per block: the block loop runs over
// this table, so each block kind's code is compiled once, not once per block.
struct Dims { B: i32, ${SIZES.map((n) => `${n}_: i32`).join(', ')}, pad0: i32, pad1: i32, pad2: i32, blocks: array<vec4<i32>, ${NB}> }
@group(0) @binding(0) var<storage, read_write> xOut: array<f32>;
@group(0) @binding(1) var<storage, read_write> sOut: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<i32>;
@group(0) @binding(3) var<storage, read> emb: array<f32>;
@group(0) @binding(4) var<storage, read> W: array<f32>;
@group(0) @binding(5) var<storage, read> sIn: array<f32>;
@group(0) @binding(6) var<uniform> u: Dims;
${WGSL_MATH}
const WG = ${WG}u;
${
  opaque
    ? SIZES.map((n) => `var<private> ${n}: u32;`).join(' ')
    : `const D = ${d}u; const DM = ${dm}u; const H = ${H}u; const NH = ${nh}u; const DH = ${dh}u; const P = ${P}u; const K = ${k}u; const NQK = ${NQK}u;`
}
const S = ${layout.stateSize}u; const FINAL = ${layout.finalNorm}u;
const EPS = ${f(NORM_EPS)}; const KSCALE = ${f(1 / Math.sqrt(dh))}; const CAP = ${f(NORM_EXP_CAP)};
${offsets('M_', mw)}
${offsets('S_', sw)}
${offsets('MS_', ms)}
${offsets('SS_', ss)}

var<workgroup> xs: array<f32, ${d}>;
var<workgroup> xn: array<f32, ${d}>;
var<workgroup> up: array<f32, ${Math.max(dm + H, 4 * H)}>;
var<workgroup> cc: array<f32, ${Math.max(dm, d)}>;
var<workgroup> qk: array<f32, ${NQK}>;
var<workgroup> vo: array<f32, ${Math.max(2 * H, 2 * P)}>;
var<workgroup> hh: array<f32, ${H}>;
var<workgroup> yy: array<f32, ${H}>;
var<workgroup> nn: array<f32, ${H}>;
var<workgroup> hp: array<f32, ${H}>;
var<workgroup> gs: array<f32, ${3 * nh}>;
var<workgroup> zz: array<f32, ${P}>;

// LayerNorm of xs into xn; every thread computes the statistics itself (broadcast reads, no barriers).
fn layerNorm(wOff: u32, lid: u32) {
  var mean = 0.0;
  for (var i = 0u; i < D; i++) { mean += xs[i]; }
  mean /= f32(D);
  var v = 0.0;
  for (var i = 0u; i < D; i++) { let c = xs[i] - mean; v += c * c; }
  let r = inverseSqrt(v / f32(D) + EPS);
  for (var j = lid; j < D; j += WG) { xn[j] = (xs[j] - mean) * r * W[wOff + j] + W[wOff + D + j]; }
}

// GroupNorm_nh of hh, unit t: its head's statistics, then weight and bias.
fn groupNorm(t: u32, wOut: u32, wOutB: u32) -> f32 {
  let h0 = (t / DH) * DH;
  var mean = 0.0;
  for (var i = 0u; i < DH; i++) { mean += hh[h0 + i]; }
  mean /= f32(DH);
  var v = 0.0;
  for (var i = 0u; i < DH; i++) { let c = hh[h0 + i] - mean; v += c * c; }
  return (hh[t] - mean) * inverseSqrt(v / f32(DH) + EPS) * W[wOut + t] + W[wOutB + t];
}

fn mlstm(wb: u32, si: u32, so: u32, lid: u32) {
  layerNorm(wb + M_NORMW, lid);
  workgroupBarrier();
  // [u | r] = xn W_up + b_up
  for (var j = lid; j < DM + H; j += WG) {
    var acc = W[wb + M_BUP + j];
    for (var i = 0u; i < D; i++) { acc += xn[i] * W[wb + M_WUP + i * (DM + H) + j]; }
    up[j] = acc;
  }
  workgroupBarrier();
  ${conv('DM', 'up', 'M_', 'MS_', 'cc')}
  workgroupBarrier();
  // [q | k | i | f | skip] = c W_C (+ biases but skip's); [v | o] = u W_U + b_U
  for (var j = lid; j < NQK + 2u * H; j += WG) {
    if (j < NQK) {
      var acc = 0.0;
      if (j < 2u * H + 2u * NH) { acc = W[wb + M_BC + j]; }
      for (var i = 0u; i < DM; i++) { acc += cc[i] * W[wb + M_WC + i * NQK + j]; }
      qk[j] = acc;
    } else {
      let jj = j - NQK;
      var acc = W[wb + M_BU + jj];
      for (var i = 0u; i < DM; i++) { acc += up[i] * W[wb + M_WU + i * 2u * H + jj]; }
      vo[jj] = acc;
    }
  }
  workgroupBarrier();
  // Per head: m_t = max(logf + m_{t-1}, i); i' = exp(i - m_t); f' = exp(logf + m_{t-1} - m_t).
  if (lid < NH) {
    let ig = qk[2u * H + lid];
    let logf = logsig(qk[2u * H + NH + lid]);
    let mPrev = sIn[si + MS_M + lid];
    var mNew = ig; var fw = 0.0;
    // m = -inf (a fresh sequence) is tested, not computed with: f' = 0 exactly.
    if (mPrev >= -3.0e38) { mNew = max(logf + mPrev, ig); fw = exp(logf + mPrev - mNew); }
    gs[lid] = exp(ig - mNew);
    gs[NH + lid] = fw;
    gs[2u * NH + lid] = mNew;
    sOut[so + MS_M + lid] = mNew;
  }
  workgroupBarrier();
  // C_t = f' C + i' v k^T (row a of head j per thread), n_t = f' n + i' k, numerator C_t q.
  var num = 0.0;
  if (lid < H) {
    let j = lid / DH; let a = lid % DH;
    let iw = gs[j]; let fw = gs[NH + j];
    let va = vo[lid];
    for (var b = 0u; b < DH; b++) {
      let at = MS_C + (j * DH + a) * DH + b;
      let cNew = fw * sIn[si + at] + iw * va * qk[H + j * DH + b] * KSCALE;
      sOut[so + at] = cNew;
      num += cNew * qk[j * DH + b];
    }
    let nNew = fw * sIn[si + MS_N + lid] + iw * qk[H + lid] * KSCALE;
    sOut[so + MS_N + lid] = nNew;
    nn[lid] = nNew;
  }
  workgroupBarrier();
  if (lid < H) {
    let j = lid / DH;
    var den = 0.0;
    for (var b = 0u; b < DH; b++) { den += nn[j * DH + b] * qk[j * DH + b]; }
    let lo = exp(min(-gs[2u * NH + j], CAP));
    hh[lid] = sigm(vo[H + lid]) * num / max(abs(den), lo);
  }
  workgroupBarrier();
  // y = (GroupNorm(h) + skip) * silu(r)
  if (lid < H) { yy[lid] = (groupNorm(lid, wb + M_OUTW, wb + M_OUTB) + qk[2u * H + 2u * NH + lid]) * silu(up[DM + lid]); }
  workgroupBarrier();
  for (var j = lid; j < D; j += WG) {
    var acc = W[wb + M_BDOWN + j];
    for (var t = 0u; t < H; t++) { acc += yy[t] * W[wb + M_WDOWN + t * D + j]; }
    xs[j] += acc;
  }
  workgroupBarrier();
}

fn slstm(wb: u32, si: u32, so: u32, lid: u32) {
  layerNorm(wb + S_NORMW, lid);
  for (var t = lid; t < H; t += WG) { hp[t] = sIn[si + SS_H + t]; }
  workgroupBarrier();
  ${conv('D', 'xn', 'S_', 'SS_', 'cc')}
  workgroupBarrier();
  // p = [c W_C | xn W_X] + b + R h_{t-1}, gates i, f, z, o; R mixes within a head only.
  for (var q = lid; q < 4u * H; q += WG) {
    var acc = W[wb + S_BG + q];
    if (q < 2u * H) {
      for (var i = 0u; i < D; i++) { acc += cc[i] * W[wb + S_WC + i * 2u * H + q]; }
    } else {
      for (var i = 0u; i < D; i++) { acc += xn[i] * W[wb + S_WX + i * 2u * H + q - 2u * H]; }
    }
    let g = q / H; let unit = q % H; let j = unit / DH; let o = unit % DH;
    let r = wb + S_R + ((g * NH + j) * DH + o) * DH;
    for (var i = 0u; i < DH; i++) { acc += W[r + i] * hp[j * DH + i]; }
    up[q] = acc;
  }
  workgroupBarrier();
  for (var t = lid; t < H; t += WG) {
    let pi = up[t]; let logf = logsig(up[H + t]); let pz = up[2u * H + t]; let po = up[3u * H + t];
    let mPrev = sIn[si + SS_M + t];
    var mNew = pi; var fw = 0.0;
    if (mPrev >= -3.0e38) { mNew = max(logf + mPrev, pi); fw = exp(logf + mPrev - mNew); }
    let iw = exp(pi - mNew);
    let c = fw * sIn[si + SS_C + t] + iw * tanh_(pz);
    let n = fw * sIn[si + SS_N + t] + iw;
    let h = sigm(po) * c / n;
    sOut[so + SS_C + t] = c; sOut[so + SS_N + t] = n; sOut[so + SS_H + t] = h; sOut[so + SS_M + t] = mNew;
    hh[t] = h;
  }
  workgroupBarrier();
  for (var t = lid; t < H; t += WG) { yy[t] = groupNorm(t, wb + S_OUTW, wb + S_OUTB); }
  workgroupBarrier();
  for (var j = lid; j < 2u * P; j += WG) {
    var acc = W[wb + S_BUP + j];
    for (var t = 0u; t < H; t++) { acc += yy[t] * W[wb + S_WUP + t * 2u * P + j]; }
    vo[j] = acc;
  }
  workgroupBarrier();
  for (var p = lid; p < P; p += WG) { zz[p] = gelu(vo[p]) * vo[P + p]; }
  workgroupBarrier();
  for (var j = lid; j < D; j += WG) {
    var acc = W[wb + S_BDOWN + j];
    for (var p = 0u; p < P; p++) { acc += zz[p] * W[wb + S_WDOWN + p * D + j]; }
    xs[j] += acc;
  }
  workgroupBarrier();
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (i32(row) >= u.B) { return; }
  ${opaque ? SIZES.map((n) => `${n} = u32(u.${n}_);`).join(' ') : ''}
  let tok = u32(tokens[row]);
  for (var j = lid; j < D; j += WG) { xs[j] = emb[tok * D + j]; }
  let rowIn = row * S;
  let rowOut = row * S;
  workgroupBarrier();
  for (var blk = 0u; blk < ${NB}u; blk++) {
    let e = u.blocks[blk];
    // Uniform control flow: the table lives in the uniform buffer.
    if (e.x == 0) { mlstm(u32(e.y), rowIn + u32(e.z), rowOut + u32(e.z), lid); } else { slstm(u32(e.y), rowIn + u32(e.z), rowOut + u32(e.z), lid); }
  }
  layerNorm(FINAL, lid);
  workgroupBarrier();
  for (var j = lid; j < D; j += WG) { xOut[row * D + j] = xn[j]; }
}
`,
  };
}

const tables = new WeakMap<Dims, number[]>();

/** (kind: 0 mLSTM / 1 sLSTM, weight offset, state offset, 0) per block, flattened. */
function blockTable(dims: Dims): number[] {
  let t = tables.get(dims);
  if (!t) {
    const layout = stepLayout(dims);
    t = dims.kinds.flatMap((kind, i) => [kind === 'm' ? 0 : 1, layout.weightBase[i], layout.stateBase[i], 0]);
    tables.set(dims, t);
  }
  return t;
}

/** Generated sources by dims (the key); a dispatch looks its program up by that key. */
const programs = new Map<string, GpuProgram>();

const byDims = new WeakMap<Dims, GpuProgram>();

function programFor(dims: Dims): GpuProgram {
  const known = byDims.get(dims);
  if (known && known.key.includes('opaque') === gpuOptions.opaqueLoopBounds) return known;
  const p = stepProgram(dims, gpuOptions.opaqueLoopBounds);
  if (!programs.has(p.key)) programs.set(p.key, p);
  byDims.set(dims, programs.get(p.key)!);
  return programs.get(p.key)!;
}

tf.registerKernel({
  kernelName: STEP,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { tokens, embedding, packed, state } = inputs as Record<string, tf.TensorInfo>;
    const program = programs.get((attrs as { key: string }).key);
    if (!program) throw new Error('decode step: no program for these dims');
    const B = tokens.shape[0];
    const { sizes, table } = attrs as { sizes: number[]; table: number[] };
    return runProgram(backend, program, [tokens, embedding, packed, state], [{ shape: [B, sizes[0]] }, { shape: state.shape }], [B, ...sizes, 0, 0, 0, ...table], [B, 1, 1]);
  },
});

/**
 * One decode step for B sequences: tokens [B] int32, the packed weights and state [B, S] ->
 * the final-normed hidden state [B, d] (the head's input) and the next packed state.
 */
export function decodeStepGpu(dims: Dims, tokens: tf.Tensor1D, embedding: tf.Tensor2D, packed: tf.Tensor1D, state: tf.Tensor2D): { x: tf.Tensor2D; state: tf.Tensor2D } {
  const program = programFor(dims);
  const { d, dm, H, nh, dh, P, k } = dims;
  const sizes = [d, dm, H, nh, dh, P, k, 3 * H + 2 * nh]; // SIZES' order
  const [x, next] = tf.engine().runKernel(STEP, { tokens, embedding, packed, state }, { key: program.key, sizes, table: blockTable(dims) }) as tf.Tensor[];
  return { x: x as tf.Tensor2D, state: next as tf.Tensor2D };
}
