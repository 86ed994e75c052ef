/**
 * The parallel mLSTM cell from the zero state, with the output gate, GroupNorm, skip and silu(r)
 * gating fused behind it, as one WGSL program for the webgpu training forward
 * (mlstm-train-forward.ts). Same maths as ../mlstm/host-cell.ts and block-passes.ts.
 *
 * One workgroup per (sequence, head, tile of CT rows), one thread per row t. The keys, values and
 * gates are walked in chunks of CT steps: a chunk's cumulative logsigmoid(f) comes from a
 * workgroup scan plus the carry of the chunks before it, so no array of length T is needed. Each
 * thread keeps its running maximum M of g_s = i_s - b_s and rescales its sums when M grows (the
 * host's D[t, s] = exp(g_s - M_t) is the same product of factors), so one pass suffices.
 */
import { WGSL_MATH, type GpuProgram } from './device.ts';

/** Rows per workgroup: 64 on long sequences, less on short ones so that few threads idle. */
function cellTile(T: number): number {
  let ct = 8;
  while (ct < 64 && ct < T) ct *= 2;
  return ct;
}

/**
 * log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), log1p through 2 atanh(e / (2 + e)): the forget
 * gates sit near 0 from below, where log(1 + e) in float32 would lose most digits, and their
 * cumulative sum carries every error into the decay weights.
 */
const LOGSIG_ACCURATE = /* wgsl */ `
fn logsigAcc(x: f32) -> f32 {
  let e = exp(-abs(x));
  let w = e / (2.0 + e);
  let w2 = w * w;
  let s = w * (1.0 + w2 * (1.0 / 3.0 + w2 * (1.0 / 5.0 + w2 * (1.0 / 7.0 + w2 * (1.0 / 9.0 + w2 * (1.0 / 11.0 + w2 * (1.0 / 13.0 + w2 / 15.0)))))));
  return min(x, 0.0) - 2.0 * s;
}
`;

/**
 * Outputs ht (h~), hhat, rstd2, y [N, H]; inputs q, kk (scaled keys), v, gates [N, 2nh], so,
 * skip, sir, outW, outB. Uniforms: T. Dispatch [ceil(T / CT), B * nh, 1].
 * A head's dh values are held as V4 = ceil(dh / 4) vec4s (zero-padded) in registers and workgroup
 * memory, a quarter of the workgroup loads of scalars, and per-lane steps are written out, so that
 * no private array is indexed (see product() in mlstm-train-fwd-rows.ts for what that cost once).
 */
