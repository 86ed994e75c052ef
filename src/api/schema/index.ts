/** The GraphQL schema layer's public API: building and printing the schema, the context, and error formatting. */
import 'reflect-metadata';

export { buildApiSchema, printApiSchema, RESOLVERS } from './build.ts';
export { SERVER_PHASES, type ApiContext, type ServerInfo, type ServerPhaseName } from './context.ts';
export type { ConfigEntry, ConfigSource } from './configs/config.source.ts';
export { ApiErrorCode, createErrorFormatter, logInternalError, MASKED_MESSAGE, publicCode, type ErrorFormatter, type ErrorFormatterOptions } from './errors.ts';
