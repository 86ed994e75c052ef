/** Paging and filtering arguments of the checkpoints query. */
import 'reflect-metadata';
import { IsOptional, Max, MaxLength, Min } from 'class-validator';
import { ArgsType, Field, ID, InputType, Int, ObjectType } from 'type-graphql';

import { expected } from '../validation.ts';
import { CheckpointType } from './checkpoint.type.ts';

export const MAX_PAGE = 100;

@InputType({ description: 'Every given condition must hold.' })
export class CheckpointFilterInput {
  @Field(() => String, { nullable: true, description: 'Part of the id, case-insensitive.' })
  @IsOptional()
  @MaxLength(128, { message: expected('filter.', 'at most 128 characters', 'shorten it.') })
  idContains?: string | null;

  @Field(() => ID, { nullable: true, description: 'Only checkpoints trained from this one.' })
  parent?: string | null;
}

@ArgsType()
export class CheckpointsArgs {
  @Field(() => Int, { defaultValue: 20, description: `Page size, 1 to ${MAX_PAGE}.` })
  @Min(1, { message: expected('', `an integer from 1 to ${MAX_PAGE}`, 'ask for a positive page size.') })
  @Max(MAX_PAGE, { message: expected('', `an integer from 1 to ${MAX_PAGE}`, 'page through with after.') })
  first!: number;

  @Field(() => String, { nullable: true, description: "The previous page's endCursor." })
  after?: string | null;

  @Field(() => CheckpointFilterInput, { nullable: true })
  filter?: CheckpointFilterInput | null;
}

@ObjectType('CheckpointPage', { description: 'Checkpoints, newest first.' })
export class CheckpointPageType {
  @Field(() => [CheckpointType])
  items!: CheckpointType[];

  @Field(() => Int, { description: 'Matches over all pages.' })
  totalCount!: number;

  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as after for the next page.' })
  endCursor!: string | null;
}
