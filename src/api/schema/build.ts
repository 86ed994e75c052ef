/** Builds the GraphQL schema from the type-graphql classes; the server and `xlstm schema` both use it. */
import 'reflect-metadata';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type PubSub } from 'type-graphql';

import { CheckpointResolver } from './checkpoints/checkpoint.resolver.ts';
import { ConfigResolver } from './configs/config.resolver.ts';
import { GenerateResolver } from './generate/generate.resolver.ts';
import { HealthResolver } from './health/health.resolver.ts';
import { ModelResolver } from './models/model.resolver.ts';
import { RunResolver } from './runs/run.resolver.ts';
import { validateArgument } from './validation.ts';

export const RESOLVERS = [CheckpointResolver, ConfigResolver, GenerateResolver, HealthResolver, ModelResolver, RunResolver] as const;

let built: Promise<GraphQLSchema> | null = null;

/**
 * type-graphql insists on a PubSub once any subscription exists, even when every subscription streams its own
 * iterable (`subscribe`), as generate does. Topic-based subscriptions would need a real one here.
 */
const NO_TOPICS: PubSub = {
  publish() {},
  subscribe(topic) {
    throw new Error(`topic subscriptions are not wired (asked for ${String(topic)}); give buildSchema a real PubSub.`);
  },
};

/** The schema; built once per process, since type-graphql's metadata is global anyway. */
export function buildApiSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({ resolvers: [...RESOLVERS], validateFn: validateArgument, pubSub: NO_TOPICS });
  return built;
}

const HEADER = '# Generated from the type-graphql classes in src/api/schema by `xlstm schema`. Do not edit.\n\n';

/** The SDL checked in as schema/schema.graphql: sorted, so the file changes only when the schema does. */
export function printApiSchema(schema: GraphQLSchema): string {
  return `${HEADER}${printSchema(lexicographicSortSchema(schema))}\n`;
}
