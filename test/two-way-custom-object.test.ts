// Write-back into a custom object (two-way sync), on both stores, against the commercetools emulator: a
// monday-owned status lands in the custom object named by a container and a key made from the record (the
// customer's id), created when there is none and updated at the version read with its other values kept; a
// concurrent write of the object (409 ConcurrentModification) is re-read, re-decided and retried; and record sync,
// which maps the field from that object, sends nothing back for the write.
import { describe, expect, it } from 'vitest';
import { announce, createCustomer, inboundDone, itemOf, readCustomer, twoWayPerTest, until, writebacks } from './support/two-way-setup.ts';
import { useEmulator } from './support/emulator.ts';
import { testStores } from './support/stores.ts';
import { valueDigest } from '../src/engine/field-state.ts';

const CONTAINER = 'crm-stages';

const env = useEmulator({ projectKey: 'custom-object-test' });

describe.each(testStores)('write-back into a custom object on $name', (store) => {
  const perTest = twoWayPerTest(store, env);

  it('creates the object, then updates it at its version through a 409, keeping its other values, and sends nothing back', async () => {
    let raced = 0;
    const ct = env.ct;
    const setup = await perTest.start({
      webhooks: {},
      destination: () => ({
        records: {
          customer: {
            fields: { name: { template: '{{firstName}} {{lastName}}' }, email: 'email', stage: { path: `customObjects.${CONTAINER}.id.obj.value.stage`, pipe: [{ default: { value: 'Lead' } }] } },
            ownership: { stage: { owner: 'destination', writeBack: { customObject: { container: CONTAINER, key: '{{id}}', path: 'stage' } } } },
          },
        },
      }),
      wrapWriter: (writer) => ({
        ...writer,
        writeCustomObject: async (address, value, version) => {
          if (version !== undefined && raced === 0) {
            // Someone else writes the object between ctbridge's read and its write.
            raced += 1;
            await ct.api.customObjects().post({ body: { container: address.container, key: address.key, value: { ...(value as object), stage: 'Customer', note: 'gold' }, version } }).execute();
          }
          return writer.writeCustomObject(address, value, version);
        },
      }),
    });
    const customer = await createCustomer(setup);
    const id = customer.id as string;
    await announce(setup, customer, 'CustomerCreated');
    const item = itemOf(setup, id)!;
    expect(item.values.get('stage')?.text).toBe('Lead');
    const object = async () => {
      try {
        return (await ct.api.customObjects().withContainerAndKey({ container: CONTAINER, key: id }).get().execute()).body as { value: Record<string, unknown> };
      } catch {
        return undefined;
      }
    };

    // No object yet: the edit creates it.
    setup.sim.account.setByHand(item.id, 'stage', { label: 'Customer' });
    await until(setup, async () => (await object())?.value?.stage === 'Customer', 'the object created');
    await until(setup, () => inboundDone(setup), 'inbound done');
    expect((await object())!.value).toEqual({ stage: 'Customer' });

    // The next edit updates it at the version read; a concurrent write in between is re-read and kept.
    setup.sim.account.setByHand(item.id, 'stage', { label: 'Churned' });
    await until(setup, async () => (await object())?.value?.stage === 'Churned', 'the object updated');
    await until(setup, () => inboundDone(setup), 'inbound done');
    expect(raced).toBe(1);
    expect((await object())!.value).toEqual({ stage: 'Churned', note: 'gold' });
    const audit = await writebacks(setup, id);
    expect(audit.map((entry) => entry.outcome)).toEqual(['ok', 'ok']);
    expect(audit[1]!.detail).toContain('1 conflicts re-decided');
    expect(setup.writes).toBe(2);
    // The field state keeps keyed digests, never an unkeyed digest of the value.
    const state = await setup.runtime.store.db.selectFrom('field_state').select(['ct', 'dest']).where('resource_id', '=', id).executeTakeFirstOrThrow();
    expect(state.ct).toMatch(/^k1\./);
    expect(state.dest).toBe(state.ct);
    expect([state.ct, state.dest]).not.toContain(valueDigest('Churned'));

    // commercetools changes the customer: record sync reads the stage from the object and sends no stage back.
    const current = await readCustomer(setup, id);
    const renamed = (await ct.api.customers().withId({ ID: id }).post({ body: { version: current.version, actions: [{ action: 'setFirstName', firstName: 'Augusta' }] } }).execute()).body as unknown as Record<string, unknown>;
    const mutationsBefore = setup.sim.mutations.length;
    await announce(setup, renamed, 'CustomerFirstNameSet');
    const sent = setup.sim.mutations.slice(mutationsBefore).filter((mutation) => mutation.ok && mutation.columnValues);
    expect(sent.length).toBeGreaterThan(0);
    for (const mutation of sent) expect(mutation.columnValues).not.toHaveProperty('stage');
    expect(itemOf(setup, id)!.values.get('stage')?.text).toBe('Churned');
    expect(itemOf(setup, id)!.name).toBe('Augusta Lovelace');
  });
});
