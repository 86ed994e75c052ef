/**
 * The row-wise WGSL programs of the webgpu mLSTM training forward (mlstm-train-forward.ts): rows
 * n = b*T + t are independent here, except for the causal conv, which reads earlier rows of u
 * written by the previous dispatch. Each workgroup takes TR rows and keeps their inputs in
 * workgroup memory; each thread owns output columns lid, lid + WG, ... for all TR rows, so every
 * weight is read once per workgroup. Two programs, because one would bind 24 storage buffers and
 * WebGPU adapters offer 16 (the H200's Vulkan one included).
 */
import { gpuOptions, type GpuProgram, WGSL_MATH, zeroedArray } from './device.ts';

/** The block's sizes that shape the generated code. */
export interface FwdSizes {
  readonly d: number;
  readonly dm: number;
  readonly nh: number;
  readonly dh: number;
  readonly k: number;
}

/** Workgroup memory kept below WebGPU's default limit, which every adapter grants. */
const SHARED_BYTES = 16384;
const WG = 64;

/** Rows per workgroup: at most 16, fewer where `floatsPerRow` of workgroup memory would not fit. */
export function rowsPerGroup(floatsPerRow: number): number {
  let tr = 16;
  while (tr > 1 && tr * floatsPerRow * 4 > SHARED_BYTES) tr /= 2;
  return tr;
}

/**
 * A loop bound: a constant on GPUs (their compilers unroll and keep accumulators in registers),
 * the uniform `u.<name>` on software adapters (llvmpipe spends seconds unrolling constant loops).
 */
function bound(value: number, name: string): string {
  return gpuOptions.opaqueLoopBounds ? `u32(u.${name})` : `${value}u`;
}

/**
 * WGSL that accumulates this thread's share of tile [TR, K] (workgroup memory) times w [K, ncols]:
 * columns j = lid + c * WG (c < ceil(ncols / WG)) for every row of the tile, left in
 * acc[c * TR + r]. Per step of K, one weight load per column and one tile load per row feed
 * columns x TR multiply-adds. The accumulators are named scalars, copied into the array `acc`
 * once at the end: on the H200 (Dawn, Vulkan, NVIDIA 580) an accumulator array declared inside a
 * loop kept the previous iteration's sums instead of starting from zero (llvmpipe got it right).
 */
function product(acc: string, tile: string, w: string, K: number, kName: string, ncols: number, TR: number): string {
  const C = Math.ceil(ncols / WG);
  const cs = Array.from({ length: C }, (_, c) => c);
  const rs = Array.from({ length: TR }, (_, r) => r);
  const name = (c: number, r: number) => `${acc}_${c}_${r}`;
  const each = (f: (c: number, r: number) => string) => cs.flatMap((c) => rs.map((r) => f(c, r))).join(' ');
  return `${each((c, r) => `var ${name(c, r)} = 0.0;`)}
  for (var i = 0u; i < ${bound(K, kName)}; i++) {
    ${cs.map((c) => `let w${c} = select(0.0, ${w}[i * ${ncols}u + min(lid + ${c * WG}u, ${ncols - 1}u)], lid + ${c * WG}u < ${ncols}u);`).join('\n    ')}
    ${rs.map((r) => `let t${r} = ${tile}[${r * K}u + i];`).join(' ')}
    ${each((c, r) => `${name(c, r)} += t${r} * w${c};`)}
  }
  ${zeroedArray(acc, C * TR)}
  ${each((c, r) => `${acc}[${c * TR + r}] = ${name(c, r)};`)}`;
}

/** WGSL looping over this thread's columns j < ncols of `product` and the tile's rows n < N: `body` sees j, n, acc value v. */
function epilogue(acc: string, ncols: number, TR: number, body: string): string {
  const C = Math.ceil(ncols / WG);
  return `for (var c = 0u; c < ${C}u; c++) {
    let j = lid + c * WG;
    if (j < ${ncols}u) {
      for (var r = 0u; r < ${TR}u; r++) {
        let n = r0 + r;
        if (n < N) {
          let v = ${acc}[c * ${TR}u + r];
          ${body}
        }
      }
    }
  }`;
}

/**
 * LayerNorm, the up projection and its split: x -> xhat, rstd1, u = W_l xn + b, and sigmoid(r),
 * silu(r) for r = W_r xn + b. Uniforms: N rows, d.
 */
