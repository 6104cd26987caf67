// A notification's version and the resource it carries are evidence, not truth (issue 11, item 7): a forged
// notification with a version far ahead of the last synced one (carrying bogus data, or announcing a deletion)
// is confirmed with commercetools, whose state is what reaches the destination, and later genuine versions are
// not taken for stale. A version no real resource reaches is quarantined at ingest. On both stores.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, messageBase, startHarness, type Harness } from './support/harness.ts';

const FORGED_VERSION = 900_000;

/** A CustomerCreated Message at `version` carrying a made-up customer (what an attacker with ingest access posts). */
function forgedCreated(id: string, version: number): Record<string, unknown> {
  return { ...messageBase(id, version), type: 'CustomerCreated', customer: { id, version, email: 'attacker@example.com', firstName: 'Forged', lastName: 'Forged' } };
}

/** The key is synced and unleased, with nothing left to do. */
async function settled(h: Harness, id: string): Promise<boolean> {
  const row = await h.runtime.store.db.selectFrom('records').selectAll().where('resource_id', '=', id).executeTakeFirst();
  return row !== undefined && row.dirty_seq === row.processed_seq && row.lease_owner === null;
}

const sentForged = (h: Harness) => h.sink.requests.some((request) => JSON.stringify(request.body).includes('Forged'));

