import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { buildApiSchema, printApiSchema } from '../../../src/api/schema/index.ts';

describe('the GraphQL schema', () => {
  it('matches schema/schema.graphql (run `npm run schema` after changing src/api/schema)', async () => {
    const committed = readFileSync(new URL('../../../schema/schema.graphql', import.meta.url), 'utf8');
    expect(printApiSchema(await buildApiSchema())).toBe(committed);
  });

  it('streams generate as a union of token, finish and error events', async () => {
    const schema = await buildApiSchema();
    const field = schema.getSubscriptionType()?.getFields().generate;
    expect(String(field?.type)).toBe('GenerateEvent!');
    expect(String(field?.args.map((a) => `${a.name}: ${String(a.type)}`))).toBe('input: GenerateInput!');
  });
});
