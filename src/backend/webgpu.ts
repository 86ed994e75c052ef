/**
 * Loads tfjs's WebGPU backend on Dawn's Node binding (the optional npm packages `webgpu` and
 * @tensorflow/tfjs-backend-webgpu) and describes the adapter it runs on.
 *
 * Environment (all optional):
 *   XLSTM_WEBGPU_BACKEND   vulkan | opengles | d3d12 | metal: the Dawn backend to ask for. opengles
 *                          (Mesa llvmpipe on a CPU-only machine) implies the compatibility feature
 *                          level and EGL_PLATFORM=surfaceless unless EGL_PLATFORM is set.
 *   XLSTM_WEBGPU_FLAGS     further Dawn flags for create(), space-separated (e.g. "validate=1").
 *   XLSTM_WEBGPU_FEATURE_LEVEL  core | compatibility (default: compatibility for opengles, else core).
 *   XLSTM_WEBGPU_ALLOW_SOFTWARE=1  lets auto-detection take a software adapter (an explicit
 *                          XLSTM_BACKEND=webgpu always takes whatever adapter there is).
 *   XLSTM_WEBGPU_SUBMIT_BATCH  dispatches per command-buffer submit (tfjs's default: 15).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { configureGpuKernels } from '../core/gpu/device.ts';
import { XlstmError } from '../util/errors.ts';

/** The optional packages, at the versions this module was written against. */
export const WEBGPU_PACKAGES = ['webgpu@0.6.2', '@tensorflow/tfjs-backend-webgpu@4.22.0'] as const;

/** What the adapter says about itself, with our verdict on whether it is a software rasteriser. */
export interface AdapterDescription {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** Dawn's own flag, or a known CPU implementation (llvmpipe, lavapipe, SwiftShader). */
  readonly software: boolean;
  readonly featureLevel: 'core' | 'compatibility';
  readonly dawnFlags: readonly string[];
  readonly features: readonly string[];
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxStorageBufferBindingSize: number;
}

/** The slice of Dawn's GPUAdapter this module reads (no @webgpu/types dependency). */
interface AdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
  readonly features: Iterable<string>;
  readonly limits: Record<string, number>;
}

interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}

interface WebgpuModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

let adapter: AdapterDescription | null = null;
let loaded: string | null = null;

/** The adapter the webgpu backend runs on, once it has been loaded (null before, or on other backends). */
export function webgpuAdapter(): AdapterDescription | null {
  return adapter;
}

/** One line for logs and the health query, e.g. "nvidia-h200 (NVIDIA: 580.159.04, nvidia)"; null when webgpu is not loaded. */
export function webgpuAdapterSummary(): string | null {
  if (!adapter) return null;
  const a = adapter;
  // Dawn names the device in `device` ("nvidia-h200") and puts the driver or API in `description`.
  const name = a.device || a.description || 'unknown adapter';
  const extra = [a.device ? a.description : '', a.vendor, a.architecture, a.featureLevel === 'compatibility' ? 'compatibility mode' : '', a.software ? 'software' : '']
    .filter(Boolean)
    .join(', ');
  return extra ? `${name} (${extra})` : name;
}

function envFlags(): { flags: string[]; featureLevel: 'core' | 'compatibility' } {
  const backend = (process.env.XLSTM_WEBGPU_BACKEND ?? '').trim().toLowerCase();
  const flags = (process.env.XLSTM_WEBGPU_FLAGS ?? '').split(/\s+/).filter(Boolean);
  if (backend) flags.unshift(`backend=${backend}`);
  const gl = backend === 'opengles' || backend === 'opengl' || flags.some((f) => /^backend=opengl/.test(f));
  // Mesa's EGL needs a platform without a display server; it reads the variable when Dawn opens EGL.
  if (gl && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
  const level = (process.env.XLSTM_WEBGPU_FEATURE_LEVEL ?? '').trim();
  const featureLevel = level === 'core' || level === 'compatibility' ? level : gl ? 'compatibility' : 'core';
  return { flags, featureLevel };
}

/** Dawn's fallback flag, or a known CPU implementation by name (Mesa's llvmpipe over GL says it is not a fallback). */
export function isSoftwareAdapter(a: Pick<AdapterLike, 'info' | 'isFallbackAdapter'>): boolean {
  const info = a.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  return info.isFallbackAdapter === true || a.isFallbackAdapter === true || SOFTWARE.test(text);
}

function describe(a: AdapterLike, featureLevel: 'core' | 'compatibility', flags: string[]): AdapterDescription {
  const info = a.info ?? {};
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: isSoftwareAdapter(a),
    featureLevel,
    dawnFlags: flags,
    features: [...a.features].sort(),
    maxStorageBuffersPerShaderStage: a.limits.maxStorageBuffersPerShaderStage,
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
  };
}

