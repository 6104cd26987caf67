// Identity across systems, through the engine, on both stores: a guest's order makes a guest identity keyed by
// the digest of the normalised email; the customer who registers with that email gets the guest merged into
// them (the connector's merge, an audit entry) and the guest's later orders go to the customer; two customers
// sharing an email in different stores stay two people; an email change keeps the identity.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { eventually, messageBase, startHarness, type Harness } from './support/harness.ts';

const destination = {
  records: { customer: { fields: { email: 'email', firstName: 'firstName' } } },
  events: { orderPlaced: { on: ['OrderCreated'], fields: { orderId: 'order.id', total: 'order.totalPrice.centAmount' } } },
};

let orderVersion = 0;
function guestOrder(email: string, store: string, customerId?: string): Record<string, unknown> {
  const id = randomUUID();
  orderVersion += 1;
  const order = { id, version: 1, customerEmail: email, ...(customerId && { customerId }), store: { typeId: 'store', key: store }, totalPrice: { currencyCode: 'EUR', centAmount: 1000 + orderVersion, fractionDigits: 2, type: 'centPrecision' }, lineItems: [] };
  return { ...messageBase(id, 1, 'order'), type: 'OrderCreated', order };
}

const eventsFor = (h: Harness, orderId: string) => h.sink.applied.filter((i) => i.kind === 'event' && (i.body.payload as { orderId?: string }).orderId === orderId);

describe.each(testStores)('identities on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('merges a guest into the customer who registers with their email, and sends the guest\'s later orders to the customer', async () => {
    const g = await startHarness({ storeUrl: await testStore.create(), destination, identity: { foldDots: ['gmail.com'], foldPlus: ['gmail.com'] } });
    try {
      const first = guestOrder(' Ada.Lovelace+shop@GMail.com ', 'uk');
      await g.post(first);
      const firstId = (first.order as { id: string }).id;
      await eventually(() => eventsFor(g, firstId).length === 1, 'the guest order event');
      const guestPerson = eventsFor(g, firstId)[0]!.body.person as string;
      expect(guestPerson).toMatch(/^guest:uk:[\w-]{32}$/);
      // The email itself never leaves in the person key.
      expect(guestPerson).not.toMatch(/ada|lovelace|gmail/i);

      // The same mailbox, spelt differently, registers (Gmail ignores dots and +tags, as configured above).
      await g.post(g.commercetools.upsertCustomer('ada', { email: 'adalovelace@gmail.com', firstName: 'Ada' }));
      await eventually(() => g.sink.applied.some((i) => i.kind === 'merge'), 'the merge at the destination');
      const merge = g.sink.applied.find((i) => i.kind === 'merge')!.body;
      expect(merge).toMatchObject({ kind: 'merge', from: guestPerson, into: 'customer:ada' });
      // Recorded when the batch's outcome is committed, just after the destination answered.
      const merges = () => g.runtime.store.db.selectFrom('audit_log').select(['action', 'outcome', 'resource_id']).where('action', '=', 'identity.merge').execute();
      await eventually(async () => (await merges()).length > 0, 'the merge in the audit log');
      expect(await merges()).toEqual([{ action: 'identity.merge', outcome: 'ok', resource_id: 'ada' }]);

      // A later guest order with that email belongs to the customer now.
      const later = guestOrder('ada.lovelace@gmail.com', 'uk');
      await g.post(later);
      const laterId = (later.order as { id: string }).id;
      await eventually(() => eventsFor(g, laterId).length === 1, 'the later order event');
      expect(eventsFor(g, laterId)[0]!.body.person).toBe('customer:ada');

      // Another registration sync does not merge again.
      await g.post(g.commercetools.upsertCustomer('ada', { firstName: 'Augusta Ada' }));
      await eventually(() => g.sink.records.get('customer/ada')?.firstName === 'Augusta Ada', 'the rename');
      expect(g.sink.applied.filter((i) => i.kind === 'merge')).toHaveLength(1);
    } finally {
      await g.stop();
    }
  });

  it('keeps two customers sharing an email in different stores apart, and follows an email change', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination });
    try {
      await h.post([
        h.commercetools.upsertCustomer('uk-kim', { email: 'kim@example.com', stores: [{ typeId: 'store', key: 'uk' }] }),
        h.commercetools.upsertCustomer('de-kim', { email: 'kim@example.com', stores: [{ typeId: 'store', key: 'de' }] }),
      ]);
      await eventually(() => h.sink.records.has('customer/uk-kim') && h.sink.records.has('customer/de-kim'), 'both customers');
      // Identities are written when the batch's outcome commits, just after the destination answered.
      const digestOf = async (person: string) => (await h.runtime.store.db.selectFrom('identities').select('email_digest').where('person', '=', person).executeTakeFirst())?.email_digest;
      await eventually(async () => (await digestOf('customer:uk-kim')) !== undefined && (await digestOf('customer:de-kim')) !== undefined, 'both identities');
      const oldDigest = await digestOf('customer:uk-kim');
      const inDe = guestOrder('kim@example.com', 'de');
      await h.post(inDe);
      const inDeId = (inDe.order as { id: string }).id;
      await eventually(() => eventsFor(h, inDeId).length === 1, 'the de order');
      expect(eventsFor(h, inDeId)[0]!.body.person).toBe('customer:de-kim');
      const people = await h.runtime.store.db.selectFrom('identities').select(['person', 'merged_into']).orderBy('person').execute();
      expect(people).toEqual([
        { person: 'customer:de-kim', merged_into: null },
        { person: 'customer:uk-kim', merged_into: null },
      ]);

      // The UK customer changes their email: the same destination record is updated, and orders with the new
      // address are theirs.
      await h.post(h.commercetools.upsertCustomer('uk-kim', { email: 'kim.new@example.com' }, 'CustomerEmailChanged'));
      await eventually(() => h.sink.records.get('customer/uk-kim')?.email === 'kim.new@example.com', 'the email change');
      expect(h.sink.records.size).toBe(2);
      await eventually(async () => (await digestOf('customer:uk-kim')) !== oldDigest, 'the identity following the new email');
      const newAddress = guestOrder('Kim.New@example.com', 'uk');
      await h.post(newAddress);
      const newId = (newAddress.order as { id: string }).id;
      await eventually(() => eventsFor(h, newId).length === 1, 'the order with the new address');
      expect(eventsFor(h, newId)[0]!.body.person).toBe('customer:uk-kim');
    } finally {
      await h.stop();
    }
  });
});
