/**
 * The weight gradients of the webgpu sLSTM training block as two WGSL dispatches: every gradient
 * element is a sum over the N = B*T rows, so the first pass sums slices of rowsPerSlice rows (one
 * thread per element and slice) and the second adds the slices in a fixed order, which keeps the
 * result deterministic without atomics.
 */
import { WGSL_MATH, type GpuProgram } from './device.ts';
import { layouts, type SlstmSizes } from './slstm-train-rows.ts';

/** Rows summed by one thread of the first pass; tests lower it to get several slices. */
export const slstmGradTiling = { rowsPerSlice: 256 };

const WG = 64;

/** One gradient: its element count and the WGSL that adds row n's term for element l to acc. */
interface Job {
  readonly name: string;
  readonly size: number;
  /** Statements before the row loop (index decoding). */
  readonly setup: string;
  /** Statements inside `for (n in the slice)`. */
  readonly term: string;
}

/** The gradients in the op's input order: normW, normB, (convW, convB), wC, wX, bG, R, outW, outB, wUp, bUp, wDown, bDown. */
function gradJobs(s: SlstmSizes): Job[] {
  const { d, nh, dh, P, k } = s;
  const H = nh * dh;
  const cOff = k > 0 ? 2 * d : d; // c = xn when there is no conv
  const jobs: Job[] = [
    {
      name: 'dnormW',
      size: d,
      setup: '',
      term: 'acc += dD[n * WDD + l] * tA[n * WA + l];',
    },
    { name: 'dnormB', size: d, setup: '', term: 'acc += dD[n * WDD + l];' },
  ];
  if (k > 0) {
    jobs.push(
      {
        name: 'dconvW',
        size: k * d,
        setup: 'let back = K - 1u - l / D; let ch = l % D;',
        term: 'if (n % T >= back) { acc += dD[n * WDD + D + ch] * tA[(n - back) * WA + D + ch]; }',
      },
      {
        name: 'dconvB',
        size: d,
        setup: '',
        term: 'acc += dD[n * WDD + D + l];',
      },
    );
  }
  jobs.push(
    {
      name: 'dwC',
      size: d * 2 * H,
      setup: 'let kk = l / H2; let col = l % H2;',
      term: `acc += tA[n * WA + ${cOff}u + kk] * dgx[n * G4 + col];`,
    },
    {
      name: 'dwX',
      size: d * 2 * H,
      setup: 'let kk = l / H2; let col = l % H2;',
      term: 'acc += tA[n * WA + D + kk] * dgx[n * G4 + H2 + col];',
    },
    { name: 'dbG', size: 4 * H, setup: '', term: 'acc += dgx[n * G4 + l];' },
    {
      name: 'dR',
      size: 4 * H * dh,
      // R is [4, nh, dh(out), dh(in)]; h_{t-1} is zero at t = 0.
      setup: 'let i = l % DH; let o = (l / DH) % DH; let j = (l / (DH * DH)) % NH; let g = l / (DH * DH * NH); let at = g * H + j * DH + o;',
      term: 'if (n % T > 0u) { acc += dgx[n * G4 + at] * hs[(n - 1u) * H + j * DH + i]; }',
    },
    {
      name: 'doutW',
      size: H,
      setup: '',
      term: 'acc += dB[n * WDB + P2 + l] * tB[n * WB + l];',
    },
    { name: 'doutB', size: H, setup: '', term: 'acc += dB[n * WDB + P2 + l];' },
    {
      name: 'dwUp',
      size: H * 2 * P,
      setup: 'let kk = l / P2; let q = l % P2;',
      term: 'acc += tB[n * WB + H + kk] * dB[n * WDB + q];',
    },
    { name: 'dbUp', size: 2 * P, setup: '', term: 'acc += dB[n * WDB + l];' },
    {
      name: 'dwDown',
      size: P * d,
      setup: 'let p = l / D; let c = l % D;',
      term: 'acc += tB[n * WB + 2u * H + P2 + p] * dy[n * D + c];',
    },
    { name: 'dbDown', size: d, setup: '', term: 'acc += dy[n * D + l];' },
  );
  return jobs;
}