export function cellProgram(nh: number, dh: number, T: number): { program: GpuProgram; tile: number } {
  const H = nh * dh;
  const CT = cellTile(T);
  const V4 = Math.ceil(dh / 4);
  const names = ['htOut', 'hhatOut', 'rstd2Out', 'yOut'];
  const ins = ['q', 'kk', 'vv', 'gates', 'so', 'skip', 'sir', 'outW', 'outB'];
  const quads = Array.from({ length: V4 }, (_, x4) => x4);
  const lanes = Array.from({ length: dh }, (_, x) => x);
  /** vec4 number x4 of the head's values in `src` from offset `base`, zero past dh. */
  const quad = (src: string, base: string, x4: number) =>
    `vec4<f32>(${[0, 1, 2, 3].map((l) => (4 * x4 + l < dh ? `${src}[${base} + ${4 * x4 + l}u]` : '0.0')).join(', ')})`;
  /** Lane x of the head's values kept as vec4s named `${v}${x4}`. */
  const lane = (v: string, x: number) => `${v}${x >> 2}[${x & 3}]`;
  const code = /* wgsl */ `
struct U { T: i32, p0: i32, p1: i32, p2: i32 }
${names.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`).join('\n')}
${ins.map((n, i) => `@group(0) @binding(${i + names.length}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${names.length + ins.length}) var<uniform> u: U;
${WGSL_MATH}
${LOGSIG_ACCURATE}
const NH = ${nh}u; const DH = ${dh}u; const H = ${H}u; const CT = ${CT}u; const V4 = ${V4}u;
var<workgroup> ks: array<vec4<f32>, ${CT * V4}>;
var<workgroup> vs: array<vec4<f32>, ${CT * V4}>;
var<workgroup> gsh: array<f32, ${CT}>;
var<workgroup> scan: array<f32, ${CT}>;

@compute @workgroup_size(${CT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let T = u32(u.T);
  let tile = wid.x;
  let b = wid.y / NH;
  let j = wid.y % NH;
  let t = tile * CT + lid;
  let valid = t < T;
  let n = b * T + t;
  let qb = select(b * T, n, valid) * H + j * DH; // rows past T read their sequence's first row, unused
  ${quads.map((x4) => `let q${x4} = ${quad('q', 'qb', x4)};`).join('\n  ')}
  ${quads.map((x4) => `var n${x4} = vec4<f32>(0.0);`).join(' ')}
  var r = 0.0;
  var M = -3.0e38; // below every g: the first step rescales the zero sums by exp(-huge) = 0
  var bt = 0.0; // b_t = cumulative logsigmoid(f) up to this thread's row
  var carry = 0.0; // b at the end of the previous chunk
  for (var c = 0u; c <= tile; c++) {
    let c0 = c * CT;
    let s = c0 + lid;
    let ns = b * T + s;
    var ls = 0.0;
    var ig = 0.0;
    if (s < T) {
      ls = logsigAcc(gates[ns * 2u * NH + NH + j]);
      ig = gates[ns * 2u * NH + j];
      let kb = ns * H + j * DH;
      ${quads.map((x4) => `ks[lid * V4 + ${x4}u] = ${quad('kk', 'kb', x4)};\n      vs[lid * V4 + ${x4}u] = ${quad('vv', 'kb', x4)};`).join('\n      ')}
    }
    scan[lid] = ls;
    workgroupBarrier();
    for (var off = 1u; off < CT; off = off << 1u) {
      var a = scan[lid];
      if (lid >= off) { a += scan[lid - off]; }
      workgroupBarrier();
      scan[lid] = a;
      workgroupBarrier();
    }
    let bs = carry + scan[lid];
    gsh[lid] = ig - bs;
    if (c == tile) { bt = bs; }
    carry += scan[CT - 1u];
    workgroupBarrier();
    if (valid) {
      let lim = min(CT, t - c0 + 1u);
      for (var e = 0u; e < lim; e++) {
        let g = gsh[e];
        if (g > M) {
          let sc = exp(M - g);
          r *= sc;
          ${quads.map((x4) => `n${x4} *= sc;`).join(' ')}
          M = g;
        }
        let dot_ = ${quads.map((x4) => `dot(q${x4}, ks[e * V4 + ${x4}u])`).join(' + ')};
        let w = dot_ * exp(g - M);
        r += w;
        ${quads.map((x4) => `n${x4} += w * vs[e * V4 + ${x4}u];`).join(' ')}
      }
    }
    workgroupBarrier();
  }
  if (!valid) { return; }
  // m_t = b_t + M_t; the normaliser's floor exp(-m) is capped (DESIGN.md).
  let z = max(abs(r), exp(min(-(bt + M), 80.0)));
  let o = n * H + j * DH;
  ${quads.map((x4) => `let h${x4} = n${x4} / z;`).join(' ')}
  ${quads.map((x4) => `let hh${x4} = ${quad('so', 'o', x4)} * h${x4};`).join(' ')}
  ${lanes.map((x) => `htOut[o + ${x}u] = ${lane('h', x)};`).join(' ')}
  let mean = (${lanes.map((x) => lane('hh', x)).join(' + ')}) / f32(DH);
  var vr = 0.0;
  ${lanes.map((x) => `vr += (${lane('hh', x)} - mean) * (${lane('hh', x)} - mean);`).join('\n  ')}
  let rs = 1.0 / sqrt(vr / f32(DH) + 1e-5);
  rstd2Out[n * NH + j] = rs;
  ${lanes
    .map((x) => `{ let xh = (${lane('hh', x)} - mean) * rs; hhatOut[o + ${x}u] = xh; yOut[o + ${x}u] = (xh * outW[j * DH + ${x}u] + outB[j * DH + ${x}u] + skip[o + ${x}u]) * sir[o + ${x}u]; }`)
    .join('\n  ')}
}
`;
  return { program: { key: `mlstm-fwd-cell-${nh}-${dh}-${CT}`, code }, tile: CT };
}
