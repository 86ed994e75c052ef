/** startFineTune's input: a base checkpoint, a dataset and the usual hyper-parameters, each bounded. */
import 'reflect-metadata';
import { IsOptional, IsPositive, Max, Min, MinLength } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';

import { expected } from '../validation.ts';
import { MAX_DEVICES } from './start-training.input.ts';

@InputType({ description: "Continue training a checkpoint on a dataset, with the checkpoint's architecture and tokenizer." })
export class StartFineTuneInput {
  @Field(() => ID, { description: 'The checkpoint to start from (see the checkpoints query).' })
  @MinLength(1, { message: expected('input.', 'a checkpoint id', 'list ids with the checkpoints query.') })
  checkpoint!: string;

  @Field(() => String, { description: 'A .txt or .jsonl file, or a folder with train (and optional valid, test) files, on the server.' })
  @MinLength(1, { message: expected('input.', 'a path on the server', 'pass a file or folder of text.') })
  dataset!: string;

  @Field(() => Int, { nullable: true, description: 'Optimizer steps (default 100).' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'train for at least one step.') })
  steps?: number | null;

  @Field(() => Float, { nullable: true, description: 'Peak learning rate (default 1e-4).' })
  @IsOptional()
  @IsPositive({ message: expected('input.', 'a number > 0', 'fine-tunes usually use 1e-5 to 1e-3.') })
  learningRate?: number | null;

  @Field(() => Int, { nullable: true, description: 'Rows per micro-batch over all devices (default 8).' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'use at least one row per batch.') })
  batchSize?: number | null;

  @Field(() => Int, { nullable: true, description: 'Data-parallel worker processes (default 1).' })
  @IsOptional()
  @Min(1, { message: expected('input.', `an integer from 1 to ${MAX_DEVICES}`, 'use 1 to train in one process.') })
  @Max(MAX_DEVICES, { message: expected('input.', `an integer from 1 to ${MAX_DEVICES}`, 'ask for fewer workers.') })
  devices?: number | null;

  @Field(() => Int, { nullable: true, description: 'Tokens per row (default 128).' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'use rows of at least one token.') })
  maxLength?: number | null;

  @Field(() => Int, { nullable: true, description: 'Linear warm-up steps (default: a tenth of steps).' })
  @IsOptional()
  @Min(0, { message: expected('input.', 'an integer >= 0', 'use 0 for no warm-up.') })
  warmupSteps?: number | null;

  @Field(() => Int, { nullable: true, description: 'Steps between evaluations (default: a fifth of steps).' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'evaluate at most once per step.') })
  valCheckInterval?: number | null;

  @Field(() => Float, { nullable: true, description: 'seed_everything (default 0).' })
  @IsOptional()
  @Min(0, { message: expected('input.', 'an integer from 0 to 4294967295', 'pick a non-negative seed.') })
  @Max(4294967295, { message: expected('input.', 'an integer from 0 to 4294967295', 'pick a smaller seed.') })
  seed?: number | null;

  @Field(() => [String], { nullable: true, description: 'Other dotted-key overrides, e.g. ["trainer.grad_clip=0.5"]; model keys are refused.' })
  overrides?: string[] | null;
}
