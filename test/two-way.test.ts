// Two-way sync end to end, on both stores: the commercetools emulator (written back through the official SDK), the
// monday simulator sending its webhooks as monday does (challenge, JWT signed with the app's signing secret), and
// ctbridge between them. A monday-owned status edited in monday reaches the commercetools custom field once and is
// never overwritten by later commercetools updates, and the Subscription message of that write sends nothing to
// monday; a shared field's own echo is not written back; concurrent edits of a shared field converge to the rule's
// winner on both sides; a 409 on write-back is re-read, re-decided and retried to success; a forged or unsigned
// webhook is refused with 401 and stores nothing; an inbound change for an unknown item becomes a dead letter with
// the reason (and is replayed); a generic HMAC-signed inbound (the Momentis contract's kind) writes back too.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CommercetoolsClient } from '../src/commercetools/client.ts';
import type { CommercetoolsWriter } from '../src/commercetools/writeback.ts';
import { signMondayJwt } from '../src/server/inbound-auth.ts';
import { ADMIN_TOKEN } from './support/harness.ts';
import { testStores } from './support/stores.ts';
import { SIGNING_SECRET, announce, createCustomer as createCustomerOf, inboundDone, itemOf, readCustomer, twoWayPerTest, until, updateCustomer, writebacks, type TwoWayWithHooks } from './support/two-way-setup.ts';
import { useEmulator } from './support/emulator.ts';

const HMAC_SECRET = 'loyalty-shared-hmac-secret-0123456789';
const TYPE_KEY = 'ctbridge-customer';

// What `ctbridge setup` does: the custom Type of the written-back fields.
const env = useEmulator({
  projectKey: 'test-project',
  types: [
    { type: TYPE_KEY, resourceTypeId: 'customer', field: 'mondayStage', fieldType: 'String' },
    { type: TYPE_KEY, resourceTypeId: 'customer', field: 'tier', fieldType: 'String' },
  ],
});

type Setup = TwoWayWithHooks;

/**
 * The monday board with a monday-owned stage and a shared tier (lastWriteWins), both written back to custom fields,
 * monday's webhooks registered (held until released when `hold`), and a generic HMAC-signed inbound beside it.
 */
function setUp(perTest: ReturnType<typeof twoWayPerTest>, options: { hold?: boolean; mondayClockAheadMs?: number; wrapWriter?: (writer: CommercetoolsWriter, ct: CommercetoolsClient) => CommercetoolsWriter } = {}): Promise<Setup> {
  return perTest.start({
    now: () => Date.now() + (options.mondayClockAheadMs ?? 0),
    extraColumns: [{ id: 'tier', type: 'text' }],
    webhooks: { hold: options.hold ?? false },
    ...(options.wrapWriter && { wrapWriter: options.wrapWriter }),
    destination: (board) => ({
      boards: { customer: { board: board.id, externalIdColumn: 'ext_id', columns: { email: 'email', stage: 'stage', tier: 'tier' } } },
      records: {
        customer: {
          fields: {
            name: { template: '{{firstName}} {{lastName}}' },
            email: 'email',
            stage: { path: 'custom.fields.mondayStage', pipe: [{ default: { value: 'Lead' } }] },
            tier: 'custom.fields.tier',
          },
          ownership: {
            stage: { owner: 'destination', writeBack: { customField: 'mondayStage', type: TYPE_KEY } },
            tier: { owner: 'shared', conflict: 'lastWriteWins', writeBack: { customField: 'tier', type: TYPE_KEY } },
          },
        },
      },
    }),
    otherDestinations: (sim) => [
      {
        name: 'loyalty',
        type: 'http',
        url: `${sim.url}/unused`,
        inbound: { auth: { type: 'hmac', secret: HMAC_SECRET, header: 'X-Signature' } },
        records: {
          member: { source: 'customer', fields: { tier: 'custom.fields.tier' }, ownership: { tier: { owner: 'destination', writeBack: { customField: 'tier', type: TYPE_KEY } } } },
        },
      },
    ],
  });
}

