/** The generate subscription's input, with its fixed bounds as class-validator decorators. */
import 'reflect-metadata';
import { ArrayMinSize, IsOptional, IsPositive, Max, MaxLength, Min, MinLength } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';

import { expected, expectedEach } from '../validation.ts';

/** Characters in one prompt; the token limit (a server setting) is checked after tokenizing. */
export const MAX_PROMPT_CHARS = 100_000;

const empty = (s: unknown): boolean => s === '';

@InputType({ description: 'Prompts to continue and how to sample. Limits that depend on the server are reported in their errors.' })
export class GenerateInput {
  @Field(() => [String], { description: 'One or more prompts; each is continued on its own, with its own tokens only.' })
  @ArrayMinSize(1, { message: expected('input.', 'at least one prompt', 'pass prompts: ["Once upon a time"].') })
  @MinLength(1, {
    each: true,
    message: expectedEach('input.', 'a non-empty string', 'remove empty prompts; the model needs at least one token.', empty),
  })
  @MaxLength(MAX_PROMPT_CHARS, {
    each: true,
    message: expectedEach('input.', `at most ${MAX_PROMPT_CHARS} characters`, 'shorten the prompt.', (p) => typeof p === 'string' && p.length > MAX_PROMPT_CHARS),
  })
  prompts!: string[];

  @Field(() => ID, { nullable: true, description: 'A loaded checkpoint; the default one when left out.' })
  checkpoint?: string | null;

  @Field(() => Int, { nullable: true, description: 'Tokens to generate per prompt (the server sets the upper limit).' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'ask for at least one token.') })
  maxTokens?: number | null;

  @Field(() => Float, { nullable: true, description: '0 is greedy decoding; 1 (the default) samples the model as it is.' })
  @IsOptional()
  @Min(0, { message: expected('input.', 'a number >= 0', 'use 0 for greedy decoding or a positive value to sample.') })
  temperature?: number | null;

  @Field(() => Int, { nullable: true, description: 'Sample among the k most likely tokens; leave out for no limit.' })
  @IsOptional()
  @Min(1, { message: expected('input.', 'an integer >= 1', 'leave topK out to sample from the whole vocabulary.') })
  topK?: number | null;

  @Field(() => Float, { nullable: true, description: 'Nucleus sampling mass in (0, 1]; 1 (the default) is off.' })
  @IsOptional()
  @IsPositive({ message: expected('input.', 'a number in (0, 1]', 'use 1 to switch nucleus sampling off.') })
  @Max(1, { message: expected('input.', 'a number in (0, 1]', 'use 1 to switch nucleus sampling off.') })
  topP?: number | null;

  @Field(() => Int, { nullable: true, description: 'Same seed, same tokens; the server picks one when left out and reports it.' })
  seed?: number | null;

  @Field(() => [String], { nullable: true, description: 'Generation of a prompt stops once its text contains one of these.' })
  @IsOptional()
  @MinLength(1, { each: true, message: expectedEach('input.', 'a non-empty string', 'remove empty stop strings.', empty) })
  stop?: string[] | null;
}
