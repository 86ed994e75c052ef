/**
 * runProgress's payload: the queue publishes typed updates per run id (train/run-events.ts); each
 * becomes one flat RunProgress event, its kind saying which fields are set.
 */
import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

import type { RunUpdate } from '../../../train/index.ts';
import { RunErrorType, RunPhase } from './run.type.ts';

export const RunProgressKind = {
  PHASE: 'PHASE',
  START: 'START',
  STEP: 'STEP',
  EVAL: 'EVAL',
  CHECKPOINT: 'CHECKPOINT',
  DONE: 'DONE',
} as const;
export type RunProgressKind = (typeof RunProgressKind)[keyof typeof RunProgressKind];

registerEnumType(RunProgressKind, {
  name: 'RunProgressKind',
  description: 'What a RunProgress event reports.',
  valuesConfig: {
    PHASE: { description: 'The run entered `phase` (the first event is always the current phase).' },
    START: { description: 'Training began (or resumed at `step`): maxSteps is set.' },
    STEP: { description: 'An update: step, loss, lr, gradNorm, tokensPerSecond, tokensSeen.' },
    EVAL: { description: 'An evaluation: valLoss (null without validation data) and samples.' },
    CHECKPOINT: { description: 'A checkpoint was written: checkpointId, checkpointReason, removedCheckpoints.' },
    DONE: { description: 'The loop ended (completed or cancelled); a PHASE event follows.' },
  },
});

@ObjectType('RunProgress', { description: 'One live event of a run.' })
export class RunProgressType {
  @Field(() => ID)
  runId!: string;

  @Field(() => RunProgressKind)
  kind!: RunProgressKind;

  @Field(() => RunPhase)
  phase!: RunPhase;

  @Field(() => Int, { nullable: true })
  step!: number | null;

  @Field(() => Int, { nullable: true })
  maxSteps!: number | null;

  @Field(() => Float, { nullable: true })
  loss!: number | null;

  @Field(() => Float, { nullable: true })
  lr!: number | null;

  @Field(() => Float, { nullable: true })
  gradNorm!: number | null;

  @Field(() => Float, { nullable: true })
  tokensPerSecond!: number | null;

  @Field(() => Float, { nullable: true })
  tokensSeen!: number | null;

  @Field(() => Float, { nullable: true })
  valLoss!: number | null;

  @Field(() => [String], { nullable: true })
  samples!: string[] | null;

  @Field(() => ID, { nullable: true })
  checkpointId!: string | null;

  @Field(() => String, { nullable: true, description: 'last (resumable latest state) or best (ranked by valLoss).' })
  checkpointReason!: string | null;

  @Field(() => [ID], { nullable: true, description: 'Best-k checkpoints that dropped out of the ranking and were deleted.' })
  removedCheckpoints!: string[] | null;

  @Field(() => RunErrorType, { nullable: true })
  error!: RunErrorType | null;
}

export function toRunProgress(u: RunUpdate): RunProgressType {
  const out = Object.assign(new RunProgressType(), {
    runId: u.runId,
    kind: RunProgressKind.PHASE as RunProgressKind,
    phase: u.phase,
    step: null,
    maxSteps: null,
    loss: null,
    lr: null,
    gradNorm: null,
    tokensPerSecond: null,
    tokensSeen: null,
    valLoss: null,
    samples: null,
    checkpointId: null,
    checkpointReason: null,
    removedCheckpoints: null,
    error: u.error ? Object.assign(new RunErrorType(), u.error) : null,
  });
  const e = u.event;
  if (e === null) return out;
  switch (e.kind) {
    case 'start':
      return Object.assign(out, { kind: RunProgressKind.START, step: e.step, maxSteps: e.maxSteps });
    case 'step':
      return Object.assign(out, {
        kind: RunProgressKind.STEP,
        step: e.step,
        maxSteps: e.maxSteps,
        loss: e.loss,
        lr: e.lr,
        gradNorm: e.gradNorm,
        tokensPerSecond: e.tokensPerSecond,
        tokensSeen: e.tokensSeen,
      });
    case 'eval':
      return Object.assign(out, { kind: RunProgressKind.EVAL, step: e.step, valLoss: e.valLoss, samples: [...e.samples] });
    case 'checkpoint':
      return Object.assign(out, {
        kind: RunProgressKind.CHECKPOINT,
        step: e.step,
        tokensSeen: e.tokensSeen,
        valLoss: e.valLoss,
        checkpointId: e.id,
        checkpointReason: e.reason,
        removedCheckpoints: [...e.removed],
      });
    case 'done':
      return Object.assign(out, { kind: RunProgressKind.DONE, step: e.step });
  }
}
