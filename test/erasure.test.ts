// Erasure started from commercetools (issue 13, item 12): commercetools says a resource was deleted with
// dataErasure=true only in its ResourceDeleted change notification (spec/commercetools/types/
// ResourceDeletedDeliveryPayload.raml), so that notification, in every push envelope, erases the customer
// everywhere: the record deleted at the destination, vault tokens, identities and dead events gone, an audit entry.
// A ResourceDeleted without dataErasure only deletes. A Message carrying dataErasure (a relay's) still erases, and
// a resource is erased once whether one or both arrive, in one body or apart, in either order. An order deleted
// with dataErasure loses ctbridge's copies of it, not its customer. On both stores.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { ENVELOPES, type EnvelopeName } from './support/envelopes.ts';
import { eventually, messageBase, startHarness, type Harness } from './support/harness.ts';

const VAULT = { keys: { k1: randomBytes(32).toString('base64') }, activeKey: 'k1' };
const HASH_KEY = 'a-hash-key-of-16-chars-or-more';

const destination = {
  pii: { email: 'mask', name: 'tokenize' },
  records: {
    customer: { fields: { email: 'email', name: { template: '{{firstName}} {{lastName}}' } } },
    order: { fields: { orderNumber: 'orderNumber', email: 'customerEmail', shipTo: { template: '{{shippingAddress.firstName}} {{shippingAddress.lastName}}', pii: 'name' } } },
  },
  events: {},
};

/** The vendored ResourceDeleted of a customer deleted with dataErasure (spec/commercetools, see spec/README.md). */
const ERASED_EXAMPLE = JSON.parse(readFileSync(join(import.meta.dirname, '../spec/commercetools/subscription/resource-deleted-data-erasure.example.json'), 'utf8')) as Record<string, unknown>;

/** The ResourceDeleted commercetools sends for the deletion a Message describes, with dataErasure as the DELETE had it. */
function resourceDeleted(deletion: Record<string, unknown>, dataErasure: boolean): Record<string, unknown> {
  const { dataErasure: _example, ...withoutErasure } = ERASED_EXAMPLE;
  return {
    ...withoutErasure,
    projectKey: 'test-project',
    resource: deletion.resource,
    resourceUserProvidedIdentifiers: {},
    version: deletion.resourceVersion,
    modifiedAt: deletion.createdAt,
    ...(dataErasure && { dataErasure: true }),
  };
}

async function erasures(h: Harness): Promise<Array<{ item_type: string | null; resource_id: string | null; detail: string | null }>> {
  return h.runtime.store.db.selectFrom('audit_log').select(['item_type', 'resource_id', 'detail']).where('action', '=', 'erasure').orderBy('id').execute();
}

/** A customer synced with a token and an identity, as erasure finds them. */
async function syncedCustomer(h: Harness, id: string): Promise<void> {
  await h.post(h.commercetools.upsertCustomer(id, { email: `${id}@example.com`, firstName: 'Anna', lastName: `Schmidt-${id}` }));
  await eventually(() => h.sink.records.has(`customer/${id}`), `${id} at the sink`);
  await eventually(async () => (await h.runtime.store.db.selectFrom('identities').select('person').where('person', '=', `customer:${id}`).execute()).length === 1, `${id}'s identity`);
}

/** Whether the router has taken in the notification with this dedupe key (it is in the seen table then). */
async function routed(h: Harness, dedupeKey: string): Promise<boolean> {
  return (await h.runtime.store.db.selectFrom('seen').select('dedupe_key').where('dedupe_key', '=', dedupeKey).execute()).length === 1;
}

/** The DELETE requests that reached the sink for a record. */
function deletesAtSink(h: Harness, recordType: string, id: string): number {
  return h.sink.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(`/${recordType}/${id}`)).length;
}