/** A customer, with custom fields of the written-back fields' Type when given. */
const createCustomer = (s: Setup, fields: Record<string, string> = {}) => createCustomerOf(s, Object.keys(fields).length > 0 ? { type: TYPE_KEY, fields } : undefined);

/**
 * Delivers the held webhooks and announces each new commercetools version (as the Subscription would), round after
 * round, until neither side has anything left to say.
 */
async function settle(s: Setup, customerId: string): Promise<void> {
  let announced = (await readCustomer(s, customerId)).version;
  for (let round = 0; round < 10; round += 1) {
    await s.hooks.release();
    await until(s, () => inboundDone(s), 'inbound done');
    const latest = await readCustomer(s, customerId);
    if (latest.version !== announced) {
      announced = latest.version;
      await announce(s, latest, 'CustomerCustomFieldSet');
    } else {
      await until(s, async () => {
        const row = await s.runtime.store.db.selectFrom('records').select(['processed_seq', 'dirty_seq']).where('destination', '=', 'crm').where('resource_id', '=', customerId).executeTakeFirst();
        return row !== undefined && Number(row.processed_seq) >= Number(row.dirty_seq);
      }, 'record sync idle');
    }
    await s.hooks.flush();
    if (s.hooks.pending.length === 0 && (await inboundDone(s)) && (await readCustomer(s, customerId)).version === announced) return;
  }
  throw new Error('the two sides did not settle within 10 rounds');
}

