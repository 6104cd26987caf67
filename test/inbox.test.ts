// The inbox on its own: bodies committed as they arrived, routed exactly once even when a crash falls between
// routing and deleting (the inbox file beside an SQLite store cannot share the routing transaction), a replaced
// inbox file, the upgrade from the old inbox shape, and when the engine gives way to a burst of commits.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { compileRoutes } from '../src/engine/routes.ts';
import { IngestPressure } from '../src/engine/ingest-pressure.ts';
import { appendToInbox, inboxRow, pendingInbox, pendingInboxItems, reconcileInbox } from '../src/store/inbox.ts';
import { routeInbox } from '../src/engine/routing.ts';
import { createMigrator } from '../src/store/migrations.ts';
import { createSealer } from '../src/pii/sealed.ts';
import { inboxPath, openStore, type Store } from '../src/store/store.ts';
import { customerMessage, testConfig } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const routes = compileRoutes(testConfig('sqlite::memory:', 'http://127.0.0.1:1'));
// These bodies are appended unsealed, as a ctbridge from before sealing wrote them: any key reads them.
const sealer = createSealer(randomBytes(32));

function bodyRow(body: unknown) {
  return inboxRow({ body: Buffer.from(JSON.stringify(body)), transport: undefined, correlationId: undefined, items: Array.isArray(body) ? body.length : 1 }, Date.now());
}

function created(id: string) {
  return customerMessage({ id, version: 1, email: `${id}@example.com`, firstName: 'F' }, 'CustomerCreated');
}