/** Element offsets of the jobs in the flat gradient vector, and its length. */
function offsets(jobs: readonly Job[]): { starts: number[]; total: number } {
  const starts: number[] = [];
  let total = 0;
  for (const j of jobs) {
    starts.push(total);
    total += j.size;
  }
  return { starts, total };
}

/** Dispatches `if (e < end0) { ... } else if ...` over the jobs, with l the index inside the job. */
function branches(jobs: readonly Job[], body: (j: Job, i: number) => string): string {
  const { starts } = offsets(jobs);
  return jobs
    .map((j, i) => {
      const cond = i === jobs.length - 1 ? '' : `if (e < ${starts[i] + j.size}u) `;
      return `${cond}{\n    let l = e - ${starts[i]}u;\n    ${body(j, i)}\n  }`;
    })
    .join(' else ');
}

const constants = (s: SlstmSizes) => {
  const H = s.nh * s.dh;
  const L = layouts(s);
  return `const D = ${s.d}u; const NH = ${s.nh}u; const DH = ${s.dh}u; const H = ${H}u; const H2 = ${2 * H}u; const G4 = ${4 * H}u;
const P = ${s.P}u; const P2 = ${2 * s.P}u; const K = ${s.k}u; const WA = ${L.WA}u; const WB = ${L.WB}u; const WDB = ${L.WDB}u; const WDD = ${L.WDD}u;
const WG = ${WG}u;`;
};

/**
 * First pass: partials [S, total] with slice s summing rows [s * RS, (s + 1) * RS). Inputs tA, tB,
 * dB, dD, dy, dgx, hs. Uniforms: N, T, RS, total. Dispatch [ceil(total / 64), S, 1].
 */
export function partialsProgram(s: SlstmSizes): {
  program: GpuProgram;
  total: number;
  threads: number;
} {
  const jobs = gradJobs(s);
  const { total } = offsets(jobs);
  const ins = ['tA', 'tB', 'dB', 'dD', 'dy', 'dgx', 'hs'];
  const code = /* wgsl */ `
struct U { N: i32, T: i32, RS: i32, TOTAL: i32 }
@group(0) @binding(0) var<storage, read_write> partials: array<f32>;
${ins.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${ins.length + 1}) var<uniform> u: U;
${WGSL_MATH}
${constants(s)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N); let T = u32(u.T); let TOTAL = u32(u.TOTAL);
  let e = wid.x * WG + lid;
  if (e >= TOTAL) { return; }
  let n0 = wid.y * u32(u.RS);
  let n1 = min(N, n0 + u32(u.RS));
  var acc = 0.0;
  ${branches(jobs, (j) => `${j.setup}\n    for (var n = n0; n < n1; n++) { ${j.term} }`)}
  partials[wid.y * TOTAL + e] = acc;
}
`;
  return {
    program: {
      key: `slstm-train-partials-${s.d}-${s.nh}x${s.dh}-${s.P}-${s.k}`,
      code,
    },
    total,
    threads: WG,
  };
}

/**
 * Second pass: sums the S slices of each element in order and writes every gradient to its own
 * output (in gradJobs order). Input partials. Uniforms: S, total. Dispatch [ceil(total / 64), 1, 1].
 */
export function reduceProgram(s: SlstmSizes): {
  program: GpuProgram;
  sizes: number[];
} {
  const jobs = gradJobs(s);
  const code = /* wgsl */ `
struct U { S: i32, TOTAL: i32, p0: i32, p1: i32 }
${jobs.map((j, i) => `@group(0) @binding(${i}) var<storage, read_write> ${j.name}: array<f32>;`).join('\n')}
@group(0) @binding(${jobs.length}) var<storage, read> partials: array<f32>;
@group(0) @binding(${jobs.length + 1}) var<uniform> u: U;
const WG = ${WG}u;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let TOTAL = u32(u.TOTAL);
  let e = wid.x * WG + lid;
  if (e >= TOTAL) { return; }
  var v = 0.0;
  for (var s = 0u; s < u32(u.S); s++) { v += partials[s * TOTAL + e]; }
  ${branches(jobs, (j) => `${j.name}[l] = v;`)}
}
`;
  return {
    program: {
      key: `slstm-train-reduce-${s.d}-${s.nh}x${s.dh}-${s.P}-${s.k}`,
      code,
    },
    sizes: jobs.map((j) => j.size),
  };
}
