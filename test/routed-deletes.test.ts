// A record a `when:` block routed to another target of its destination is deleted there, not at the default
// target (issue 11, item 17): the target a record was last sent to is remembered with it. On both stores.
import { afterAll, describe, expect, it } from 'vitest';
import { startSink } from '../src/sandbox/sink.ts';
import { testStores } from './support/stores.ts';
import { eventually, startHarness } from './support/harness.ts';

describe.each(testStores)('routed deletes on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it.each(['DELETE', 'POST'] as const)('deletes a record routed by store at the target it went to (deleteMethod %s)', async (deleteMethod) => {
    const ukSink = await startSink();
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: {
        deleteMethod,
        records: { customer: { fields: { email: 'email' }, when: [{ match: { store: 'uk' }, target: { url: `${ukSink.url}/uk-records` } }] } },
        events: {},
      },
    });
    try {
      await h.post([
        h.commercetools.upsertCustomer('uk-1', { email: 'uk-1@example.com', stores: [{ typeId: 'store', key: 'uk' }] }),
        h.commercetools.upsertCustomer('plain-1', { email: 'plain-1@example.com' }),
      ]);
      await eventually(() => ukSink.records.has('customer/uk-1') && h.sink.records.has('customer/plain-1'), 'both created at their targets');

      await h.post([h.commercetools.deleteCustomer('uk-1'), h.commercetools.deleteCustomer('plain-1')]);
      await eventually(() => !ukSink.records.has('customer/uk-1') && !h.sink.records.has('customer/plain-1'), 'both deleted');
      const deletes = (requests: typeof h.sink.requests) => requests.filter((r) => r.method === 'DELETE' || (r.body as { operation?: string } | undefined)?.operation === 'delete');
      const ukDeletes = deletes(ukSink.requests);
      expect(ukDeletes).toHaveLength(1);
      expect(ukDeletes[0]!.path).toBe(deleteMethod === 'DELETE' ? '/uk-records/customer/uk-1' : '/uk-records');
      // The default target only ever heard of its own customer.
      expect(deletes(h.sink.requests).map((r) => r.path)).toEqual([deleteMethod === 'DELETE' ? '/records/customer/plain-1' : '/records']);
      expect(h.sink.requests.some((r) => JSON.stringify(r.body ?? '').includes('uk-1') || r.path.includes('uk-1'))).toBe(false);
    } finally {
      await h.stop();
      await ukSink.close();
    }
  });
});
