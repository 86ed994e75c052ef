/** configs and config(name): the YAML files under config/, validated. */
import 'reflect-metadata';
import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';

import type { ApiContext } from '../context.ts';
import type { ConfigEntry } from './config.source.ts';
import { ConfigType } from './config.type.ts';

@Resolver()
export class ConfigResolver {
  @Query(() => [ConfigType], { description: 'Every config file, valid or not.' })
  async configs(@Ctx() ctx: ApiContext): Promise<ConfigType[]> {
    return (await ctx.configs.list()).map(toType);
  }

  @Query(() => ConfigType, { nullable: true, description: 'One config by name (llm for config/llm.yaml); null when absent.' })
  async config(@Arg('name', () => ID) name: string, @Ctx() ctx: ApiContext): Promise<ConfigType | null> {
    const entry = await ctx.configs.get(name);
    return entry && toType(entry);
  }
}

function toType(e: ConfigEntry): ConfigType {
  return Object.assign(new ConfigType(), {
    name: e.name,
    path: e.path,
    yaml: e.yaml,
    valid: e.errors.length === 0,
    values: e.values,
    errors: [...e.errors],
  });
}