describe.each(testStores)('two-way sync on $name', (store) => {
  const perTest = twoWayPerTest(store, env);

  it('writes a monday-owned status to commercetools once, never overwrites it from commercetools, and sends nothing back for its own write', async () => {
    const setup = await setUp(perTest);
    const customer = await createCustomer(setup);
    await announce(setup, customer, 'CustomerCreated');
    const item = itemOf(setup, customer.id as string)!;
    expect(item.values.get('stage')?.text).toBe('Lead');

    // A salesperson moves the deal on in monday.
    setup.sim.account.setByHand(item.id, 'stage', { label: 'Customer' });
    await until(setup, async () => (await readCustomer(setup, customer.id as string)).custom?.fields.mondayStage === 'Customer', 'the stage written back');
    await until(setup, () => inboundDone(setup), 'inbound done');
    const written = await readCustomer(setup, customer.id as string);
    expect(written.custom?.fields).toEqual({ mondayStage: 'Customer' });

    // The Subscription delivers the write-back's change: nothing goes to monday.
    const before = setup.sim.stats.mutations;
    await announce(setup, written, 'CustomerCustomTypeSet');
    expect(setup.sim.stats.mutations).toBe(before);

    // commercetools changes on: the name reaches monday, the stage monday owns is never overwritten — not even when
    // someone sets the custom field in commercetools.
    const renamed = await updateCustomer(setup, customer.id as string, [{ action: 'setFirstName', firstName: 'Augusta' }, { action: 'setCustomField', name: 'mondayStage', value: 'Churned' }]);
    await announce(setup, renamed, 'CustomerFirstNameSet');
    expect(itemOf(setup, customer.id as string)!.name).toBe('Augusta Lovelace');
    expect(itemOf(setup, customer.id as string)!.values.get('stage')?.text).toBe('Customer');

    // monday's webhook for ctbridge's rename (it fires for API changes too) and the whole history: one write-back.
    await setup.hooks.flush();
    await until(setup, () => inboundDone(setup), 'inbound done');
    const audit = await writebacks(setup, customer.id as string);
    expect(audit.filter((entry) => entry.outcome === 'ok')).toHaveLength(1);
    expect(audit[0]!.detail).toMatch(/written to commercetools \(sourceOfTruth: destination; old \S+, new \S+; 0 conflicts/);
    expect(audit[0]!.detail).not.toContain('Customer');
    expect(setup.writes).toBe(1);
  });

  it('does not write back the echo of its own write to a shared field, and converges concurrent edits to the later one', async () => {
    // monday's clock runs ahead of commercetools': its edit below is the later one.
    const setup = await setUp(perTest, { hold: true, mondayClockAheadMs: 1_000 });
    const customer = await createCustomer(setup, { tier: 'silver' });
    await announce(setup, customer, 'CustomerCreated');
    const item = itemOf(setup, customer.id as string)!;
    expect(item.values.get('tier')?.text).toBe('silver');

    // commercetools changes the tier: monday gets it, and monday's webhook about that API write is an echo.
    const gold = await updateCustomer(setup, customer.id as string, [{ action: 'setCustomField', name: 'tier', value: 'gold' }]);
    await announce(setup, gold, 'CustomerCustomFieldSet');
    expect(itemOf(setup, customer.id as string)!.values.get('tier')?.text).toBe('gold');
    expect(setup.hooks.pending).toHaveLength(1);
    await setup.hooks.release();
    await until(setup, () => inboundDone(setup), 'inbound done');
    expect(setup.writes).toBe(0);
    expect((await readCustomer(setup, customer.id as string)).version).toBe(gold.version);

    // Both sides edit the tier; monday's edit is the later one (lastWriteWins), and its webhook arrives after the
    // commercetools change was already sent over it.
    const platinum = await updateCustomer(setup, customer.id as string, [{ action: 'setCustomField', name: 'tier', value: 'platinum' }]);
    setup.sim.account.setByHand(item.id, 'tier', 'diamond');
    await announce(setup, platinum, 'CustomerCustomFieldSet');
    // Then everything runs its course: webhooks delivered, write-backs announced by the Subscription, until quiet.
    await settle(setup, customer.id as string);
    expect((await readCustomer(setup, customer.id as string)).custom?.fields.tier).toBe('diamond');
    expect(itemOf(setup, customer.id as string)!.values.get('tier')?.text).toBe('diamond');
  });

  it('re-reads, re-decides and retries a write-back that commercetools refuses with 409', async () => {
    let raced = false;
    const setup = await setUp(perTest, {
      wrapWriter: (writer, ct) => ({
        ...writer,
        read: (typeId, id) => writer.read(typeId, id),
        update: async (typeId, id, version, actions) => {
          if (!raced) {
            // Someone else changes the customer between ctbridge's read and its write.
            raced = true;
            await ct.api.customers().withId({ ID: id }).post({ body: { version, actions: [{ action: 'setLastName', lastName: 'Byron' }] } }).execute();
          }
          return writer.update(typeId, id, version, actions);
        },
      }),
    });
    const customer = await createCustomer(setup);
    await announce(setup, customer, 'CustomerCreated');
    setup.sim.account.setByHand(itemOf(setup, customer.id as string)!.id, 'stage', { label: 'Churned' });
    await until(setup, async () => (await readCustomer(setup, customer.id as string)).custom?.fields.mondayStage === 'Churned', 'the stage written back');
    await until(setup, () => inboundDone(setup), 'inbound done');
    const now = await readCustomer(setup, customer.id as string);
    expect(now.lastName).toBe('Byron');
    expect(raced).toBe(true);
    const audit = await writebacks(setup, customer.id as string);
    expect(audit.map((entry) => entry.outcome)).toEqual(['ok']);
    expect(audit[0]!.detail).toContain('1 conflicts re-decided');
  });

  it('refuses forged and unsigned webhooks with 401 and stores nothing; answers the challenge', async () => {
    const setup = await setUp(perTest);
    const url = `${setup.runtime.url}/v1/inbound/crm`;
    const body = JSON.stringify({ event: { type: 'update_column_value', boardId: Number(setup.board.id), pulseId: 1, columnId: 'stage', columnType: 'color', value: { label: { text: 'Churned' } }, changedAt: 1, triggerUuid: 'forged' } });
    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const forged = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: signMondayJwt({ exp: Math.floor(Date.now() / 1000) + 60 }, 'not-the-signing-secret-0123456789') }, body });
    const expired = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: signMondayJwt({ exp: Math.floor(Date.now() / 1000) - 1 }, SIGNING_SECRET) }, body });
    for (const response of [unsigned, forged, expired]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(((await response.json()) as { type: string }).type).toBe('urn:ctbridge:problem:unauthorized');
    }
    expect(await setup.runtime.store.db.selectFrom('inbound').selectAll().execute()).toEqual([]);
    const challenge = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge: 'abc123' }) });
    expect(await challenge.json()).toEqual({ challenge: 'abc123' });
    const malformed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"event":' });
    expect(malformed.status).toBe(400);
    const unknown = await fetch(`${setup.runtime.url}/v1/inbound/nowhere`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(unknown.status).toBe(404);
    expect(await setup.runtime.store.db.selectFrom('inbound').selectAll().execute()).toEqual([]);
  });

  it('makes an inbound change for an unknown item a dead letter with the reason, deduplicates redeliveries, and replays', async () => {
    const setup = await setUp(perTest);
    const body = JSON.stringify({ event: { type: 'update_column_value', boardId: Number(setup.board.id), pulseId: 424242, columnId: 'stage', columnType: 'color', value: { label: { index: 1, text: 'Customer' } }, changedAt: Date.now() / 1000, triggerUuid: 'a1b2c3' } });
    const headers = { 'content-type': 'application/json', authorization: signMondayJwt({ exp: Math.floor(Date.now() / 1000) + 60 }, SIGNING_SECRET) };
    const first = await fetch(`${setup.runtime.url}/v1/inbound/crm`, { method: 'POST', headers, body });
    const again = await fetch(`${setup.runtime.url}/v1/inbound/crm`, { method: 'POST', headers, body });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ accepted: 1, duplicate: false });
    expect(await again.json()).toEqual({ accepted: 0, duplicate: true });
    const letters = async () => (await (await fetch(`${setup.runtime.url}/v1/dead-letters`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { items: Array<{ id: number; kind: string; reason: string; payload: unknown }> };
    await until(setup, async () => (await letters()).items.length === 1, 'the dead letter');
    const [letter] = (await letters()).items;
    expect(letter!.kind).toBe('inbound');
    expect(letter!.reason).toMatch(/unknown item: no customer record of crm has the crm id 424242/);
    const replay = await fetch(`${setup.runtime.url}/v1/dead-letters/${letter!.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(replay.status).toBe(202);
    await until(setup, async () => (await setup.runtime.store.db.selectFrom('dead_letters').selectAll().execute()).length === 2, 'dead again after replay');
  });

  it('writes back a change of an HMAC-signed generic inbound (the shared-secret contract of Momentis)', async () => {
    const setup = await setUp(perTest);
    const customer = await createCustomer(setup, { tier: 'silver' });
    // The loyalty record exists once it was synced.
    await setup.runtime.store.db
      .insertInto('records')
      .values({ destination: 'loyalty', record_type: 'member', resource_id: customer.id as string, resource_type: 'customer', dirty_seq: 0, processed_seq: 0, due_at: 0, correlation_id: 'test', dirtied_at: 0, snapshot: JSON.stringify({ tier: 'silver' }), synced_version: customer.version as number })
      .execute();
    const body = JSON.stringify({ id: 'evt-1', changes: [{ recordType: 'member', id: customer.id, field: 'tier', value: 'gold', changedAt: new Date().toISOString() }] });
    const url = `${setup.runtime.url}/v1/inbound/loyalty`;
    const wrong = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': `sha256=${createHmac('sha256', 'wrong-secret-0123456789').update(body).digest('hex')}` }, body });
    expect(wrong.status).toBe(401);
    const signed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': `sha256=${createHmac('sha256', HMAC_SECRET).update(body).digest('hex')}` }, body });
    expect(signed.status).toBe(200);
    await until(setup, async () => (await readCustomer(setup, customer.id as string)).custom?.fields.tier === 'gold', 'the tier written back');
  });
});
