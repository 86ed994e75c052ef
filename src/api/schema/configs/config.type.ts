/** A config file as the API shows it: raw YAML, parsed values and validation errors. */
import 'reflect-metadata';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, ObjectType } from 'type-graphql';

@ObjectType('Config', { description: 'A YAML config under config/.' })
export class ConfigType {
  @Field(() => ID, { description: 'The file name without .yaml.' })
  name!: string;

  @Field(() => String)
  path!: string;

  @Field(() => String, { description: 'The file as written.' })
  yaml!: string;

  @Field(() => Boolean)
  valid!: boolean;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'The validated config with defaults filled in; null when invalid.' })
  values!: Record<string, unknown> | null;

  @Field(() => [String], { description: 'Validation errors, each naming the key and line.' })
  errors!: string[];
}
