/**
 * Limits on the shape of an operation, as GraphQL validation rules, so both transports (Apollo over HTTP and
 * graphql-ws) refuse the same documents before anything executes: nesting depth, and a cost that counts every
 * field a response could hold (aliases and fragments expanded, paged lists multiplied by their page size).
 */
import {
  GraphQLError,
  getNamedType,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

export interface QueryLimits {
  /** Deepest field nesting (a top-level field is depth 1). */
  readonly maxDepth: number;
  /**
   * Lists of objects inside lists of objects along one path. Unpaged lists have no size to count in the cost, so
   * this bounds how their sizes can multiply (introspection's types > fields > args needs 3).
   */
  readonly maxListNesting: number;
  /** Most fields a response may hold, counting list pages as their page size. */
  readonly maxCost: number;
  /** The multiplier of a paged field (one with a `first` argument) when its size comes from a variable. */
  readonly maxPageSize: number;
  /** Lexical tokens in one document, checked while parsing (graphql-js parse's maxTokens). */
  readonly maxTokens: number;
  /** Whether __schema and __type may be queried. */
  readonly introspection: boolean;
}

/** Generous for this schema: its deepest useful query is 5 levels, while GraphiQL's introspection query needs 15. */
export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxDepth: 15,
  maxListNesting: 3,
  maxCost: 5_000,
  maxPageSize: 100,
  maxTokens: 10_000,
  introspection: true,
});

/** The rules both transports add to graphql's specified ones. */
export function queryLimitRules(limits: QueryLimits): ValidationRule[] {
  return [
    depthLimit(limits.maxDepth),
    listNestingLimit(limits.maxListNesting),
    costLimit(limits.maxCost, limits.maxPageSize),
    ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
}

type Measure = (set: SelectionSetNode, type: GraphQLNamedType | undefined) => number;

/**
 * Walks one operation, expanding fragments once each (memoised), so a document whose fragments fan out
 * exponentially costs linear time to measure. A fragment cycle (refused by another rule) measures as 0.
 */
function walker(context: ValidationContext, field: (node: FieldNode, def: GraphQLField<unknown, unknown> | undefined, inner: Measure) => number, combine: (a: number, b: number) => number): Measure {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of context.getDocument().definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const schema = context.getSchema();
  const memo = new Map<string, number>();
  const visiting = new Set<string>();
  const measure: Measure = (set, type) => {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        total = combine(total, field(sel, fieldDef(schema, type, sel.name.value), measure));
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const on = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : type;
        total = combine(total, measure(sel.selectionSet, on ?? undefined));
      } else {
        const name = sel.name.value;
        let value = memo.get(name);
        if (value === undefined) {
          const def = fragments.get(name);
          if (!def || visiting.has(name)) value = 0;
          else {
            visiting.add(name);
            value = measure(def.selectionSet, schema.getType(def.typeCondition.name.value) ?? undefined);
            visiting.delete(name);
          }
          memo.set(name, value);
        }
        total = combine(total, value);
      }
    }
    return total;
  };
  return measure;
}

function fieldDef(schema: GraphQLSchema, type: GraphQLNamedType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name === '__typename') return TypeNameMetaFieldDef;
  if (type === schema.getQueryType()) {
    if (name === '__schema') return SchemaMetaFieldDef;
    if (name === '__type') return TypeMetaFieldDef;
  }
  return type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[name] : undefined;
}

const rootType = (context: ValidationContext, op: OperationDefinitionNode): GraphQLNamedType | undefined =>
  context.getSchema().getRootType(op.operation) ?? undefined;

const childType = (def: GraphQLField<unknown, unknown> | undefined): GraphQLNamedType | undefined => (def ? getNamedType(def.type) : undefined);

export function depthLimit(maxDepth: number): ValidationRule {
  return (context) => {
    const depth = walker(context, (node, def, inner) => 1 + (node.selectionSet ? inner(node.selectionSet, childType(def)) : 0), Math.max);
    return {
      OperationDefinition(op) {
        const d = depth(op.selectionSet, rootType(context, op));
        if (d > maxDepth) {
          context.reportError(
            new GraphQLError(`${label(op)} expected fields nested at most ${maxDepth} deep, but got ${d} levels. Hint: split the query or ask for fewer nested fields.`, { nodes: [op] }),
          );
        }
      },
    };
  };
}

export function listNestingLimit(maxNesting: number): ValidationRule {
  return (context) => {
    const nesting = walker(
      context,
      (node, def, inner) => {
        if (!node.selectionSet) return 0;
        return (def && isListType(getNullableType(def.type)) ? 1 : 0) + inner(node.selectionSet, childType(def));
      },
      Math.max,
    );
    return {
      OperationDefinition(op) {
        const n = nesting(op.selectionSet, rootType(context, op));
        if (n > maxNesting) {
          context.reportError(
            new GraphQLError(`${label(op)} expected lists of objects nested at most ${maxNesting} deep, but got ${n}. Hint: fetch the inner lists in a second query.`, { nodes: [op] }),
          );
        }
      },
    };
  };
}

export function costLimit(maxCost: number, maxPageSize: number): ValidationRule {
  return (context) => {
    const cost = walker(
      context,
      (node, def, inner) => {
        if (!node.selectionSet) return 1;
        return 1 + pageSize(node, def, maxPageSize) * inner(node.selectionSet, childType(def));
      },
      (a, b) => a + b,
    );
    return {
      OperationDefinition(op) {
        const c = cost(op.selectionSet, rootType(context, op));
        if (c > maxCost) {
          context.reportError(
            new GraphQLError(
              `${label(op)} expected a cost of at most ${maxCost} (fields in the response, lists counted by their page size), but got ${c}. Hint: ask for fewer fields, fewer aliases or smaller pages.`,
              { nodes: [op] },
            ),
          );
        }
      },
    };
  };
}

/** How many items a paged field can return: its `first` argument (a literal, the default, or maxPageSize for a variable). */
function pageSize(node: FieldNode, def: GraphQLField<unknown, unknown> | undefined, maxPageSize: number): number {
  const arg = def?.args.find((a) => a.name === 'first');
  if (!arg) return 1;
  const given = node.arguments?.find((a) => a.name.value === 'first')?.value;
  let n: number;
  if (!given) n = typeof arg.defaultValue === 'number' ? arg.defaultValue : maxPageSize;
  else if (given.kind === Kind.INT) n = Number(given.value);
  else n = maxPageSize;
  return Math.min(Math.max(n, 0), maxPageSize);
}

const label = (op: OperationDefinitionNode): string => `${op.operation}${op.name ? ` ${op.name.value}` : ''}`;
