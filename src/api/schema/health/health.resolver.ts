/** health: backend, version, uptime and queue depth. */
import 'reflect-metadata';
import { Ctx, Query, Resolver } from 'type-graphql';

import type { ApiContext } from '../context.ts';
import { HealthType } from './health.type.ts';

@Resolver()
export class HealthResolver {
  @Query(() => HealthType)
  health(@Ctx() ctx: ApiContext): HealthType {
    const { active, queued } = ctx.serving.registry.counts();
    return Object.assign(new HealthType(), {
      phase: ctx.server.phase(),
      backend: ctx.server.backend(),
      backendDetail: ctx.server.backendDetail(),
      version: ctx.server.version,
      uptimeSeconds: ctx.server.uptimeSeconds(),
      activeSequences: active,
      queuedSequences: queued,
      modelsLoaded: ctx.serving.registry.list().filter((m) => m.phase === 'ready').length,
    });
  }
}
