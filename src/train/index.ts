/** The train layer's public surface: the run loop, its steps and optimiser, data-parallel workers and the run queue. */
export { AdamW, STEP_KEY, type AdamWOptions, type AdamWParam, type OptimizerState, type StepResult } from './adamw.ts';
export { makeSchedule, SCHEDULE_NAMES, type Schedule, type ScheduleName, type ScheduleOptions } from './schedule.ts';
export {
  addGradientSums,
  applyGradientSum,
  checkedLoss,
  countTargets,
  divergence,
  gradientSum,
  localStep,
  optimizerFor,
  trainableVariables,
  type GradientSum,
  type StepOutcome,
} from './step.ts';
export { LocalEngine, splitRows, type StepEngine } from './engine.ts';
export { WorkerPool, type StepPhases, type WorkerPlacement, type WorkerPoolOptions } from './workers.ts';
export { sampleGenerations, validationLoss } from './evaluate.ts';
export { lastId, stepId, readResumePoint, rankBest, type Ranked, type ResumePoint } from './run-checkpoints.ts';
export { plannedSteps, train, type TrainingRun } from './loop.ts';
export type { CheckpointEvent, DoneEvent, EvalEvent, ProgressEvent, StartEvent, StepEvent } from './progress.ts';
export type { RunConfig, TextCodec } from './run-config.ts';
export { RunQueue, type CheckpointRef, type ConfigResolver, type RunQueueOptions } from './runner.ts';
export { RunEvents, type RunUpdate } from './run-events.ts';
export { fineTuneOverrides, type FineTuneRequest, type TrainingRequest } from './requests.ts';
