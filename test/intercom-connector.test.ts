// The Intercom connector's mapping of items to API calls, in milliseconds: the connector built from its definition
// (test/support/connector-test.ts) sends records, events and merges straight to the strict Intercom simulator,
// and each test asserts on what the simulated workspace holds — attributes created first, users with every mapped
// field and then only what changed, a contact found through the 409 when search lags, tags moved, business units
// as companies with their associates, events with typed metadata and the back-office link (a redelivery harmless,
// two in one second both kept, at most 10 metadata keys), removed values removed,
// a revoked token as a permanent error that says so, statuses classified as the kit says, Intercom's rate-limit
// headers pausing the destination (and a workspace allowance below limitPerMinute said once), an archived contact
// brought back, associates detached, one lead per guest (also among processes sharing the store, and across a
// restart or a crash), two customers sharing an email kept apart. The runtime's part (coalescing, the order context, the timeline, merges of
// guests, erasure, the rate-limit backlog, start-up) is test/intercom.test.ts.
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PermanentError, RateLimitedError, RetryableError } from '../src/destinations/kit/index.ts';
import { LEAD_CLAIM_MS } from '../src/destinations/intercom/contacts.ts';
import { intercomDestination } from '../src/destinations/intercom/index.ts';
import type { ConnectorState } from '../src/destinations/types.ts';
import { startIntercomSimulator, type IntercomSimulator } from '../src/sandbox/intercom/simulator.ts';
import { createEventSeconds } from '../src/store/event-seconds.ts';
import { connectorState } from '../src/store/connector-state.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';
import { createTestConnector, eventItem, mergeItem, recordItem } from './support/connector-test.ts';

const ATTRIBUTES = { tier: 'string', orders: 'integer', last_order_number: 'string', last_order_status: 'string', total_orders: 'integer', lifetime_value_EUR: 'float', lifetime_value_USD: 'float' } as const;

const simulators: IntercomSimulator[] = [];
afterEach(async () => {
  await Promise.all(simulators.splice(0).map((sim) => sim.close()));
});

async function simulator(options: { token?: string; searchLagMs?: number } = {}): Promise<IntercomSimulator> {
  const sim = await startIntercomSimulator({ token: options.token ?? 'intercom-token', searchLagMs: options.searchLagMs ?? 60_000 });
  simulators.push(sim);
  return sim;
}

function connectorFor(sim: IntercomSimulator, settings: Record<string, unknown> = {}, options: Parameters<typeof createTestConnector>[2] = {}) {
  return createTestConnector(intercomDestination, { token: sim.token, baseUrl: sim.url, attributes: ATTRIBUTES, orderLink: 'https://backoffice.example.com/orders/{id}', ...settings }, options);
}

const usersOf = (sim: IntercomSimulator) => [...sim.workspace.contacts.values()].filter((c) => c.role === 'user');
const tagNamesOf = (sim: IntercomSimulator, contactId: string) => sim.workspace.contacts.get(contactId)!.tags.map((id) => sim.workspace.tags.get(id)!.name);

/** A customer as the runtime's customer mapping gives it before any order. */
const customerFields = (fields: Record<string, unknown>) => ({ tags: null, last_order_number: null, last_order_status: null, total_orders: 0, lifetime_value: {}, ...fields });

