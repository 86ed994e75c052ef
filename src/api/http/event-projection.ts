/**
 * Subscriptions without a full GraphQL execution per event. graphql's own `subscribe` runs `execute` for every
 * event: it re-coerces the operation's variables, builds an execution context and walks the selection through
 * resolvers, ~20-30 us of a token's budget. Here the operation is planned once per subscription (variables and
 * arguments coerced, the selection collected per runtime type), and each event costs one call of the root
 * field's resolver plus a projection of its result. Only shapes the plan fully understands take this path
 * (leaf fields of the root field's object or union members, aliases, fragments, no directives); anything else,
 * and any event the projection cannot produce exactly, goes through `execute` as before, so errors and nulls
 * come out as graphql words them. A test compares both paths on every event type and many selection shapes.
 */
import {
  createSourceEventStream,
  execute,
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isAbstractType,
  isLeafType,
  isNonNullType,
  isObjectType,
  Kind,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLAbstractType,
  type GraphQLField,
  type GraphQLLeafType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';

interface LeafField {
  readonly key: string;
  /** null for __typename. */
  readonly name: string | null;
  readonly type: GraphQLLeafType | null;
  readonly nonNull: boolean;
}

interface Plan {
  readonly key: string;
  readonly field: GraphQLField<unknown, unknown>;
  readonly args: Record<string, unknown>;
  readonly info: GraphQLResolveInfo;
  readonly abstract: GraphQLAbstractType | null;
  /** The leaf fields to emit, per runtime object type name. */
  readonly byType: ReadonlyMap<string, readonly LeafField[]>;
}

/** Marks an event the projection leaves to `execute`. */
const FALLBACK = Symbol('fallback');

/** graphql-ws's `subscribe` option: graphql's `subscribe`, with events projected where the plan allows. */
export async function subscribeProjected(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
  const plan = planFor(args);
  const slow = (event: unknown) => execute({ ...args, rootValue: event }) as Promise<ExecutionResult> | ExecutionResult;
  if (!plan) return mapEvents(source, slow);
  return mapEvents(source, (event) => {
    const projected = project(plan, event, args.contextValue);
    if (projected === FALLBACK) return slow(event);
    return projected instanceof Promise ? projected.then((p) => (p === FALLBACK ? slow(event) : p)) : projected;
  });
}

/** The plan of a subscription, or null when its shape needs `execute`. */
export function planFor(args: ExecutionArgs): Plan | null {
  const { schema, document } = args;
  const operation = getOperationAST(document, args.operationName);
  const root = schema.getSubscriptionType();
  if (!operation || operation.operation !== 'subscription' || !root) return null;
  const selections = operation.selectionSet.selections;
  if (selections.length !== 1 || selections[0].kind !== Kind.FIELD || selections[0].directives?.length) return null;
  const node = selections[0];
  const field = root.getFields()[node.name.value];
  if (!field || !node.selectionSet) return null;
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], (args.variableValues ?? {}) as Record<string, unknown>);
  if (variables.errors) return null;
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments[def.name.value] = def;
  const returned = getNamedType(field.type);
  const members: readonly GraphQLObjectType[] = isAbstractType(returned) ? schema.getPossibleTypes(returned) : isObjectType(returned) ? [returned] : [];
  if (members.length === 0) return null;
  const byType = new Map<string, readonly LeafField[]>();
  for (const type of members) {
    if (type.isTypeOf) return null;
    const leaves = collectLeaves(schema, type, node.selectionSet, fragments);
    if (!leaves) return null;
    byType.set(type.name, leaves);
  }
  const key = node.alias?.value ?? node.name.value;
  const info: GraphQLResolveInfo = {
    fieldName: field.name,
    fieldNodes: [node],
    returnType: field.type,
    parentType: root,
    path: { prev: undefined, key, typename: root.name },
    schema,
    fragments,
    rootValue: undefined,
    operation,
    variableValues: variables.coerced,
  };
  return {
    key,
    field,
    args: getArgumentValues(field, node, variables.coerced),
    info,
    abstract: isAbstractType(returned) ? returned : null,
    byType,
  };
}

