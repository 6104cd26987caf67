// novomind end to end, on both stores: commercetools messages through ingest and the engine, with the preset's
// default mappings, to the novomind simulator — a customer created there; an order's shipment, cancellation,
// refund and return changes (each delivered twice by the push source) as status notes once each, in order, with
// the installation expiring its tokens mid-run; and the payload log: every call kept with its correlation id,
// no secret and no personal value in clear in it, shown by `ctbridge payloads --record`, purged by retention; and
// status notes batched per window, held in the store itself (shared by processes), sent once, in order.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeExpired } from '../src/engine/retention.ts';
import { startNovomindSimulator, type NovomindSimulator } from '../src/sandbox/novomind/simulator.ts';
import { testStores } from './support/stores.ts';
import { novomindDestination } from '../src/destinations/novomind/index.ts';
import { connectorState } from '../src/store/connector-state.ts';
import { openStore } from '../src/store/store.ts';
import { createTestConnector, eventItem } from './support/connector-test.ts';
import { FakeCommercetools, eventually, messageBase, startTestRuntime, type TestRuntime } from './support/harness.ts';

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-novomind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLIENT = { clientId: 'ctbridge-shop', clientSecret: 'novomind-client-secret-4711' };
const USER = { username: 'shop-integration', password: 'novomind-user-password-0815' };
const ADA = { email: 'ada.lovelace@example.com', firstName: 'Ada', lastName: 'Lovelace', customerNumber: 'K-1001', locale: 'en-GB', addresses: [{ id: 'a1', country: 'GB', city: 'London', phone: '+44 20 7946 0958' }], defaultShippingAddressId: 'a1' };

function ctbridge(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'bin', 'ctbridge.js'), ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A commercetools Message about an order (its number among the user-provided identifiers). */
function orderMessage(orderId: string, orderNumber: string, version: number, type: string, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...messageBase(orderId, version, 'order'), resourceUserProvidedIdentifiers: { orderNumber }, type, ...fields };
}

