/** models, loadModel and unloadModel: thin calls into serve/'s registry. */
import 'reflect-metadata';
import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';

import type { ApiContext } from '../context.ts';
import { ModelType, toModelType } from './model.type.ts';

@Resolver()
export class ModelResolver {
  @Query(() => [ModelType], { description: 'Models loaded (or loading) for serving.' })
  models(@Ctx() ctx: ApiContext): ModelType[] {
    return ctx.serving.registry.list().map((m) => toModelType(m, ctx.server.backend()));
  }

  @Mutation(() => ModelType, { description: 'Loads a checkpoint for serving (returns it at once when already loaded).' })
  async loadModel(@Arg('checkpoint', () => ID) checkpoint: string, @Ctx() ctx: ApiContext): Promise<ModelType> {
    return toModelType(await ctx.serving.registry.load(checkpoint), ctx.server.backend());
  }

  @Mutation(() => Boolean, { description: 'Unloads a model: its open streams finish with CANCELLED. False when it was not loaded.' })
  async unloadModel(@Arg('checkpoint', () => ID) checkpoint: string, @Ctx() ctx: ApiContext): Promise<boolean> {
    return ctx.serving.registry.unload(checkpoint);
  }
}
