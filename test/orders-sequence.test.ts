// Records of `$orders` (issue 11, item 19): the http envelope's `sequence` grows with every send of a record, also
// when only the customer's orders changed (the customer's version stays the same) and across a restart, so a
// receiver keeping only the newest state never drops a change; and a customer's `$orders` counts the guest orders
// of the guests merged into them. On both stores.
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { eventually, startHarness, type Harness } from './support/harness.ts';

const money = (currencyCode: string, centAmount: number) => ({ type: 'centPrecision', currencyCode, centAmount, fractionDigits: 2 });

const destination = {
  records: { customer: { fields: { email: 'email', firstName: 'firstName', orders: { path: '$orders[*]', pipe: ['count'] }, lifetime: { path: '$orders[*].totalPrice', pipe: [{ sumByCurrency: { as: 'minor' } }] } } } },
  events: { orderPlaced: { on: ['OrderCreated'], fields: { orderId: 'order.id' } } },
};

/** Every record request about the customer, as (version, sequence), in arrival order, failed ones included. */
const sendsOf = (h: Harness, id: string) =>
  h.sink.requests.flatMap((request) => {
    const body = request.body as { kind?: string; id?: string; version?: number; sequence?: number } | undefined;
    return body?.kind === 'record' && body.id === id ? [{ version: body.version, sequence: body.sequence }] : [];
  });

function expectIncreasing(sequences: Array<number | undefined>): void {
  for (const value of sequences) expect(typeof value).toBe('number');
  for (let i = 1; i < sequences.length; i += 1) expect(sequences[i]!, `sequences ${sequences.join(',')}`).toBeGreaterThan(sequences[i - 1]!);
}

describe.each(testStores)('$orders and sequence on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('numbers every send of a record, an orders-only change, a retry and a restart included', async () => {
    const storeUrl = await testStore.create();
    const h = await startHarness({ storeUrl, destination });
    let kept: Record<string, unknown>;
    let last: number;
    try {
      const at = (id: string) => h.sink.records.get(`customer/${id}`);
      await h.post(h.commercetools.upsertCustomer('seq', { email: 'seq@example.com', firstName: 'One' }));
      await eventually(() => at('seq')?.orders === 0, 'the customer at the sink');
      await h.post(h.commercetools.upsertCustomer('seq', { firstName: 'Two' }));
      await eventually(() => at('seq')?.firstName === 'Two', 'the rename');
      // Only the orders change: the customer stays at version 2.
      await h.post(h.commercetools.upsertOrder('seq-o1', { customerId: 'seq', totalPrice: money('EUR', 1200) }));
      await eventually(() => at('seq')?.orders === 1, 'the order counted');
      // A send that fails once, and its retry.
      let failed = false;
      h.sink.faultFor = (request) => {
        if (failed || (request.body as { id?: string }).id !== 'seq') return undefined;
        failed = true;
        return { kind: 'status', status: 503 };
      };
      await h.post(h.commercetools.upsertOrder('seq-o2', { customerId: 'seq', totalPrice: money('EUR', 800) }));
      await eventually(() => at('seq')?.orders === 2, 'the second order counted, after a retry');
      expect(failed).toBe(true);

      const sends = sendsOf(h, 'seq');
      expect(sends.map((send) => send.version)).toEqual([1, 2, 2, 2, 2]);
      expectIncreasing(sends.map((send) => send.sequence));
      last = sends.at(-1)!.sequence!;
      kept = structuredClone(h.commercetools.resources.get('seq')!);
    } finally {
      await h.stop();
    }

    // Another process on the same store goes on from where the first one stopped.
    const again = await startHarness({ storeUrl, destination });
    try {
      again.commercetools.resources.set('seq', kept);
      await again.post(again.commercetools.upsertCustomer('seq', { firstName: 'Three' }));
      await eventually(() => again.sink.records.get('customer/seq')?.firstName === 'Three', 'the rename after the restart');
      expect(sendsOf(again, 'seq')[0]!.sequence).toBeGreaterThan(last);
    } finally {
      await again.stop();
    }
  });

  it('counts the orders of a guest merged into a customer in the customer\'s $orders', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination });
    try {
      const at = (id: string) => h.sink.records.get(`customer/${id}`);
      const guestOrder = (id: string, email: string, cents: number) => h.commercetools.upsertOrder(id, { customerEmail: email, store: { typeId: 'store', key: 'uk' }, totalPrice: money('EUR', cents) });
      // A guest order (its event makes the guest known), then the guest registers.
      await h.post(guestOrder('guest-o1', 'kim@example.com', 1000));
      await eventually(() => h.sink.applied.some((item) => item.kind === 'event'), 'the guest order event');
      await h.post(h.commercetools.upsertCustomer('kim', { email: 'kim@example.com', firstName: 'Kim' }));
      await eventually(() => h.sink.applied.some((item) => item.kind === 'merge'), 'the guest merged into the customer');
      await eventually(() => at('kim')?.orders === 1, "the guest's order in the customer's $orders");
      expect(at('kim')).toMatchObject({ orders: 1, lifetime: { EUR: 1000 } });

      // The customer's own order, another order of the merged guest, and a stranger's guest order.
      await h.post(h.commercetools.upsertOrder('kim-o2', { customerId: 'kim', totalPrice: money('EUR', 200) }));
      await eventually(() => at('kim')?.orders === 2, "the customer's own order counted too");
      await h.post(guestOrder('guest-o3', 'kim@example.com', 30));
      await h.post(guestOrder('stranger-o4', 'someone.else@example.com', 4));
      await eventually(() => at('kim')?.orders === 3, "the merged guest's later order counted");
      expect(at('kim')).toMatchObject({ orders: 3, lifetime: { EUR: 1230 } });
      expectIncreasing(sendsOf(h, 'kim').map((send) => send.sequence));
    } finally {
      await h.stop();
    }
  });
});