describe.each(testStores)('novomind on $name', (testStore) => {
  let started: TestRuntime;
  let sim: NovomindSimulator;
  let storeUrl: string;
  const commercetools = new FakeCommercetools();
  const post = (body: unknown) => started.post(body);

  beforeAll(async () => {
    sim = await startNovomindSimulator({ clients: [CLIENT], users: [USER] });
    storeUrl = await testStore.create();
    started = await startTestRuntime({
      storeUrl,
      engine: { leaseMs: 60_000, maxAttempts: 5, lingerMs: 20 },
      fetcher: commercetools,
      closeAfter: [sim],
      // No records: or events: the preset's default mappings. E-mail leaves as it is, phone numbers masked.
      destinations: [{ name: 'service', type: 'novomind', baseUrl: sim.url, auth: { oauth2: { ...CLIENT, ...USER } }, pii: { phone: 'mask' }, payloadLog: { enabled: true, retentionDays: 14 } }],
    });
  });
  afterAll(async () => {
    await started.stop();
    await testStore.cleanup();
  });

  it('creates the customer, and sends shipment, cancellation, refund and return notes once each, in order, across a token expiry', async () => {
    expect((await post(commercetools.upsertCustomer('c-ada', ADA))).status).toBe(202);
    await eventually(() => [...sim.customers.values()].some((c) => c.externalId === 'c-ada'), 'the customer in novomind');
    const customer = [...sim.customers.values()].find((c) => c.externalId === 'c-ada')!;
    expect(customer).toMatchObject({ externalId: 'c-ada', customerNumber: 'K-1001', email: 'ada.lovelace@example.com', firstName: 'Ada', lastName: 'Lovelace', locale: 'en-GB', phone: expect.stringMatching(/^\+\*+58$|\*/) as unknown });
    expect(customer.phone).not.toContain('7946');

    commercetools.upsertOrder('o-1', { orderNumber: 'N-1001', orderState: 'Open', customerId: 'c-ada', customerEmail: ADA.email, lineItems: [] });
    const changes = [
      orderMessage('o-1', 'N-1001', 2, 'OrderShipmentStateChanged', { shipmentState: 'Shipped', oldShipmentState: 'Pending' }),
      orderMessage('o-1', 'N-1001', 3, 'OrderStateChanged', { orderState: 'Cancelled', oldOrderState: 'Open' }),
      orderMessage('o-1', 'N-1001', 4, 'OrderPaymentStateChanged', { paymentState: 'CreditOwed', oldPaymentState: 'Paid' }),
      orderMessage('o-1', 'N-1001', 5, 'ReturnInfoAdded', { returnInfo: { items: [{ id: 'r1', quantity: 2, lineItemId: 'li1', shipmentState: 'Returned', paymentState: 'Initial' }] } }),
    ];
    expect((await post(changes.slice(0, 2))).status).toBe(202);
    await eventually(() => sim.notes.length === 2, 'the first two notes');
    // The installation expires every token early; the next note is refused once and retried with a new token.
    sim.expireTokens();
    // The push source delivers everything again, and the rest.
    expect((await post([...changes.slice(0, 2), ...changes.slice(2)])).status).toBe(202);
    expect((await post(changes.slice(2))).status).toBe(202);
    await eventually(() => sim.notes.length >= 4, 'all four notes');
    // Duplicates are dropped when routed: nothing more comes.
    const idle = sim.requests.length;
    await eventually(async () => (await started.runtime.store.db.selectFrom('events').select('id').execute()).length === 0, 'nothing left to deliver');
    expect(sim.requests.length).toBe(idle);
    expect(sim.notes.map((n) => [n.orderNumber, n.body.kind, n.body.state])).toEqual([
      ['N-1001', 'shipment', 'Shipped'],
      ['N-1001', 'cancellation', 'Cancelled'],
      ['N-1001', 'refund', 'CreditOwed'],
      ['N-1001', 'return', 'ReturnRegistered'],
    ]);
    expect(sim.notes[0]!.body).toMatchObject({ orderId: 'o-1', previousState: 'Pending', text: 'shipment: Shipped (was Pending)' });
    expect(sim.notes[3]!.body).toMatchObject({ returnedQuantity: 2 });
    expect(sim.stats.refused401).toBeGreaterThanOrEqual(1);
    expect(sim.stats.tokensIssued).toBeGreaterThanOrEqual(2);
  });

  it('keeps every call in the payload log with its correlation id, with no secret and no personal value in clear', async () => {
    const rows = await started.runtime.store.db.selectFrom('payload_log').selectAll().orderBy('id').execute();
    const forAda = rows.filter((row) => row.resource_id === 'c-ada');
    expect(forAda.some((row) => row.method === 'POST' && row.url.endsWith('/iMail/api/rest/customers') && row.status === 201)).toBe(true);
    expect(forAda.every((row) => typeof row.correlation_id === 'string' && row.correlation_id !== '')).toBe(true);
    const created = forAda.find((row) => row.url.endsWith('/customers') && row.method === 'POST')!;
    const sent = JSON.parse(created.request_body!) as Record<string, unknown>;
    // As the policy lets it leave (masked phone), and what it passes as it is masked too: never in clear.
    expect(sent).toMatchObject({ externalId: 'c-ada', email: 'a***@example.com', customerNumber: 'K-1001' });
    expect(rows.filter((row) => row.resource_id === 'o-1').map((row) => row.status)).toContain(401);
    // The token requests are kept, without what authenticates them.
    const token = rows.find((row) => row.url.endsWith('/iMail/api/rest/token'))!;
    expect(JSON.parse(token.request_body!)).toMatchObject({ grant_type: 'password', password: '[secret]', client_secret: '[secret]', client_id: 'ctbridge-shop' });
    expect(JSON.parse(token.response_body!)).toMatchObject({ access_token: '[secret]', refresh_token: '[secret]', token_type: 'bearer' });
    const text = JSON.stringify(rows);
    for (const secret of [CLIENT.clientSecret, USER.password, USER.username, 'Bearer ']) expect(text).not.toContain(secret);
    for (const personal of [ADA.email, 'Lovelace', '7946', 'London']) expect(text).not.toContain(personal);
  });

  it('shows a record\'s calls with `ctbridge payloads --record`, and retention purges them', async () => {
    const config = join(dir, `${testStore.name}.yaml`);
    writeFileSync(config, `commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }\nserver: { ingest: { auth: { type: none } } }\nstore: "${storeUrl}"\n`);
    const run = await ctbridge(['payloads', '--record', 'o-1', '--json', '--config', config]);
    expect(run.stderr).toBe('');
    const shown = JSON.parse(run.stdout) as { calls: Array<{ destination: string; itemType: string; method: string; status: number; request: Record<string, unknown> | null; correlationId: string }> };
    const notes = shown.calls.filter((call) => call.method === 'POST' && call.status === 201 && call.request?.kind !== undefined);
    expect(notes.map((call) => call.request!.kind)).toEqual(['shipment', 'cancellation', 'refund', 'return']);
    expect(notes.every((call) => call.destination === 'service' && call.itemType === 'order_status' && call.correlationId)).toBe(true);

    const db = started.runtime.store.db;
    const before = (await db.selectFrom('payload_log').select('id').execute()).length;
    const day = 24 * 3600 * 1000;
    expect((await purgeExpired(db, { stores: {}, payloadLogDays: { service: 14 } }, Date.now() + 13 * day)).payloadEntries).toBe(0);
    expect((await purgeExpired(db, { stores: {}, payloadLogDays: { service: 14 } }, Date.now() + 15 * day)).payloadEntries).toBe(before);
    expect(await db.selectFrom('payload_log').select('id').execute()).toEqual([]);
  });
});

