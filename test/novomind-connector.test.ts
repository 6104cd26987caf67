// The REST destination as the novomind preset, against the novomind simulator, without a runtime: customers
// created (id from the answer), found and updated, deleted; status notes once each in order; OAuth2 tokens
// fetched once, refreshed before they expire (injected clock), replaced after the installation expired or revoked
// them (the item fails retryably and goes through on its retry, nothing lost); refused credentials, a missing
// media type, the installation's error bodies and faults classified; a body template; a batching window sent when
// it ends (injected clock). The whole runtime with the default mappings is test/novomind.test.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError, RateLimitedError, RetryableError, memoryConnectorState, type ConnectorState, type ItemOutcome, type LateFailure } from '../src/destinations/kit/index.ts';
import { novomindDestination } from '../src/destinations/novomind/index.ts';
import { restDestination } from '../src/destinations/rest/index.ts';
import { startNovomindSimulator, V2_MEDIA_TYPE, type NovomindSimulator } from '../src/sandbox/novomind/simulator.ts';
import { createTestConnector, eventItem, recordItem } from './support/connector-test.ts';
import { eventually } from './support/harness.ts';

const CLIENT = { clientId: 'ctbridge', clientSecret: 'client-secret-0123456789' };
const USER = { username: 'integration', password: 'user-password-0123456789' };

let sim: NovomindSimulator;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  clock = Date.UTC(2026, 11, 5, 10, 0, 0);
  sim = await startNovomindSimulator({ clients: [CLIENT], users: [USER], tokenLifetimeSeconds: 600, now });
});
afterEach(() => sim.close());

function novomind(more: Record<string, unknown> = {}, options: { state?: ConnectorState; reportLateFailures?: (failures: LateFailure[]) => Promise<void> } = {}) {
  return createTestConnector(novomindDestination, { baseUrl: sim.url, auth: { oauth2: { ...CLIENT, ...USER } }, ...more } as never, { now, ...options });
}

const note = (kind: string, orderNumber: string, state: string, text = `${kind}: ${state}`) =>
  eventItem({ eventType: 'order_status', sourceType: 'OrderStateChanged', resource: { typeId: 'order', id: `id-${orderNumber}` }, payload: { kind, orderNumber, state, text } });

