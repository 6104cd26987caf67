// Duplicates and reordering (issue 2, section 10): a fast-check property that whatever order, duplication and
// batching a customer's notifications arrive in, record sync converges on the latest version's mapped state (or
// on the deletion), never sends an older version after a newer one, and delivers each event once.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { customerMessage, eventually, startHarness, type Harness } from './support/harness.ts';
import { pendingInboxItems } from '../src/store/inbox.ts';

type Field = 'email' | 'firstName' | 'lastName' | 'city';
type Value = string | undefined;
interface Change {
  field: Field;
  value: Value;
}
interface Base {
  initial: Record<Field, Value>;
  changes: Change[];
  deleted: boolean;
  /** Per version: also deliver the ResourceUpdated/ResourceDeleted change notification (a subscription with both). */
  withChangeNotification: boolean[];
}
interface Plan {
  /** Indexes into the message list: every message at least once, some twice, in any order. */
  sequence: number[];
  /** Where the sequence is cut into delivery groups. */
  cuts: number[];
  /** Per group: one array body, concurrent single posts, or one post after the other. */
  modes: Array<'array' | 'concurrent' | 'sequential'>;
  /** Per group: wait until the engine has processed everything before the next group. */
  settle: boolean[];
  /** Per group: commercetools may already be this many versions ahead of the newest message delivered. */
  ahead: number[];
}

const FIELDS: Field[] = ['email', 'firstName', 'lastName', 'city'];
const GROUPS = 5;
const value = fc.option(fc.constantFrom('ada@example.com', 'Ada', 'Grace', 'London', 'Paris'), { nil: undefined });
const baseArb: fc.Arbitrary<Base> = fc.record({
  initial: fc.record({ email: value, firstName: value, lastName: value, city: value }),
  changes: fc.array(fc.record({ field: fc.constantFrom(...FIELDS), value }), { maxLength: 7 }),
  deleted: fc.boolean(),
  withChangeNotification: fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
});

function planArb(messageCount: number): fc.Arbitrary<Plan> {
  const range = Array.from({ length: messageCount }, (_, i) => i);
  return fc.array(fc.nat({ max: messageCount - 1 }), { maxLength: messageCount }).chain((extra) => {
    const all = [...range, ...extra];
    return fc.record({
      sequence: fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
      cuts: fc.array(fc.nat({ max: all.length }), { maxLength: GROUPS - 1 }),
      modes: fc.array(fc.constantFrom('array' as const, 'concurrent' as const, 'sequential' as const), { minLength: GROUPS, maxLength: GROUPS }),
      settle: fc.array(fc.boolean(), { minLength: GROUPS, maxLength: GROUPS }),
      ahead: fc.array(fc.nat({ max: 3 }), { minLength: GROUPS, maxLength: GROUPS }),
    });
  });
}

/** The customer at each version (index 0 = version 1). */
function customerStates(id: string, base: Base): Array<Record<string, unknown>> {
  const build = (fields: Record<Field, Value>, version: number) => ({
    id,
    version,
    ...(fields.email !== undefined && { email: fields.email }),
    ...(fields.firstName !== undefined && { firstName: fields.firstName }),
    ...(fields.lastName !== undefined && { lastName: fields.lastName }),
    addresses: fields.city === undefined ? [] : [{ city: fields.city }],
  });
  const states = [build(base.initial, 1)];
  let fields = { ...base.initial };
  base.changes.forEach((change, index) => {
    fields = { ...fields, [change.field]: change.value };
    states.push(build(fields, index + 2));
  });
  return states;
}

/** What the test destination's mapping makes of a customer (absent values are sent as null). */
function mapped(customer: Record<string, unknown>): Record<string, unknown> {
  const addresses = customer.addresses as Array<{ city?: string }>;
  return { email: customer.email ?? null, firstName: customer.firstName ?? null, lastName: customer.lastName ?? null, city: addresses[0]?.city ?? null };
}

function changeNotification(id: string, version: number, notificationType: 'ResourceUpdated' | 'ResourceDeleted'): Record<string, unknown> {
  return {
    notificationType,
    projectKey: 'test-project',
    resource: { typeId: 'customer', id },
    resourceUserProvidedIdentifiers: {},
    version,
    ...(notificationType === 'ResourceUpdated' && { oldVersion: version - 1 }),
    modifiedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString(),
  };
}

/** Every notification commercetools emits for this history, with the version it is about. */
function notificationsFor(id: string, base: Base, states: Array<Record<string, unknown>>): Array<{ version: number; body: Record<string, unknown> }> {
  const out = states.map((state, index) => ({ version: index + 1, body: customerMessage(state, index === 0 ? 'CustomerCreated' : 'CustomerFirstNameSet') }));
  states.slice(1).forEach((_, index) => {
    if (base.withChangeNotification[index + 1]) out.push({ version: index + 2, body: changeNotification(id, index + 2, 'ResourceUpdated') });
  });
  if (base.deleted) {
    const version = states.length + 1;
    out.push({ version, body: customerMessage({ id, version }, 'CustomerDeleted') });
    if (base.withChangeNotification[0]) out.push({ version, body: changeNotification(id, version, 'ResourceDeleted') });
  }
  return out;
}

