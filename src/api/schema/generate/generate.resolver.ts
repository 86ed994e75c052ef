/** The generate subscription: validates its input, then streams the serve layer's events. */
import 'reflect-metadata';
import { Arg, Resolver, Root, Subscription } from 'type-graphql';

import type { GenerateEvent as ServeEvent } from '../../../serve/index.ts';
import type { ApiContext } from '../context.ts';
import { publicCode } from '../errors.ts';
import { skipValidation, validateInput } from '../validation.ts';
import { GenerateEvent } from './generate.event.ts';
import { GenerateInput } from './generate.input.ts';

@Resolver()
export class GenerateResolver {
  @Subscription(() => GenerateEvent, {
    description:
      'Streams a TokenEvent per generated token of every prompt, then a FinishEvent per prompt; completes after the last one. ' +
      'Prompts share batched model steps with every other client; unsubscribing cancels within one step.',
    // A `subscribe` function receives the raw arguments, so the input is converted and validated here, once.
    subscribe: async ({ args, context }) => {
      const input = Object.assign(new GenerateInput(), args.input as object);
      validateInput(input);
      return (context as ApiContext).serving.generate(input);
    },
  })
  generate(
    @Root() event: ServeEvent,
    // Checked once in subscribe above; the per-event resolver must not redo it for every token.
    @Arg('input', () => GenerateInput, { validateFn: skipValidation }) _input: GenerateInput,
  ): object {
    return event.kind === 'error' ? { ...event, code: publicCode(event.code) } : event;
  }
}
