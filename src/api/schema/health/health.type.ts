/** The health query's answer: what runs, for how long, and how busy it is. */
import 'reflect-metadata';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

import { SERVER_PHASES, type ServerPhaseName } from '../context.ts';

export const ServerPhase = Object.fromEntries(SERVER_PHASES.map((p) => [p.toUpperCase(), p])) as {
  [K in ServerPhaseName as Uppercase<K>]: K;
};
registerEnumType(ServerPhase, { name: 'ServerPhase', description: 'The server lifecycle: starting, serving, draining, stopped.' });

@ObjectType('Health')
export class HealthType {
  @Field(() => ServerPhase)
  phase!: ServerPhaseName;

  @Field(() => String, { description: 'The tfjs backend in use (tensorflow, webgpu, wasm or cpu).' })
  backend!: string;

  @Field(() => String, { description: 'What runs under the backend: the GPU adapter on webgpu, the native package, or the wasm features.' })
  backendDetail!: string;

  @Field(() => String, { description: "The platform's version (package.json)." })
  version!: string;

  @Field(() => Float)
  uptimeSeconds!: number;

  @Field(() => Int, { description: 'Sequences in running batches, over all models.' })
  activeSequences!: number;

  @Field(() => Int, { description: 'Sequences waiting for a batch row, over all models.' })
  queuedSequences!: number;

  @Field(() => Int)
  modelsLoaded!: number;
}