describe.each(testStores)('novomind status notes batched per window, held in the $name store', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('holds the notes of two processes in the store and sends them once, in the order they happened, when the window ends', async () => {
    let clock = Date.UTC(2026, 11, 5, 9, 2, 0);
    const now = () => clock;
    const sim = await startNovomindSimulator({ clients: [CLIENT], users: [USER], now });
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const settings = { baseUrl: sim.url, auth: { oauth2: { ...CLIENT, ...USER } }, statusNotes: { everyMinutes: 10 }, scheduleCheckMs: 20 };
      // Two processes sending to one destination: one store, two connectors.
      const processes = [0, 1].map(() => createTestConnector(novomindDestination, settings as never, { now, name: 'service', state: connectorState(store.db, 'service') }).connector);
      const notes = ['Shipped', 'Delivered', 'Cancelled', 'CreditOwed'].map((state, i) =>
        eventItem({ eventType: 'order_status', resource: { typeId: 'order', id: 'o-7' }, occurredAt: clock - 10_000 + i, payload: { kind: 'order', orderNumber: 'N-7', state, text: state } }),
      );
      // Handed to either process, out of order, one of them twice.
      expect(await processes[1]!.sendEvents([notes[2]!, notes[3]!])).toEqual([{ ok: true }, { ok: true }]);
      expect(await processes[0]!.sendEvents([notes[1]!, notes[0]!, notes[2]!])).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
      const held = await store.db.selectFrom('connector_state').select('key').where('destination', '=', 'service').where('key', 'like', 'held:%').execute();
      expect(held).toHaveLength(4);
      expect(sim.notes).toEqual([]);
      // 09:10: the window ends; both processes look.
      clock = Date.UTC(2026, 11, 5, 9, 10, 0);
      await eventually(() => sim.notes.length === 4, 'the window sent');
      await eventually(async () => (await store.db.selectFrom('connector_state').select('key').where('destination', '=', 'service').execute()).length === 0, 'nothing held');
      expect(sim.notes.map((note) => note.body.state)).toEqual(['Shipped', 'Delivered', 'Cancelled', 'CreditOwed']);
      for (const process of processes) await process.close?.();
    } finally {
      await store.close();
      await sim.close();
    }
  });
});
