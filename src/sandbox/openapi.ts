// A strict checker of requests and responses against an OpenAPI 3.0 description, for the destination
// simulators: it finds the operation of a method and path, and checks a JSON body against its schema — types,
// `nullable`, enums, required properties, `oneOf`/`anyOf`/`allOf`, items, and unknown properties (a property the
// schema does not name is refused unless the schema allows additional ones, as the real APIs refuse them).
// Problems come out as `{ field, message }`, the way Intercom reports a bad parameter.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type Schema = Record<string, unknown>;

export interface Problem {
  /** Where, as a dotted path (`custom_attributes.tier`); '' for the body itself. */
  field: string;
  message: string;
}

export interface Operation {
  operationId: string;
  method: string;
  /** The path template, e.g. /contacts/{contact_id}. */
  template: string;
  requestSchema: Schema | undefined;
  responses: Record<string, Schema | undefined>;
  headers: Array<{ name: string; schema: Schema | undefined; required: boolean }>;
}

export interface OpenApi {
  /** The operation and its path parameters, or undefined when the description has none for this request. */
  find(method: string, path: string): { operation: Operation; params: Record<string, string> } | undefined;
  /** Problems of a value against a schema (empty when it conforms). */
  check(schema: Schema | undefined, value: unknown, options?: { strict?: boolean }): Problem[];
  /** A component schema by name. */
  schema(name: string): Schema;
}

interface CompiledPath {
  pattern: RegExp;
  names: string[];
  operations: Map<string, Operation>;
}