describe.each(testStores)('erasure from commercetools on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('erases a customer deleted with dataErasure, whichever envelope carries the ResourceDeleted', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      const db = h.runtime.store.db;
      const names = Object.keys(ENVELOPES) as EnvelopeName[];
      const ids = names.map((_, index) => `erased-${index}`);
      for (const id of ids) await syncedCustomer(h, id);
      // A dead event of one of them, whose kept message erasure must remove too.
      await db.insertInto('events').values({ destination: 'sink', event_type: 'customerEvents', dedupe_key: 'dead-1', source_type: 'CustomerCreated', resource_type: 'customer', resource_id: ids[0]!, payload: '{}', correlation_id: 'c', occurred_at: null, created_at: Date.now(), due_at: Date.now(), dead: 1 }).execute();
      expect((await db.selectFrom('vault_tokens').select('subject').execute()).map((row) => row.subject).sort()).toEqual([...ids].sort());

      for (const [index, name] of names.entries()) {
        const deletion = h.commercetools.deleteCustomer(ids[index]!);
        expect((await h.post(ENVELOPES[name](resourceDeleted(deletion, true)))).status).toBe(202);
      }
      await eventually(async () => (await erasures(h)).length === ids.length, 'every erasure carried out');
      await eventually(() => ids.every((id) => !h.sink.records.has(`customer/${id}`)), 'deleted at the sink');
      const entries = await erasures(h);
      expect(entries.map((e) => e.resource_id).sort()).toEqual([...ids].sort());
      for (const entry of entries) {
        expect(entry.item_type).toBe('customer');
        // The record count is of records erasure found not yet deleted: the delete the notification started may come first.
        expect(entry.detail).toMatch(/^requested by ResourceDeleted \(dataErasure\): [01] record\(s\) deleted at their destinations, 1 vault token\(s\), 1 identity and [01] dead or kept event\(s\) removed$/);
      }
      expect(entries.find((e) => e.resource_id === ids[0])!.detail).toMatch(/1 dead or kept event\(s\) removed/);
      expect(await db.selectFrom('vault_tokens').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('identities').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('events').selectAll().where('dead', '=', 1).execute()).toEqual([]);
      for (const id of ids) expect(deletesAtSink(h, 'customer', id)).toBe(1);
    } finally {
      await h.stop();
    }
  });

  it('only deletes a customer whose ResourceDeleted has no dataErasure: tokens and identity stay, no erasure', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      const db = h.runtime.store.db;
      await syncedCustomer(h, 'kept');
      const deletion = h.commercetools.deleteCustomer('kept');
      expect((await h.post(ENVELOPES['Pub/Sub'](resourceDeleted(deletion, false)))).status).toBe(202);
      await eventually(() => !h.sink.records.has('customer/kept'), 'deleted at the sink');
      // Routing asks for an erasure in the transaction that routes the notification: it has been routed, so none comes.
      expect(await routed(h, `kept:${String(deletion.resourceVersion)}:ResourceDeleted`)).toBe(true);
      expect(await db.selectFrom('erasure_requests').selectAll().execute()).toEqual([]);
      expect(await erasures(h)).toEqual([]);
      expect((await db.selectFrom('vault_tokens').select('subject').execute()).map((row) => row.subject)).toEqual(['kept']);
      expect(await db.selectFrom('identities').select('person').execute()).toEqual([{ person: 'customer:kept' }]);
    } finally {
      await h.stop();
    }
  });

  it('erases a customer once when the ResourceDeleted and a Message both say dataErasure: together, or apart in either order', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      const db = h.runtime.store.db;
      for (const id of ['together', 'change-first', 'message-first']) await syncedCustomer(h, id);
      const both = (id: string) => {
        const message: Record<string, unknown> = { ...h.commercetools.deleteCustomer(id), dataErasure: true };
        return { message, change: resourceDeleted(message, true), changeKey: `${id}:${String(message.resourceVersion)}:ResourceDeleted` };
      };

      // In one body (one routing batch), in CloudEvents and SNS envelopes.
      const together = both('together');
      expect((await h.post([ENVELOPES.CloudEvents(together.change), ENVELOPES.SNS(together.message)])).status).toBe(202);

      // The change notification first, the Message once the erasure was carried out.
      const changeFirst = both('change-first');
      await h.post(ENVELOPES.EventBridge(changeFirst.change));
      await eventually(async () => (await erasures(h)).some((e) => e.resource_id === 'change-first'), 'change-first erased');
      await h.post(ENVELOPES.EventBridge(changeFirst.message));

      // The Message first, the change notification once the erasure was carried out.
      const messageFirst = both('message-first');
      await h.post(ENVELOPES['Event Grid'](messageFirst.message));
      await eventually(async () => (await erasures(h)).some((e) => e.resource_id === 'message-first'), 'message-first erased');
      await h.post(ENVELOPES['Event Grid'](messageFirst.change));

      // Every notification routed (and with it any erasure it would ask for), every delete done.
      await eventually(async () => (await routed(h, changeFirst.message.id as string)) && (await routed(h, messageFirst.changeKey)) && (await routed(h, together.changeKey)), 'every notification routed');
      await eventually(() => ['together', 'change-first', 'message-first'].every((id) => !h.sink.records.has(`customer/${id}`)), 'deleted at the sink');
      await eventually(async () => (await db.selectFrom('erasure_requests').select('id').execute()).length === 0, 'no erasure waiting');
      const entries = await erasures(h);
      expect(entries.map((e) => e.resource_id).sort()).toEqual(['change-first', 'message-first', 'together']);
      expect(entries.find((e) => e.resource_id === 'change-first')!.detail).toMatch(/^requested by ResourceDeleted \(dataErasure\)/);
      expect(entries.find((e) => e.resource_id === 'message-first')!.detail).toMatch(/^requested by CustomerDeleted \(dataErasure\)/);
      for (const id of ['together', 'change-first', 'message-first']) expect(deletesAtSink(h, 'customer', id)).toBe(1);
      expect(await db.selectFrom('vault_tokens').selectAll().execute()).toEqual([]);
    } finally {
      await h.stop();
    }
  });

  it('erases an order deleted with dataErasure: deleted at the destination, its copies gone, its customer kept', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      const db = h.runtime.store.db;
      await syncedCustomer(h, 'buyer');
      await h.post(h.commercetools.upsertOrder('o-erased', { orderNumber: 'DACH-1', customerId: 'buyer', customerEmail: 'buyer@example.com', shippingAddress: { firstName: 'Anna', lastName: 'Schmidt', country: 'DE' } }, 'OrderCreated'));
      await eventually(() => h.sink.records.has('order/o-erased'), 'the order at the sink');
      await db.insertInto('events').values({ destination: 'sink', event_type: 'orderEvents', dedupe_key: 'dead-order', source_type: 'OrderCreated', resource_type: 'order', resource_id: 'o-erased', payload: '{}', correlation_id: 'c', occurred_at: null, created_at: Date.now(), due_at: Date.now(), dead: 1 }).execute();

      const order = h.commercetools.resources.get('o-erased')!;
      h.commercetools.resources.delete('o-erased');
      h.commercetools.orderIds.delete('o-erased');
      const deletion = { ...messageBase('o-erased', (order.version as number) + 1, 'order'), type: 'OrderDeleted' };
      expect((await h.post(ENVELOPES['Pub/Sub'](resourceDeleted(deletion, true)))).status).toBe(202);
      await eventually(async () => (await erasures(h)).length === 1, 'the erasure carried out');
      await eventually(() => !h.sink.records.has('order/o-erased'), 'the order deleted at the sink');
      expect(await erasures(h)).toEqual([{ item_type: 'order', resource_id: 'o-erased', detail: expect.stringMatching(/^requested by ResourceDeleted \(dataErasure\): [01] record\(s\) deleted at their destinations, 0 vault token\(s\), 0 identities and 1 dead or kept event\(s\) removed$/) as unknown }]);
      expect(await db.selectFrom('events').select('dedupe_key').where('resource_id', '=', 'o-erased').execute()).toEqual([]);
      // Its customer is no one erased: still at the sink, with their token and identity.
      expect(h.sink.records.has('customer/buyer')).toBe(true);
      expect(await db.selectFrom('identities').select('person').where('person', '=', 'customer:buyer').execute()).toHaveLength(1);
      expect((await db.selectFrom('vault_tokens').select('subject').execute()).map((row) => row.subject)).toContain('buyer');
    } finally {
      await h.stop();
    }
  });
});
