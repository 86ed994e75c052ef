/**
 * The mLSTM training block's backward kernel ('XlstmMlstmTrainBackward') on the webgpu backend as
 * five WGSL dispatches instead of ~400 tfjs ops: the same inputs (dy, x, the weights, the forward
 * trace by traceNames(k)), attrs and outputs as the host kernel (mlstm/train-kernels.ts), so that
 * the fused training op can run on webgpu unchanged.
 *   1. gate:  dy -> down projection, gating, GroupNorm, output gate back to dh~ (+ dWDown, dbDown, dOut*)
 *   2. cell:  the parallel cell's backward per (sequence, head) -> dq, dk, dv, dgates
 *   3. proj:  the q/k/gate/skip and v/ogate projections back to c and u, silu' of the conv (+ dWC, dbC, dWU, dbU, dConv*)
 *   4. up:    the conv back to u, the up projection, LayerNorm, residual -> dx (+ dWUp, dbUp, dNorm*)
 *   5. final: adds the workgroups' weight-gradient partials in a fixed order, one tensor per weight
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MlstmTrainAttrs } from '../mlstm/train-kernels.ts';
import { XlstmError } from '../../util/errors.ts';
import { gpuOptions, runProgram, webgpuBackend, type GpuProgram } from './device.ts';
import { CELL_SCRATCH, cellProgram } from './mlstm-train-bwd-cell.ts';
import { FINAL_WG, gradSegments, rowUniforms, type BwdSpec } from './mlstm-train-bwd-layout.ts';
import { finalProgram, gateProgram, projProgram, upProgram } from './mlstm-train-bwd-rows.ts';

type Info = tf.TensorInfo;

const BACKWARD = 'XlstmMlstmTrainBackward';

/**
 * Work split, adjustable for tests: rows per sub-tile of the row kernels, the most workgroups
 * (partial rows) a row kernel uses, its threads per workgroup, the cell kernel's threads per
 * (sequence, head) and the time steps it stages in workgroup memory at once. Each is lowered where
 * the device's limits (threads, workgroup memory, storage binding size) require it. The defaults
 * were the fastest of a sweep on an H200 at B = 16, T = 256: 0.71-0.73 ms a call, ~0.35-0.45 ms of
 * it host time, against 1.2-1.3 ms for 32 rows and 256 threads.
 */
export const mlstmBackwardTiling = { rows: 16, maxTiles: 256, threads: 1024, cellThreads: 256, staged: 32 };

/** WebGPU's per-dimension limit on workgroups. */
const MAX_GROUPS = 65535;

const nextPow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

interface Programs {
  readonly gate: GpuProgram;
  readonly cell: GpuProgram;
  readonly proj: GpuProgram;
  readonly up: GpuProgram;
  readonly final: GpuProgram;
}

/** Generated sources by spec: building them costs about as much host time as recording the five dispatches. */
const programCache = new Map<string, Programs>();

function programsFor(spec: BwdSpec): Programs {
  const key = JSON.stringify(spec);
  let p = programCache.get(key);
  if (!p) {
    p = { gate: gateProgram(spec), cell: cellProgram(spec), proj: projProgram(spec), up: upProgram(spec), final: finalProgram(spec) };
    programCache.set(key, p);
  }
  return p;
}

function requiredInputs(k: number): string[] {
  const conv = k > 0 ? ['convW', 'c', 'sa'] : [];
  return ['dy', 'x', 'normW', 'normB', 'wUp', 'wC', 'wU', 'outW', 'outB', 'wDown', 'xhat', 'rstd1', 'u', 'sir', 'sr', 'q', 'kk', 'v', 'gates', 'skip', 'so', 'ht', 'hhat', 'rstd2', ...conv];
}

/**
 * dy [B, T, d], x, the block's weights and the forward trace -> [dx [B, T, d], dNormW, dNormB,
 * dWUp, dbUp, (dConvW, dConvB when k > 0), dWC, dbC, dWU, dbU, dOutW, dOutB, dWDown, dbDown], the
 * host kernel's outputs, as new tensor infos on the webgpu backend (owned by the caller).
 */
