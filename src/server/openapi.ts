// The OpenAPI 3.1 description of ctbridge's agent-facing HTTP API (support view, agent actions), built from the
// very zod schemas the routes validate their input and answers with, so the document cannot drift from what the
// routes accept and answer. A route plugin describes each operation when it registers it (`api.add`), and
// `GET /v1/openapi.json` serves `api.document()`.
import { z } from 'zod';
import { problemType } from './problem.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** How a caller proves who it is: an API key (X-Api-Key), a bearer JWT from the identity provider, or the admin token. */
export type SecurityScheme = 'apiKey' | 'bearerJwt' | 'adminToken';

export interface ParameterSpec {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: z.ZodType;
}

export interface ResponseSpec {
  description: string;
  /** The body's schema; for 4xx/5xx answers without one, the problem+json schema. */
  schema?: z.ZodType;
  contentType?: string;
  headers?: Record<string, { description: string; schema: z.ZodType }>;
}

export interface OperationSpec {
  method: HttpMethod;
  /** The OpenAPI path template, e.g. /v1/support/customers/{id}; register the route with `fastifyPath(path)`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Any one of these schemes is enough; omit for an open operation. */
  security?: SecurityScheme[];
  parameters?: ParameterSpec[];
  requestBody?: { schema: z.ZodType; required?: boolean; contentType?: string; description?: string };
  responses: Record<string, ResponseSpec>;
}

/** RFC 9457 problem details as ctbridge writes them (sendProblem); extra members carry details such as `rule`. */
export const problemSchema = z
  .looseObject({
    type: z.string().describe(`a stable URN, e.g. ${problemType('not-found')}`),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
  })
  .meta({ id: 'Problem' });

const SECURITY_SCHEMES = {
  apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: 'a client API key; the configuration holds its SHA-256 digest (api.clients)' },
  bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "a JWT from the installation's identity provider (api.jwt)" },
  adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token (server.adminToken)' },
} as const;

/** `/v1/things/{id}` → `/v1/things/:id`, the form Fastify registers. */
export function fastifyPath(template: string): string {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

export class ApiDescription {
  readonly #operations = new Map<string, OperationSpec>();
  readonly #info: { title: string; version: string; description?: string };

  constructor(info: { title: string; version: string; description?: string }) {
    this.#info = info;
  }

  add(operation: OperationSpec): void {
    const key = `${operation.method} ${operation.path}`;
    if (this.#operations.has(key)) throw new Error(`the API description already has ${key}`);
    for (const other of this.#operations.values()) {
      if (other.operationId === operation.operationId) throw new Error(`duplicate operationId ${operation.operationId}`);
    }
    this.#operations.set(key, operation);
  }

  /** The operations described so far, for tests that check answers against the document. */
  operations(): OperationSpec[] {
    return [...this.#operations.values()];
  }

  document(): Record<string, unknown> {
    // One registry per document: schemas with a `meta({ id })` become shared components, the rest stay inline.
    const components: Record<string, unknown> = {};
    const toSchema = (schema: z.ZodType) => jsonSchema(schema, components);
    const paths: Record<string, Record<string, unknown>> = {};
    const used = new Set<SecurityScheme>();
    for (const operation of this.#operations.values()) {
      for (const scheme of operation.security ?? []) used.add(scheme);
      const responses = Object.fromEntries(
        Object.entries(operation.responses).map(([status, response]) => {
          const schema = response.schema ?? (Number(status) >= 400 ? problemSchema : undefined);
          const contentType = response.contentType ?? (schema === problemSchema ? 'application/problem+json' : 'application/json');
          return [
            status,
            {
              description: response.description,
              ...(response.headers && { headers: Object.fromEntries(Object.entries(response.headers).map(([name, header]) => [name, { description: header.description, schema: toSchema(header.schema) }])) }),
              ...(schema && { content: { [contentType]: { schema: toSchema(schema) } } }),
            },
          ];
        }),
      );
      (paths[operation.path] ??= {})[operation.method] = {
        operationId: operation.operationId,
        summary: operation.summary,
        ...(operation.description && { description: operation.description }),
        ...(operation.tags && { tags: operation.tags }),
        ...(operation.security && { security: operation.security.map((scheme) => ({ [scheme]: [] })) }),
        ...(operation.parameters && {
          parameters: operation.parameters.map((parameter) => ({
            name: parameter.name,
            in: parameter.in,
            required: parameter.in === 'path' ? true : (parameter.required ?? false),
            ...(parameter.description && { description: parameter.description }),
            schema: toSchema(parameter.schema),
          })),
        }),
        ...(operation.requestBody && {
          requestBody: {
            required: operation.requestBody.required ?? true,
            ...(operation.requestBody.description && { description: operation.requestBody.description }),
            content: { [operation.requestBody.contentType ?? 'application/json']: { schema: toSchema(operation.requestBody.schema) } },
          },
        }),
        responses,
      };
    }
    return {
      openapi: '3.1.0',
      info: this.#info,
      jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
      paths,
      components: {
        schemas: components,
        securitySchemes: Object.fromEntries([...used].sort().map((scheme) => [scheme, SECURITY_SCHEMES[scheme]])),
      },
    };
  }
}

/**
 * A zod schema as a JSON Schema 2020-12 fragment (OpenAPI 3.1 uses that dialect). Schemas carrying `meta({ id })`
 * are lifted into `components` and referenced, so a shape shared by many answers is written once.
 */
function jsonSchema(schema: z.ZodType, components: Record<string, unknown>): unknown {
  const converted = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' });
  // zod lifts every `meta({ id })` schema into `$defs` and refers to it there; in a document those live in
  // components, so the references are rewritten to point at them.
  const { $schema: _dialect, $defs, ...rest } = JSON.parse(JSON.stringify(converted).replaceAll('"#/$defs/', '"#/components/schemas/')) as Record<string, unknown> & { $defs?: Record<string, unknown> };
  for (const [id, definition] of Object.entries($defs ?? {})) components[id] = definition;
  const id = (z.globalRegistry.get(schema) as { id?: string } | undefined)?.id;
  if (id && !('$ref' in rest)) {
    components[id] = rest;
    return { $ref: `#/components/schemas/${id}` };
  }
  return rest;
}
