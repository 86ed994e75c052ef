/** A model loaded for serving, as the API shows it. */
import 'reflect-metadata';
import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

import type { ModelSummary } from '../../../serve/index.ts';

export const ModelPhase = { LOADING: 'loading', READY: 'ready', UNLOADING: 'unloading', FAILED: 'failed' } as const;
registerEnumType(ModelPhase, { name: 'ModelPhase', description: 'Where a served model is in its lifecycle.' });

@ObjectType('Model', { description: 'A checkpoint loaded for serving, with its own batched scheduler.' })
export class ModelType {
  @Field(() => ID)
  checkpoint!: string;

  @Field(() => ModelPhase)
  phase!: (typeof ModelPhase)[keyof typeof ModelPhase];

  @Field(() => String, { description: 'The tfjs backend it runs on.' })
  backend!: string;

  @Field(() => Float, { nullable: true })
  parameterCount!: number | null;

  @Field(() => Int, { nullable: true, description: "Bytes of one sequence's recurrent state (constant: xLSTM has no KV cache)." })
  stateBytesPerSequence!: number | null;

  @Field(() => Int)
  activeSequences!: number;

  @Field(() => Int)
  queuedSequences!: number;

  @Field(() => Float, { description: 'Batched steps run since it was loaded; with decode threads, each thread steps its own sequences and each of its steps counts.' })
  stepsRun!: number;

  @Field(() => GraphQLISODateTime, { nullable: true })
  loadedAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'Why loading failed (phase failed).' })
  error!: string | null;
}

export function toModelType(m: ModelSummary, backend: string): ModelType {
  return Object.assign(new ModelType(), {
    checkpoint: m.id,
    phase: m.phase,
    backend,
    parameterCount: m.parameterCount,
    stateBytesPerSequence: m.stateBytesPerSequence,
    activeSequences: m.activeSequences,
    queuedSequences: m.queuedSequences,
    stepsRun: m.stepsRun,
    loadedAt: m.loadedAt,
    error: m.error,
  });
}
