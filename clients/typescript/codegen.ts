// graphql-codegen configuration: types for the gateway's schema (read by introspection from a
// running gateway) and for the operations written in src/*.ts (`/* GraphQL */` strings).
//
// Introspection needs no token (an operation that selects only introspection fields passes the
// gate without one), so no headers are sent. Where introspection is turned off
// (GATEWAY_INTROSPECTION=false), point `schema` at the committed ../../schema.graphql instead.
import type { CodegenConfig } from '@graphql-codegen/cli';

const endpoint = process.env.GATEWAY_GRAPHQL_URL ?? 'http://127.0.0.1:8000/graphql';

// Every custom scalar of the schema, as JSON carries it; `strictScalars` fails the run on an
// unmapped one (a scalar added to the schema later).
const scalars = {
  Date: 'string', // ISO 8601 calendar date: 2025-08-25
  DateTime: 'string', // ISO 8601 date and time with its offset: 2026-01-20T08:00:00+00:00
  JSON: 'unknown', // any JSON value (an object's raw upstream fields)
};

const config: CodegenConfig = {
  schema: endpoint,
  documents: ['src/**/*.ts', '!src/generated/**'],
  config: { strictScalars: true, scalars, enumType: 'string-literal', useTypeImports: true },
  generates: {
    // Every type of the schema, for code that builds inputs or passes objects around.
    'src/generated/schema.ts': { plugins: ['typescript'], config: { enumsAsTypes: true } },
    // The result and variables types of each operation in src/ (typescript-operations 6 writes
    // the enums and inputs they use itself, so it gets a file of its own).
    'src/generated/operations.ts': { plugins: ['typescript-operations'] },
  },
};

export default config;
