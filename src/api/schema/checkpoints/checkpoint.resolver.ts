/** checkpoints (paged), checkpoint(id) and deleteCheckpoint: thin calls into serve/'s catalogue. */
import 'reflect-metadata';
import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';

import { pageOf } from '../../../serve/index.ts';
import type { ApiContext } from '../context.ts';
import { CheckpointPageType, CheckpointsArgs } from './checkpoints.args.ts';
import { CheckpointType, toCheckpointType } from './checkpoint.type.ts';

@Resolver(() => CheckpointType)
export class CheckpointResolver {
  @Query(() => CheckpointPageType, { description: 'Checkpoints under the checkpoints root, newest first.' })
  async checkpoints(@Args(() => CheckpointsArgs) args: CheckpointsArgs, @Ctx() ctx: ApiContext): Promise<CheckpointPageType> {
    const all = await ctx.serving.catalogue.list(args.filter ?? {});
    const page = pageOf(all, args.first, args.after);
    return Object.assign(new CheckpointPageType(), { ...page, items: page.items.map(toCheckpointType) });
  }

  @Query(() => CheckpointType, { nullable: true, description: 'One checkpoint; null when there is none by that id.' })
  async checkpoint(@Arg('id', () => ID) id: string, @Ctx() ctx: ApiContext): Promise<CheckpointType | null> {
    const info = await ctx.serving.catalogue.info(id);
    return info && toCheckpointType(info);
  }

  @FieldResolver(() => Boolean, { description: 'Whether a model of this checkpoint is loaded for serving.' })
  loaded(@Root() checkpoint: CheckpointType, @Ctx() ctx: ApiContext): boolean {
    return ctx.serving.registry.isLoaded(checkpoint.id);
  }

  @Mutation(() => Boolean, { description: 'Deletes a checkpoint folder. The default checkpoint and loaded ones are refused.' })
  async deleteCheckpoint(@Arg('id', () => ID) id: string, @Ctx() ctx: ApiContext): Promise<boolean> {
    await ctx.serving.deleteCheckpoint(id);
    return true;
  }
}
