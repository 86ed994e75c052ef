/**
 * One tiled WGSL matrix product as a single dispatch on the webgpu backend, with the layouts the
 * fused training kernels need: rows x [K, N] weights (forward), X^T dY (weight gradients) and
 * dY W^T (input gradients), and an optional bias and residual added in the same dispatch.
 * Called from inside kernel functions: it goes through runProgram, so no tape sees it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { runProgram, type GpuProgram } from './device.ts';

/** Output tile edge: 16 x 16 threads, one output each; K is walked in tiles of the same edge. */
const TILE = 16;

/** Which variant of the product: out[M, N] = op(a) op(b) (+ bias[N]) (+ residual[M, N]). */
interface RowsMatMulFlags {
  /** a is [K, M] and its transpose is used (X^T dY). */
  readonly transposeA: boolean;
  /** b is [N, K] and its transpose is used (dY W^T). */
  readonly transposeB: boolean;
  readonly bias: boolean;
  readonly residual: boolean;
}

/** The program for one variant; sizes are uniforms, so one pipeline serves every shape. */
function rowsMatMulProgram(f: RowsMatMulFlags): GpuProgram {
  const inputs = ['a', 'b', ...(f.bias ? ['bias'] : []), ...(f.residual ? ['res'] : [])];
  const bindings = inputs.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<f32>;`).join('\n');
  // Each thread loads one element of each tile; the reads run along the stored rows (coalesced).
  const loadA = f.transposeA
    ? `let am = m0 + lx; let ak = k0 + ly; var av = 0.0; if (am < M && ak < K) { av = a[ak * M + am]; } As[lx * T + ly] = av;`
    : `let am = m0 + ly; let ak = k0 + lx; var av = 0.0; if (am < M && ak < K) { av = a[am * K + ak]; } As[ly * T + lx] = av;`;
  const loadB = f.transposeB
    ? `let bn = n0 + ly; let bk = k0 + lx; var bv = 0.0; if (bn < N && bk < K) { bv = b[bn * K + bk]; } Bs[lx * T + ly] = bv;`
    : `let bn = n0 + lx; let bk = k0 + ly; var bv = 0.0; if (bn < N && bk < K) { bv = b[bk * N + bn]; } Bs[ly * T + lx] = bv;`;
  return {
    key: `rows-matmul-${+f.transposeA}${+f.transposeB}${+f.bias}${+f.residual}`,
    code: /* wgsl */ `
struct U { M: i32, N: i32, K: i32, p0: i32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
${bindings}
@group(0) @binding(${inputs.length + 1}) var<uniform> u: U;
const T = ${TILE}u;
var<workgroup> As: array<f32, ${TILE * TILE}>; // [m][k]
var<workgroup> Bs: array<f32, ${TILE * TILE}>; // [k][n]

@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = u32(u.M); let N = u32(u.N); let K = u32(u.K);
  let lx = lid.x; let ly = lid.y;
  let m0 = wid.y * T; let n0 = wid.x * T;
  var acc = 0.0;
  for (var k0 = 0u; k0 < K; k0 += T) {
    { ${loadA} }
    { ${loadB} }
    workgroupBarrier();
    for (var kk = 0u; kk < T; kk++) { acc += As[ly * T + kk] * Bs[kk * T + lx]; }
    workgroupBarrier();
  }
  let m = m0 + ly; let n = n0 + lx;
  if (m < M && n < N) {
    ${f.bias ? 'acc += bias[n];' : ''}
    ${f.residual ? 'acc += res[m * N + n];' : ''}
    out[m * N + n] = acc;
  }
}
`,
  };
}

export interface RowsMatMulOptions {
  readonly transposeA?: boolean;
  readonly transposeB?: boolean;
  /** [N], added to every row. */
  readonly bias?: tf.TensorInfo;
  /** M * N values (any shape), added elementwise. */
  readonly residual?: tf.TensorInfo;
  /** The output's shape (M * N values); [M, N] by default. */
  readonly outShape?: number[];
}

function size(t: tf.TensorInfo): number {
  return t.shape.reduce((x, y) => x * y, 1);
}

/**
 * out = op(a) op(b) (+ bias) (+ residual) as one dispatch. a is [M, K] (or [K, M] with transposeA)
 * and b [K, N] (or [N, K] with transposeB); leading dimensions of a fold into its rows.
 */
export function rowsMatMul(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo, o: RowsMatMulOptions = {}): tf.TensorInfo {
  const tA = o.transposeA ?? false;
  const tB = o.transposeB ?? false;
  if (b.shape.length !== 2) throw new Error(`rowsMatMul expected b of rank 2, but got shape [${b.shape}]. Hint: pass the weight as a 2-D tensor.`);
  const [K, N] = tB ? [b.shape[1], b.shape[0]] : b.shape;
  const aLast = a.shape[a.shape.length - 1];
  const M = tA ? aLast : size(a) / aLast;
  const aK = tA ? size(a) / aLast : aLast;
  if (aK !== K) throw new Error(`rowsMatMul expected a with ${K} values per row (b's inner size), but got ${aK}. Hint: check the transposes.`);
  if (o.bias && size(o.bias) !== N) throw new Error(`rowsMatMul expected a bias of ${N} values, but got ${size(o.bias)}. Hint: the bias has one value per output column.`);
  if (o.residual && size(o.residual) !== M * N) {
    throw new Error(`rowsMatMul expected a residual of ${M * N} values, but got ${size(o.residual)}. Hint: it must have the output's size.`);
  }
  const outShape = o.outShape ?? [M, N];
  const inputs = [a, b, ...(o.bias ? [o.bias] : []), ...(o.residual ? [o.residual] : [])];
  const program = rowsMatMulProgram({ transposeA: tA, transposeB: tB, bias: !!o.bias, residual: !!o.residual });
  const [out] = runProgram(backend, program, inputs, [{ shape: outShape }], [M, N, K, 0], [Math.ceil(N / TILE), Math.ceil(M / TILE), 1]);
  return out;
}
