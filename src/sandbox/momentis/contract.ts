// The Momentis contract (spec/momentis/momentis.openapi.yaml) as validators: a request body, a response body by
// status, and a webhook body, each checked against the schema the contract gives it (JSON Schema 2020-12, as
// OpenAPI 3.1 uses). The simulator refuses requests that break it; tests check the connector's requests and the
// simulator's answers with the same functions, so both sides are held to one file.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse } from 'yaml';

const CONTRACT_URL = new URL('../../../spec/momentis/momentis.openapi.yaml', import.meta.url);

interface Operation {
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { $ref?: string; content?: Record<string, { schema: unknown }> }>;
}

export interface ContractDocument {
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}

export type Verdict = { ok: true } | { ok: false; errors: string };

export interface MomentisContract {
  readonly document: ContractDocument;
  /** The path template (`/v1/members/{externalId}`) a concrete path is, if the contract has it. */
  route(path: string): { template: string; params: Record<string, string> } | undefined;
  /** Whether the contract has this method on this path template. */
  has(method: string, template: string): boolean;
  request(method: string, template: string, body: unknown): Verdict;
  response(method: string, template: string, status: number, body: unknown): Verdict;
  webhook(body: unknown): Verdict;
}

let loaded: MomentisContract | undefined;

/** The contract, read and compiled once per process. */
export function momentisContract(): MomentisContract {
  loaded ??= compileContract(parse(readFileSync(CONTRACT_URL, 'utf8')) as ContractDocument);
  return loaded;
}

function compileContract(document: ContractDocument): MomentisContract {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // Formats the contract uses, checked as RFC 3339 date-times and absolute URIs (no ajv-formats dependency).
  ajv.addFormat('date-time', (value: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)));
  ajv.addFormat('uri', (value: string) => URL.canParse(value) && /^[a-z][a-z0-9+.-]*:/i.test(value));
  ajv.addSchema({ $id: 'momentis', components: document.components });
  const cache = new Map<string, ValidateFunction>();
  const compile = (schema: unknown): ValidateFunction => {
    const text = JSON.stringify(schema).replaceAll('"#/components/', '"momentis#/components/');
    let validate = cache.get(text);
    if (!validate) cache.set(text, (validate = ajv.compile(JSON.parse(text) as object)));
    return validate;
  };
  const check = (schema: unknown, body: unknown): Verdict => {
    const validate = compile(schema);
    return validate(body) ? { ok: true } : { ok: false, errors: ajv.errorsText(validate.errors, { dataVar: 'body' }) };
  };
  const resolve = (response: { $ref?: string; content?: Record<string, { schema: unknown }> }) => {
    if (response.$ref === undefined) return response;
    const name = response.$ref.split('/').pop()!;
    return document.components.responses![name] as { content?: Record<string, { schema: unknown }> };
  };
  const schemaOf = (content: Record<string, { schema: unknown }> | undefined) => (content ? Object.values(content)[0]?.schema : undefined);
  const templates = Object.keys(document.paths).map((template) => {
    const names: string[] = [];
    const pattern = new RegExp(`^${template.replace(/\{(\w+)\}/g, (_m, name: string) => (names.push(name), '([^/]+)'))}$`);
    return { template, pattern, names };
  });
  const operation = (method: string, template: string) => document.paths[template]?.[method.toLowerCase()];

  return {
    document,
    route(path) {
      for (const { template, pattern, names } of templates) {
        const match = pattern.exec(path);
        if (match) return { template, params: Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)])) };
      }
      return undefined;
    },
    has: (method, template) => operation(method, template) !== undefined,
    request(method, template, body) {
      const schema = schemaOf(operation(method, template)?.requestBody?.content);
      if (schema === undefined) return body === undefined ? { ok: true } : { ok: false, errors: `${method} ${template} takes no body` };
      return check(schema, body);
    },
    response(method, template, status, body) {
      const responses = operation(method, template)?.responses ?? {};
      const declared = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
      if (!declared) return { ok: false, errors: `${method} ${template} does not answer ${status}` };
      const schema = schemaOf(resolve(declared).content);
      return schema === undefined ? { ok: true } : check(schema, body);
    },
    webhook(body) {
      const schema = schemaOf(Object.values(document.webhooks)[0]!.post!.requestBody!.content);
      return check(schema, body);
    },
  };
}
