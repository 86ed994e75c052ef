/**
 * The sLSTM time scan as WGSL kernels for the webgpu backend (the host scan reads tensors back
 * synchronously, which WebGPU under Node cannot): one workgroup per (sequence, head) walks the
 * T steps, since heads never mix (R is block-diagonal). Same equations as ../slstm/scan.ts:
 *   p = gx_t + R h_{t-1} (gates i, f, z, o); m_t = max(logsigmoid(p_f) + m_{t-1}, p_i)
 *   c_t = f' c_{t-1} + i' tanh(p_z); n_t = f' n_{t-1} + i'; h_t = sigmoid(p_o) c_t / n_t
 * Three kernels: from a state (prefill, decode), the training forward that also writes the trace
 * the backward pass needs, and that backward pass (BPTT; dR is one batched matMul afterwards).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runProgram, WGSL_MATH, type GpuProgram } from './device.ts';

const FROM_STATE = 'XlstmGpuSlstmScan';
const TRAIN = 'XlstmGpuSlstmScanTrain';
const BACKWARD = 'XlstmGpuSlstmScanBackward';

/** Threads per workgroup: one per (gate, unit) pair of a head, at most 256. */
const threads = (dh: number) => Math.min(256, 4 * dh);

/**
 * The forward scan. `trace` (training, zero initial state) writes every step's pre-activations
 * and c, n, m; otherwise the scan starts from a given state and writes the final one.
 */
function forwardProgram(nh: number, dh: number, trace: boolean): GpuProgram {
  const H = nh * dh;
  const WG = threads(dh);
  const bindings = trace
    ? ['hs', 'pre', 'cs', 'ns', 'ms'].map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`).join('\n') +
      `\n@group(0) @binding(5) var<storage, read> gx: array<f32>;\n@group(0) @binding(6) var<storage, read> R: array<f32>;\n@group(0) @binding(7) var<uniform> u: Dims;`
    : ['hs', 'cOut', 'nOut', 'hOut', 'mOut'].map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`).join('\n') +
      '\n' +
      ['gx', 'R', 'c0', 'n0', 'h0', 'm0'].map((n, i) => `@group(0) @binding(${i + 5}) var<storage, read> ${n}: array<f32>;`).join('\n') +
      `\n@group(0) @binding(11) var<uniform> u: Dims;`;
  return {
    key: `slstm-scan-${trace ? 'train' : 'state'}-${nh}x${dh}`,
    code: /* wgsl */ `
struct Dims { B: i32, T: i32, p0: i32, p1: i32 }
${bindings}
${WGSL_MATH}
const NH = ${nh}u; const DH = ${dh}u; const H = ${H}u; const G = ${4 * dh}u; const WG = ${WG}u;
var<workgroup> hPrev: array<f32, ${dh}>;
var<workgroup> pre_: array<f32, ${4 * dh}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x / NH;
  let j = wid.x % NH;
  let T = u32(u.T);
  let base = b * H + j * DH;
  var c = 0.0; var n = 0.0; var m = 0.0; var fresh = true;
  if (lid < DH) {
    ${
      trace
        ? 'hPrev[lid] = 0.0;'
        : `hPrev[lid] = h0[base + lid];
    c = c0[base + lid]; n = n0[base + lid]; m = m0[base + lid];
    // m = -inf marks a fresh sequence: f' = 0 exactly (tested, not computed, so no inf arithmetic).
    fresh = m < -3.0e38;`
    }
  }
  workgroupBarrier();
  for (var t = 0u; t < T; t++) {
    let row = (b * T + t) * 4u * H;
    for (var q = lid; q < G; q += WG) {
      let g = q / DH; let o = q % DH;
      var acc = gx[row + g * H + j * DH + o];
      let r = ((g * NH + j) * DH + o) * DH;
      for (var i = 0u; i < DH; i++) { acc += R[r + i] * hPrev[i]; }
      pre_[q] = acc;
      ${trace ? 'pre[row + g * H + j * DH + o] = acc;' : ''}
    }
    workgroupBarrier();
    if (lid < DH) {
      let pi = pre_[lid]; let pf = pre_[DH + lid]; let pz = pre_[2u * DH + lid]; let po = pre_[3u * DH + lid];
      let logf = logsig(pf);
      var mNew = pi; var fw = 0.0;
      if (!fresh) { mNew = max(logf + m, pi); fw = exp(logf + m - mNew); }
      let iw = exp(pi - mNew);
      c = fw * c + iw * tanh_(pz);
      n = fw * n + iw;
      m = mNew;
      fresh = false;
      let h = sigm(po) * c / n;
      let at = (b * T + t) * H + j * DH + lid;
      hs[at] = h;
      ${trace ? 'cs[at] = c; ns[at] = n; ms[at] = m;' : ''}
      hPrev[lid] = h;
    }
    workgroupBarrier();
  }
  ${trace ? '' : 'if (lid < DH) { cOut[base + lid] = c; nOut[base + lid] = n; hOut[base + lid] = hPrev[lid]; mOut[base + lid] = m; }'}
}
`,
  };
}

