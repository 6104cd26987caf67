// Inbound work and record sync decide on the same field state, and each saves it in its own finishing
// transaction; so that neither saves over the other's decision, inbound work decides, writes and saves under the
// record's lease — the lease record sync's claim takes. On both stores: while record sync holds a record, a change
// of it from monday waits (no attempt counted, nothing written), and once the record is free it is written back once
// and the lease given back. And the other way round: while inbound work's write to commercetools is held open past
// the lease's length, the lease is renewed and record sync does not take the record, though it is dirty; once the
// write is done, record sync sends it.
import { describe, expect, it } from 'vitest';
import { customerMessage, eventually } from './support/harness.ts';
import { announce, createCustomer, inboundDone, itemOf, twoWayPerTest, until, updateCustomer, writebacks } from './support/two-way-setup.ts';
import { useEmulator } from './support/emulator.ts';
import { testStores } from './support/stores.ts';

// Short, so that a write held open outlasts it many times over.
const LEASE_MS = 300;

const env = useEmulator({ projectKey: 'record-lease-test' });

describe.each(testStores)('inbound work under the record lease on $name', (store) => {
  const perTest = twoWayPerTest(store, env);

  it('waits while record sync holds the record, then writes back once and gives the lease back', async () => {
    const setup = await perTest.start({
      webhooks: {},
      destination: () => ({
        records: {
          customer: {
            fields: { email: 'email', stage: { path: 'customObjects.stages.id.obj.value.stage', pipe: [{ default: { value: 'Lead' } }] } },
            ownership: { stage: { owner: 'destination', writeBack: { customObject: { container: 'stages', key: '{{id}}', path: 'stage' } } } },
          },
        },
      }),
    });
    const { hooks } = setup;
    const customer = await createCustomer(setup);
    const id = customer.id as string;
    await announce(setup, customer, 'CustomerCreated');
    const record = () => setup.runtime.store.db.selectFrom('records').select(['lease_owner', 'lease_until']).where('destination', '=', 'crm').where('resource_id', '=', id).executeTakeFirstOrThrow();

    // Record sync (of this or another process) has the record in flight.
    await setup.runtime.store.db.updateTable('records').set({ lease_owner: 'other-process/7', lease_until: Date.now() + 600_000 }).where('resource_id', '=', id).execute();
    setup.sim.account.setByHand(itemOf(setup, id)!.id, 'stage', { label: 'Customer' });
    await hooks.flush();
    const inbound = () => setup.runtime.store.db.selectFrom('inbound').select(['state', 'attempts', 'last_error']).where('destination', '=', 'crm').executeTakeFirstOrThrow();
    await until(setup, async () => /record sync has the customer/.test((await inbound()).last_error ?? ''), 'the change deferred');
    expect(await inbound()).toMatchObject({ state: 'pending', attempts: 0 });
    expect(setup.writes).toBe(0);
    expect(await record()).toEqual({ lease_owner: 'other-process/7', lease_until: expect.any(Number) as number });

    // Record sync is done with it.
    await setup.runtime.store.db.updateTable('records').set({ lease_owner: null, lease_until: null }).where('resource_id', '=', id).execute();
    await until(setup, () => inboundDone(setup), 'inbound done');
    expect(await inbound()).toMatchObject({ state: 'done', attempts: 0 });
    expect(setup.writes).toBe(1);
    expect((await writebacks(setup, id)).map((entry) => entry.outcome)).toEqual(['ok']);
    expect(await record()).toEqual({ lease_owner: null, lease_until: null });
  });

  it('keeps the record while its write to commercetools outlasts the lease, then lets record sync send it', async () => {
    // The write-back to commercetools is held open until the test lets it go.
    let writeStarted = false;
    let letWriteGo = () => {};
    const writeMayGo = new Promise<void>((resolve) => (letWriteGo = resolve));
    const setup = await perTest.start({
      webhooks: {},
      engine: { leaseMs: LEASE_MS },
      destination: () => ({
        records: {
          customer: {
            fields: { email: 'email', stage: { path: 'customObjects.stages.id.obj.value.stage', pipe: [{ default: { value: 'Lead' } }] } },
            ownership: { stage: { owner: 'destination', writeBack: { customObject: { container: 'stages', key: '{{id}}', path: 'stage' } } } },
          },
        },
      }),
      wrapWriter: (writer) => ({
        ...writer,
        writeCustomObject: async (...args) => {
          writeStarted = true;
          await writeMayGo;
          return writer.writeCustomObject(...args);
        },
      }),
    });
    // A failing assertion must not leave the write held (the set-up's stop waits for the work in flight).
    try {
      const { hooks } = setup;
      const customer = await createCustomer(setup);
      const id = customer.id as string;
      await announce(setup, customer, 'CustomerCreated');
      const db = setup.runtime.store.db;
      const record = () => db.selectFrom('records').select(['lease_owner', 'lease_until', 'send_seq', 'dirty_seq', 'processed_seq']).where('destination', '=', 'crm').where('resource_id', '=', id).executeTakeFirstOrThrow();
      const emailAtMonday = () => itemOf(setup, id)?.values.get('email')?.text;

      setup.sim.account.setByHand(itemOf(setup, id)!.id, 'stage', { label: 'Customer' });
      await hooks.flush();
      await until(setup, () => writeStarted, 'the write-back to commercetools started');
      const held = await record();
      const inboundOwner = held.lease_owner;
      expect(inboundOwner).toMatch(/\/inbound:/);

      // Meanwhile the customer's e-mail changes in commercetools: record sync has the record to send.
      const changed = await updateCustomer(setup, id, [{ action: 'changeEmail', email: `changed.${id}@example.org` }]);
      expect((await setup.post(customerMessage(changed, 'CustomerEmailChanged'))).status).toBe(202);
      await eventually(async () => {
        const row = await record();
        return Number(row.dirty_seq) > Number(row.processed_seq);
      }, 'the record dirty');

      // Well past the end of the lease inbound work took: it is still inbound work's, renewed, and record sync has
      // not claimed the record (every claim bumps send_seq) nor sent the new e-mail.
      await eventually(async () => {
        const row = await record();
        expect(row.lease_owner).toBe(inboundOwner);
        return Number(row.lease_until) >= Number(held.lease_until) + 3 * LEASE_MS;
      }, 'the inbound lease renewed past its first end');
      expect(Number((await record()).send_seq)).toBe(Number(held.send_seq));
      // The delivery's own row is renewed with it (each renewal moves the row's lease first, then the record's).
      const delivery = await db.selectFrom('inbound').select(['lease_until']).where('destination', '=', 'crm').where('lease_owner', 'is not', null).executeTakeFirstOrThrow();
      expect(Number(delivery.lease_until)).toBeGreaterThanOrEqual(Number(held.lease_until) + 3 * LEASE_MS);
      expect(emailAtMonday()).toBe(customer.email);
      expect(setup.writes).toBe(0);

      letWriteGo();
      await until(setup, async () => {
        const row = await record();
        return (await inboundDone(setup)) && Number(row.processed_seq) >= Number(row.dirty_seq) && row.lease_owner === null;
      }, 'the write-back done and the record synced');
      expect(setup.writes).toBe(1);
      // The stage written back once. (monday's webhook of the e-mail record sync sent is skipped: commercetools owns it.)
      const stageWritebacks = (await writebacks(setup, id)).filter((entry) => (JSON.parse(entry.fields ?? '[]') as string[]).includes('stage'));
      expect(stageWritebacks.map((entry) => entry.outcome)).toEqual(['ok']);
      expect(Number((await record()).send_seq)).toBeGreaterThan(Number(held.send_seq));
      expect(emailAtMonday()).toBe(changed.email);
    } finally {
      letWriteGo();
    }
  });
});
