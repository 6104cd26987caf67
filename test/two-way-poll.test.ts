// Two-way sync by polling (`inbound: { poll }`), on both stores: a destination that cannot push is asked for its
// changes every interval (monday: its boards' activity logs, served by the simulator as monday does), under a
// lease, from a stored cursor, and the changes become the same inbound work as webhooks. An edit in the monday
// simulator, with no webhook registered, reaches commercetools by polling once, however many polls list it; the
// poll runs only when due on the injected clock, resumes from its cursor, and one process polls at a time.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { pollOnce } from '../src/engine/inbound-poll.ts';
import type { InboundPage } from '../src/destinations/types.ts';
import { openStore } from '../src/store/store.ts';
import { announce, createCustomer, inboundDone, itemOf, readCustomer, twoWayPerTest, until, writebacks } from './support/two-way-setup.ts';
import { useEmulator } from './support/emulator.ts';
import { eventually } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const TYPE_KEY = 'ctbridge-poll-customer';
const POLL_MS = 150;

const env = useEmulator({ projectKey: 'poll-test', types: [{ type: TYPE_KEY, resourceTypeId: 'customer', field: 'mondayStage', fieldType: 'String' }] });

describe.each(testStores)('polling a destination for its changes on $name', (store) => {
  const perTest = twoWayPerTest(store, env);

  it('writes an edit made in monday back to commercetools once, by polling its activity logs, with no webhook', async () => {
    const setup = await perTest.start({
      destination: () => ({
        inbound: { poll: POLL_MS },
        records: {
          customer: {
            fields: { name: { template: '{{firstName}} {{lastName}}' }, email: 'email', stage: { path: 'custom.fields.mondayStage', pipe: [{ default: { value: 'Lead' } }] } },
            ownership: { stage: { owner: 'destination', writeBack: { customField: 'mondayStage', type: TYPE_KEY } } },
          },
        },
      }),
    });
    // No webhooks: the destination takes none.
    const refused = await fetch(`${setup.runtime.url}/v1/inbound/crm`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"event":{}}' });
    expect(refused.status).toBe(404);

    const customer = await createCustomer(setup);
    const id = customer.id as string;
    await announce(setup, customer, 'CustomerCreated');
    const item = itemOf(setup, id)!;
    expect(item.values.get('stage')?.text).toBe('Lead');

    setup.sim.account.setByHand(item.id, 'stage', { label: 'Customer' });
    await until(setup, async () => (await readCustomer(setup, id)).custom?.fields.mondayStage === 'Customer', 'the stage written back by polling');
    await until(setup, () => inboundDone(setup), 'inbound done');
    // Later polls list the same log again (each reads back over its cursor): it is stored and written once.
    const polledAt = async () => Number((await setup.runtime.store.db.selectFrom('inbound_polls').select('polled_at').where('destination', '=', 'crm').executeTakeFirstOrThrow()).polled_at);
    const after = Date.now();
    await until(setup, async () => (await polledAt()) > after + POLL_MS, 'two more polls');
    await until(setup, () => inboundDone(setup), 'inbound done');

    const logIds = setup.sim.activityLogs.entries.filter((entry) => entry.itemId === item.id && entry.columnId === 'stage' && entry.user_id === '2').map((entry) => `monday-log:${entry.id}`);
    expect(logIds).toHaveLength(1);
    const stored = await setup.runtime.store.db.selectFrom('inbound').select(['dedupe_key', 'state']).where('destination', '=', 'crm').where('dedupe_key', '=', logIds[0]!).execute();
    expect(stored).toEqual([{ dedupe_key: logIds[0], state: 'done' }]);
    expect((await writebacks(setup, id)).filter((entry) => entry.outcome === 'ok')).toHaveLength(1);
    expect(setup.writes).toBe(1);
    expect((await readCustomer(setup, id)).custom?.fields).toEqual({ mondayStage: 'Customer' });
  });

  it('polls only when due on the injected clock, from the stored cursor, one process at a time', async () => {
    const db = openStore(await store.create());
    try {
      await db.migrate();
      let clock = 1_000_000;
      const calls: Array<string | undefined> = [];
      let release: (() => void) | undefined;
      const connector = {
        async pollInbound(cursor: string | undefined, now: number): Promise<InboundPage> {
          calls.push(cursor);
          if (release === undefined && calls.length === 3) await new Promise<void>((resolve) => (release = resolve));
          return { deliveries: [{ dedupeKey: `change-${now}`, body: { at: now } }, { dedupeKey: 'change-same', body: {} }], cursor: String(now) };
        },
      };
      let woken = 0;
      const deps = (owner: string) => ({ destination: 'crm', connector, db: db.db, intervalMs: 60_000, leaseMs: 30_000, owner, sealer: () => Promise.resolve({ seal: (text: string) => text }), logger: pino({ level: 'silent' }), onStored: () => (woken += 1), now: () => clock });

      expect(await pollOnce(deps('a'))).toBe(2);
      expect(await pollOnce(deps('a'))).toBeUndefined();
      clock += 59_999;
      expect(await pollOnce(deps('b'))).toBeUndefined();
      clock += 1;
      // Listed again: stored once.
      expect(await pollOnce(deps('b'))).toBe(1);
      expect(calls).toEqual([undefined, '1000000']);
      expect(woken).toBe(2);

      // While one process polls (its lease held), another does not.
      clock += 60_000;
      const first = pollOnce(deps('a'));
      await eventually(() => release !== undefined, 'the first poll under way');
      expect(await pollOnce(deps('b'))).toBeUndefined();
      release!();
      expect(await first).toBe(1);
      expect(calls).toEqual([undefined, '1000000', '1060000']);
      const keys = (await db.db.selectFrom('inbound').select('dedupe_key').orderBy('id').execute()).map((row) => row.dedupe_key);
      expect(keys).toEqual(['change-1000000', 'change-same', 'change-1060000', 'change-1120000']);
    } finally {
      await db.close();
    }
  });
});