export function loadOpenApi(file: string): OpenApi {
  const document = parse(readFileSync(file, 'utf8'), { maxAliasCount: -1 }) as { paths: Record<string, Record<string, Schema>>; components: { schemas: Record<string, Schema> } };
  const resolve = (schema: unknown): Schema | undefined => {
    let current = schema as Schema | undefined;
    for (let depth = 0; current && typeof current.$ref === 'string' && depth < 32; depth += 1) {
      const ref = current.$ref;
      const name = ref.replace(/^#\/components\/schemas\//, '');
      current = document.components.schemas[name];
      if (!current) throw new Error(`OpenAPI: unresolvable $ref ${ref}`);
    }
    return current;
  };

  // Literal paths before templated ones, so /contacts/search is not taken for /contacts/{contact_id}.
  const paths: CompiledPath[] = Object.entries(document.paths)
    .map(([template, item]) => {
      const names: string[] = [];
      const pattern = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_, name: string) => (names.push(name), '([^/]+)'))}$`);
      const operations = new Map<string, Operation>();
      for (const [method, raw] of Object.entries(item)) {
        if (method === 'parameters' || typeof raw !== 'object') continue;
        const op = raw as { operationId?: string; requestBody?: { content?: Record<string, { schema?: unknown }> }; responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>; parameters?: Array<{ name: string; in: string; required?: boolean; schema?: unknown }> };
        operations.set(method.toUpperCase(), {
          operationId: op.operationId ?? `${method} ${template}`,
          method: method.toUpperCase(),
          template,
          requestSchema: resolve(op.requestBody?.content?.['application/json']?.schema),
          responses: Object.fromEntries(Object.entries(op.responses ?? {}).map(([status, response]) => [status, resolve(response.content?.['application/json']?.schema)])),
          headers: (op.parameters ?? []).filter((p) => p.in === 'header').map((p) => ({ name: p.name, schema: resolve(p.schema), required: p.required === true })),
        });
      }
      return { pattern, names, operations };
    })
    .sort((a, b) => a.names.length - b.names.length);

  function check(schemaIn: Schema | undefined, value: unknown, at: string, strict: boolean, problems: Problem[]): void {
    const schema = resolve(schemaIn);
    if (!schema) return;
    if (value === null) {
      if (schema.nullable === true || (schema.type === undefined && !schema.properties && !schema.enum)) return;
      problems.push({ field: at, message: `${label(at)} must not be null` });
      return;
    }
    if (Array.isArray(schema.allOf)) for (const part of schema.allOf) check(part as Schema, value, at, false, problems);
    for (const key of ['oneOf', 'anyOf'] as const) {
      const branches = schema[key];
      if (!Array.isArray(branches)) continue;
      const results = branches.map((branch) => {
        const found: Problem[] = [];
        check(branch as Schema, value, at, false, found);
        return found;
      });
      const matching = results.filter((found) => found.length === 0).length;
      // Intercom's description uses oneOf for "at least one of these" (a contact with an email, an external_id or
      // a role), where several branches may hold at once: only branches that constrain types exclude each other.
      const exclusive = key === 'oneOf' && branches.filter((branch, i) => results[i]!.length === 0 && constrainsType(resolve(branch))).length > 1;
      if (matching === 0) problems.push(...(results.sort((a, b) => a.length - b.length)[0] ?? []));
      else if (exclusive) problems.push({ field: at, message: `${label(at)} matches more than one of the allowed shapes` });
    }
    const type = schema.type as string | undefined;
    if (type !== undefined && !hasType(value, type)) {
      problems.push({ field: at, message: `${label(at)} must be ${article(type)}` });
      return;
    }
    if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
      problems.push({ field: at, message: `${label(at)} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}` });
    }
    if (Array.isArray(value)) {
      if (schema.items) value.forEach((item, i) => check(schema.items as Schema, item, `${at}[${i}]`, strict, problems));
      return;
    }
    if (typeof value !== 'object') return;
    const object = value as Record<string, unknown>;
    for (const name of (schema.required as string[] | undefined) ?? []) {
      if (object[name] === undefined) problems.push({ field: join(at, name), message: `${join(at, name)} is required` });
    }
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [name, item] of Object.entries(object)) {
      if (item === undefined) continue;
      if (Object.hasOwn(properties, name)) check(properties[name], item, join(at, name), strict, problems);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') check(schema.additionalProperties as Schema, item, join(at, name), strict, problems);
      else if (strict && schema.additionalProperties !== true && !knownIn(schema, name)) problems.push({ field: join(at, name), message: `${join(at, name)} is not a parameter of this request` });
    }
  }

  /** Whether a name is a property of the schema or of any branch of it (oneOf/anyOf/allOf). */
  function knownIn(schemaIn: Schema | undefined, name: string): boolean {
    const schema = resolve(schemaIn);
    if (!schema) return false;
    const properties = schema.properties as Record<string, unknown> | undefined;
    if (properties && Object.hasOwn(properties, name)) return true;
    // A schema that names no properties at all (a free-form object) takes anything.
    if (!properties && !schema.oneOf && !schema.anyOf && !schema.allOf) return true;
    return ['oneOf', 'anyOf', 'allOf'].some((key) => Array.isArray(schema[key]) && (schema[key] as Schema[]).some((branch) => knownIn(branch, name) && Boolean(resolve(branch)?.properties)));
  }

  return {
    find(method, path) {
      for (const { pattern, names, operations } of paths) {
        const match = pattern.exec(path);
        const operation = match ? operations.get(method.toUpperCase()) : undefined;
        if (match && operation) return { operation, params: Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)])) };
      }
      return undefined;
    },
    check(schema, value, options = {}) {
      const problems: Problem[] = [];
      check(schema, value, '', options.strict ?? true, problems);
      return problems;
    },
    schema(name) {
      const found = document.components.schemas[name];
      if (!found) throw new Error(`OpenAPI: no schema ${name}`);
      return found;
    },
  };
}

function constrainsType(schema: Schema | undefined): boolean {
  if (!schema) return false;
  if (schema.type !== undefined || schema.enum !== undefined) return true;
  const properties = schema.properties as Record<string, Schema> | undefined;
  return properties !== undefined && Object.values(properties).some((property) => property.type !== undefined || property.enum !== undefined);
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      return true;
  }
}

const join = (at: string, name: string) => (at === '' ? name : `${at}.${name}`);
const label = (at: string) => (at === '' ? 'the body' : at);
const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);
