// The naive baseline, in its own process: a per-message HTTP handler in the style of commercetools' Connect event
// template. For each incoming Message (a single one, or each of an array in turn) it fetches the resource from the
// commercetools API (OAuth client-credentials token fetched once and cached), POSTs it to the destination, and only
// then answers 202. No durability, no dedupe, no coalescing, no retries: an error answers 500.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommercetoolsEndpoint } from './emulator-process.ts';
import { serve } from './ipc.ts';
import { CUSTOMER_FIELDS, readPath } from './workload.ts';
import { readBody } from '../src/sandbox/http-body.ts';

const RESOURCE_PATHS: Record<string, string> = { customer: 'customers', order: 'orders', payment: 'payments', cart: 'carts', product: 'products' };

let server: Server | undefined;
const counts = { messages: 0, fetches: 0, posts: 0, errors: 0 };

function start(args: { commercetools: CommercetoolsEndpoint; sinkUrl: string }): Promise<string> {
  const ct = args.commercetools;
  let token: { value: string; expiresAt: number } | undefined;
  let tokenRequest: Promise<string> | undefined;

  async function accessToken(): Promise<string> {
    if (token && Date.now() < token.expiresAt) return token.value;
    tokenRequest ??= (async () => {
      const response = await fetch(`${ct.authUrl}/oauth/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${ct.clientId}:${ct.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      if (!response.ok) throw new Error(`token request answered ${response.status}`);
      const body = (await response.json()) as { access_token: string; expires_in: number };
      token = { value: body.access_token, expiresAt: Date.now() + (body.expires_in - 60) * 1000 };
      return token.value;
    })().finally(() => (tokenRequest = undefined));
    return tokenRequest;
  }

  async function handle(message: Record<string, unknown>, correlationId: string | undefined): Promise<void> {
    counts.messages += 1;
    const resource = message.resource as { typeId: string; id: string };
    const path = RESOURCE_PATHS[resource.typeId];
    if (!path) return;
    counts.fetches += 1;
    const response = await fetch(`${ct.apiUrl}/${ct.projectKey}/${path}/${resource.id}`, { headers: { authorization: `Bearer ${await accessToken()}` } });
    if (!response.ok) throw new Error(`fetching ${resource.typeId} ${resource.id} answered ${response.status}`);
    const current = (await response.json()) as Record<string, unknown>;
    const fields = Object.fromEntries(Object.entries(CUSTOMER_FIELDS).map(([name, from]) => [name, readPath(current, from)]));
    const messageId = String(message.id);
    counts.posts += 1;
    const posted = await fetch(`${args.sinkUrl}/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': messageId, 'x-correlation-id': correlationId ?? messageId },
      body: JSON.stringify({ kind: 'record', recordType: resource.typeId, id: resource.id, version: current.version, operation: 'upsert', fields, idempotencyKey: messageId }),
    });
    await posted.arrayBuffer();
    if (!posted.ok) throw new Error(`destination answered ${posted.status}`);
  }

  server = createServer((req, res) => {
    void readBody(req)
      .then(async (raw) => {
        const body = JSON.parse(raw.toString('utf8')) as unknown;
        const correlation = req.headers['x-correlation-id'];
        for (const message of Array.isArray(body) ? body : [body]) await handle(message as Record<string, unknown>, typeof correlation === 'string' ? correlation : undefined);
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
      })
      .catch((error: unknown) => {
        counts.errors += 1;
        const text = JSON.stringify({ error: error instanceof Error ? error.message : String(error) });
        res.writeHead(500, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
      });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve) => server!.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`)));
}


serve({ start, counts: () => ({ ...counts }) });