/**
 * tfjs 4.22 pushes ['bgra8unorm-storage'] (an array) into requiredFeatures, which Dawn's WebIDL
 * conversion rejects; it also leaves maxStorageBuffersPerShaderStage at the default (8, or 4 in
 * compatibility mode), too few for the fused kernels' bindings.
 */
function patchRequestDevice(globals: Record<string, unknown>, a: AdapterLike): void {
  const proto = (globals.GPUAdapter as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  if (!proto || proto.__xlstmPatched) return;
  const original = proto.requestDevice as (this: unknown, desc?: Record<string, unknown>) => Promise<unknown>;
  proto.requestDevice = function (this: AdapterLike, desc?: Record<string, unknown>) {
    const d: Record<string, unknown> = { ...(desc ?? {}) };
    if (Array.isArray(d.requiredFeatures)) d.requiredFeatures = [...new Set((d.requiredFeatures as unknown[]).flat())];
    const limits = { ...((d.requiredLimits as Record<string, number> | undefined) ?? {}) };
    const most = (this.limits ?? a.limits).maxStorageBuffersPerShaderStage;
    if (most && !(limits.maxStorageBuffersPerShaderStage >= most)) limits.maxStorageBuffersPerShaderStage = most;
    d.requiredLimits = limits;
    return original.call(this, d);
  };
  proto.__xlstmPatched = true;
}

/** Resolves through require (so NODE_PATH works), imports as ESM (`webgpu` is ESM-only). */
async function importOptional<T>(name: string): Promise<T | null> {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve(name);
  } catch {
    return null;
  }
  return (await import(pathToFileURL(path).href)) as T;
}

/**
 * Makes the webgpu backend registrable: creates Dawn's navigator.gpu, picks the adapter and only
 * then imports @tensorflow/tfjs-backend-webgpu (which checks navigator.gpu when it loads).
 * Returns a description for the logs, or null when the packages or an acceptable adapter are missing.
 * `explicit` (XLSTM_BACKEND=webgpu) accepts a software adapter; auto-detection does not.
 */
export async function loadWebgpu(explicit: boolean): Promise<string | null> {
  const allowSoftware = explicit || process.env.XLSTM_WEBGPU_ALLOW_SOFTWARE === '1';
  // The backend registers once per process; later selections reuse it, under the same rule.
  if (loaded) return adapter?.software && !allowSoftware ? null : loaded;
  // An explicit request says why it cannot be met; auto-detection just moves on.
  const unavailable = (why: string, hint: string): null => {
    if (explicit) throw new XlstmError('BACKEND', `webgpu expected ${why}. Hint: ${hint}`);
    return null;
  };
  const missing = `npm i ${WEBGPU_PACKAGES.join(' ')} (optional dependencies: an install skips them where they cannot build)`;
  const mod = await importOptional<WebgpuModule>('webgpu');
  if (!mod) return unavailable('the optional package `webgpu` (Dawn for Node), but it is not installed', missing);
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return unavailable('the optional package @tensorflow/tfjs-backend-webgpu, but it is not installed', missing);
  }
  const { flags, featureLevel } = envFlags();
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create(flags);
  const found = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel });
  if (!found) {
    return unavailable(
      `a GPU adapter from Dawn${flags.length ? ` [${flags.join(' ')}]` : ''}, but got none`,
      'install a Vulkan loader and driver (libvulkan1 and the vendor ICD; VK_DRIVER_FILES can name the ICD), or on a CPU-only machine set XLSTM_WEBGPU_BACKEND=opengles with Mesa (libegl1, libegl-mesa0, libgles2, libgl1-mesa-dri)',
    );
  }
  const desc = describe(found, featureLevel, flags);
  if (desc.software && !allowSoftware) return null;
  patchRequestDevice(mod.globals, found);
  // tfjs asks navigator.gpu for an adapter itself: hand it the one described here.
  const shim = {
    requestAdapter: async () => found,
    getPreferredCanvasFormat: () => 'bgra8unorm',
    get wgslLanguageFeatures() {
      return (gpu as unknown as { wgslLanguageFeatures?: unknown }).wgslLanguageFeatures;
    },
  };
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: shim, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu: shim }, configurable: true, writable: true });
  if (!(await importOptional('@tensorflow/tfjs-backend-webgpu'))) return null;
  adapter = desc;
  configureGpuKernels({ softwareAdapter: desc.software });
  const batch = Number(process.env.XLSTM_WEBGPU_SUBMIT_BATCH ?? '');
  // tfjs submits its command buffer every 15 dispatches; a step of thousands of small kernels
  // spends part of its host time in those submits.
  if (Number.isInteger(batch) && batch > 0) tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', batch);
  loaded = `Dawn ${flags.length ? `[${flags.join(' ')}] ` : ''}on ${webgpuAdapterSummary()}`;
  return loaded;
}
