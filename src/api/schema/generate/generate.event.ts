/** The events of a generate stream: one per token per prompt, one finish per prompt, and late errors. */
import 'reflect-metadata';
import { createUnionType, Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

import type { GenerateEvent as ServeEvent } from '../../../serve/index.ts';

export const FinishReason = {
  EOS: 'EOS',
  LENGTH: 'LENGTH',
  STOP: 'STOP',
  CANCELLED: 'CANCELLED',
  ERROR: 'ERROR',
} as const;

registerEnumType(FinishReason, {
  name: 'FinishReason',
  description: 'Why a prompt stopped generating.',
  valuesConfig: {
    EOS: { description: 'The model produced the end-of-text token.' },
    LENGTH: { description: 'maxTokens were generated.' },
    STOP: { description: 'The text reached a stop string (its last token is cut right after it).' },
    CANCELLED: { description: 'The client unsubscribed, the model was unloaded, or the server is shutting down.' },
    ERROR: { description: 'Generation failed; an ErrorEvent came first.' },
  },
});

@ObjectType({ description: 'One generated token of one prompt, sent as soon as it exists.' })
export class TokenEvent {
  @Field(() => Int)
  promptIndex!: number;

  @Field(() => Int)
  tokenId!: number;

  @Field(() => String, { description: "The characters this token completes; '' while a character's bytes are split over tokens." })
  text!: string;

  @Field(() => Int, { description: "The token's place in its sequence, counting the prompt's tokens from 0." })
  position!: number;

  @Field(() => Float, { description: 'Natural-log probability of the token under the model (before temperature, top-k, top-p).' })
  logprob!: number;
}

@ObjectType({ description: 'The last event of one prompt.' })
export class FinishEvent {
  @Field(() => Int)
  promptIndex!: number;

  @Field(() => FinishReason)
  finishReason!: (typeof FinishReason)[keyof typeof FinishReason];

  @Field(() => Int)
  generatedTokens!: number;

  @Field(() => Int, { description: 'The seed the request ran with (given or picked by the server).' })
  seed!: number;
}

@ObjectType({ description: 'An error after the stream started; the prompt then finishes with ERROR.' })
export class ErrorEvent {
  @Field(() => Int)
  promptIndex!: number;

  @Field(() => String, { description: 'The same codes as errors[].extensions.code.' })
  code!: string;

  @Field(() => String)
  message!: string;
}

const TYPE_OF_KIND = { token: 'TokenEvent', finish: 'FinishEvent', error: 'ErrorEvent' } as const;

export const GenerateEvent = createUnionType({
  name: 'GenerateEvent',
  description: 'What a generate subscription streams.',
  types: () => [TokenEvent, FinishEvent, ErrorEvent] as const,
  resolveType: (value) => TYPE_OF_KIND[(value as unknown as ServeEvent).kind],
});