function failed(outcome: ItemOutcome | undefined): Error {
  if (!outcome || outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome)}`);
  return outcome.error;
}

describe('the novomind preset of the REST destination', () => {
  it('creates a customer with the id novomind gives it, finds it by its commercetools id, updates and deletes it', async () => {
    const { connector } = novomind();
    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c1', fields: { externalId: 'c1', email: 'ada@example.com', firstName: 'Ada' } })]);
    expect(created).toMatchObject({ ok: true });
    const id = (created as { destinationId: string }).destinationId;
    expect(sim.customers.get(id)).toMatchObject({ externalId: 'c1', email: 'ada@example.com', firstName: 'Ada' });
    // The destination id unknown (lost): found by externalId, updated in place.
    const [found] = await connector.sendRecords([recordItem({ resourceId: 'c1', fields: { externalId: 'c1', email: 'ada@example.com', firstName: 'Ada B' } })]);
    expect(found).toEqual({ ok: true, destinationId: id });
    expect(sim.customers.size).toBe(1);
    expect(sim.customers.get(id)).toMatchObject({ firstName: 'Ada B' });
    const [updated] = await connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: { externalId: 'c1', firstName: 'Ada C' } })]);
    expect(updated).toEqual({ ok: true, destinationId: id });
    expect(sim.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
    const [deleted] = await connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, operation: 'delete', fields: {} })]);
    expect(deleted).toMatchObject({ ok: true });
    expect(sim.customers.size).toBe(0);
    // Deleting what is gone is done.
    const [again] = await connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, operation: 'delete', fields: {} })]);
    expect(again).toMatchObject({ ok: true });
    // Every API call asked for the v2 media type; one token served them all.
    expect(sim.requests.filter((r) => r.path.startsWith('/iMail/api/rest/customers')).every((r) => r.accept === V2_MEDIA_TYPE)).toBe(true);
    expect(sim.stats.tokensIssued).toBe(1);
  });

  it('sends shipment, cancellation, refund and return notes once each, in order', async () => {
    const { connector } = novomind();
    const items = [note('shipment', 'N1', 'Shipped'), note('cancellation', 'N1', 'Cancelled'), note('refund', 'N1', 'CreditOwed'), note('return', 'N1', 'ReturnRegistered')];
    for (const item of items) expect(await connector.sendEvents([item])).toEqual([{ ok: true }]);
    expect(sim.notes.map((n) => [n.orderNumber, n.body.kind, n.idempotencyKey])).toEqual(items.map((item) => ['N1', item.payload.kind, item.idempotencyKey]));
  });

  it('refreshes a token before it expires by the clock, with the refresh token, without a refused call', async () => {
    const { connector } = novomind();
    await connector.sendEvents([note('shipment', 'N2', 'Shipped')]);
    // 600 s tokens are replaced 30 s before they expire.
    clock += 580_000;
    await connector.sendEvents([note('shipment', 'N2', 'Delivered')]);
    expect(sim.stats.tokensIssued).toBe(2);
    expect(sim.stats.refused401).toBe(0);
    expect(sim.notes).toHaveLength(2);
  });

  it('replaces a token the installation expired or revoked mid-run: the item fails retryably and its retry goes through, once', async () => {
    const { connector } = novomind();
    const first = note('shipment', 'N3', 'Shipped');
    const second = note('cancellation', 'N3', 'Cancelled');
    const third = note('refund', 'N3', 'CreditOwed');
    expect(await connector.sendEvents([first])).toEqual([{ ok: true }]);
    sim.expireTokens();
    const [refused] = await connector.sendEvents([second]);
    expect(failed(refused)).toBeInstanceOf(RetryableError);
    expect(failed(refused).message).toContain('the token expired');
    expect(await connector.sendEvents([second])).toEqual([{ ok: true }]);
    sim.revokeTokens();
    expect(failed((await connector.sendEvents([third]))[0])).toBeInstanceOf(RetryableError);
    expect(await connector.sendEvents([third])).toEqual([{ ok: true }]);
    expect(sim.notes.map((n) => n.body.kind)).toEqual(['shipment', 'cancellation', 'refund']);
    expect(sim.stats.tokensIssued).toBe(3);
  });

  it('says so when the token endpoint refuses the credentials, and never sends them to the API', async () => {
    const { connector } = createTestConnector(novomindDestination, { baseUrl: sim.url, auth: { oauth2: { ...CLIENT, username: USER.username, password: 'wrong-password-000' } } } as never, { now });
    const error = failed((await connector.sendEvents([note('shipment', 'N4', 'Shipped')]))[0]);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(/token endpoint refused the credentials \(400 invalid_grant/);
    expect(error.message).not.toContain('wrong-password');
    expect(sim.requests.filter((r) => !r.path.endsWith('/token'))).toEqual([]);
  });

  it('works with the client-credentials grant and client authentication by HTTP Basic', async () => {
    const { connector } = createTestConnector(novomindDestination, { baseUrl: sim.url, auth: { oauth2: { ...CLIENT, grant: 'client_credentials', clientAuthentication: 'basic' } } } as never, { now });
    expect(await connector.sendEvents([note('return', 'N5', 'ReturnRegistered')])).toEqual([{ ok: true }]);
    expect(sim.notes).toHaveLength(1);
  });

  it('is refused (406, permanent) without the v2 media type, and reads the message where the installation keeps it', async () => {
    const { connector } = novomind({ mediaType: 'application/json' });
    const error = failed((await connector.sendEvents([note('shipment', 'N6', 'Shipped')]))[0]);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain(`answered 406: this installation serves ${V2_MEDIA_TYPE} only`);
  });

  it('reads an older installation\'s error shape at its configured pointer', async () => {
    await sim.close();
    sim = await startNovomindSimulator({ clients: [CLIENT], users: [USER], errorStyle: 'legacy', now });
    const { connector } = novomind({ errorMessage: '/error/text' });
    const error = failed((await connector.sendEvents([note('unknown-kind', 'N7', 'x')]))[0]);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(/answered 400: kind must be one of shipment/);
  });

  it('classifies faults: 503 retryable, 429 rate-limited with its Retry-After pausing the destination, a reset retryable', async () => {
    const test = novomind();
    await test.connector.sendEvents([note('shipment', 'N8', 'Pending')]);
    sim.faults = [{ kind: 'status', status: 503, only: 'api' }];
    expect(failed((await test.connector.sendEvents([note('shipment', 'N8', 'Shipped')]))[0])).toBeInstanceOf(RetryableError);
    sim.faults = [{ kind: 'status', status: 429, retryAfter: 7, only: 'api' }];
    const limited = failed((await test.connector.sendEvents([note('shipment', 'N8', 'Shipped')]))[0]);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect(test.limiter.pausedUntil).toBeGreaterThanOrEqual(clock + 7_000);
    sim.faults = [{ kind: 'reset', only: 'api' }];
    expect(failed((await test.connector.sendEvents([note('shipment', 'N8', 'Shipped')]))[0])).toBeInstanceOf(RetryableError);
    expect(await test.connector.sendEvents([note('shipment', 'N8', 'Shipped')])).toEqual([{ ok: true }]);
    expect(sim.notes.map((n) => n.body.state)).toEqual(['Pending', 'Shipped']);
  });

  it('fills a body template and names a path placeholder the item lacks', async () => {
    const { connector } = novomind({
      operations: { events: { order_status: { send: { method: 'POST', path: '/iMail/api/rest/orders/{fields.orderNumber}/statusnotes', body: { kind: '{{fields.kind}}', text: 'Order {{fields.orderNumber}} is {{fields.state}}', source: 'ctbridge', ref: '{{id}}' } } } } },
    });
    await connector.sendEvents([note('shipment', 'N9', 'Shipped')]);
    expect(sim.notes[0]!.body).toEqual({ kind: 'shipment', text: 'Order N9 is Shipped', source: 'ctbridge', ref: 'id-N9' });
    const missing = failed((await connector.sendEvents([eventItem({ eventType: 'order_status', payload: { kind: 'shipment', text: 't' } })]))[0]);
    expect(missing).toBeInstanceOf(PermanentError);
    expect(missing.message).toContain('needs {fields.orderNumber}');
  });

  it('holds scheduled notes until their window ends, then sends them in the order they happened', async () => {
    const state = memoryConnectorState();
    const { connector } = novomind({ statusNotes: { everyMinutes: 5 }, scheduleCheckMs: 20 }, { state });
    clock = Date.UTC(2026, 11, 5, 10, 1, 0);
    const late = { ...note('cancellation', 'N10', 'Cancelled'), occurredAt: clock - 1_000 };
    const early = { ...note('shipment', 'N10', 'Shipped'), occurredAt: clock - 2_000 };
    expect(await connector.sendEvents([late])).toEqual([{ ok: true }]);
    expect(await connector.sendEvents([early])).toEqual([{ ok: true }]);
    // Handed over again (a lost finish): held once.
    expect(await connector.sendEvents([late])).toEqual([{ ok: true }]);
    expect(sim.notes).toEqual([]);
    expect((await state.list('held:')).length).toBe(2);
    // The window (10:00–10:05) ends.
    clock = Date.UTC(2026, 11, 5, 10, 5, 0);
    await eventually(() => sim.notes.length === 2, 'the window sent');
    expect(sim.notes.map((n) => n.body.kind)).toEqual(['shipment', 'cancellation']);
    expect(await state.list('held:')).toEqual([]);
    expect(await state.list('sending:')).toEqual([]);
    await connector.close?.();
  });

  it('keeps a held note whose send failed retryably for the next look, and dead-letters one refused for good', async () => {
    const state = memoryConnectorState();
    const late: LateFailure[] = [];
    const { connector } = novomind({ statusNotes: { everyMinutes: 1 }, scheduleCheckMs: 20 }, { state, reportLateFailures: (failures) => Promise.resolve(void late.push(...failures)) });
    sim.faults = [{ kind: 'status', status: 503, only: 'api' }];
    await connector.sendEvents([note('shipment', 'N11', 'Shipped')]);
    await connector.sendEvents([note('bogus', 'N11', 'x')]);
    clock += 120_000;
    await eventually(() => sim.notes.length === 1 && late.length === 1, 'the retry and the refusal');
    expect(sim.notes[0]!.body.kind).toBe('shipment');
    expect(late[0]).toMatchObject({ kind: 'event', eventType: 'order_status' });
    expect(late[0]!.error).toContain('kind must be one of');
    await connector.close?.();
  });
});

describe('the rest destination type', () => {
  it('rejects a mapping it has no operations for at start-up (config check), naming it', async () => {
    const { configSchema } = await import('../src/config/schema.ts');
    const result = configSchema.safeParse({
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
      server: { ingest: { auth: { type: 'bearer', token: 'token-0123456789abcdef' } } },
      destinations: [{ name: 'crm', type: 'rest', baseUrl: 'https://crm.example.com', auth: { bearer: 't' }, records: { customer: { fields: { email: 'email' } } }, events: {} }],
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toContain('destinations.0.records.customer: no operations for records of "customer": add operations.records.customer (create, update, delete, find)');
  });

  it('sends a record with an API-key header and reads the id from a Location header', async () => {
    const seen: Array<{ headers: Headers; body: string }> = [];
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: new Headers(req.headers as Record<string, string>), body: Buffer.concat(chunks).toString() });
        res.writeHead(201, { location: '/v1/contacts/77' }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const { connector } = createTestConnector(restDestination, {
        baseUrl: `http://127.0.0.1:${port}`,
        auth: { apiKey: { header: 'X-Api-Key', value: 'key-0123456789' } },
        operations: { records: { customer: { create: { method: 'POST', path: '/v1/contacts', idPointer: '/id' } } } },
      } as never);
      const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'c9', fields: { email: 'x@example.com' } })]);
      expect(outcome).toEqual({ ok: true, destinationId: '77' });
      expect(seen[0]!.headers.get('x-api-key')).toBe('key-0123456789');
      expect(seen[0]!.headers.get('content-type')).toBe('application/json');
      expect(JSON.parse(seen[0]!.body)).toEqual({ email: 'x@example.com' });
    } finally {
      server.close();
    }
  });
});
