/** A training or fine-tuning run as the API shows it: lifecycle, config, metric history and checkpoints. */
import 'reflect-metadata';
import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

import type { MetricRecord, RunRecord } from '../../../store/index.ts';

export const RunPhase = {
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  CANCELLING: 'CANCELLING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
} as const;
export type RunPhase = (typeof RunPhase)[keyof typeof RunPhase];

registerEnumType(RunPhase, {
  name: 'RunPhase',
  description: 'Where a run is in its lifecycle.',
  valuesConfig: {
    QUEUED: { description: 'Waiting for the trainer (one run at a time by default).' },
    RUNNING: { description: 'Training; a server restart resumes it from its last checkpoint.' },
    CANCELLING: { description: 'cancelRun was called; it stops after the current step.' },
    SUCCEEDED: { description: 'Reached its last step.' },
    FAILED: { description: 'Stopped by an error (see error); its last checkpoint is intact.' },
    CANCELLED: { description: 'Stopped by cancelRun; its last checkpoint is kept.' },
  },
});

export const RunKind = { TRAIN: 'TRAIN', FINETUNE: 'FINETUNE' } as const;
export type RunKind = (typeof RunKind)[keyof typeof RunKind];
registerEnumType(RunKind, { name: 'RunKind', description: 'TRAIN starts from a fresh initialisation, FINETUNE from a checkpoint.' });

@ObjectType('RunError', { description: 'Why a run failed.' })
export class RunErrorType {
  @Field(() => String, { description: 'The platform error code (INVALID_CONFIG, BACKEND, ...) or INTERNAL.' })
  code!: string;

  @Field(() => String)
  message!: string;
}

@ObjectType('MetricPoint', { description: 'One point of a run history; fields a step did not measure are null.' })
export class MetricPointType {
  @Field(() => Int)
  step!: number;

  @Field(() => GraphQLISODateTime)
  at!: Date;

  @Field(() => Float, { nullable: true })
  loss!: number | null;

  @Field(() => Float, { nullable: true, description: 'Learning rate of the update.' })
  lr!: number | null;

  @Field(() => Float, { nullable: true })
  tokensPerSecond!: number | null;

  @Field(() => Float, { nullable: true, description: 'Global gradient norm before clipping.' })
  gradNorm!: number | null;

  @Field(() => Float, { nullable: true, description: 'Mean loss over the validation data (at evaluations).' })
  valLoss!: number | null;

  @Field(() => [String], { nullable: true, description: 'Sample generations of the inference prompts (at evaluations).' })
  samples!: string[] | null;
}

@ObjectType('Run', { description: 'A training or fine-tuning run.' })
export class RunType {
  @Field(() => ID)
  id!: string;

  @Field(() => RunKind)
  kind!: RunKind;

  @Field(() => RunPhase)
  phase!: RunPhase;

  @Field(() => Int, { description: 'Optimizer updates done.' })
  step!: number;

  @Field(() => Int, { nullable: true, description: 'trainer.max_steps (null when max_epochs decides).' })
  maxSteps!: number | null;

  @Field(() => Float, { description: 'seed_everything.' })
  seed!: number;

  @Field(() => ID, { nullable: true, description: 'FINETUNE: the checkpoint it started from.' })
  baseCheckpoint!: string | null;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true })
  startedAt!: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true })
  finishedAt!: Date | null;

  @Field(() => RunErrorType, { nullable: true })
  error!: RunErrorType | null;

  @Field(() => String, { description: 'The resolved config (every section) and the request, as JSON.' })
  config!: string;
}

@ObjectType('RunPage', { description: 'Runs, newest first.' })
export class RunPageType {
  @Field(() => [RunType])
  items!: RunType[];

  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as after for the next page.' })
  endCursor!: string | null;
}

export function toRunType(r: RunRecord): RunType {
  const stored = r.config as { resolved?: { trainer?: { max_steps?: number | null } } };
  return Object.assign(new RunType(), {
    id: r.id,
    kind: r.kind,
    phase: r.phase,
    step: r.phase === 'QUEUED' ? 0 : r.step,
    maxSteps: stored.resolved?.trainer?.max_steps ?? null,
    seed: r.seed,
    baseCheckpoint: r.baseCheckpointId,
    createdAt: new Date(r.createdAt),
    startedAt: r.phase !== 'QUEUED' && r.startedAt ? new Date(r.startedAt) : null,
    finishedAt: 'finishedAt' in r ? new Date(r.finishedAt) : null,
    error: r.phase === 'FAILED' ? Object.assign(new RunErrorType(), r.error) : null,
    config: JSON.stringify(r.config),
  });
}

export function toMetricPoint(m: MetricRecord): MetricPointType {
  return Object.assign(new MetricPointType(), {
    step: m.step,
    at: new Date(m.at),
    loss: m.loss ?? null,
    lr: m.lr ?? null,
    tokensPerSecond: m.tokensPerSecond ?? null,
    gradNorm: m.gradNorm ?? null,
    valLoss: m.valLoss ?? null,
    samples: m.samples ? [...m.samples] : null,
  });
}
