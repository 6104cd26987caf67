// Mappings in the running engine: when: blocks that route a store's records to another endpoint, change their
// fields or leave them out; referenced objects expanded from one cached lookup; and a JSONata field that fails
// on one record dead-letters that record with the reason, not the batch. On both stores.
import { afterAll, describe, expect, it } from 'vitest';
import { startSink } from '../src/sandbox/sink.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, startHarness } from './support/harness.ts';

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
});
