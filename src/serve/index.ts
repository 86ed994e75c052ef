/** The serve layer's public API: checkpoints on disk, loaded models, the batched scheduler and generation. */
export { Serving, type ServingOptions } from './serving.ts';
export { CheckpointCatalogue, CHECKPOINT_ID, pageOf, DEFAULT_FILE, type CheckpointInfo, type CheckpointFilter, type Page } from './checkpoints.ts';
export { ModelRegistry, type ModelSummary, type ModelPhase, type ReadyModel, type ServedModel } from './registry.ts';
export { Scheduler, type SequenceSpec, type SequenceHandle, type SequenceEnd, type SchedulerOptions } from './scheduler.ts';
export {
  startGeneration,
  encodePrompts,
  type GenerateEvent,
  type TokenEvent,
  type FinishEvent,
  type ErrorEvent,
  type FinishReason,
  type GenerateStream,
  type GenerationTarget,
} from './generate.ts';
export { resolveRequest, promptRng, graphqlLabel, DEFAULT_TEMPERATURE, type GenerateRequest, type ResolvedRequest, type Sampling, type FieldLabel } from './request.ts';
export { DEFAULT_LIMITS, resolveLimits, type ServeLimits } from './limits.ts';
export { decodeThreadsOn, resolveDecodeThreads } from './decode-threads.ts';
export { DecodePool, type DecodePoolOptions } from './decode-pool.ts';
export { InProcessDecoder } from './in-process-decoder.ts';
export type { Decoder, RowId, AdmitRequest, StepInput, Sampled, Admitted } from './decoder.ts';
export { NOOP_OBSERVER, type ServeObserver } from './observer.ts';
export { Channel } from './channel.ts';
export { StopMatcher } from './stop-matcher.ts';
