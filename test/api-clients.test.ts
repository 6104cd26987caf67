// The agent-facing API's shared parts: API clients configured by key digest with a role, and the OpenAPI 3.1
// document built from the routes' zod schemas and served at /v1/openapi.json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.ts';
import { ApiClients, apiSchema, generateApiKey, hashApiKey } from '../src/server/api-clients.ts';
import { ApiDescription } from '../src/server/openapi.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { testStores } from './support/stores.ts';

describe('API clients', () => {
  const agent = generateApiKey();
  const clients = new ApiClients(apiSchema.parse({ clients: [{ name: 'iagent', keyHash: agent.keyHash, role: 'agent' }], roles: { agent: { description: 'service desk' } } }));

  it('knows a client by its key and gives its role', () => {
    expect(agent.keyHash).toBe(hashApiKey(agent.key));
    expect(clients.authenticate({ 'x-api-key': agent.key })).toEqual({ ok: true, caller: { client: 'iagent', role: 'agent', grants: { description: 'service desk' } } });
  });

  it('refuses a missing, repeated, empty or unknown key with 401', () => {
    const missing = clients.authenticate({});
    expect(missing.ok === false && missing.detail).toContain('X-Api-Key');
    expect(clients.authenticate({ 'x-api-key': '' })).toMatchObject({ ok: false, status: 401 });
    expect(clients.authenticate({ 'x-api-key': [agent.key, agent.key] })).toMatchObject({ ok: false, status: 401 });
    expect(clients.authenticate({ 'x-api-key': `${agent.key}x` })).toEqual({ ok: false, status: 401, detail: 'the API key is not valid' });
    // The digest itself is not a key.
    expect(clients.authenticate({ 'x-api-key': agent.keyHash })).toMatchObject({ ok: false, status: 401 });
  });

  it('refuses a configuration with a key in clear, an unknown role, or a key shared by two clients', () => {
    const result = apiSchema.safeParse({
      clients: [
        { name: 'a', keyHash: 'ctb_plain-key-in-clear', role: 'agent' },
        { name: 'b', keyHash: agent.keyHash, role: 'boss' },
        { name: 'c', keyHash: agent.keyHash, role: 'agent' },
      ],
      roles: { agent: {} },
    });
    expect(result.success).toBe(false);
    const problems = result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^clients\.0\.keyHash: sha256:/),
        'clients.1.role: no role "boss" in api.roles (agent)',
        'clients.2.keyHash: another client has this key',
      ]),
    );
    // Never the key or its digest in a message: configuration errors are printed.
    expect(problems.join('\n')).not.toContain(agent.keyHash.slice(7));
  });

  it('is part of the configuration, empty by default', () => {
    const base = { commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/a', apiUrl: 'http://127.0.0.1:1/b', clientId: 'i', clientSecret: 's' }, server: { ingest: { auth: { type: 'bearer', token: 'x'.repeat(20) } } } };
    expect(configSchema.parse(base).api).toEqual({ clients: [], roles: {} });
  });
});

describe('API description', () => {
  it('turns operations into an OpenAPI 3.1 document with shared schemas as components', () => {
    const money = z.strictObject({ centAmount: z.number().int(), currencyCode: z.string().length(3) }).meta({ id: 'TestMoney' });
    const api = new ApiDescription({ title: 'test', version: '1' });
    api.add({
      method: 'get',
      path: '/v1/things/{id}',
      operationId: 'getThing',
      summary: 'a thing',
      security: ['apiKey'],
      parameters: [{ name: 'id', in: 'path', schema: z.string() }],
      responses: { 200: { description: 'the thing', schema: z.strictObject({ total: money, refunds: z.array(money) }) }, 404: { description: 'no such thing' } },
    });
    expect(() => api.add({ method: 'get', path: '/v1/things/{id}', operationId: 'again', summary: '', responses: {} })).toThrow('already has get /v1/things/{id}');
    const document = api.document() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }>; parameters: unknown[] }>>; components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> } };
    expect(document.openapi).toBe('3.1.0');
    const get = document.paths['/v1/things/{id}']!.get!;
    expect(get.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(get.responses['200']!.content['application/json']!.schema).toMatchObject({ properties: { total: { $ref: '#/components/schemas/TestMoney' }, refunds: { items: { $ref: '#/components/schemas/TestMoney' } } } });
    expect(get.responses['404']!.content['application/problem+json']!.schema).toEqual({ $ref: '#/components/schemas/Problem' });
    expect(document.components.schemas.TestMoney).toMatchObject({ required: ['centAmount', 'currencyCode'] });
    expect(document.components.schemas.Problem).toMatchObject({ required: ['type', 'title', 'status', 'detail'] });
    expect(Object.keys(document.components.securitySchemes)).toEqual(['apiKey']);
  });
});

describe('GET /v1/openapi.json', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ storeUrl: await testStores[0]!.create() });
  });
  afterAll(async () => {
    await h?.stop();
    await testStores[0]!.cleanup();
  });

  it('serves the document without credentials', async () => {
    const response = await fetch(`${h.runtime.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    const document = (await response.json()) as { openapi: string; info: { title: string }; paths: unknown };
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.title).toBe('ctbridge');
    expect(typeof document.paths).toBe('object');
  });
});
