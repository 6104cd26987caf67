// Record sync and event delivery end to end through HTTP ingest, on both stores.
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { ADMIN_TOKEN, eventually, startHarness } from './support/harness.ts';
import { inboxRow, pendingInbox } from '../src/store/inbox.ts';

describe.each(testStores)('engine on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('syncs a created customer, then only the changed fields, and delivers its event once', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      const created = h.commercetools.upsertCustomer('c1', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', addresses: [{ city: 'London' }] });
      const response = await h.post(created);
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 1 });

      await eventually(() => h.sink.records.get('customer/c1')?.firstName === 'Ada', 'customer c1 at the sink');
      expect(h.sink.records.get('customer/c1')).toEqual({ email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', city: 'London' });
      await eventually(() => h.sink.applied.some((i) => i.kind === 'event'), 'CustomerCreated event at the sink');
      // The message carried the customer at its newest version: no API call was needed.
      expect(h.commercetools.fetchCalls).toBe(0);

      const renamed = h.commercetools.upsertCustomer('c1', { firstName: 'Augusta' });
      await h.post(renamed);
      await eventually(() => h.sink.records.get('customer/c1')?.firstName === 'Augusta', 'rename at the sink');
      const last = h.sink.applied.filter((i) => i.kind === 'record').at(-1)!;
      expect(last.body.fields).toEqual({ firstName: 'Augusta' });
      expect(last.body.version).toBe(2);
      expect(h.commercetools.fetchCalls).toBe(1);

      // The same message again is acknowledged, counted as a duplicate when routed, and changes nothing.
      const again = await h.post(renamed);
      expect(again.status).toBe(202);
      await eventually(async () => (await h.runtime.metrics.registry.getSingleMetricAsString('ctbridge_duplicates_total')).includes('ctbridge_duplicates_total 1'), 'the duplicate counted');
      const events = h.sink.applied.filter((i) => i.kind === 'event');
      expect(events).toHaveLength(1);
      expect(events[0]!.body).toMatchObject({ eventType: 'customerEvents', sourceType: 'CustomerCreated', payload: { customerId: 'c1', type: 'CustomerCreated' } });
    } finally {
      await h.stop();
    }
  });

  it('deletes at the destination when the customer is deleted', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      await h.post(h.commercetools.upsertCustomer('c2', { email: 'b@example.com', firstName: 'B' }));
      await eventually(() => h.sink.records.has('customer/c2'), 'c2 synced');
      await h.post(h.commercetools.deleteCustomer('c2'));
      await eventually(() => !h.sink.records.has('customer/c2'), 'c2 deleted at the sink');
      const del = h.sink.requests.find((r) => r.method === 'DELETE');
      expect(del?.path).toBe('/records/customer/c2');
    } finally {
      await h.stop();
    }
  });

  it('dead-letters a permanent 400 and delivers it after replay', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      h.sink.faultFor = (request) => (request.path === '/records' ? { kind: 'status', status: 400, body: '{"error":"bad field","email":"c@example.com","firstName":"C"}' } : undefined);
      await h.post(h.commercetools.upsertCustomer('c3', { email: 'c@example.com', firstName: 'C' }));
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      let letters: Array<{ id: number; kind: string; reason: string; payload: Record<string, unknown> }> = [];
      await eventually(async () => {
        const res = await fetch(`${h.runtime.url}/v1/dead-letters`, { headers: admin });
        letters = ((await res.json()) as { items: typeof letters }).items;
        return letters.length > 0;
      }, 'a dead letter');
      expect(letters[0]).toMatchObject({ kind: 'record', reason: expect.stringContaining('permanent error') as unknown });
      // Personal data is redacted in the dead letter, also where the destination echoed it in its error.
      expect(JSON.stringify(letters[0])).toContain('bad field');
      expect(JSON.stringify(letters[0])).not.toContain('c@example.com');
      expect(JSON.stringify(letters[0])).not.toContain('"firstName":"C"');
      expect(h.sink.records.has('customer/c3')).toBe(false);

      h.sink.faultFor = undefined;
      const replay = await fetch(`${h.runtime.url}/v1/dead-letters/${letters[0]!.id}/replay`, { method: 'POST', headers: admin });
      expect(replay.status).toBe(202);
      await eventually(() => h.sink.records.get('customer/c3')?.firstName === 'C', 'c3 delivered after replay');
    } finally {
      await h.stop();
    }
  });

  it('routes notifications already waiting in the inbox before newer ones, so events keep their arrival order', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      // The router takes bodies in the order they were committed, whatever their size or how they came in:
      // a body stored by `ctbridge ingest` before the server took the next one is routed first.
      const created = JSON.stringify(h.commercetools.upsertCustomer('c5', { email: 'e@example.com', firstName: 'E' }));
      await h.runtime.store.inbox.db.insertInto('inbox').values(inboxRow({ body: Buffer.from(created), transport: undefined, correlationId: 'waiting', items: 1 }, Date.now())).execute();
      expect((await h.post(h.commercetools.deleteCustomer('c5'))).status).toBe(202);

      await eventually(() => h.sink.applied.filter((i) => i.kind === 'event').length === 2, 'both events at the sink');
      const events = h.sink.applied.filter((i) => i.kind === 'event').map((i) => (i.body as { sourceType: string }).sourceType);
      expect(events).toEqual(['CustomerCreated', 'CustomerDeleted']);
      // Created and deleted before it synced, or synced then deleted: either way the sink ends without it.
      const c5 = () => h.runtime.store.db.selectFrom('records').select(['dirty_seq', 'processed_seq']).where('resource_id', '=', 'c5').executeTakeFirstOrThrow();
      await eventually(async () => ((row) => row.processed_seq === row.dirty_seq)(await c5()), 'c5 settled');
      expect(h.sink.records.has('customer/c5')).toBe(false);
      expect(await pendingInbox(h.runtime.store)).toEqual([]);
    } finally {
      await h.stop();
    }
  });
});