async function settled(h: Harness, id: string): Promise<boolean> {
  const db = h.runtime.store.db;
  if ((await pendingInboxItems(h.runtime.store)) > 0) return false;
  const records = await db.selectFrom('records').select(['dirty_seq', 'processed_seq']).where('resource_id', '=', id).execute();
  const events = await db.selectFrom('events').select('id').where('resource_id', '=', id).execute();
  return records.every((r) => Number(r.dirty_seq) <= Number(r.processed_seq)) && events.length === 0;
}

async function deliver(h: Harness, bodies: Array<Record<string, unknown>>, mode: Plan['modes'][number]): Promise<void> {
  const check = async (response: Response, count: number) => {
    expect(response.status).toBe(202);
    // Every notification is stored (duplicates among them are dropped when routed).
    expect(((await response.json()) as { accepted: number }).accepted).toBe(count);
  };
  if (mode === 'array') {
    await check(await h.post(bodies), bodies.length);
  } else if (mode === 'concurrent') {
    await Promise.all(bodies.map(async (body) => check(await h.post(body), 1)));
  } else {
    for (const body of bodies) await check(await h.post(body), 1);
  }
}

describe.each(testStores)('duplicates and reordering on $name', (testStore) => {
  let h: Harness;
  beforeAll(async () => {
    // deleteMethod POST: the delete carries its version, so the sink's version history covers deletions too.
    h = await startHarness({ storeUrl: await testStore.create(), destination: { deleteMethod: 'POST' } });
  });
  afterAll(async () => {
    await h?.stop();
    await testStore.cleanup();
  });

  it('any interleaving, duplication and reordering converges, never sending an older version after a newer', async () => {
    let run = 0;
    const scenario = baseArb.chain((base) => {
      const count = notificationsFor('x', base, customerStates('x', base)).length;
      return planArb(count).map((plan) => ({ base, plan }));
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ base, plan }) => {
        run += 1;
        const id = `conv-${testStore.name}-${run}-${Math.random().toString(36).slice(2, 8)}`;
        const states = customerStates(id, base);
        const notifications = notificationsFor(id, base, states);
        const finalVersion = base.deleted ? states.length + 1 : states.length;

        // commercetools moves forward only; a notification is delivered only once its version exists there.
        let current = 0;
        const advanceTo = (version: number) => {
          current = Math.max(current, Math.min(version, finalVersion));
          if (current > states.length) h.commercetools.resources.delete(id);
          else h.commercetools.resources.set(id, structuredClone(states[current - 1]!));
        };

        const cuts = [...new Set(plan.cuts)].sort((a, b) => a - b);
        const groups = [0, ...cuts, plan.sequence.length].slice(1).map((end, g, ends) => plan.sequence.slice(g === 0 ? 0 : ends[g - 1], end));
        for (const [g, group] of groups.entries()) {
          if (group.length === 0) continue;
          const items = group.map((index) => notifications[index]!);
          advanceTo(Math.max(...items.map((n) => n.version)) + plan.ahead[g]!);
          await deliver(
            h,
            items.map((n) => n.body),
            plan.modes[g]!,
          );
          if (plan.settle[g]) await eventually(() => settled(h, id), `engine settled after group ${g}`);
        }
        advanceTo(finalVersion);
        // A key whose processing fetched an older commercetools state is not dirty again by itself; the last
        // notification (delivered above) is what makes the engine look once more, as it does in production.
        await eventually(() => settled(h, id), 'engine settled');

        const key = `customer/${id}`;
        const applied = h.sink.applied.filter((item) => item.kind === 'record' && item.body.id === id);
        const versions = h.sink.versions.get(key) ?? [];
        // Never an older (or the same) version after a newer one.
        for (let i = 1; i < versions.length; i += 1) expect(versions[i]!, `versions ${versions.join(',')}`).toBeGreaterThan(versions[i - 1]!);
        // Every upsert carries the state of the version it is labelled with.
        for (const item of applied.filter((a) => a.body.operation === 'upsert')) {
          const version = item.body.version as number;
          const expected = mapped(states[version - 1]!);
          for (const [field, sent] of Object.entries(item.body.fields as Record<string, unknown>)) expect(sent, `${field} at version ${version}`).toEqual(expected[field]);
        }
        const deletes = applied.filter((a) => a.body.operation === 'delete');
        if (base.deleted) {
          expect(h.sink.records.has(key)).toBe(false);
          // Deleted at most once, and nothing applied after it.
          expect(deletes.length).toBeLessThanOrEqual(1);
          if (deletes.length === 1) expect(applied.at(-1)).toBe(deletes[0]);
        } else {
          expect(deletes).toHaveLength(0);
          expect(h.sink.records.get(key)).toEqual(mapped(states.at(-1)!));
        }

        // Events: each source message once, however often it was delivered.
        const events = h.sink.applied.filter((item) => item.kind === 'event' && (item.body.resource as { id?: string } | undefined)?.id === id);
        expect(events.map((e) => e.body.sourceType).sort()).toEqual(base.deleted ? ['CustomerCreated', 'CustomerDeleted'] : ['CustomerCreated']);
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
