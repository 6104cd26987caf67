// Coalescing (issue 2, section 10): a burst of updates to one customer, each in its own HTTP request, becomes a
// handful of destination calls whose last one carries the final state; a burst over many customers costs far
// less than one destination call per message. Counted at the sink and through /metrics.
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { eventually, metricValue, startHarness, type Harness } from './support/harness.ts';
import { pendingInboxItems } from '../src/store/inbox.ts';

const recordCalls = (h: Harness) => h.sink.requests.filter((r) => r.path === '/records').length;
const succeededRecords = (h: Harness) => metricValue(h, 'ctbridge_succeeded_total', { destination: 'sink', kind: 'record' });

async function settled(h: Harness): Promise<boolean> {
  if ((await pendingInboxItems(h.runtime.store)) > 0) return false;
  const rows = await h.runtime.store.db.selectFrom('records').select(['dirty_seq', 'processed_seq']).execute();
  return rows.every((r) => Number(r.dirty_seq) <= Number(r.processed_seq));
}

/** Posts every body as its own request, all at once, and checks each was accepted. */
async function burst(h: Harness, bodies: Array<Record<string, unknown>>): Promise<void> {
  const responses = await Promise.all(bodies.map((body) => h.post(body)));
  for (const response of responses) expect(response.status).toBe(202);
  const answers = (await Promise.all(responses.map((r) => r.json()))) as Array<{ accepted: number }>;
  expect(answers.reduce((sum, a) => sum + a.accepted, 0)).toBe(bodies.length);
}

describe.each(testStores)('coalescing on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('50 updates of one customer in a burst produce at most a few destination calls, the last with the final state', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      await h.post(h.commercetools.upsertCustomer('burst-1', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', addresses: [{ city: 'London' }] }));
      await eventually(() => h.sink.records.get('customer/burst-1')?.firstName === 'Ada', 'the customer synced once');
      await eventually(() => settled(h), 'engine idle');
      const callsBefore = recordCalls(h);
      const succeededBefore = await succeededRecords(h);

      // commercetools applies 50 changes in quick succession and emits one Message each.
      const messages = Array.from({ length: 50 }, (_, i) => h.commercetools.upsertCustomer('burst-1', { firstName: `Ada-${i + 1}`, ...(i % 10 === 9 && { addresses: [{ city: `City-${i + 1}` }] }) }));
      await burst(h, messages);
      await eventually(() => h.sink.records.get('customer/burst-1')?.firstName === 'Ada-50', 'the final state at the sink');
      await eventually(() => settled(h), 'engine idle');

      const calls = recordCalls(h) - callsBefore;
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThanOrEqual(5);
      expect((await succeededRecords(h)) - succeededBefore).toBe(calls);

      const last = h.sink.applied.filter((item) => item.kind === 'record').at(-1)!;
      expect(last.body).toMatchObject({ id: 'burst-1', version: 51, operation: 'upsert' });
      expect(last.body.fields).toMatchObject({ firstName: 'Ada-50' });
      expect(h.sink.records.get('customer/burst-1')).toEqual({ email: 'ada@example.com', firstName: 'Ada-50', lastName: 'Lovelace', city: 'City-50' });
      expect(h.sink.versions.get('customer/burst-1')!.at(-1)).toBe(51);
    } finally {
      await h.stop();
    }
  });

  it('a burst over 20 customers × 10 updates costs well under one destination call per message', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `many-${i}`);
      await burst(
        h,
        ids.map((id) => h.commercetools.upsertCustomer(id, { email: `${id}@example.com`, firstName: 'First', lastName: 'Last' })),
      );
      await eventually(() => ids.every((id) => h.sink.records.has(`customer/${id}`)), 'all 20 customers synced');
      await eventually(() => settled(h), 'engine idle');
      const callsBefore = recordCalls(h);
      const succeededBefore = await succeededRecords(h);

      const messages: Array<Record<string, unknown>> = [];
      for (let round = 1; round <= 10; round += 1) {
        for (const id of ids) messages.push(h.commercetools.upsertCustomer(id, { firstName: `${id}-round-${round}` }));
      }
      await burst(h, messages);
      await eventually(() => ids.every((id) => h.sink.records.get(`customer/${id}`)?.firstName === `${id}-round-10`), 'every final state at the sink');
      await eventually(() => settled(h), 'engine idle');

      const calls = recordCalls(h) - callsBefore;
      expect((await succeededRecords(h)) - succeededBefore).toBe(calls);
      // At least one call per customer, and far fewer than one per message.
      expect(calls).toBeGreaterThanOrEqual(ids.length);
      expect(calls / messages.length).toBeLessThanOrEqual(0.3);
      for (const id of ids) expect(h.sink.versions.get(`customer/${id}`)!.at(-1)).toBe(11);
    } finally {
      await h.stop();
    }
  });
});
