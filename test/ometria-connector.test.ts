// The Ometria connector without a runtime, against the strict simulator: what each item becomes in Ometria
// (contacts by customer id with their collection, orders linked to the contact, guest contacts, products with
// variants and listings, custom events keyed by the source event id), how records are packed into pushes (one
// type, at most 100, an oversized record failing alone), consent decided against what Ometria has (timestamps,
// suppression), the statuses and headers Ometria answers specially, and the follow-up on asynchronous validation
// with an injected clock. Engine behaviour on both stores is test/ometria.test.ts.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { ometriaDestination, createOmetriaConnection } from '../src/destinations/ometria/index.ts';
import { pushRecords } from '../src/destinations/ometria/push.ts';
import { ometriaSettings } from '../src/destinations/ometria/settings.ts';
import type { OmetriaClient } from '../src/destinations/ometria/client.ts';
import { createValidationWatcher } from '../src/destinations/ometria/validation.ts';
import { createDestinationFetch, memoryConnectorState, PermanentError, RateLimitedError, type LateFailure } from '../src/destinations/kit/index.ts';
import { startOmetriaSimulator, type OmetriaSimulator } from '../src/sandbox/ometria/simulator.ts';
import { createTestConnector, eventItem, inMemoryStoreEventSeconds, recordItem, unlimitedLimiter } from './support/connector-test.ts';

const API_KEY = 'ometria-test-key';
let sim: OmetriaSimulator;

/** Settings as a user writes them; validation checks are driven by the test (the timer is far off). */
const settings = (more: Record<string, unknown> = {}) => ({ apiKey: API_KEY, baseUrl: sim.url, collection: 'shop', gatherMs: 0, validation: { firstCheckMs: 3_600_000, maxCheckMs: 3_600_000, settleMs: 60_000 }, ...more });

function connector(more: Record<string, unknown> = {}, options: Parameters<typeof createTestConnector>[2] = {}) {
  return createTestConnector(ometriaDestination, settings(more), options);
}

const contactItem = (id: string, fields: Record<string, unknown>, more: Partial<Parameters<typeof recordItem>[0]> = {}) => recordItem({ resourceId: id, recordType: 'contact', resourceType: 'customer', fields, ...more });
const at = (iso: string) => iso;

beforeAll(async () => {
  sim = await startOmetriaSimulator({ apiKey: API_KEY, requestsPerSecond: 1_000 });
});
afterAll(() => sim.close());
beforeEach(() => {
  for (const records of Object.values(sim.records)) records.clear();
  sim.errors.length = 0;
  sim.pushes.length = 0;
  sim.faults = [];
  sim.invalidWhen = undefined;
  sim.processingPaused = false;
  sim.apiKey = API_KEY;
});