export function upProgram(s: FwdSizes): { program: GpuProgram; rows: number } {
  const { d, dm } = s;
  const H = s.nh * s.dh;
  const W = dm + H;
  const TR = rowsPerGroup(d);
  const names = ['xhat', 'rstd1', 'uOut', 'sirOut', 'srOut'];
  const ins = ['x', 'normW', 'normB', 'wUp', 'bUp'];
  const code = /* wgsl */ `
struct U { N: i32, D: i32, p0: i32, p1: i32 }
${names.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`).join('\n')}
${ins.map((n, i) => `@group(0) @binding(${i + names.length}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${names.length + ins.length}) var<uniform> u: U;
${WGSL_MATH}
const D = ${d}u; const DM = ${dm}u; const H = ${H}u; const TR = ${TR}u; const WG = ${WG}u;
var<workgroup> xn: array<f32, ${TR * d}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N);
  let r0 = wid.x * TR;
  let dl = ${bound(d, 'D')};
  if (lid < TR) {
    let n = r0 + lid;
    if (n < N) {
      var mean = 0.0;
      for (var c = 0u; c < dl; c++) { mean += x[n * D + c]; }
      mean /= f32(D);
      var vr = 0.0;
      for (var c = 0u; c < dl; c++) { let e = x[n * D + c] - mean; vr += e * e; }
      let rs = 1.0 / sqrt(vr / f32(D) + 1e-5);
      rstd1[n] = rs;
      for (var c = 0u; c < dl; c++) {
        let h = (x[n * D + c] - mean) * rs;
        xhat[n * D + c] = h;
        xn[lid * D + c] = h * normW[c] + normB[c];
      }
    }
  }
  workgroupBarrier();
  ${product('acc', 'xn', 'wUp', d, 'D', W, TR)}
  ${epilogue('acc', W, TR, `let y = v + bUp[j];
          if (j < DM) {
            uOut[n * DM + j] = y;
          } else {
            let s = sigm(y);
            srOut[n * H + j - DM] = s;
            sirOut[n * H + j - DM] = y * s;
          }`)}
}
`;
  return { program: { key: `mlstm-fwd-up-${d}-${dm}-${H}-${+gpuOptions.opaqueLoopBounds}`, code }, rows: TR };
}

/**
 * The causal conv with silu (k > 0), then both projections and their split: c = silu(conv(u)),
 * [q, k, igate, fgate, skip] = W_C c (+ bC, the key scaled after its bias), [v, ogate] = W_U u
 * (+ bU), with sigmoid(ogate). Uniforms: N rows, T, dm.
 */
export function projectProgram(s: FwdSizes): { program: GpuProgram; rows: number } {
  const { dm, nh, dh, k } = s;
  const H = nh * dh;
  const WC = 3 * H + 2 * nh;
  const conv = k > 0;
  const TR = rowsPerGroup(conv ? 2 * dm : dm);
  const names = [...(conv ? ['cOut', 'saOut'] : []), 'qOut', 'kOut', 'vOut', 'gOut', 'skOut', 'soOut'];
  const ins = ['uIn', ...(conv ? ['convW', 'convB'] : []), 'wC', 'bC', 'wU', 'bU'];
  // Without the conv, c = u: the projections read the same tile.
  const cTile = conv ? 'cs' : 'us';
  const code = /* wgsl */ `
struct U { N: i32, T: i32, DM: i32, p0: i32 }
${names.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`).join('\n')}
${ins.map((n, i) => `@group(0) @binding(${i + names.length}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${names.length + ins.length}) var<uniform> u: U;
${WGSL_MATH}
const DM = ${dm}u; const H = ${H}u; const NH = ${nh}u; const WC = ${WC}u; const TR = ${TR}u; const WG = ${WG}u; const KS = ${k}u;
const SCALE = ${1 / Math.sqrt(dh)};
var<workgroup> us: array<f32, ${TR * dm}>;
${conv ? `var<workgroup> cs: array<f32, ${TR * dm}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N);
  let T = u32(u.T);
  let r0 = wid.x * TR;
  let dml = ${bound(dm, 'DM')};
  for (var idx = lid; idx < TR * dml; idx += WG) {
    let r = idx / dml; let j = idx % dml; let n = r0 + r;
    var uv = 0.0;
    ${conv ? 'var cv = 0.0;' : ''}
    if (n < N) {
      uv = uIn[n * DM + j];
      ${
        conv
          ? `// Tap i reads the input k-1-i steps back, within the same sequence (zeros before its start).
      let t = n % T;
      var a = convB[j];
      for (var i = 0u; i < KS; i++) {
        let back = KS - 1u - i;
        if (t >= back) { a += convW[i * DM + j] * uIn[(n - back) * DM + j]; }
      }
      let sa = sigm(a);
      cv = a * sa;
      cOut[n * DM + j] = cv;
      saOut[n * DM + j] = sa;`
          : ''
      }
    }
    us[r * DM + j] = uv;
    ${conv ? 'cs[r * DM + j] = cv;' : ''}
  }
  workgroupBarrier();
  {
  ${product('accC', cTile, 'wC', dm, 'DM', WC, TR)}
  ${epilogue('accC', WC, TR, `if (j < H) { qOut[n * H + j] = v + bC[j]; }
          else if (j < 2u * H) { kOut[n * H + j - H] = (v + bC[j]) * SCALE; }
          else if (j < 2u * H + 2u * NH) { gOut[n * 2u * NH + j - 2u * H] = v + bC[j]; }
          else { skOut[n * H + j - 2u * H - 2u * NH] = v; }`)}
  }
  {
  ${product('accU', 'us', 'wU', dm, 'DM', 2 * H, TR)}
  ${epilogue('accU', 2 * H, TR, `let y = v + bU[j];
          if (j < H) { vOut[n * H + j] = y; } else { soOut[n * H + j - H] = sigm(y); }`)}
  }
}
`;
  return { program: { key: `mlstm-fwd-project-${dm}-${nh}-${dh}-${k}-${+gpuOptions.opaqueLoopBounds}`, code }, rows: TR };
}