/** Leaf fields of `type` that `set` selects, in graphql's response-key order; null for anything but leaves. */
function collectLeaves(
  schema: GraphQLSchema,
  type: GraphQLObjectType,
  set: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
  out: LeafField[] = [],
  seen = new Set<string>(),
): LeafField[] | null {
  for (const s of set.selections) {
    if (s.directives?.length) return null;
    if (s.kind === Kind.FIELD) {
      const key = s.alias?.value ?? s.name.value;
      if (s.name.value === '__typename') {
        if (!seen.has(key)) out.push({ key, name: null, type: null, nonNull: true });
      } else {
        const def = type.getFields()[s.name.value];
        if (!def || s.arguments?.length || s.selectionSet || !isLeafType(getNamedType(def.type))) return null;
        if (!seen.has(key)) out.push({ key, name: def.name, type: getNamedType(def.type) as GraphQLLeafType, nonNull: isNonNullType(def.type) });
      }
      seen.add(key);
      continue;
    }
    const fragment = s.kind === Kind.FRAGMENT_SPREAD ? fragments[s.name.value] : s;
    if (!fragment) return null;
    if (fragment.typeCondition && !applies(schema, fragment.typeCondition.name.value, type)) continue;
    if (!collectLeaves(schema, type, fragment.selectionSet, fragments, out, seen)) return null;
  }
  return out;
}

function applies(schema: GraphQLSchema, condition: string, type: GraphQLObjectType): boolean {
  if (condition === type.name) return true;
  const named = schema.getType(condition);
  return !!named && isAbstractType(named) && schema.isSubType(named, type);
}

type Projected = ExecutionResult | typeof FALLBACK;

function project(plan: Plan, event: unknown, context: unknown): Projected | Promise<Projected> {
  let value: unknown;
  try {
    value = plan.field.resolve ? plan.field.resolve(event, plan.args, context, plan.info) : (event as Record<string, unknown>)[plan.field.name];
  } catch {
    return FALLBACK;
  }
  if (value instanceof Promise) return value.then((v) => shape(plan, v, context), () => FALLBACK);
  return shape(plan, value, context);
}

function shape(plan: Plan, value: unknown, context: unknown): Projected | Promise<Projected> {
  if (value === null || typeof value !== 'object' || value instanceof Error) return FALLBACK;
  if (!plan.abstract) return fields(plan, value, getNamedType(plan.info.returnType as GraphQLOutputType).name);
  let typeName: unknown;
  try {
    typeName = plan.abstract.resolveType?.(value, context, plan.info, plan.abstract);
  } catch {
    return FALLBACK;
  }
  // type-graphql's resolveType is async.
  if (typeName instanceof Promise) return typeName.then((name) => fields(plan, value, name), () => FALLBACK);
  return fields(plan, value, typeName);
}

function fields(plan: Plan, value: object, typeName: unknown): Projected {
  const leaves = typeof typeName === 'string' ? plan.byType.get(typeName) : undefined;
  if (!leaves) return FALLBACK;
  const out: Record<string, unknown> = {};
  const source = value as Record<string, unknown>;
  for (const leaf of leaves) {
    if (leaf.name === null) {
      out[leaf.key] = typeName;
      continue;
    }
    const raw = source[leaf.name];
    if (raw === null || raw === undefined) {
      if (leaf.nonNull) return FALLBACK;
      out[leaf.key] = null;
      continue;
    }
    try {
      out[leaf.key] = (leaf.type as GraphQLLeafType).serialize(raw);
    } catch {
      return FALLBACK;
    }
  }
  return { data: { [plan.key]: out } };
}

/** `source` mapped through `map`; return() and throw() reach the source at once, even while a next() waits. */
function mapEvents(
  source: AsyncIterable<unknown>,
  map: (event: unknown) => ExecutionResult | Promise<ExecutionResult>,
): AsyncIterableIterator<ExecutionResult> {
  const it = source[Symbol.asyncIterator]();
  const step = async (r: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> =>
    r.done ? { done: true, value: undefined } : { done: false, value: await map(r.value) };
  return {
    next: () => it.next().then(step),
    return: async () => (it.return ? step(await it.return()) : { done: true, value: undefined }),
    throw: async (e?: unknown) => {
      if (it.throw) return step(await it.throw(e));
      throw e;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