describe('the Intercom connector', () => {
  it('creates the custom attributes, then the user with every mapped field, and updates only what changed', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    await connector.prepare!();
    expect([...sim.workspace.attributes.values()].map((a) => `${a.name}:${a.data_type}`)).toEqual(['tier:string', 'orders:integer', 'last_order_number:string', 'last_order_status:string', 'total_orders:integer', 'lifetime_value_EUR:float', 'lifetime_value_USD:float']);

    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c1', fields: customerFields({ email: 'ada@example.com', name: 'Ada Lovelace', tier: 'gold', orders: 1 }) })]);
    expect(usersOf(sim)).toHaveLength(1);
    const user = usersOf(sim)[0]!;
    expect(user).toMatchObject({ external_id: 'c1', email: 'ada@example.com', name: 'Ada Lovelace', custom_attributes: { tier: 'gold', orders: 1, total_orders: 0, last_order_number: null } });
    expect(created).toEqual({ ok: true, destinationId: user.id, personId: user.id });

    const [updated] = await connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: user.id, fields: { orders: 31 }, record: customerFields({ email: 'ada@example.com', name: 'Ada Lovelace', tier: 'gold', orders: 31 }) })]);
    expect(updated).toEqual({ ok: true, destinationId: user.id, personId: user.id });
    expect(sim.stats.byOperation.get('UpdateContact')).toBe(1);
    expect(sim.stats.lastBody.get('UpdateContact')).toEqual({ custom_attributes: { orders: 31 } });
    expect(usersOf(sim)).toHaveLength(1);
    expect(usersOf(sim)[0]!.custom_attributes).toMatchObject({ tier: 'gold', orders: 31 });
    expect(sim.stats.invalid).toBe(0);
  });

  it('creates the attributes before the first record send when start-up could not reach Intercom', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    sim.faults.push({ kind: 'status', status: 503 });
    await expect(connector.prepare!()).rejects.toBeInstanceOf(RetryableError);
    expect(sim.workspace.attributes.size).toBe(0);
    const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'c6', fields: customerFields({ email: 'x@example.com', tier: 'gold' }) })]);
    expect(outcome).toMatchObject({ ok: true });
    expect(sim.workspace.attributes.size).toBe(7);
    expect(usersOf(sim)[0]!.custom_attributes).toMatchObject({ tier: 'gold' });
  });

  it('refuses to prepare when Intercom has a mapped attribute with another type, saying which', async () => {
    const sim = await simulator();
    sim.workspace.createAttribute({ name: 'tier', model: 'contact', data_type: 'integer' });
    const { connector } = connectorFor(sim);
    const failure = await connector.prepare!().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PermanentError);
    expect((failure as Error).message).toBe('the Intercom attribute "tier" exists as integer, but attributes.tier says string: change one of them');
  });

  it('finds a contact Intercom already has (search lags) through the 409, and updates it instead of creating another', async () => {
    const sim = await simulator({ searchLagMs: 600_000 });
    const existing = sim.workspace.createContact({ role: 'user', external_id: 'c5', email: 'old@example.com' });
    const { connector } = connectorFor(sim);
    const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'c5', fields: customerFields({ email: 'new@example.com', name: 'Noor' }) })]);
    expect(outcome).toEqual({ ok: true, destinationId: existing.id, personId: existing.id });
    expect(usersOf(sim)).toHaveLength(1);
    expect(usersOf(sim)[0]).toMatchObject({ id: existing.id, email: 'new@example.com', name: 'Noor' });
    expect(sim.stats.byOperation.get('CreateContact')).toBe(1);
    expect(sim.stats.byOperation.get('SearchContacts')).toBeUndefined();
  });

  it('creates the contact again when the one it knew was deleted in Intercom', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'c10', destinationId: 'gone-contact-id', fields: { name: 'Rae' }, record: customerFields({ email: 'rae@example.com', name: 'Rae' }) })]);
    expect(usersOf(sim)).toHaveLength(1);
    expect(usersOf(sim)[0]).toMatchObject({ external_id: 'c10', email: 'rae@example.com', name: 'Rae' });
    expect(outcome).toEqual({ ok: true, destinationId: usersOf(sim)[0]!.id, personId: usersOf(sim)[0]!.id });
  });

  it('keeps the customer group as a tag: created when missing, moved when the group changes', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [first] = await connector.sendRecords([recordItem({ resourceId: 'c7', fields: customerFields({ email: 'tag@example.com', tags: 'VIP' }) })]);
    const id = (first as { destinationId: string }).destinationId;
    expect(tagNamesOf(sim, id)).toEqual(['VIP']);
    const [moved] = await connector.sendRecords([recordItem({ resourceId: 'c7', destinationId: id, fields: { tags: 'Regular' }, record: customerFields({ email: 'tag@example.com', tags: 'Regular' }), previous: customerFields({ email: 'tag@example.com', tags: 'VIP' }) })]);
    expect(moved).toMatchObject({ ok: true });
    expect(tagNamesOf(sim, id)).toEqual(['Regular']);
    expect([...sim.workspace.tags.values()].map((t) => t.name).sort()).toEqual(['Regular', 'VIP']);
    expect(sim.stats.byOperation.get('detachTagFromContact')).toBe(1);
    // Only the tags changed: no contact update went out.
    expect(sim.stats.byOperation.get('UpdateContact')).toBeUndefined();
  });

  it('makes a business unit a company with its associates\' contacts attached once they are in Intercom, and detached when they leave', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const unit = (associates: string[]) => recordItem({ resourceId: 'bu-1', resourceType: 'business-unit', recordType: 'company', fields: { company_id: 'acme', name: 'ACME GmbH', associates } });
    await connector.sendRecords([recordItem({ resourceId: 'b1', fields: customerFields({ email: 'b1@example.com' }) })]);
    // b2 has no contact yet: the company waits for it (a retry), b1 is attached meanwhile.
    const [early] = await connector.sendRecords([unit(['b1', 'b2'])]);
    expect(early).toMatchObject({ ok: false, error: { name: 'RetryableError', message: 'company acme: customer b2 is not in Intercom yet' } });

    await connector.sendRecords([recordItem({ resourceId: 'b2', fields: customerFields({ email: 'b2@example.com' }) })]);
    const [outcome] = await connector.sendRecords([unit(['b1', 'b2'])]);
    const [company] = [...sim.workspace.companies.values()];
    expect(company).toMatchObject({ company_id: 'acme', name: 'ACME GmbH' });
    expect(outcome).toEqual({ ok: true, destinationId: company!.id });
    expect(usersOf(sim).map((c) => c.companies)).toEqual([[company!.id], [company!.id]]);
    expect(sim.workspace.companies.size).toBe(1);

    // b1 leaves the unit: detached; b2 stays.
    const [removed] = await connector.sendRecords([{ ...unit(['b2']), previous: { company_id: 'acme', name: 'ACME GmbH', associates: ['b1', 'b2'] } }]);
    expect(removed).toEqual({ ok: true, destinationId: company!.id });
    expect(usersOf(sim).map((c) => `${c.external_id}:${c.companies.join(',')}`)).toEqual(['b1:', `b2:${company!.id}`]);
    expect(sim.stats.byOperation.get('detachContactFromACompany')).toBe(1);
    // An associate whose contact is gone from Intercom has nothing to detach.
    sim.workspace.deleteContact(usersOf(sim)[1]!.id);
    const [gone] = await connector.sendRecords([{ ...unit([]), previous: { company_id: 'acme', name: 'ACME GmbH', associates: ['b2'] } }]);
    expect(gone).toEqual({ ok: true, destinationId: company!.id });
  });

  it('sends an event once however often it is delivered, with typed metadata: the total a monetary amount, the back-office link a rich link', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c2', fields: customerFields({ email: 'grace@example.com', name: 'Grace' }) })]);
    const userId = (created as { destinationId: string }).destinationId;
    const event = eventItem({
      eventType: 'placed-order',
      resource: { typeId: 'order', id: 'o-42' },
      payload: { order_number: 'ON-42', total: { amount: 4200, currency: 'EUR' }, email: 'grace@example.com' },
      person: { key: 'customer:c2', destinationId: userId },
    });
    for (let i = 0; i < 5; i += 1) expect(await connector.sendEvents([event])).toEqual([{ ok: true }]);
    expect(sim.workspace.events).toHaveLength(1);
    expect(sim.workspace.events[0]).toEqual({
      event_name: 'placed-order',
      created_at: Math.floor(event.occurredAt! / 1000),
      contactId: userId,
      metadata: { order_url: { url: 'https://backoffice.example.com/orders/o-42', value: 'ON-42' }, order_number: 'ON-42', total: { amount: 4200, currency: 'EUR' } },
      metadataTypes: { order_url: 'rich_link', order_number: 'string', total: 'monetary_amount' },
    });
  });

  it('keeps two events of one name and contact in the same second: the later one a second on, its true second in the metadata', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c3', fields: customerFields({ email: 'ann@example.com' }) })]);
    const person = { key: 'customer:c3', destinationId: (created as { destinationId: string }).destinationId };
    const at = Date.UTC(2026, 2, 1, 9, 0, 0, 120);
    const second = Math.floor(at / 1000);
    const order = (n: number, ms: number) => eventItem({ eventType: 'placed-order', resource: { typeId: 'order', id: `o-${n}` }, payload: { order_number: `ON-${n}` }, occurredAt: at + ms, person });
    const [one, two, three] = [order(1, 0), order(2, 300), order(3, 700)];
    // Two in one batch (sent concurrently), the third in a later one; then all three delivered again.
    expect(await connector.sendEvents([one, two])).toEqual([{ ok: true }, { ok: true }]);
    expect(await connector.sendEvents([three])).toEqual([{ ok: true }]);
    expect(await connector.sendEvents([one, two, three])).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    const events = [...sim.workspace.events].sort((a, b) => a.created_at - b.created_at);
    expect(events.map((e) => e.created_at)).toEqual([second, second + 1, second + 2]);
    expect(events.map((e) => e.metadata.order_number).slice(2)).toEqual(['ON-3']);
    expect(events.map((e) => e.metadata.occurred_at_date)).toEqual([undefined, second, second]);
    expect(events[1]!.metadataTypes.occurred_at_date).toBe('date');
    // Another event name, or another contact, in that second takes the second itself.
    await connector.sendEvents([eventItem({ eventType: 'order-state-changed', payload: {}, occurredAt: at, person })]);
    expect(sim.workspace.events.filter((e) => e.event_name === 'order-state-changed').map((e) => e.created_at)).toEqual([second]);
    // One message that is two events (two mappings): each is an event of its own name, the second claimed per name.
    await connector.sendEvents([eventItem({ eventType: 'order-total', idempotencyKey: one.idempotencyKey, occurredAt: at, person })]);
    await connector.sendEvents([eventItem({ eventType: 'order-total', occurredAt: at, person })]);
    expect(sim.workspace.events.filter((e) => e.event_name === 'order-total').map((e) => e.created_at)).toEqual([second, second + 1]);
    expect(sim.stats.byOperation.get('createDataEvent')).toBe(9);
  });

  it('shares the seconds events took between connectors on one store, as processes sharing it do', async () => {
    const sim = await simulator();
    const store = openStore('sqlite::memory:');
    await store.migrate();
    const eventSeconds = createEventSeconds(store.db, 'intercom');
    const [a, b] = [connectorFor(sim, {}, { eventSeconds }).connector, connectorFor(sim, {}, { eventSeconds }).connector];
    const [created] = await a.sendRecords([recordItem({ resourceId: 'c11', fields: customerFields({ email: 'sam@example.com' }) })]);
    const person = { key: 'customer:c11', destinationId: (created as { destinationId: string }).destinationId };
    const at = Date.UTC(2026, 2, 1, 10, 0, 0);
    await a.sendEvents([eventItem({ eventType: 'placed-order', occurredAt: at, person })]);
    await b.sendEvents([eventItem({ eventType: 'placed-order', occurredAt: at + 500, person })]);
    expect(sim.workspace.events.map((e) => e.created_at)).toEqual([at / 1000, at / 1000 + 1]);
    await store.close();
  });

  it('sends at most 10 metadata keys, the first in mapping order, and config check refuses a mapping with more', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c12', fields: customerFields({ email: 'max@example.com' }) })]);
    const payload: Record<string, unknown> = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i + 1}`, i + 1]));
    // An object that is neither a monetary amount nor a rich link flattens into keys of its own: 12 in all with the link.
    payload.dimensions = { width: 3, height: 4, depth: 5 };
    const [outcome] = await connector.sendEvents([eventItem({ eventType: 'placed-order', resource: { typeId: 'order', id: 'o-7' }, payload, person: { key: 'customer:c12', destinationId: (created as { destinationId: string }).destinationId } })]);
    expect(outcome).toEqual({ ok: true });
    const sent = (sim.stats.lastBody.get('createDataEvent') as { metadata: Record<string, unknown> }).metadata;
    expect(Object.keys(sent)).toEqual(['order_url', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'dimensions_width']);
    expect(sim.workspace.events[0]!.metadata).toEqual(sent);
    expect(sim.workspace.events[0]!.metadataTypes.k1).toBe('number');

    const settings = intercomDestination.settings.parse({ token: 't', attributes: {}, orderLink: 'https://backoffice.example.com/orders/{id}' });
    const fields = ['email', ...Array.from({ length: 10 }, (_, i) => `k${i + 1}`)];
    expect(intercomDestination.checkFields!(settings, { records: {}, recordSources: {}, events: { 'placed-order': fields } })).toEqual([
      { block: 'events', mapping: 'placed-order', field: 'k10', message: 'an Intercom event keeps at most 10 metadata keys and ignores the rest (one is the order link): this mapping has 10; leave out k10' },
    ]);
    expect(intercomDestination.checkFields!(settings, { records: {}, recordSources: {}, events: { 'placed-order': fields.slice(0, 10) } })).toEqual([]);
  });

  it('removes a removed value: null for a field or declared attribute sent before, nothing for what was never sent', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const before = customerFields({ email: 'zoe@example.com', name: 'Zoe', phone: '+4930123456', tier: 'gold', orders: 4 });
    const [created] = await connector.sendRecords([recordItem({ resourceId: 'c13', fields: before })]);
    const id = (created as { destinationId: string }).destinationId;
    expect(sim.workspace.contacts.get(id)).toMatchObject({ phone: '+4930123456', custom_attributes: { tier: 'gold', orders: 4 } });
    // What the snapshot holds of a personal field is a digest: it was sent, so its removal is sent too.
    const previous = { ...before, phone: 'digest:abc' };
    const now = customerFields({ email: 'zoe@example.com', name: 'Zoe', orders: 4 });
    await connector.sendRecords([recordItem({ resourceId: 'c13', destinationId: id, fields: { phone: null, tier: null }, record: now, changed: ['phone', 'tier'], previous })]);
    expect(sim.stats.lastBody.get('UpdateContact')).toEqual({ phone: null, custom_attributes: { tier: null } });
    expect(sim.workspace.contacts.get(id)).toMatchObject({ phone: null, name: 'Zoe', custom_attributes: { tier: null, orders: 4 } });

    // After an unconfirmed send the whole record goes, and what the last confirmed one held is removed too.
    await connector.sendRecords([recordItem({ resourceId: 'c13', destinationId: id, fields: customerFields({ email: 'zoe@example.com' }), record: customerFields({ email: 'zoe@example.com' }), previous: now })]);
    expect(sim.workspace.contacts.get(id)).toMatchObject({ name: null, custom_attributes: { orders: null } });
    expect(sim.stats.invalid).toBe(0);
  });

  it('names an event by its mapped event_name, sends none for a null one, and finds a customer by external id', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    await connector.sendRecords([recordItem({ resourceId: 'c9', fields: customerFields({ email: 'tim@example.com' }) })]);
    const payment = (eventName: string | null) => eventItem({ eventType: 'payment', resource: { typeId: 'payment', id: 'p9' }, payload: { event_name: eventName, amount: { amount: 1999, currency: 'EUR' } }, person: { key: 'customer:c9', destinationId: undefined } });
    const outcomes = await connector.sendEvents([payment('payment-captured'), payment(null), payment('payment-refunded')]);
    expect(outcomes).toEqual([{ ok: true }, { ok: true, skipped: true }, { ok: true }]);
    expect(sim.workspace.events.map((e) => e.event_name).sort()).toEqual(['payment-captured', 'payment-refunded']);
    expect(sim.workspace.events.every((e) => e.contactId === usersOf(sim)[0]!.id)).toBe(true);
    // Not an order: no back-office link.
    expect(sim.workspace.events[0]!.metadata).toEqual({ amount: { amount: 1999, currency: 'EUR' } });
    expect(sim.workspace.events[0]!.metadataTypes).toEqual({ amount: 'monetary_amount' });
  });

  it('gives a guest\'s event a lead by its email (the same lead for the next one), and refuses a guest event without one', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const guestOrder = () => eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-1', email: 'lin@example.com' }, person: { key: 'guest:store:digest', destinationId: undefined } });
    const [first, second] = [await connector.sendEvents([guestOrder()]), await connector.sendEvents([guestOrder()])].map(([outcome]) => outcome);
    const leads = [...sim.workspace.contacts.values()];
    expect(leads.map((c) => `${c.role}:${c.email}`)).toEqual(['lead:lin@example.com']);
    expect(first).toEqual({ ok: true, personId: leads[0]!.id });
    expect(second).toEqual({ ok: true, personId: leads[0]!.id });
    expect(sim.workspace.events.map((e) => e.contactId)).toEqual([leads[0]!.id, leads[0]!.id]);

    const [refused] = await connector.sendEvents([eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-9' } })]);
    expect(refused).toMatchObject({ ok: false, error: { name: 'PermanentError', message: expect.stringContaining('a guest\'s event needs an email field') as unknown } });
  });

  it('creates one lead for a guest\'s orders delivered together, and another for another guest', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const guestOrder = (n: number, guest: string, email: string) => eventItem({ eventType: 'placed-order', resource: { typeId: 'order', id: `go-${n}` }, payload: { order_number: `ON-${n}`, email }, person: { key: guest, destinationId: undefined } });
    const outcomes = await connector.sendEvents([guestOrder(1, 'guest:store:mia', 'mia@example.com'), guestOrder(2, 'guest:store:mia', 'mia@example.com'), guestOrder(3, 'guest:store:mia', 'mia@example.com'), guestOrder(4, 'guest:store:leo', 'leo@example.com')]);
    const leads = [...sim.workspace.contacts.values()];
    expect(leads.map((c) => `${c.role}:${c.email}`).sort()).toEqual(['lead:leo@example.com', 'lead:mia@example.com']);
    const mia = leads.find((c) => c.email === 'mia@example.com')!;
    const leo = leads.find((c) => c.email === 'leo@example.com')!;
    expect(outcomes).toEqual([{ ok: true, personId: mia.id }, { ok: true, personId: mia.id }, { ok: true, personId: mia.id }, { ok: true, personId: leo.id }]);
    expect(sim.workspace.events.map((e) => `${e.metadata.order_number as string}:${e.contactId}`).sort()).toEqual([`ON-1:${mia.id}`, `ON-2:${mia.id}`, `ON-3:${mia.id}`, `ON-4:${leo.id}`]);
    expect(sim.stats.byOperation.get('CreateContact')).toBe(2);
  });

  it('gives a guest\'s retried event the lead created before its first attempt failed', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const order = eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-7', email: 'ivy@example.com' }, person: { key: 'guest:store:ivy', destinationId: undefined } });
    // The lead is created, then the event itself fails.
    sim.faultFor = (method, path) => (method === 'POST' && path === '/events' ? { kind: 'status', status: 503 } : undefined);
    const [failed] = await connector.sendEvents([order]);
    expect(failed).toMatchObject({ ok: false, error: { name: 'RetryableError', status: 503 } });
    sim.faultFor = undefined;
    const [retried] = await connector.sendEvents([order]);
    const leads = [...sim.workspace.contacts.values()];
    expect(leads.map((c) => `${c.role}:${c.email}`)).toEqual(['lead:ivy@example.com']);
    expect(retried).toEqual({ ok: true, personId: leads[0]!.id });
    expect(sim.workspace.events.map((e) => e.contactId)).toEqual([leads[0]!.id]);

    // The lead deleted in Intercom before the guest's next order reached the identity table: a retry makes another.
    sim.workspace.deleteContact(leads[0]!.id);
    const next = eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-8', email: 'ivy@example.com' }, person: { key: 'guest:store:ivy', destinationId: undefined } });
    const [missing] = await connector.sendEvents([next]);
    expect(missing).toMatchObject({ ok: false, error: { name: 'RetryableError', status: 404 } });
    const [again] = await connector.sendEvents([next]);
    const lead = [...sim.workspace.contacts.values()][0]!;
    expect(lead).toMatchObject({ role: 'lead', email: 'ivy@example.com' });
    expect(again).toEqual({ ok: true, personId: lead.id });
    expect(sim.workspace.events.map((e) => e.contactId)).toEqual([leads[0]!.id, lead.id]);
  });

  it('retries an event whose customer has no contact yet', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [outcome] = await connector.sendEvents([eventItem({ eventType: 'placed-order', person: { key: 'customer:not-yet', destinationId: undefined } })]);
    expect(outcome).toMatchObject({ ok: false, error: { name: 'RetryableError', status: 404, message: expect.stringContaining('(the contact does not exist yet)') as unknown } });
    expect(sim.workspace.events).toHaveLength(0);
  });

  it('merges a guest\'s lead into the user; nothing for a guest who never reached Intercom; a retry while the user is missing', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const lead = sim.workspace.createContact({ role: 'lead', email: 'lin@example.com' });
    sim.workspace.createEvent({ event_name: 'placed-order', created_at: 1, id: lead.id });
    const user = sim.workspace.createContact({ role: 'user', external_id: 'c3', email: 'lin@example.com' });
    const outcomes = await connector.mergePeople!([mergeItem(lead.id, user.id), mergeItem(undefined, user.id), mergeItem('some-lead', undefined)]);
    expect(outcomes[0]).toEqual({ ok: true });
    expect(outcomes[1]).toEqual({ ok: true });
    expect(outcomes[2]).toMatchObject({ ok: false, error: { name: 'RetryableError', message: 'the registered customer is not in Intercom yet' } });
    expect([...sim.workspace.contacts.values()].map((c) => `${c.role}:${c.external_id}`)).toEqual(['user:c3']);
    expect(sim.workspace.events.map((e) => e.contactId)).toEqual([user.id]);
    expect(sim.stats.byOperation.get('MergeContact')).toBe(1);
  });

  it('archives, or with onDelete: delete deletes, the contact of a deleted customer; one already gone is done', async () => {
    const sim = await simulator();
    const archived = sim.workspace.createContact({ role: 'user', external_id: 'c8', email: 'gone@example.com' });
    const deleted = sim.workspace.createContact({ role: 'user', external_id: 'c11', email: 'deleted@example.com' });
    const remove = (resourceId: string, destinationId: string | undefined) => recordItem({ resourceId, operation: 'delete', destinationId, fields: {} });
    expect(await connectorFor(sim).connector.sendRecords([remove('c8', archived.id), remove('c12', undefined)])).toEqual([{ ok: true }, { ok: true }]);
    expect(sim.workspace.contacts.get(archived.id)!.archived).toBe(true);
    expect(sim.stats.byOperation.get('ArchiveContact')).toBe(1);
    const deleting = connectorFor(sim, { onDelete: 'delete' }).connector;
    expect(await deleting.sendRecords([remove('c11', deleted.id), remove('c8', archived.id), remove('c13', 'gone-contact-id')])).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(sim.workspace.contacts.has(deleted.id)).toBe(false);
    // Intercom deletes an archived contact too.
    expect(sim.workspace.contacts.has(archived.id)).toBe(false);
  });

  it('brings back a contact an admin archived, with the whole record, whether ctbridge knew its id or not', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const [first] = await connector.sendRecords([recordItem({ resourceId: 'c20', fields: customerFields({ email: 'zoe@example.com', name: 'Zoe', tier: 'silver', tags: 'VIP' }) })]);
    const id = (first as { destinationId: string }).destinationId;
    sim.workspace.archiveContact(id);
    // Only the name changed in commercetools; the tier changed earlier while the contact was archived (never applied).
    const record = customerFields({ email: 'zoe@example.com', name: 'Zoe Q', tier: 'gold', tags: 'VIP' });
    const [known] = await connector.sendRecords([recordItem({ resourceId: 'c20', destinationId: id, fields: { name: 'Zoe Q' }, record, previous: customerFields({ email: 'zoe@example.com', name: 'Zoe', tier: 'silver', tags: 'VIP' }) })]);
    expect(known).toEqual({ ok: true, destinationId: id, personId: id });
    expect(usersOf(sim)).toHaveLength(1);
    expect(sim.workspace.contacts.get(id)).toMatchObject({ archived: false, external_id: 'c20', name: 'Zoe Q', custom_attributes: { tier: 'gold' } });
    expect(tagNamesOf(sim, id)).toEqual(['VIP']);
    expect(sim.stats.byOperation.get('UnarchiveContact')).toBe(1);

    // Archived again, and ctbridge has no id for it (the create finds it through the archived-contact 409).
    sim.workspace.archiveContact(id);
    const [unknown] = await connector.sendRecords([recordItem({ resourceId: 'c20', fields: customerFields({ email: 'zoe@example.com', name: 'Zoe R', tier: 'gold' }) })]);
    expect(unknown).toEqual({ ok: true, destinationId: id, personId: id });
    expect(sim.workspace.contacts.get(id)).toMatchObject({ archived: false, name: 'Zoe R' });
    expect(usersOf(sim)).toHaveLength(1);
    expect(sim.stats.byOperation.get('UnarchiveContact')).toBe(2);
    expect(sim.stats.invalid).toBe(0);
  });

  it('keeps two customers sharing an email as two users, each with its own data', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim);
    const outcomes = await connector.sendRecords([
      recordItem({ resourceId: 'c-ann', fields: customerFields({ email: 'family@example.com', name: 'Ann', tier: 'gold' }) }),
      recordItem({ resourceId: 'c-ben', fields: customerFields({ email: 'family@example.com', name: 'Ben', tier: 'bronze' }) }),
    ]);
    const byExternal = new Map(usersOf(sim).map((user) => [user.external_id, user]));
    expect(usersOf(sim)).toHaveLength(2);
    expect(byExternal.get('c-ann')).toMatchObject({ email: 'family@example.com', name: 'Ann', custom_attributes: { tier: 'gold' } });
    expect(byExternal.get('c-ben')).toMatchObject({ email: 'family@example.com', name: 'Ben', custom_attributes: { tier: 'bronze' } });
    expect(outcomes).toEqual([
      { ok: true, destinationId: byExternal.get('c-ann')!.id, personId: byExternal.get('c-ann')!.id },
      { ok: true, destinationId: byExternal.get('c-ben')!.id, personId: byExternal.get('c-ben')!.id },
    ]);
    // An update of one leaves the other as it was.
    await connector.sendRecords([recordItem({ resourceId: 'c-ben', destinationId: byExternal.get('c-ben')!.id, fields: { name: 'Benjamin' }, record: customerFields({ email: 'family@example.com', name: 'Benjamin', tier: 'bronze' }) })]);
    expect(sim.workspace.contacts.get(byExternal.get('c-ann')!.id)).toMatchObject({ name: 'Ann', custom_attributes: { tier: 'gold' } });
    expect(sim.workspace.contacts.get(byExternal.get('c-ben')!.id)).toMatchObject({ name: 'Benjamin' });
  });

  it('turns a revoked token into a permanent error that says so, and sends once the token is replaced', async () => {
    const sim = await simulator({ token: 'old-token' });
    const { connector } = connectorFor(sim);
    // Started (the attributes made) with the token that is then revoked.
    await connector.prepare!();
    sim.token = 'new-token';
    const item = recordItem({ resourceId: 'c4', fields: customerFields({ email: 'kim@example.com', name: 'Kim' }) });
    const [refused] = await connector.sendRecords([item]);
    expect(refused).toMatchObject({ ok: false, error: { name: 'PermanentError', status: 401 } });
    expect((refused as { error: Error }).error.message).toMatch(/Intercom rejected the access token \(401: unauthorized: Access Token Invalid\); replace the token and replay/);
    expect(usersOf(sim)).toHaveLength(0);

    const [sent] = await connectorFor(sim, { token: 'new-token' }).connector.sendRecords([item]);
    expect(sent).toMatchObject({ ok: true });
    expect(usersOf(sim)[0]).toMatchObject({ external_id: 'c4', email: 'kim@example.com' });
  });

  it('classifies statuses as the kit does: 408, 423, 425 and 5xx retried, other 4xx permanent, a reset connection retried', async () => {
    const sim = await simulator();
    const { connector } = connectorFor(sim, { attributes: {} });
    const outcomeFor = async (fault: IntercomSimulator['faults'][number]) => {
      sim.faults.push(fault);
      const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'c-status', fields: { email: 'status@example.com' } })]);
      return outcome as { ok: false; error: Error & { status?: number } };
    };
    for (const status of [408, 423, 425, 500, 503]) {
      const { error } = await outcomeFor({ kind: 'status', status });
      expect(error, String(status)).toBeInstanceOf(RetryableError);
      expect(error).not.toBeInstanceOf(RateLimitedError);
      expect(error.status).toBe(status);
    }
    for (const status of [400, 404, 422]) expect((await outcomeFor({ kind: 'status', status })).error, String(status)).toBeInstanceOf(PermanentError);
    const reset = await outcomeFor({ kind: 'reset' });
    expect(reset.error).toBeInstanceOf(RetryableError);
    expect(reset.error.message).toMatch(/^creating contact c-status: network error/);
    expect(usersOf(sim)).toHaveLength(0);
  });

  it('pauses the destination until Intercom\'s window resets when it is spent or answers 429, and retries no sooner', async () => {
    // The simulator's clock stands still at the start of a window a minute ahead: every call falls in that window.
    // One reading of the clock: two could straddle a millisecond and give a start one short of the window's.
    const ahead = Date.now() + 60_000;
    const windowStart = ahead - (ahead % 10_000);
    const sim = await startIntercomSimulator({ token: 'intercom-token', limitPerMinute: 12, now: () => windowStart });
    simulators.push(sim);
    const { connector, limiter } = connectorFor(sim, { attributes: {} });
    // Two calls per 10-second window: the second answer says none are left.
    await connector.sendRecords([recordItem({ resourceId: 'w1', fields: { email: 'w1@example.com' } })]);
    expect(limiter.pausedUntil).toBe(0);
    await connector.sendRecords([recordItem({ resourceId: 'w2', fields: { email: 'w2@example.com' } })]);
    expect(limiter.pausedUntil).toBe(windowStart + 10_000);

    const before = Date.now();
    const [limited] = await connector.sendRecords([recordItem({ resourceId: 'w3', fields: { email: 'w3@example.com' } })]);
    const after = Date.now();
    const error = (limited as { ok: false; error: RateLimitedError }).error;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.message).toBe('creating contact w3: Intercom\'s rate limit was reached');
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(windowStart + 10_000 - after);
    expect(error.retryAfterMs).toBeLessThanOrEqual(windowStart + 10_000 - before);
    expect(limiter.pausedUntil).toBe(windowStart + 10_000);
    expect(sim.stats.rateLimited).toBe(1);
    expect(usersOf(sim).map((c) => c.external_id)).toEqual(['w1', 'w2']);
  });

  it('says once when the workspace allows fewer calls than limitPerMinute paces at, from X-RateLimit-Limit', async () => {
    const sim = await startIntercomSimulator({ token: 'intercom-token', limitPerMinute: 600 });
    simulators.push(sim);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const { connector } = connectorFor(sim, { attributes: {}, limitPerMinute: 1_000 }, { logger });
    await connector.sendRecords([recordItem({ resourceId: 'a1', fields: { email: 'a1@example.com' } }), recordItem({ resourceId: 'a2', fields: { email: 'a2@example.com' } })]);
    expect(lines.map((line) => line.msg)).toEqual(['Intercom allows 100 calls per 10 seconds (600 a minute), fewer than limitPerMinute (1000): set limitPerMinute to 600 or less, or calls will be answered 429 and wait']);
    expect(lines[0]).toMatchObject({ perWindow: 100, perMinute: 600, limitPerMinute: 1000 });

    // Within the allowance: nothing said.
    lines.length = 0;
    const { connector: fitting } = connectorFor(sim, { attributes: {}, limitPerMinute: 600 }, { logger });
    await fitting.sendRecords([recordItem({ resourceId: 'a3', fields: { email: 'a3@example.com' } })]);
    expect(lines).toEqual([]);
  });

  it('counts every call it makes, each after taking a slot from the limiter', async () => {
    const sim = await simulator();
    const test = connectorFor(sim);
    await test.connector.sendRecords([recordItem({ resourceId: 'n1', fields: customerFields({ email: 'n1@example.com', tags: ['A', 'B'] }) })]);
    // Attributes: a list and 7 creations; the contact; two tags created and attached.
    expect(sim.stats.calls).toBe(1 + 7 + 1 + 4);
    expect(test.calls).toBe(sim.stats.calls);
    expect(test.limiter.acquired).toBe(sim.stats.calls);
  });
});

// Every process sending to the destination shares the store's connector state: one lead per guest among them all.
describe.each(testStores)('guest leads shared through the store on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  const GUEST = 'guest:store:mia-digest';
  const guestOrder = (n: number) => eventItem({ eventType: 'placed-order', resource: { typeId: 'order', id: `mo-${n}` }, payload: { order_number: `MO-${n}`, email: 'mia@example.com' }, person: { key: GUEST, destinationId: undefined } });
  const leadsOf = (sim: IntercomSimulator) => [...sim.workspace.contacts.values()].filter((c) => c.role === 'lead');

  async function sharedState(): Promise<{ state: ConnectorState; close: () => Promise<void> }> {
    const store = openStore(await testStore.create());
    await store.migrate();
    return { state: connectorState(store.db, 'intercom'), close: () => store.close() };
  }

  it('makes one lead while two processes send the guest\'s orders, the second retrying until the first recorded it', async () => {
    const sim = await simulator();
    const { state, close } = await sharedState();
    try {
      // The first process stops right after claiming the guest, until released.
      let claimed!: () => void;
      const claimedYet = new Promise<void>((resolve) => (claimed = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const pausing: ConnectorState = { ...state, add: async (entry) => ((await state.add(entry)) ? (claimed(), await released, true) : false) };
      const first = connectorFor(sim, {}, { state: pausing }).connector;
      const second = connectorFor(sim, {}, { state }).connector;

      const firstSend = first.sendEvents([guestOrder(1)]);
      await claimedYet;
      const [waiting] = await second.sendEvents([guestOrder(2)]);
      expect(waiting).toMatchObject({ ok: false, error: { name: 'RetryableError', message: 'another process is creating this guest\'s Intercom lead' } });
      expect(leadsOf(sim)).toHaveLength(0);
      release();
      const [sent] = await firstSend;
      const [retried] = await second.sendEvents([guestOrder(2)]);

      const [lead] = leadsOf(sim);
      expect(leadsOf(sim)).toHaveLength(1);
      expect([sent, retried]).toEqual([{ ok: true, personId: lead!.id }, { ok: true, personId: lead!.id }]);
      expect(sim.workspace.events.map((e) => `${e.metadata.order_number as string}:${e.contactId}`)).toEqual([`MO-1:${lead!.id}`, `MO-2:${lead!.id}`]);
      expect((await state.get([`guest-lead/${GUEST}`])).get(`guest-lead/${GUEST}`)).toEqual({ leadId: lead!.id });

      // Merged into the user: the identity table has the user from now on, the store forgets the lead.
      const user = sim.workspace.createContact({ role: 'user', external_id: 'c-mia', email: 'mia@example.com' });
      const [merged] = await first.mergePeople!([{ ...mergeItem(lead!.id, user.id), from: { person: GUEST, destinationId: lead!.id } }]);
      expect(merged).toEqual({ ok: true });
      expect((await state.get([`guest-lead/${GUEST}`])).size).toBe(0);
    } finally {
      await close();
    }
  });

  it('finds after a restart the lead made before, makes another when Intercom lost it, and takes over the claim of a process that died', async () => {
    const sim = await simulator();
    const { state, close } = await sharedState();
    let now = Date.UTC(2026, 11, 5, 12);
    const process = (overrides: Partial<ConnectorState> = {}) => connectorFor(sim, {}, { state: { ...state, ...overrides }, now: () => now }).connector;
    try {
      // The lead is made, the event fails; the process restarts (nothing in memory) and retries.
      sim.faultFor = (method, path) => (method === 'POST' && path === '/events' ? { kind: 'status', status: 503 } : undefined);
      expect((await process().sendEvents([guestOrder(3)]))[0]).toMatchObject({ ok: false, error: { status: 503 } });
      sim.faultFor = undefined;
      const [retried] = await process().sendEvents([guestOrder(3)]);
      const [lead] = leadsOf(sim);
      expect(leadsOf(sim)).toHaveLength(1);
      expect(retried).toEqual({ ok: true, personId: lead!.id });

      // Deleted in Intercom before the identity table had it: the 404 forgets it in the store, the retry makes another.
      sim.workspace.deleteContact(lead!.id);
      expect((await process().sendEvents([guestOrder(4)]))[0]).toMatchObject({ ok: false, error: { name: 'RetryableError', status: 404 } });
      expect((await state.get([`guest-lead/${GUEST}`])).size).toBe(0);
      const [again] = await process().sendEvents([guestOrder(4)]);
      const [second] = leadsOf(sim);
      expect(second!.id).not.toBe(lead!.id);
      expect(again).toEqual({ ok: true, personId: second!.id });

      // A process that claimed another guest and died before creating the lead: the others wait, then take over.
      const other = (n: number) => eventItem({ eventType: 'placed-order', payload: { order_number: `ZO-${n}`, email: 'zoe@example.com' }, person: { key: 'guest:store:zoe-digest', destinationId: undefined } });
      const died = process({ add: async (entry) => (await state.add(entry), Promise.reject(new Error('the process died'))) });
      expect((await died.sendEvents([other(1)]))[0]).toMatchObject({ ok: false });
      expect((await process().sendEvents([other(1)]))[0]).toMatchObject({ ok: false, error: { message: 'another process is creating this guest\'s Intercom lead' } });
      now += LEAD_CLAIM_MS + 1;
      const [takenOver] = await process().sendEvents([other(1)]);
      const zoe = leadsOf(sim).filter((c) => c.email === 'zoe@example.com');
      expect(zoe).toHaveLength(1);
      expect(takenOver).toEqual({ ok: true, personId: zoe[0]!.id });
      expect(sim.stats.byOperation.get('CreateContact')).toBe(3);

      // An event that names no person has only the email to know its guest by: never a key in the store.
      const [anonymous] = await process().sendEvents([eventItem({ eventType: 'placed-order', payload: { order_number: 'NO-1', email: 'Nameless@example.com' } })]);
      expect(anonymous).toMatchObject({ ok: true });
      expect((await state.list('guest-lead/')).map((entry) => entry.key)).toEqual([`guest-lead/${GUEST}`, 'guest-lead/guest:store:zoe-digest']);
    } finally {
      await close();
    }
  });
});
