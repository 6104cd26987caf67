// Done destination webhooks (two-way sync) are forgotten after the dedupe window, beside the notification ids in
// `seen`, on both stores: a done row older than the window goes, a younger one stays (a redelivery within the
// window is still a duplicate), and dead or pending rows stay whatever their age (they hold the body to work off
// or replay).
import { afterAll, describe, expect, it } from 'vitest';
import { purgeDedupeMemory } from '../src/engine/inbox-router.ts';
import { appendInbound } from '../src/store/inbound.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';

const DAY = 24 * 3600 * 1000;
const WINDOW = 14 * DAY;
const NOW = 100 * DAY;

describe.each(testStores)('purging the dedupe memory on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('forgets done webhooks and notification ids older than the window, and keeps dead, pending and younger ones', async () => {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const rows = [
        { key: 'done-old', state: 'done', at: NOW - WINDOW - 1 },
        { key: 'done-young', state: 'done', at: NOW - WINDOW + 1 },
        { key: 'dead-old', state: 'dead', at: NOW - WINDOW - 1 },
        { key: 'pending-old', state: 'pending', at: NOW - WINDOW - 1 },
      ];
      for (const row of rows) {
        expect(await appendInbound(store.db, { destination: 'crm', dedupeKey: row.key, body: '{}', correlationId: `c-${row.key}`, now: row.at })).toBe('stored');
        await store.db.updateTable('inbound').set({ state: row.state, body: row.state === 'done' ? null : '{}' }).where('dedupe_key', '=', row.key).execute();
      }
      await store.db.insertInto('seen').values([{ dedupe_key: 'seen-old', received_at: NOW - WINDOW - 1 }, { dedupe_key: 'seen-young', received_at: NOW - 1 }]).execute();

      expect(await purgeDedupeMemory(store, NOW, WINDOW)).toEqual({ seen: 1, inbound: 1 });

      const left = await store.db.selectFrom('inbound').select('dedupe_key').orderBy('dedupe_key').execute();
      expect(left.map((row) => row.dedupe_key)).toEqual(['dead-old', 'done-young', 'pending-old']);
      expect((await store.db.selectFrom('seen').select('dedupe_key').execute()).map((row) => row.dedupe_key)).toEqual(['seen-young']);
      // Within the window a redelivery is still recognised; the purged one is new again.
      expect(await appendInbound(store.db, { destination: 'crm', dedupeKey: 'done-young', body: '{}', correlationId: 'again', now: NOW })).toBe('duplicate');
      expect(await appendInbound(store.db, { destination: 'crm', dedupeKey: 'done-old', body: '{}', correlationId: 'again', now: NOW })).toBe('stored');
    } finally {
      await store.close();
    }
  });
});