/** Backward through the scan from the trace: dy [B, T, H] -> dgx [B, T, 4H]. */
function backwardProgram(nh: number, dh: number): GpuProgram {
  const H = nh * dh;
  const WG = threads(dh);
  return {
    key: `slstm-scan-backward-${nh}x${dh}`,
    code: /* wgsl */ `
struct Dims { B: i32, T: i32, p0: i32, p1: i32 }
@group(0) @binding(0) var<storage, read_write> dgx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read> pre: array<f32>;
@group(0) @binding(4) var<storage, read> cs: array<f32>;
@group(0) @binding(5) var<storage, read> ns: array<f32>;
@group(0) @binding(6) var<storage, read> ms: array<f32>;
@group(0) @binding(7) var<uniform> u: Dims;
${WGSL_MATH}
const NH = ${nh}u; const DH = ${dh}u; const H = ${H}u; const WG = ${WG}u;
var<workgroup> dp: array<f32, ${4 * dh}>;
var<workgroup> dhRec: array<f32, ${dh}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x / NH;
  let j = wid.x % NH;
  let T = u32(u.T);
  var dc = 0.0; var dn = 0.0;
  if (lid < DH) { dhRec[lid] = 0.0; }
  workgroupBarrier();
  for (var s = 0u; s < T; s++) {
    let t = T - 1u - s;
    if (lid < DH) {
      let at = (b * T + t) * H + j * DH + lid;
      let row = (b * T + t) * 4u * H + j * DH + lid;
      let pi = pre[row]; let pf = pre[row + H]; let pz = pre[row + 2u * H]; let po = pre[row + 3u * H];
      let c = cs[at]; let n = ns[at]; let mNew = ms[at];
      var cPrev = 0.0; var nPrev = 0.0; var fw = 0.0;
      if (t > 0u) {
        cPrev = cs[at - H]; nPrev = ns[at - H];
        fw = exp(logsig(pf) + ms[at - H] - mNew);
      }
      let iw = exp(pi - mNew);
      let tz = tanh_(pz);
      let so = sigm(po);
      let q = c / n;
      let dh_ = dy[at] + dhRec[lid];
      let dcu = dc + dh_ * so / n;
      let dnu = dn - dh_ * so * q / n;
      dp[3u * DH + lid] = dh_ * q * so * (1.0 - so);
      dp[2u * DH + lid] = dcu * iw * (1.0 - tz * tz);
      dp[lid] = (dcu * tz + dnu) * iw;
      // f' = 0 on the first step (m_prev = -inf): no gradient reaches the forget gate there.
      dp[DH + lid] = select(0.0, (dcu * cPrev + dnu * nPrev) * fw * sigm(-pf), t > 0u);
      dc = dcu * fw;
      dn = dnu * fw;
    }
    workgroupBarrier();
    for (var q = lid; q < 4u * DH; q += WG) {
      let g = q / DH; let o = q % DH;
      dgx[(b * T + t) * 4u * H + g * H + j * DH + o] = dp[q];
    }
    if (lid < DH) {
      var acc = 0.0;
      for (var q = 0u; q < 4u * DH; q++) {
        let g = q / DH; let o = q % DH;
        acc += R[((g * NH + j) * DH + o) * DH + lid] * dp[q];
      }
      dhRec[lid] = acc;
    }
    workgroupBarrier();
  }
}
`,
  };
}

tf.registerKernel({
  kernelName: FROM_STATE,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend }) => {
    const { gx, R, c, n, h, m } = inputs as Record<string, tf.TensorInfo>;
    const [B, T] = gx.shape;
    const [, nh, dh] = R.shape;
    const H = nh * dh;
    return runProgram(
      backend,
      forwardProgram(nh, dh, false),
      [gx, R, c, n, h, m],
      [{ shape: [B, T, H] }, { shape: [B, H] }, { shape: [B, H] }, { shape: [B, H] }, { shape: [B, H] }],
      [B, T],
      [B * nh, 1, 1],
    );
  },
});

tf.registerKernel({
  kernelName: TRAIN,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend }) => {
    const { gx, R } = inputs as Record<string, tf.TensorInfo>;
    const [B, T] = gx.shape;
    const [, nh, dh] = R.shape;
    const H = nh * dh;
    return runProgram(
      backend,
      forwardProgram(nh, dh, true),
      [gx, R],
      [{ shape: [B, T, H] }, { shape: [B, T, 4 * H] }, { shape: [B, T, H] }, { shape: [B, T, H] }, { shape: [B, T, H] }],
      [B, T],
      [B * nh, 1, 1],
    );
  },
});

tf.registerKernel({
  kernelName: BACKWARD,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend }) => {
    const { dy, R, pre, cs, ns, ms } = inputs as Record<string, tf.TensorInfo>;
    const [B, T, H] = dy.shape;
    const [, nh, dh] = R.shape;
    return runProgram(backend, backwardProgram(nh, dh), [dy, R, pre, cs, ns, ms], [{ shape: [B, T, 4 * H] }], [B, T], [B * nh, 1, 1]);
  },
});

/** The scan from a state on the device: gx [B, T, 4H], R [4, nh, dh, dh], c, n, h, m [B, H] -> hs [B, T, H] and the final state. */
export function slstmScanGpu(
  gx: tf.Tensor3D,
  R: tf.Tensor4D,
  s: { c: tf.Tensor2D; n: tf.Tensor2D; h: tf.Tensor2D; m: tf.Tensor2D },
): { hs: tf.Tensor3D; c: tf.Tensor2D; n: tf.Tensor2D; h: tf.Tensor2D; m: tf.Tensor2D } {
  const [hs, c, n, h, m] = tf.engine().runKernel(FROM_STATE, { gx, R, c: s.c, n: s.n, h: s.h, m: s.m }) as tf.Tensor[];
  return { hs: hs as tf.Tensor3D, c: c as tf.Tensor2D, n: n as tf.Tensor2D, h: h as tf.Tensor2D, m: m as tf.Tensor2D };
}