export function mlstmTrainBackwardGpu(inputs: Record<string, Info>, attrs: MlstmTrainAttrs, backend: unknown = tf.backend()): Info[] {
  const be = webgpuBackend(backend);
  const { nh, dh, dm, k } = attrs;
  const i = inputs;
  const missing = requiredInputs(k).filter((name) => !i[name]);
  if (missing.length > 0) {
    throw new XlstmError('INVALID_INPUT', `mlstmTrainBackwardGpu expected the host backward kernel's inputs, but got none for ${missing.join(', ')}. Hint: pass dy, x, the weights and every trace tensor of traceNames(${k}).`);
  }
  if (i.x.shape.length !== 3) throw new XlstmError('INVALID_INPUT', `mlstmTrainBackwardGpu expected x of rank 3 [B, T, d], but got shape [${i.x.shape}]. Hint: pass the block input as [B, T, d].`);
  const [B, T, d] = i.x.shape;
  const H = nh * dh;
  const N = B * T;
  if (B * nh > MAX_GROUPS) throw new XlstmError('INVALID_INPUT', `mlstmTrainBackwardGpu expected B * nh <= ${MAX_GROUPS}, but got ${B * nh}. Hint: split the batch.`);

  const t = mlstmBackwardTiling;
  const lim = (be.device.limits ?? {}) as Record<string, number | undefined>;
  const most = Math.min(lim.maxComputeInvocationsPerWorkgroup ?? 256, lim.maxComputeWorkgroupSizeX ?? 256);
  // Workgroup memory in floats: half for a kernel's row tile, half for its staged product.
  const shared = Math.floor((lim.maxComputeWorkgroupStorageSize ?? 16384) / 4);
  const RT = Math.max(1, Math.min(t.rows, Math.floor(shared / 2 / (Math.max(H, d) + 2))));
  const widest = Math.max(H, dm, d);
  const CW = Math.min(nextPow2(t.cellThreads), nextPow2(T), most);
  const spec: BwdSpec = {
    d,
    dm,
    nh,
    dh,
    k,
    RT,
    WG: Math.min(t.threads, most),
    MC: Math.max(1, Math.min(16, Math.floor((shared / 2 - widest) / (widest + RT)))),
    CW,
    SC: Math.max(1, Math.min(t.staged, CW, Math.floor((shared - CW) / (2 * dh + 3)))),
    opaque: gpuOptions.opaqueLoopBounds,
  };
  const { segs, G } = gradSegments(spec);
  // The partials [NT, G] must fit one storage binding.
  const maxTiles = Math.max(1, Math.min(t.maxTiles, MAX_GROUPS, Math.floor((lim.maxStorageBufferBindingSize ?? 134217728) / (4 * G))));
  const subTiles = Math.ceil(N / RT);
  const SUB = Math.ceil(subTiles / maxTiles);
  const NT = Math.ceil(subTiles / SUB);
  const uni = rowUniforms(spec, N, T, SUB, NT);
  const rowGrid: [number, number, number] = [NT, 1, 1];
  const programs = programsFor(spec);

  const [dht, dcc, duu, dup, part] = runProgram(
    be,
    programs.gate,
    [i.dy, i.wDown, i.hhat, i.skip, i.sir, i.sr, i.outW, i.outB, i.rstd2, i.so, i.ht],
    [{ shape: [N, H] }, { shape: [N, 3 * H + 2 * nh] }, { shape: [N, 2 * H] }, { shape: [N, dm + H] }, { shape: [NT, G] }],
    uni,
    rowGrid,
  );
  const [scratch] = runProgram(be, programs.cell, [dcc, duu, i.q, i.kk, i.v, i.gates, i.ht, dht], [{ shape: [B * nh * CELL_SCRATCH * T] }], [B, T, dh, 0], [B * nh, 1, 1]);
  const conv = k > 0;
  const projOut = runProgram(
    be,
    programs.proj,
    [part, dcc, duu, i.wC, i.wU, ...(conv ? [i.c, i.sa] : []), i.u],
    conv ? [{ shape: [N, dm] }, { shape: [N, dm] }] : [{ shape: [N, dm] }],
    uni,
    rowGrid,
  );
  const [da, du] = conv ? projOut : [null, projOut[0]];
  const [dx] = runProgram(
    be,
    programs.up,
    [dup, part, du, ...(conv && da ? [da, i.convW] : []), i.wUp, i.xhat, i.normW, i.normB, i.rstd1, i.dy],
    [{ shape: [B, T, d] }],
    uni,
    rowGrid,
  );
  const groups = Math.ceil(G / FINAL_WG);
  const grads = runProgram(be, programs.final, [part], segs.map((s) => ({ shape: s.shape })), [NT, 0, 0, 0], [Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS), 1]);
  // Released once the recorded commands are submitted (the backend defers buffers in flight).
  for (const tmp of [dht, dcc, duu, dup, part, scratch, ...projOut]) (backend as tf.KernelBackend).disposeData(tmp.dataId);
  return [dx, ...grads];
}

/** Registers mlstmTrainBackwardGpu as the webgpu kernel of 'XlstmMlstmTrainBackward' (once). */
export function registerMlstmTrainBackwardGpu(): void {
  if (tf.getKernel(BACKWARD, 'webgpu')) return;
  tf.registerKernel({
    kernelName: BACKWARD,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => mlstmTrainBackwardGpu(inputs as Record<string, Info>, attrs as unknown as MlstmTrainAttrs, backend),
  });
}
