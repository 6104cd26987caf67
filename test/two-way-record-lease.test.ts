// Inbound work and record sync decide on the same field state, and each saves it in its own finishing
// transaction; so that neither saves over the other's decision, inbound work decides, writes and saves under the
// record's lease — the lease record sync's claim takes. On both stores: while record sync holds a record, a change
// of it from monday waits (no attempt counted, nothing written), and once the record is free it is written back once
// and the lease given back.
import { describe, expect, it } from 'vitest';
import { announce, createCustomer, inboundDone, itemOf, twoWayPerTest, until, writebacks } from './support/two-way-setup.ts';
import { useEmulator } from './support/emulator.ts';
import { testStores } from './support/stores.ts';

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
});
