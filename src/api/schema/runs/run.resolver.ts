/** runs, run(id), startTraining, startFineTune, cancelRun and runProgress: thin calls into train/'s run queue. */
import 'reflect-metadata';
import { Arg, Args, ArgsType, Ctx, Field, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { IsOptional, Max, Min } from 'class-validator';

import type { RunQueue, RunUpdate } from '../../../train/index.ts';
import { XlstmError } from '../../../util/errors.ts';
import type { ApiContext } from '../context.ts';
import { expected, skipValidation } from '../validation.ts';
import { toRunProgress, RunProgressType } from './run-topics.ts';
import { MetricPointType, RunPageType, RunPhase, RunType, toMetricPoint, toRunType } from './run.type.ts';
import { StartFineTuneInput } from './start-fine-tune.input.ts';
import { StartTrainingInput } from './start-training.input.ts';

/** The run queue, where the server was started with one. */
export interface RunsContext {
  readonly runs?: RunQueue;
}

function runsOf(ctx: ApiContext & RunsContext): RunQueue {
  if (!ctx.runs) {
    throw new XlstmError('RUN_STATE', 'training expected a run queue on this server, but none was started. Hint: start the server with `xlstm serve` (training is on by default).');
  }
  return ctx.runs;
}

const MAX_PAGE = 100;

@ArgsType()
export class RunsArgs {
  @Field(() => RunPhase, { nullable: true, description: 'Only runs in this phase.' })
  phase?: RunPhase | null;

  @Field(() => Int, { defaultValue: 20, description: `Page size, 1 to ${MAX_PAGE}.` })
  @Min(1, { message: expected('', `an integer from 1 to ${MAX_PAGE}`, 'ask for a positive page size.') })
  @Max(MAX_PAGE, { message: expected('', `an integer from 1 to ${MAX_PAGE}`, 'page through with after.') })
  first!: number;

  @Field(() => String, { nullable: true, description: "The previous page's endCursor." })
  after?: string | null;
}

@ArgsType()
export class MetricsArgs {
  @Field(() => Int, { nullable: true, description: 'Only points after this step (to catch up on a live run).' })
  @IsOptional()
  @Min(-1, { message: expected('', 'an integer >= -1', 'pass the last step you have.') })
  afterStep?: number | null;
}

@Resolver(() => RunType)
export class RunResolver {
  @Query(() => RunPageType, { description: 'Training and fine-tuning runs, newest first.' })
  runs(@Args(() => RunsArgs) args: RunsArgs, @Ctx() ctx: ApiContext & RunsContext): RunPageType {
    const page = runsOf(ctx).list({ phase: args.phase ?? undefined, first: args.first, after: args.after });
    return Object.assign(new RunPageType(), { ...page, items: page.items.map(toRunType) });
  }

  @Query(() => RunType, { nullable: true, description: 'One run; null when there is none by that id.' })
  run(@Arg('id', () => ID) id: string, @Ctx() ctx: ApiContext & RunsContext): RunType | null {
    const record = runsOf(ctx).get(id);
    return record && toRunType(record);
  }

  @FieldResolver(() => [MetricPointType], { description: 'The metric history in step order (every log_every_n_steps, and every evaluation).' })
  metrics(@Root() run: RunType, @Args(() => MetricsArgs) args: MetricsArgs, @Ctx() ctx: ApiContext & RunsContext): MetricPointType[] {
    const all = runsOf(ctx).metrics(run.id);
    return all.filter((m) => m.step > (args.afterStep ?? -1)).map(toMetricPoint);
  }

  @FieldResolver(() => [ID], { description: 'Checkpoints this run wrote that still exist, newest first (see the checkpoints query).' })
  checkpoints(@Root() run: RunType, @Ctx() ctx: ApiContext & RunsContext): string[] {
    return runsOf(ctx).checkpointsOf(run.id).map((c) => c.id);
  }

  @Mutation(() => RunType, {
    description:
      "Queues a training run. Its config is checked in full first: a bad one starts nothing. Checkpoints go to the server's checkpoints folder " +
      '(trainer.checkpoint.dir applies to `xlstm train` only) as <run id>-last and <run id>-step<N>.',
  })
  async startTraining(@Arg('input', () => StartTrainingInput) input: StartTrainingInput, @Ctx() ctx: ApiContext & RunsContext): Promise<RunType> {
    return toRunType(await runsOf(ctx).startTraining(input));
  }

  @Mutation(() => RunType, { description: 'Queues a fine-tune of a checkpoint. Unknown checkpoints, missing data and bad values fail at once.' })
  async startFineTune(@Arg('input', () => StartFineTuneInput) input: StartFineTuneInput, @Ctx() ctx: ApiContext & RunsContext): Promise<RunType> {
    return toRunType(await runsOf(ctx).startFineTune(input));
  }

  @Mutation(() => RunType, { description: 'Cancels a run: a queued one at once, a running one after its current step (its last checkpoint is kept).' })
  cancelRun(@Arg('id', () => ID) id: string, @Ctx() ctx: ApiContext & RunsContext): RunType {
    return toRunType(runsOf(ctx).cancel(id));
  }

  @Subscription(() => RunProgressType, {
    description: "Streams one run's events: its current phase first, then steps, evaluations, checkpoints and phase changes; completes when the run ends.",
    subscribe: ({ args, context }) => runsOf(context as ApiContext & RunsContext).progress(String(args.id)),
  })
  runProgress(@Root() update: RunUpdate, @Arg('id', () => ID, { validateFn: skipValidation }) _id: string): RunProgressType {
    return toRunProgress(update);
  }
}
