// Mappings in the running engine: when: blocks that route a store's records to another endpoint, change their
// fields or leave them out; referenced objects expanded from one cached lookup, also those only JSONata reads (on the
// message and on its $subject); a JSONata field that fails
// on one record dead-letters that record with the reason, not the batch; and a customer's order context
// ($orders) kept current by order messages that do not even say whose order it is. On both stores.
import { afterAll, describe, expect, it } from 'vitest';
import { startSink } from '../src/sandbox/sink.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, messageBase, startHarness } from './support/harness.ts';

describe.each(testStores)('mappings in the engine on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('routes, overrides and skips records by store, and expands referenced customer groups from one lookup', async () => {
    const ukSink = await startSink();
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: {
        records: {
          customer: {
            fields: { email: 'email', group: 'customerGroup.obj.name', market: { value: 'default' }, project: '$projectKey', city: 'addresses[0].city' },
            when: [
              { match: { store: 'uk' }, fields: { market: { template: '{{$store}}-{{addresses[0].country}}' } }, omit: ['city'], target: { url: `${ukSink.url}/records` } },
              { match: { store: 'staff' }, skip: true },
            ],
          },
        },
        events: {},
      },
    });
    try {
      h.commercetools.referenced.set('customer-group', new Map([['g-vip', { id: 'g-vip', key: 'vip', name: 'VIP' }]]));
      const customer = (id: string, store: string | undefined) =>
        h.commercetools.upsertCustomer(id, {
          email: `${id}@example.com`,
          stores: store ? [{ typeId: 'store', key: store }] : [],
          customerGroup: { typeId: 'customer-group', id: 'g-vip' },
          addresses: [{ city: 'Leeds', country: 'GB' }],
        });
      const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
      const storeOf = (i: number) => (i % 3 === 0 ? 'uk' : i % 3 === 1 ? 'staff' : undefined);
      const response = await h.post(ids.map((id, i) => customer(id, storeOf(i))));
      expect(response.status).toBe(202);

      const uk = ids.filter((_, i) => storeOf(i) === 'uk');
      const plain = ids.filter((_, i) => storeOf(i) === undefined);
      await eventually(() => uk.every((id) => ukSink.records.has(`customer/${id}`)) && plain.every((id) => h.sink.records.has(`customer/${id}`)), 'uk and default customers delivered');
      for (const id of uk) expect(ukSink.records.get(`customer/${id}`)).toEqual({ email: `${id}@example.com`, group: 'VIP', market: 'uk-GB', project: 'test-project' });
      for (const id of plain) expect(h.sink.records.get(`customer/${id}`)).toEqual({ email: `${id}@example.com`, group: 'VIP', market: 'default', project: 'test-project', city: 'Leeds' });
      // Staff customers go nowhere; UK customers only to the UK endpoint.
      expect([...h.sink.records.keys(), ...ukSink.records.keys()].sort()).toEqual([...uk, ...plain].map((id) => `customer/${id}`).sort());

      // Every customer pointed at the same group: at most one lookup per batch claimed, then the cache.
      const lookups = h.commercetools.referenceCalls;
      expect(lookups).toBeGreaterThanOrEqual(1);
      expect(lookups).toBeLessThanOrEqual(3);
      await h.post(h.commercetools.upsertCustomer('c2', { email: 'c2.new@example.com' }));
      await eventually(() => h.sink.records.get('customer/c2')?.email === 'c2.new@example.com', 'the update delivered');
      expect(h.commercetools.referenceCalls).toBe(lookups);
    } finally {
      await h.stop();
      await ukSink.close();
    }
  });

  it('expands the references JSONata fields read, through lists and on $subject, as the event reaches the destination', async () => {
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: {
        records: { customer: { fields: { email: 'email' } } },
        events: {
          order: {
            on: ['OrderCreated', 'OrderStateChanged'],
            // JSONata only: no path field names the references for it.
            fields: {
              placed: { jsonata: 'order.{ "id": id, "codes": [discountCodes.{ "state": state, "code": discountCode.obj.code }] }' },
              matching: { jsonata: '[$subject.discountCodes[state = "MatchesCart"].discountCode.obj.code]' },
              storeName: { jsonata: '$subject.store.obj.name' },
            },
          },
        },
      },
    });
    try {
      h.commercetools.referenced.set(
        'discount-code',
        new Map([
          ['dc-1', { id: 'dc-1', key: 'reward-1', code: 'MOM-1' }],
          ['dc-2', { id: 'dc-2', key: 'reward-2', code: 'MOM-2' }],
        ]),
      );
      h.commercetools.referenced.set('store', new Map([['uk', { id: 's-uk', key: 'uk', name: 'UK shop' }]]));
      const code = (id: string, state: string) => ({ discountCode: { typeId: 'discount-code', id }, state });
      const created = h.commercetools.upsertOrder('o-codes', { customerEmail: 'g@example.com', store: { typeId: 'store', key: 'uk' }, discountCodes: [code('dc-1', 'MatchesCart'), code('dc-2', 'DoesNotMatchCart')] });
      await h.post(created);
      const eventsOf = (type: string) => h.sink.applied.filter((item) => item.kind === 'event' && item.body.sourceType === type).map((item) => item.body.payload);
      await eventually(() => eventsOf('OrderCreated').length === 1, 'the OrderCreated event delivered');
      expect(eventsOf('OrderCreated')).toEqual([
        {
          placed: { id: 'o-codes', codes: [{ state: 'MatchesCart', code: 'MOM-1' }, { state: 'DoesNotMatchCart', code: 'MOM-2' }] },
          matching: ['MOM-1'],
          storeName: 'UK shop',
        },
      ]);

      // OrderStateChanged only names the order: its $subject is read from commercetools, and expanded there.
      await h.post(h.commercetools.upsertOrder('o-codes', { orderState: 'Confirmed' }));
      await eventually(() => eventsOf('OrderStateChanged').length === 1, 'the OrderStateChanged event delivered');
      expect(eventsOf('OrderStateChanged')).toEqual([{ placed: null, matching: ['MOM-1'], storeName: 'UK shop' }]);
    } finally {
      await h.stop();
    }
  });

  it('dead-letters a record whose JSONata field fails on it, naming the field, and delivers the others', async () => {
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: { records: { customer: { fields: { email: 'email', points: { jsonata: '$number(custom.fields.points)' } } } }, events: {} },
    });
    try {
      const good = h.commercetools.upsertCustomer('ok', { email: 'ok@example.com', custom: { fields: { points: '42' } } });
      const bad = h.commercetools.upsertCustomer('bad', { email: 'bad@example.com', custom: { fields: { points: 'lots' } } });
      await h.post([good, bad]);
      await eventually(() => h.sink.records.has('customer/ok'), 'the good customer delivered');
      expect(h.sink.records.get('customer/ok')).toEqual({ email: 'ok@example.com', points: 42 });
      let letters: Array<{ kind: string; key: string; reason: string }> = [];
      await eventually(async () => {
        letters = ((await (await adminFetch(h, '/v1/dead-letters')).json()) as { items: typeof letters }).items;
        return letters.length > 0;
      }, 'a dead letter for the bad customer');
      expect(letters).toHaveLength(1);
      expect(letters[0]!.reason).toMatch(/mapping customer: field "points": /);
      expect(h.sink.records.has('customer/bad')).toBe(false);
    } finally {
      await h.stop();
    }
  });

  it('keeps a customer\'s order totals current from $orders as orders are placed, cancelled, moved and deleted', async () => {
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: {
        records: {
          customer: {
            fields: {
              email: 'email',
              orders: { path: '$orders[*]', pipe: ['count'] },
              lifetime: { path: '$orders[*].totalPrice', pipe: [{ sumByCurrency: { as: 'minor' } }] },
              lastOrder: { path: '$orders[*].orderNumber', pipe: ['last'] },
              open: { jsonata: "$count($orders[orderState != 'Cancelled'])" },
            },
          },
        },
        events: {},
      },
    });
    const money = (currencyCode: string, centAmount: number) => ({ type: 'centPrecision', currencyCode, centAmount, fractionDigits: 2 });
    const customerAt = (id: string) => h.sink.records.get(`customer/${id}`);
    try {
      await h.post(h.commercetools.upsertCustomer('c1', { email: 'c1@example.com' }));
      await eventually(() => customerAt('c1') !== undefined, 'the customer delivered');
      expect(customerAt('c1')).toEqual({ email: 'c1@example.com', orders: 0, lifetime: {}, lastOrder: null, open: 0 });

      await h.post(h.commercetools.upsertOrder('o1', { orderNumber: 'ON-1', orderState: 'Open', customerId: 'c1', totalPrice: money('EUR', 4200) }));
      await h.post(h.commercetools.upsertOrder('o2', { orderNumber: 'ON-2', orderState: 'Open', customerId: 'c1', totalPrice: money('USD', 1000) }));
      await eventually(() => customerAt('c1')?.orders === 2, 'both orders counted');
      expect(customerAt('c1')).toEqual({ email: 'c1@example.com', orders: 2, lifetime: { EUR: 4200, USD: 1000 }, lastOrder: 'ON-2', open: 2 });

      // OrderStateChanged names only the order: ctbridge reads it to find its customer.
      const cancelled = h.commercetools.upsertOrder('o1', { orderState: 'Cancelled' });
      expect(cancelled).not.toHaveProperty('order');
      await h.post(cancelled);
      await eventually(() => customerAt('c1')?.open === 1, 'the cancellation counted');

      // The order moves to another customer (who never had a message of their own): both are synced again.
      h.commercetools.resources.set('c2', { id: 'c2', version: 1, email: 'c2@example.com' });
      await h.post(h.commercetools.upsertOrder('o2', { customerId: 'c2' }, 'OrderCustomerSet'));
      await eventually(() => customerAt('c1')?.orders === 1 && customerAt('c2')?.orders === 1, 'the moved order counted at its new customer only');
      expect(customerAt('c1')).toEqual({ email: 'c1@example.com', orders: 1, lifetime: { EUR: 4200 }, lastOrder: 'ON-1', open: 0 });
      expect(customerAt('c2')).toEqual({ email: 'c2@example.com', orders: 1, lifetime: { USD: 1000 }, lastOrder: 'ON-2', open: 1 });

      // Deleted: the order is gone from commercetools, and from its customer's totals.
      h.commercetools.resources.delete('o1');
      h.commercetools.orderIds.delete('o1');
      await h.post({ ...messageBase('o1', 4, 'order'), type: 'OrderDeleted' });
      await eventually(() => customerAt('c1')?.orders === 0, 'the deleted order uncounted');
      expect(customerAt('c1')).toEqual({ email: 'c1@example.com', orders: 0, lifetime: {}, lastOrder: null, open: 0 });

      // Orders are read for a batch of customers at once, and never sent as records of their own.
      expect([...h.sink.records.keys()].sort()).toEqual(['customer/c1', 'customer/c2']);
      expect(h.commercetools.ordersCalls).toBeGreaterThanOrEqual(4);
    } finally {
      await h.stop();
    }
  });
});