async function eventCount(store: Store): Promise<number> {
  const row = await store.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

describe.each(testStores)('the inbox on %s', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('routes the committed bodies in order, once, and leaves nothing behind', async () => {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      await appendToInbox(store.inbox, [bodyRow(created('a')), bodyRow([created('b'), created('c')])]);
      expect(await pendingInboxItems(store)).toBe(3);

      const result = await routeInbox(store, routes, 100, Date.now(), { sealer });
      expect(result).toMatchObject({ routed: 2, notifications: 3, duplicates: 0 });
      expect(result.queued.get('sink')).toEqual({ records: 3, events: 3 });
      expect(await pendingInbox(store)).toEqual([]);
      expect(await store.inbox.db.selectFrom('inbox').select('seq').execute()).toEqual([]);
      expect((await routeInbox(store, routes, 100, Date.now(), { sealer })).routed).toBe(0);
      expect(await eventCount(store)).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('takes about the item budget per batch, and always at least one body', async () => {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const big = Array.from({ length: 5 }, (_, i) => created(`big-${i}`));
      await appendToInbox(store.inbox, [bodyRow(big), bodyRow(created('small-1')), bodyRow(created('small-2'))]);
      expect((await routeInbox(store, routes, 2, Date.now(), { sealer })).routed).toBe(1);
      expect((await routeInbox(store, routes, 2, Date.now(), { sealer })).routed).toBe(2);
      expect(await pendingInboxItems(store)).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('an inbox file of its own (SQLite)', () => {
  const stores = testStores.find((s) => s.name === 'sqlite')!;
  afterAll(() => stores.cleanup());

  it('does not route again the bodies a crash left in the inbox after routing them', async () => {
    const url = await stores.create();
    const store = openStore(url);
    try {
      await store.migrate();
      expect(store.inbox.separate).toBe(true);
      await appendToInbox(store.inbox, [bodyRow(created('x')), bodyRow(created('y'))]);
      // The crash: routed and marked in the main database, but the rows were never deleted from the inbox file.
      const routed = await routeInbox(store, routes, 100, Date.now(), { sealer });
      expect(routed.routed).toBe(2);
      await store.inbox.db.insertInto('inbox').values([{ ...bodyRow(created('x')), seq: 1 }, { ...bodyRow(created('y')), seq: 2 }]).execute();
      expect(await pendingInbox(store)).toEqual([]);

      expect(await reconcileInbox(store)).toBeUndefined();
      expect(await store.inbox.db.selectFrom('inbox').select('seq').execute()).toEqual([]);
      expect((await routeInbox(store, routes, 100, Date.now(), { sealer })).routed).toBe(0);
      expect(await eventCount(store)).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('routes what a replaced inbox file holds instead of skipping it, and says so', async () => {
    const url = await stores.create();
    let store = openStore(url);
    await store.migrate();
    await appendToInbox(store.inbox, [bodyRow(created('p')), bodyRow(created('q')), bodyRow(created('r'))]);
    await routeInbox(store, routes, 100, Date.now(), { sealer });
    await store.close();

    const path = inboxPath(url.slice('sqlite:'.length));
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    store = openStore(url);
    try {
      await store.migrate();
      await appendToInbox(store.inbox, [bodyRow(created('s'))]);
      expect(await reconcileInbox(store)).toMatch(/the inbox file was replaced/);
      expect(await pendingInboxItems(store)).toBe(1);
      expect((await routeInbox(store, routes, 100, Date.now(), { sealer })).notifications).toBe(1);
      expect(await eventCount(store)).toBe(4);
    } finally {
      await store.close();
    }
  });
});

describe.each(testStores)('upgrading the inbox on %s', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('refuses to drop an old inbox that still holds notifications, and names what to do', async () => {
    const store = openStore(await testStore.create());
    try {
      const migrator = createMigrator(store.db as never, store.dialect, { inboxInMain: !store.inbox.separate });
      expect((await migrator.migrateTo('0002_rate_limits')).error).toBeUndefined();
      await store.db
        .insertInto('inbox')
        .values({ dedupe_key: 'm-1', notification: '{}', carried_key: null, correlation_id: 'c', received_at: 1 } as never)
        .execute();
      await expect(store.migrate()).rejects.toThrow(/the inbox holds 1 notification\(s\) accepted by an older ctbridge .* then upgrade/);
    } finally {
      await store.close();
    }
  });
});

describe('IngestPressure', () => {
  it('is busy only while commits arrive faster than the threshold, and not after a pause', () => {
    const pressure = new IngestPressure();
    const start = 1_000_000;
    // 100 items every 5 ms: 20,000 a second.
    for (let t = 0; t <= 200; t += 5) pressure.committed(100, start + t);
    expect(pressure.busy(start + 201)).toBe(true);
    expect(pressure.busy(start + 200 + 10)).toBe(false);

    const calm = new IngestPressure();
    // 5 items every 5 ms: 1,000 a second, a busy shop's steady rate.
    for (let t = 0; t <= 400; t += 5) calm.committed(5, start + t);
    expect(calm.busy(start + 401)).toBe(false);
  });

  it('stops giving way once the backlog is large, and again once it is routed', () => {
    const pressure = new IngestPressure();
    const start = 2_000_000;
    // 20,000 a second for 3 s: 60,000 items committed, none routed.
    for (let t = 0; t <= 3_000; t += 5) pressure.committed(100, start + t);
    expect(pressure.busy(start + 3_001)).toBe(false);
    pressure.routed(30_000);
    expect(pressure.busy(start + 3_001)).toBe(true);
  });

  it('lets waiting work go at the deadline even while the burst goes on', async () => {
    // A burst that never pauses: every reading of the clock finds 1,000 more items committed 5 ms later.
    let clock = 3_000_000;
    const pressure: IngestPressure = new IngestPressure({
      now: () => {
        clock += 5;
        pressure.committed(1_000, clock);
        return clock;
      },
    });
    const start = clock;
    await expect(pressure.idle(30)).resolves.toBeUndefined();
    // It waited until the deadline, not for the burst to end: still busy.
    expect(clock - start).toBeGreaterThanOrEqual(30);
    expect(pressure.busy(clock)).toBe(true);
  });
});