describe('the Ometria connector', () => {
  it('sends a customer as a contact: id and customer_id the customer id, the collection, no ctbridge-only fields', async () => {
    const { connector: c } = connector();
    const outcomes = await c.sendRecords([contactItem('c-1', { email: 'ada@example.com', firstname: 'Ada', store_ids: ['uk'], date_of_birth: null, consent_email: true, consent_email_at: at('2026-01-01T10:00:00.000Z') })]);
    expect(outcomes).toEqual([{ ok: true }]);
    expect(sim.backlog()).toBe(0);
    expect(sim.contact('c-1', 'shop')).toEqual({
      '@type': 'contact',
      id: 'c-1',
      '@collection': 'shop',
      customer_id: 'c-1',
      email: 'ada@example.com',
      firstname: 'Ada',
      store_ids: ['uk'],
      marketing_optin: 'EXPLICITLY_OPTEDIN',
      timestamp_subscribed: '2026-01-01T10:00:00.000Z',
    });
    expect(sim.errors).toEqual([]);
  });

  it('opts a deleted customer out as of now, over the opt-in Ometria had', async () => {
    const { connector: c } = connector();
    await c.sendRecords([contactItem('c-d', { email: 'd@example.com', consent_email: true, consent_email_at: '2026-01-01T00:00:00.000Z' })]);
    expect(sim.contact('c-d')!.marketing_optin).toBe('EXPLICITLY_OPTEDIN');
    await c.sendRecords([contactItem('c-d', {}, { operation: 'delete' })]);
    expect(sim.contact('c-d')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT', email: 'd@example.com' });
    expect(Date.parse(sim.contact('c-d')!.timestamp_unsubscribed as string)).toBeGreaterThan(Date.parse('2026-01-01T00:00:00.000Z'));
  });

  it('a when: block\'s target sends the contact to another collection', async () => {
    const { connector: c } = connector();
    await c.sendRecords([contactItem('c-2', { email: 'bo@example.com' }, { target: { collection: 'brand-b' } })]);
    expect(sim.contact('c-2', 'brand-b')).toMatchObject({ '@collection': 'brand-b', id: 'c-2' });
    expect(sim.contact('c-2', 'shop')).toBeUndefined();
  });

  it('packs 250 contacts and 30 orders into pushes of one type and at most 100 records', async () => {
    const { connector: c } = connector();
    const contacts = Array.from({ length: 250 }, (_, i) => contactItem(`c-${i}`, { email: `p${i}@example.com` }));
    const orders = Array.from({ length: 30 }, (_, i) => recordItem({ resourceId: `o-${i}`, recordType: 'order', resourceType: 'order', fields: { currency: 'EUR', grand_total: 10 + i }, person: { key: `customer:c-${i}`, destinationId: undefined } }));
    const outcomes = await c.sendRecords([...contacts, ...orders]);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const pushes = sim.pushes.filter((p) => p.status === 200);
    expect(pushes.map((p) => [p.type, p.records])).toEqual([
      ['contact', 100],
      ['contact', 100],
      ['contact', 50],
      ['order', 30],
    ]);
    expect(sim.records.contact.size).toBe(250);
    expect(sim.records.order.get('o-7')).toMatchObject({ grand_total: 17, customer: { id: 'c-7' } });
  });

  it('fills pushes with the records of every batch in flight: three batches of 40 contacts go in two pushes', async () => {
    const { connector: c } = connector({ gatherMs: 100 });
    const batch = (n: number) => Array.from({ length: 40 }, (_, i) => contactItem(`b${n}-${i}`, { email: `b${n}-${i}@example.com` }));
    const outcomes = await Promise.all([c.sendRecords(batch(1)), c.sendRecords(batch(2)), c.sendRecords(batch(3))]);
    expect(outcomes.flat().every((o) => o.ok)).toBe(true);
    expect(sim.pushes.map((p) => p.records)).toEqual([100, 20]);
    expect(sim.records.contact.size).toBe(120);
  });

  it('dead-letters a record over 60 KB alone, with the reason; its batch-mates are delivered', async () => {
    const { connector: c } = connector();
    const big = contactItem('c-big', { email: 'big@example.com', properties: { notes: 'x'.repeat(70 * 1024) } });
    const outcomes = await c.sendRecords([contactItem('c-a', { email: 'a@example.com' }), big, contactItem('c-b', { email: 'b@example.com' })]);
    expect(outcomes[0]).toEqual({ ok: true });
    expect(outcomes[2]).toEqual({ ok: true });
    expect(outcomes[1]!.ok).toBe(false);
    const error = (outcomes[1] as { error: Error }).error;
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(/at most 61440 bytes \(60 KB\)/);
    expect([...sim.records.contact.values()].map((r) => r.id).sort()).toEqual(['c-a', 'c-b']);
  });

  it('an opt-out is never overwritten by an older opt-in, whatever the arrival order; a newer opt-in wins', async () => {
    const state = memoryConnectorState();
    const { connector: c } = connector({}, { state });
    const consent = (optin: boolean, iso: string) => contactItem('c-9', { consent_email: optin, consent_email_at: iso, consent_sms: optin, consent_sms_at: iso });
    await c.sendRecords([consent(false, '2026-03-01T00:00:00.000Z')]);
    await c.sendRecords([consent(true, '2026-02-01T00:00:00.000Z')]);
    expect(sim.contact('c-9')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: '2026-03-01T00:00:00.000Z', channels: { sms: { allow_marketing: false, dt_updated_marketing: '2026-03-01T00:00:00.000Z' } } });
    expect(sim.contact('c-9')!.timestamp_subscribed).toBeUndefined();
    // The same state again is not a second (un)subscribe; the newer opt-in is sent.
    const pushesBefore = sim.pushes.length;
    await c.sendRecords([consent(true, '2026-04-01T00:00:00.000Z')]);
    expect(sim.pushes.length - pushesBefore).toBe(1);
    expect(sim.contact('c-9')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDIN', timestamp_subscribed: '2026-04-01T00:00:00.000Z', channels: { sms: { allow_marketing: true, dt_updated_marketing: '2026-04-01T00:00:00.000Z' } } });
    expect(state.entries.get('consent:c-9')?.value).toEqual({ email: { optin: true, at: Date.parse('2026-04-01T00:00:00.000Z') }, sms: { optin: true, at: Date.parse('2026-04-01T00:00:00.000Z') } });
  });

  it('a suppressed contact is only ever sent opted out: from its own record, and from any later record naming an opt-in', async () => {
    const state = memoryConnectorState();
    const { connector: c } = connector({}, { state });
    await c.sendRecords([contactItem('c-s', { email: 's@example.com', consent_email: true, consent_email_at: '2026-05-02T00:00:00.000Z', consent_sms: true, consent_sms_at: '2026-05-02T00:00:00.000Z', suppressed: true, suppressed_at: '2026-05-01T00:00:00.000Z' })]);
    expect(sim.contact('c-s')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: '2026-05-01T00:00:00.000Z', channels: { sms: { allow_marketing: false } } });
    // A mapping that writes Ometria's fields itself (a backfill, another record type) cannot opt them in either.
    await c.sendRecords([contactItem('c-s', { marketing_optin: 'EXPLICITLY_OPTEDIN', timestamp_subscribed: '2026-06-01T00:00:00.000Z', '@force_optin': true, channels: { sms: { allow_marketing: true } } })]);
    const contact = sim.contact('c-s')!;
    expect(contact.marketing_optin).toBe('EXPLICITLY_OPTEDOUT');
    expect(contact['@force_optin']).toBeUndefined();
    expect(contact.timestamp_subscribed).toBeUndefined();
    expect(contact.channels).toMatchObject({ sms: { allow_marketing: false } });
    // Lifted in commercetools (a newer time): a newer opt-in goes through again.
    await c.sendRecords([contactItem('c-s', { suppressed: false, suppressed_at: '2026-07-01T00:00:00.000Z', consent_email: true, consent_email_at: '2026-07-02T00:00:00.000Z' })]);
    expect(sim.contact('c-s')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDIN', timestamp_subscribed: '2026-07-02T00:00:00.000Z' });
  });

  it('links an order to its customer\'s contact, and a guest\'s order to a guest contact with the order\'s e-mail', async () => {
    const { connector: c } = connector();
    const customer = { email: 'g@example.com', firstname: 'Gil' };
    await c.sendRecords([
      recordItem({ resourceId: 'o-1', recordType: 'order', resourceType: 'order', fields: { currency: 'EUR', grand_total: 5, customer: { email: 'reg@example.com' } }, person: { key: 'customer:c-77', destinationId: undefined } }),
      recordItem({ resourceId: 'o-2', recordType: 'order', resourceType: 'order', fields: { currency: 'EUR', grand_total: 7, customer }, person: { key: 'guest:uk:d1g3st', destinationId: undefined } }),
    ]);
    expect(sim.records.order.get('o-1')).toMatchObject({ customer: { id: 'c-77', email: 'reg@example.com' } });
    expect(sim.records.order.get('o-2')).toMatchObject({ customer: { id: 'guest:uk:d1g3st', email: 'g@example.com' } });
    expect(sim.contact('guest:uk:d1g3st', 'shop')).toEqual({ '@type': 'contact', id: 'guest:uk:d1g3st', '@collection': 'shop', customer_id: 'guest:uk:d1g3st', email: 'g@example.com', firstname: 'Gil' });
    // A deleted order becomes invalid in Ometria (the Push API deletes nothing).
    await c.sendRecords([recordItem({ resourceId: 'o-1', recordType: 'order', resourceType: 'order', operation: 'delete', fields: {} })]);
    expect(sim.records.order.get('o-1')).toMatchObject({ status: 'cancelled', is_valid: false, grand_total: 5 });
  });

  it('sends a product\'s variants as children with is_variant and parent_id', async () => {
    const { connector: c } = connector();
    const listings = [{ store: 'uk', currency: 'GBP', price: 9 }];
    await c.sendRecords([recordItem({ resourceId: 'p-1', recordType: 'product', resourceType: 'product', fields: { title: 'Shirt', listings, variants: [{ id: 'S-2', sku: 'S-2', listings, image_url: null }, { sku: 'S-3' }] } })]);
    expect(sim.records.product.get('p-1')).toEqual({ '@type': 'product', id: 'p-1', title: 'Shirt', listings, is_variant: false });
    expect(sim.records.product.get('S-2')).toEqual({ '@type': 'product', id: 'S-2', sku: 'S-2', listings, is_variant: true, parent_id: 'p-1' });
    expect(sim.records.product.get('p-1-2')).toMatchObject({ sku: 'S-3', is_variant: true, parent_id: 'p-1' });
  });

  it('sends events as custom events whose id is the source event id: a retry makes no second event', async () => {
    const now = Date.UTC(2026, 5, 1);
    const { connector: c } = connector({}, { now: () => now });
    const event = eventItem({ eventType: 'order_placed', idempotencyKey: 'msg-123', payload: { event_type: 'order_placed', order_id: 'o-1', total: 12.5 }, person: { key: 'customer:c-1', destinationId: undefined } });
    // Ometria may still refuse it until the settle time and a read of its errors after that (two reads apart, at most).
    const settlesAt = now + 60_000 + 2 * 3_600_000;
    expect(await c.sendEvents([event])).toEqual([{ ok: true, settlesAt }]);
    expect(await c.sendEvents([event])).toEqual([{ ok: true, settlesAt }]);
    expect(sim.records.custom_event.size).toBe(1);
    expect(sim.records.custom_event.get('msg-123')).toEqual({ '@type': 'custom_event', id: 'msg-123', timestamp: new Date(event.occurredAt!).toISOString(), event_type: 'order_placed', identity_account_id: 'c-1', properties: { order_id: 'o-1', total: 12.5 } });
    // What Ometria would refuse later is refused now, naming it; a guest's event goes by e-mail.
    const [tooLong, guest] = await c.sendEvents([eventItem({ eventType: 'x', payload: { event_type: 'a-custom-event-type-name-over-32-chars' }, person: { key: 'customer:c-1', destinationId: undefined } }), eventItem({ eventType: 'viewed', payload: { email: 'g@example.com' } })]);
    expect(tooLong!.ok).toBe(false);
    expect(!tooLong!.ok && tooLong!.error.message).toMatch(/under 32 characters/);
    expect(guest).toEqual({ ok: true, settlesAt });
    expect([...sim.records.custom_event.values()].find((e) => e.event_type === 'viewed')).toMatchObject({ identity_email: 'g@example.com' });
  });

  it('a wrong or missing key is a permanent error that says so', async () => {
    sim.apiKey = 'rotated';
    const { connector: c } = connector();
    const [outcome] = await c.sendRecords([contactItem('c-k', { email: 'k@example.com' })]);
    expect(outcome).toMatchObject({ ok: false, error: { status: 403 } });
    expect(!outcome!.ok && outcome!.error.message).toMatch(/Ometria rejected the API key \(403\)/);
    expect((outcome as { error: Error }).error).toBeInstanceOf(PermanentError);
    const [missing] = await createTestConnector(ometriaDestination, { ...settings(), apiKey: ' ' }).connector.sendRecords([contactItem('c-k', {})]);
    expect(missing).toMatchObject({ ok: false, error: { status: 401 } });
  });

  it('a 429 pauses everyone for its Retry-After and is retried; a nearly full backlog pauses before Ometria refuses', async () => {
    const limiter = unlimitedLimiter();
    const { connector: c } = connector({}, { limiter });
    sim.faults.push({ kind: 'status', status: 429 });
    const before = Date.now();
    const [limited] = await c.sendRecords([contactItem('c-r', { email: 'r@example.com' })]);
    expect(limited).toMatchObject({ ok: false });
    expect((limited as { error: Error }).error).toBeInstanceOf(RateLimitedError);
    expect(limiter.pausedUntil).toBeGreaterThanOrEqual(before);

    // 49,500 records wait in Ometria's backlog: the answer says so, and every process pauses.
    sim.processingPaused = true;
    const filler = Array.from({ length: 495 }, (_, n) => Array.from({ length: 100 }, (_, i) => ({ '@type': 'custom_event', id: `f-${n}-${i}`, event_type: 'x', identity_account_id: 'c' })));
    for (const body of filler) await fetch(`${sim.url}/v2/push`, { method: 'POST', headers: { 'x-ometria-auth': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const pausedBefore = limiter.pausedUntil;
    const [ok] = await c.sendRecords([contactItem('c-q', { email: 'q@example.com' })]);
    expect(ok).toEqual({ ok: true });
    expect(limiter.pausedUntil).toBeGreaterThan(Math.max(pausedBefore, Date.now()));
    // Full: 429, not accepted.
    const full = await c.sendRecords(Array.from({ length: 500 }, (_, i) => contactItem(`c-f${i}`, {})));
    expect(full.filter((o) => o.ok)).toHaveLength(400);
    expect(full.filter((o) => !o.ok).every((o) => !o.ok && o.error instanceof RateLimitedError)).toBe(true);
    expect(sim.backlog()).toBeLessThanOrEqual(50_000);
  });

  it('a record Ometria reports invalid becomes a late failure naming it with Ometria\'s message; the others count as delivered after the settle time', async () => {
    let now = Date.UTC(2026, 5, 1);
    const state = memoryConnectorState();
    const failures: LateFailure[] = [];
    const connection = createOmetriaConnection(ometriaSettings.parse(settings()), {
      fetch: createDestinationFetch({ limiter: unlimitedLimiter() }),
      logger: pino({ level: 'silent' }),
      eventSeconds: inMemoryStoreEventSeconds('ometria'),
      name: 'ometria',
      state,
      now: () => now,
      reportLateFailures: (list) => {
        failures.push(...list);
        return Promise.resolve();
      },
    });
    try {
      sim.invalidWhen = (type, record) => (type === 'contact' && record.id === 'c-bad' ? { field: 'lastname', message: 'not a valid value' } : undefined);
      const items = ['c-good-1', 'c-bad', 'c-good-2'].map((id) => contactItem(id, { email: `${id}@example.com`, lastname: 'X' }));
      expect(await pushRecords.performBatch(connection, items)).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
      expect([...state.entries.keys()].filter((k) => k.startsWith('pending:')).sort()).toEqual(['pending:contact:c-bad', 'pending:contact:c-good-1', 'pending:contact:c-good-2']);

      expect(await connection.validation.check()).toBe(2);
      expect(failures).toEqual([{ kind: 'record', recordType: 'contact', resourceId: 'c-bad', correlationId: items[1]!.correlationId, sentAt: now, error: 'Ometria: not a valid value (at root > contact["c-bad"] > lastname)' }]);
      // The same error still listed is not reported again.
      expect(await connection.validation.check()).toBe(2);
      expect(failures).toHaveLength(1);
      // Not reported within the settle time: delivered for good, nothing waits.
      now += 60_000;
      expect(await connection.validation.check()).toBe(0);
      expect([...state.entries.keys()].filter((k) => k.startsWith('pending:'))).toEqual([]);
      expect(failures).toHaveLength(1);
      expect(sim.contact('c-good-1')).toBeDefined();
      expect(sim.contact('c-bad')).toBeUndefined();
    } finally {
      connection.validation.close();
    }
  });

  it('reads the error list in the pauses of a backlog: while pushes use the request budget, at most every maxCheckMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let reads = 0;
    let busy = true;
    // The watcher's view of the client: only the error list is read (the budget it competes for is the pushes').
    const client: OmetriaClient = {
      settings: ometriaSettings.parse(settings({ validation: { firstCheckMs: 5_000, maxCheckMs: 60_000, settleMs: 600_000 } })),
      logger: pino({ level: 'silent' }),
      state: memoryConnectorState(),
      now: () => Date.now(),
      reportLateFailures: () => Promise.resolve(),
      push: () => Promise.reject(new Error('not pushed here')),
      listErrors: () => {
        reads += 1;
        return Promise.resolve([]);
      },
    };
    const watcher = createValidationWatcher(client, { busy: () => busy });
    try {
      await watcher.pushed([{ type: 'contact', id: 'c-1', waiting: { kind: 'record', recordType: 'contact', resourceId: 'c-1', correlationId: 'x', sentAt: Date.now() } }]);
      await vi.advanceTimersByTimeAsync(59_000);
      expect(reads).toBe(0);
      // A whole maxCheckMs since the last read: read even though pushes go on.
      await vi.advanceTimersByTimeAsync(6_000);
      expect(reads).toBe(1);
      // The backlog is gone: the next due read happens at once when due (the wait doubled to 10 s).
      busy = false;
      await vi.advanceTimersByTimeAsync(10_000);
      expect(reads).toBe(2);
    } finally {
      watcher.close();
      vi.useRealTimers();
    }
  });

  it('the default mappings compile into a configuration by naming only the collection and stores', async () => {
    const { configSchema } = await import('../src/config/schema.ts');
    const parsed = configSchema.parse({
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'x', clientSecret: 'y' },
      server: { ingest: { auth: { type: 'none' } } },
      destinations: [{ name: 'marketing', type: 'ometria', apiKey: 'k', collection: 'brand-a', stores: ['uk'], currencies: ['GBP'] }],
    });
    expect(Object.keys(parsed.destinations[0]!.records)).toEqual(['contact', 'order', 'product']);
    expect(Object.keys(parsed.destinations[0]!.events)).toEqual(['order_placed', 'order_state', 'order_payment', 'order_returned']);
  });
});
