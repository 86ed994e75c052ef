/** startTraining's input: a config (a name under config/ or inline YAML), overrides and devices. */
import 'reflect-metadata';
import { IsOptional, Max, MaxLength, Min } from 'class-validator';
import { Field, InputType, Int } from 'type-graphql';

import { expected } from '../validation.ts';

/** Characters of inline YAML accepted. */
export const MAX_CONFIG_CHARS = 100_000;
/** Data-parallel workers one run may ask for. */
export const MAX_DEVICES = 64;

@InputType({ description: 'What to train: a config plus overrides. Bad keys or values fail at once and start nothing.' })
export class StartTrainingInput {
  @Field(() => String, { nullable: true, description: 'A config name (see the configs query) or inline YAML; config/llm.yaml defaults when left out.' })
  @IsOptional()
  @MaxLength(MAX_CONFIG_CHARS, { message: expected('input.', `at most ${MAX_CONFIG_CHARS} characters`, 'put a long config in a file under config/ and pass its name.') })
  config?: string | null;

  @Field(() => [String], { nullable: true, description: 'Dotted-key overrides applied after the config, e.g. ["trainer.max_steps=100"].' })
  overrides?: string[] | null;

  @Field(() => Int, { nullable: true, description: 'trainer.devices: data-parallel worker processes.' })
  @IsOptional()
  @Min(1, { message: expected('input.', `an integer from 1 to ${MAX_DEVICES}`, 'use 1 to train in one process.') })
  @Max(MAX_DEVICES, { message: expected('input.', `an integer from 1 to ${MAX_DEVICES}`, 'ask for fewer workers.') })
  devices?: number | null;
}