describe.each(testStores)('forged versions on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('confirms a carried resource far ahead of the synced version with commercetools, and still takes later genuine versions', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      await h.post(h.commercetools.upsertCustomer('known', { email: 'known@example.com', firstName: 'Known', lastName: 'Person' }));
      await eventually(() => h.sink.records.get('customer/known')?.firstName === 'Known', 'the genuine customer at the sink');

      expect(await (await h.post(forgedCreated('known', FORGED_VERSION))).json()).toMatchObject({ accepted: 1 });
      await eventually(async () => h.commercetools.fetchCalls > 0 && (await settled(h, 'known')), 'the forged version confirmed');
      expect(sentForged(h)).toBe(false);
      expect(h.sink.records.get('customer/known')).toEqual({ email: 'known@example.com', firstName: 'Known', lastName: 'Person', city: null });
      // What the forgery announced is forgotten: nothing of it is kept.
      const row = await h.runtime.store.db.selectFrom('records').selectAll().where('resource_id', '=', 'known').executeTakeFirstOrThrow();
      expect(row).toMatchObject({ seen_version: 1, synced_version: 1, carried_version: null, carried_resource: null });

      // The next genuine version (2) is not stale.
      await h.post(h.commercetools.upsertCustomer('known', { firstName: 'Later' }));
      await eventually(() => h.sink.records.get('customer/known')?.firstName === 'Later', 'the genuine version 2 at the sink');
      expect(h.sink.versions.get('customer/known')).toEqual([1, 2]);

      // A key never synced: what commercetools holds is sent, not what the message carried.
      h.commercetools.upsertCustomer('fresh', { email: 'fresh@example.com', firstName: 'Fresh', lastName: 'One' });
      await h.post(forgedCreated('fresh', FORGED_VERSION));
      await eventually(() => h.sink.records.has('customer/fresh'), 'the fresh customer at the sink');
      expect(h.sink.records.get('customer/fresh')).toEqual({ email: 'fresh@example.com', firstName: 'Fresh', lastName: 'One', city: null });
      expect(h.sink.versions.get('customer/fresh')).toEqual([1]);
      await h.post(h.commercetools.upsertCustomer('fresh', { firstName: 'Fresher' }));
      await eventually(() => h.sink.records.get('customer/fresh')?.firstName === 'Fresher', 'the genuine version 2 of the fresh customer');
      expect(sentForged(h)).toBe(false);
    } finally {
      await h.stop();
    }
  });

  it('confirms a deletion far ahead of the synced version, and one announced without a resource: commercetools has the last word', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      await h.post(h.commercetools.upsertCustomer('kept', { email: 'kept@example.com', firstName: 'Kept' }));
      await eventually(() => h.sink.records.has('customer/kept'), 'the customer at the sink');

      // A forged deletion: commercetools still has the customer, so nothing is deleted.
      await h.post({ ...messageBase('kept', FORGED_VERSION), type: 'CustomerDeleted' });
      // A forged change without a resource: commercetools' older version is the truth, not a lag to wait out.
      await h.post({ ...messageBase('kept', FORGED_VERSION + 1), type: 'CustomerFirstNameSet', firstName: 'Forged' });
      await eventually(async () => h.commercetools.fetchCalls >= 1 && (await settled(h, 'kept')), 'the forged notifications confirmed');
      expect(h.sink.requests.some((request) => request.method === 'DELETE')).toBe(false);
      expect(h.sink.records.get('customer/kept')?.firstName).toBe('Kept');
      const row = await h.runtime.store.db.selectFrom('records').selectAll().where('resource_id', '=', 'kept').executeTakeFirstOrThrow();
      expect(row).toMatchObject({ seen_version: 1, deleted_version: null, attempts: 0 });

      await h.post(h.commercetools.upsertCustomer('kept', { firstName: 'Renamed' }));
      await eventually(() => h.sink.records.get('customer/kept')?.firstName === 'Renamed', 'the genuine rename at the sink');
      // And a genuine deletion still deletes.
      await h.post(h.commercetools.deleteCustomer('kept'));
      await eventually(() => !h.sink.records.has('customer/kept'), 'the genuine deletion at the sink');
      expect(sentForged(h)).toBe(false);
    } finally {
      await h.stop();
    }
  });

  it('quarantines notifications whose version no resource reaches, before anything is synced', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      const cases: Array<{ name: string; body: string }> = [
        { name: 'the largest safe integer', body: JSON.stringify(forgedCreated('implausible', Number.MAX_SAFE_INTEGER)) },
        { name: '1e300', body: JSON.stringify({ ...messageBase('implausible', 1), type: 'CustomerFirstNameSet' }).replace('"resourceVersion":1', '"resourceVersion":1e300') },
        { name: '-1', body: JSON.stringify({ ...messageBase('implausible', 1), type: 'CustomerFirstNameSet', resourceVersion: -1 }) },
        { name: 'a change notification at the largest safe integer', body: JSON.stringify({ notificationType: 'ResourceUpdated', projectKey: 'test-project', resource: { typeId: 'customer', id: 'implausible' }, version: Number.MAX_SAFE_INTEGER, oldVersion: 1, modifiedAt: new Date().toISOString() }) },
      ];
      expect(cases[1]!.body).toContain('1e300');
      for (const { name, body } of cases) {
        const correlationId = `implausible-${randomUUID()}`;
        const response = await h.post(body, { 'x-correlation-id': correlationId });
        expect(response.status, name).toBe(202);
        expect(await response.json(), name).toMatchObject({ accepted: 0, quarantined: 1 });
        let letter: { kind: string; reason: string } | undefined;
        await eventually(async () => {
          const letters = ((await (await adminFetch(h, '/v1/dead-letters?limit=1000')).json()) as { items: Array<{ kind: string; reason: string; correlationId: string }> }).items;
          letter = letters.find((l) => l.correlationId === correlationId);
          return letter !== undefined;
        }, `the dead letter of ${name}`);
        expect(letter!.kind, name).toBe('quarantine');
        expect(letter!.reason, name).toMatch(/version .*(implausible|not a non-negative integer)/i);
      }
      // Nothing became work: the genuine customer syncs at its real version afterwards.
      expect(await h.runtime.store.db.selectFrom('records').selectAll().where('resource_id', '=', 'implausible').executeTakeFirst()).toBeUndefined();
      await h.post(h.commercetools.upsertCustomer('implausible', { email: 'real@example.com', firstName: 'Real' }));
      await eventually(() => h.sink.records.get('customer/implausible')?.firstName === 'Real', 'the genuine customer at the sink');
      expect(h.sink.versions.get('customer/implausible')).toEqual([1]);
    } finally {
      await h.stop();
    }
  });
});
