// Scheduled sync on both stores, against the commercetools emulator with no Subscription at all: changes are found
// by polling on the schedule (driven by a fake clock shared with the emulator and explicit ticks), created and
// updated customers and orders reach the http sink, a deletion reaches it through the Messages API when the
// project keeps Messages, and is reported as not detectable when it does not; a restart on the same store keeps
// the watermark and sends nothing unchanged; two processes never poll the same sync at once; an event-driven
// destination beside it keeps getting notifications; the engine thread of `ctbridge start` polls too. Also: the
// emulator's Messages API records deletions only while the project keeps Messages.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../src/config/schema.ts';
import { createCommercetoolsClient, type CommercetoolsClient } from '../src/commercetools/client.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../src/sandbox/emulator.ts';
import { addOrder, bumpOrder, HISTORY_RECORDS, seedHistory } from '../src/sandbox/history.ts';
import { startSink, type Sink } from '../src/sandbox/sink.ts';
import { ADMIN_TOKEN, eventually, INGEST_TOKEN, messageBase, runtimeConfig } from './support/harness.ts';
import { createScheduledSync } from '../src/backfill/scheduled-sync.ts';
import { createDeletionReader } from '../src/backfill/deletions.ts';
import { createPageReader, type PageReader } from '../src/backfill/reader.ts';
import { scheduledSyncs } from '../src/config/sync.ts';
import { PermanentError, RetryableError } from '../src/destinations/kit/errors.ts';
import { scheduledSyncStatus } from '../src/backfill/scheduled-syncs.ts';
import { compileRoutes } from '../src/engine/routes.ts';
import { piiKeysLoader } from '../src/pii/keys.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';

const FIVE_MINUTES = 5 * 60_000;

/** Moves the shared clock (ctbridge's and the emulator's `Date`) on, as time passing would. */
const advance = (ms: number) => vi.setSystemTime(Date.now() + ms);

async function enableMessages(client: CommercetoolsClient): Promise<void> {
  const project = await client.api.get().execute();
  await client.api.post({ body: { version: project.body.version, actions: [{ action: 'changeMessagesConfiguration', messagesConfiguration: { enabled: true, deleteDaysAfterCreation: 15 } }] } }).execute();
}

async function createCustomer(client: CommercetoolsClient, email: string, firstName: string): Promise<string> {
  const created = await client.api.customers().post({ body: { email, firstName, password: 'secret-password' } }).execute();
  return created.body.customer.id;
}

async function renameCustomer(client: CommercetoolsClient, id: string, firstName: string): Promise<void> {
  const current = await client.api.customers().withId({ ID: id }).get().execute();
  await client.api.customers().withId({ ID: id }).post({ body: { version: current.body.version, actions: [{ action: 'setFirstName', firstName }] } }).execute();
}

async function deleteCustomer(client: CommercetoolsClient, id: string): Promise<void> {
  const current = await client.api.customers().withId({ ID: id }).get().execute();
  await client.api.customers().withId({ ID: id }).delete({ queryArgs: { version: current.body.version } }).execute();
}

function configFor(emulator: Emulator, sink: Sink, liveSink: Sink, store: string): Config {
  return runtimeConfig({
    storeUrl: store,
    commercetools: emulatorCredentials(emulator),
    destinations: [
      // Polled every five minutes; no Subscription tells it anything.
      // Its customers carry their order count ($orders): a new order must refresh its customer, found by polling too.
      { name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, sync: { mode: 'scheduled', every: '5m' }, records: { ...HISTORY_RECORDS, customer: { fields: { ...HISTORY_RECORDS.customer.fields, orders: { path: '$orders[*]', pipe: ['count'] } } } } },
      // Event-driven beside it, in the same process.
      { name: 'live', type: 'http', url: `${liveSink.url}/records`, timeoutMs: 5_000, records: { customer: { fields: { firstName: 'firstName' } } } },
    ],
  });
}

/** Log lines a runtime writes, to count what it says. */
function logCapture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const metric = (text: string, name: string, labels: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

beforeEach(() => {
  // Date only (timers stay real), moving with real time: ctbridge's clock and the emulator's lastModifiedAt agree.
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
});
afterEach(() => {
  vi.useRealTimers();
});

describe.each(testStores)('scheduled sync ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('polls on its schedule: created, updated and deleted customers and orders reach the destination, a restart keeps the watermark and resends nothing', async () => {
    const emulator = await startEmulator({ projectKey: 'scheduled-sync' });
    const sink = await startSink();
    const liveSink = await startSink();
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    const runtimes: Runtime[] = [];
    try {
      await enableMessages(client);
      const history = await seedHistory(emulator, { customers: 3, orders: 3 });
      const store = await testStore.create();
      const config = configFor(emulator, sink, liveSink, store);
      const start = async () => {
        const runtime = await startRuntime({ config, logger: pino({ level: 'silent' }), scheduledSync: { manual: true } });
        runtimes.push(runtime);
        return runtime;
      };
      let runtime = await start();
      const tick = () => runtime.scheduledSync!.tick();
      const byType = (runs: Awaited<ReturnType<typeof tick>>) => Object.fromEntries(runs.map((run) => [`${run.destination}/${run.recordType}`, { found: run.found, deleted: run.deleted, deletions: run.deletions }]));

      // The first poll is due at once and reads everything there is.
      expect(byType(await tick())).toEqual({
        'sink/customer': { found: 3, deleted: 0, deletions: 'detected' },
        'sink/order': { found: 3, deleted: 0, deletions: 'detected' },
        'sink/$orders': { found: 3, deleted: 0, deletions: 'detected' },
      });
      await eventually(() => sink.records.size === 6 && history.customerIds.every((id) => sink.records.get(`customer/${id}`)?.orders === 1), 'the first poll reached the sink');
      // Nothing is due before five minutes have passed.
      expect(await tick()).toEqual([]);

      // Changes in commercetools, none of them notified: a new customer, a renamed one, a deleted one, a newer order.
      const added = await createCustomer(client, 'new@example.com', 'Nina');
      await renameCustomer(client, history.customerIds[0]!, 'Renamed');
      await deleteCustomer(client, history.customerIds[1]!);
      await bumpOrder(emulator, history.orderIds[0]!, { orderState: 'Confirmed' });
      const placed = await addOrder(emulator, { at: new Date().toISOString(), orderNumber: 'N-1', customerId: history.customerIds[2]!, centAmount: 500 });
      const requestsBefore = sink.requests.length;
      advance(FIVE_MINUTES);
      expect(byType(await tick())).toEqual({
        'sink/customer': { found: 2, deleted: 1, deletions: 'detected' },
        'sink/order': { found: 2, deleted: 0, deletions: 'detected' },
        'sink/$orders': { found: 2, deleted: 0, deletions: 'detected' },
      });
      await eventually(
        () =>
          sink.records.get(`customer/${added}`)?.firstName === 'Nina' &&
          !sink.records.has(`customer/${history.customerIds[1]}`) &&
          sink.records.get(`order/${history.orderIds[0]}`)?.state === 'Confirmed' &&
          sink.records.get(`order/${placed}`)?.orderNumber === 'N-1' &&
          sink.records.get(`customer/${history.customerIds[0]}`)?.firstName === 'Renamed' &&
          sink.records.get(`customer/${history.customerIds[2]}`)?.orders === 2,
        'the changes reached the sink',
      );
      expect(sink.records.size).toBe(7);
      // Only what changed was sent: the untouched customer and orders once, at version 1.
      expect(sink.versions.get(`order/${history.orderIds[1]}`)).toEqual([1]);
      expect(sink.versions.get(`order/${history.orderIds[2]}`)).toEqual([1]);
      expect(sink.requests.length).toBeGreaterThan(requestsBefore);

      // The status and /metrics show each sync.
      const status = (await (await fetch(`${runtime.url}/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { scheduledSyncs: Array<Record<string, unknown>> };
      const row = await runtime.store.db.selectFrom('scheduled_syncs').selectAll().where('record_type', '=', 'customer').executeTakeFirstOrThrow();
      expect(status.scheduledSyncs).toEqual([
        { destination: 'sink', recordType: 'customer', schedule: 'every 5m', running: false, lastRunAt: expect.any(String) as string, watermark: new Date(Number(row.watermark)).toISOString(), nextRunAt: new Date(Number(row.watermark) + FIVE_MINUTES).toISOString(), lastFound: 2, lastDeleted: 1, deletions: 'detected', deletionsReason: null, lastError: null },
        expect.objectContaining({ destination: 'sink', recordType: 'order', lastFound: 2, lastDeleted: 0 }),
        expect.objectContaining({ destination: 'sink', recordType: '$orders', lastFound: 2, lastDeleted: 0 }),
      ]);
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      expect(metric(metrics, 'ctbridge_scheduled_sync_found', 'destination="sink",record_type="customer"')).toBe(2);
      expect(metric(metrics, 'ctbridge_scheduled_sync_deleted', 'destination="sink",record_type="customer"')).toBe(1);
      expect(metric(metrics, 'ctbridge_scheduled_sync_deletions_detectable', 'destination="sink",record_type="order"')).toBe(1);
      expect(metric(metrics, 'ctbridge_scheduled_sync_watermark_seconds', 'destination="sink",record_type="customer"')).toBe(Number(row.watermark) / 1000);

      // The event-driven destination beside it gets its notification at once, without any tick.
      const live = await fetch(`${runtime.url}/v1/ingest/commercetools`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
        body: JSON.stringify({ ...messageBase(history.customerIds[2]!, 1), type: 'CustomerFirstNameSet', firstName: 'Customer2' }),
      });
      expect(live.status).toBe(202);
      await eventually(() => liveSink.records.get(`customer/${history.customerIds[2]}`)?.firstName === 'Customer2', 'the live destination got the notification');

      // A restart on the same store: the watermark is where it was, nothing is due yet, and the next poll finds
      // nothing changed (what it reads again within the overlap sends nothing).
      await runtime.stop();
      runtime = await start();
      const kept = await runtime.store.db.selectFrom('scheduled_syncs').selectAll().where('record_type', '=', 'customer').executeTakeFirstOrThrow();
      expect(kept.watermark).toEqual(row.watermark);
      expect(await tick()).toEqual([]);
      const settled = sink.requests.length;
      advance(FIVE_MINUTES);
      expect(byType(await tick())).toEqual({
        'sink/customer': { found: 0, deleted: 0, deletions: 'detected' },
        'sink/order': { found: 0, deleted: 0, deletions: 'detected' },
        'sink/$orders': { found: 0, deleted: 0, deletions: 'detected' },
      });
      const moved = await runtime.store.db.selectFrom('scheduled_syncs').selectAll().where('record_type', '=', 'customer').executeTakeFirstOrThrow();
      expect(Number(moved.watermark)).toBeGreaterThan(Number(row.watermark));

      // One more change after the restart: found by the next poll, and only it is sent.
      await renameCustomer(client, history.customerIds[2]!, 'Later');
      advance(FIVE_MINUTES);
      expect(byType(await tick())['sink/customer']).toEqual({ found: 1, deleted: 0, deletions: 'detected' });
      await eventually(() => sink.records.get(`customer/${history.customerIds[2]}`)?.firstName === 'Later', 'the change after the restart reached the sink');
      // Only that customer was sent (a send the sink was slow to answer under load may go twice, as retries do).
      const sent = sink.requests.slice(settled).flatMap((r) => (Array.isArray(r.body) ? r.body : [r.body]) as Array<{ recordType?: string; id?: string }>);
      expect(new Set(sent.map((item) => `${item.recordType}/${item.id}`))).toEqual(new Set([`customer/${history.customerIds[2]}`]));

      // Two processes on the store, ticking at once: each sync is polled by one of them.
      const other = await start();
      advance(FIVE_MINUTES);
      const [mine, theirs] = await Promise.all([tick(), other.scheduledSync!.tick()]);
      expect([...mine, ...theirs].map((run) => run.recordType).sort()).toEqual(['$orders', 'customer', 'order']);
    } finally {
      for (const runtime of runtimes.reverse()) await runtime.stop();
      await client.close();
      await sink.close();
      await liveSink.close();
      await emulator.close();
    }
  });

  it('says deletions are not detectable when the project keeps no Messages: in the status, on /metrics and once in the log', async () => {
    const emulator = await startEmulator({ projectKey: 'scheduled-no-messages' });
    const sink = await startSink();
    const liveSink = await startSink();
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    let runtime: Runtime | undefined;
    try {
      const history = await seedHistory(emulator, { customers: 2, orders: 0 });
      const config = configFor(emulator, sink, liveSink, await testStore.create());
      const { logger, lines } = logCapture();
      runtime = await startRuntime({ config, logger, scheduledSync: { manual: true } });
      const scheduled = runtime.scheduledSync!;
      const tick = () => scheduled.tick();
      expect((await tick()).map((run) => [run.recordType, run.deletions]).sort()).toEqual([['$orders', 'not-detectable'], ['customer', 'not-detectable'], ['order', 'not-detectable']]);
      await eventually(() => sink.records.size === 2, 'the first poll reached the sink');

      await deleteCustomer(client, history.customerIds[0]!);
      advance(FIVE_MINUTES);
      expect((await tick()).find((run) => run.recordType === 'customer')).toEqual({ destination: 'sink', recordType: 'customer', found: 0, deleted: 0, deletions: 'not-detectable' });
      // The deleted customer stays in the destination: nothing could say it was deleted.
      expect(sink.records.has(`customer/${history.customerIds[0]}`)).toBe(true);

      const status = (await (await fetch(`${runtime.url}/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { scheduledSyncs: Array<Record<string, unknown>> };
      expect(status.scheduledSyncs[0]).toMatchObject({ recordType: 'customer', deletions: 'not-detectable', deletionsReason: 'the project does not keep Messages (messages.enabled is false in its settings): enable them to have deletions found' });
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      expect(metric(metrics, 'ctbridge_scheduled_sync_deletions_detectable', 'destination="sink",record_type="customer"')).toBe(0);
      const warnings = lines.filter((line) => line.msg === 'scheduled sync cannot detect deletions');
      expect(warnings.map((line) => line.recordType).sort()).toEqual(['$orders', 'customer', 'order']);
    } finally {
      await runtime?.stop();
      await client.close();
      await sink.close();
      await liveSink.close();
      await emulator.close();
    }
  });

  it("polls from the engine's own thread, as `ctbridge start` runs it, on real time", async () => {
    // The thread has the real clock: so must the emulator's lastModifiedAt.
    vi.useRealTimers();
    const emulator = await startEmulator({ projectKey: 'scheduled-thread' });
    const sink = await startSink();
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    let runtime: Runtime | undefined;
    try {
      const ada = await createCustomer(client, 'ada.thread@example.com', 'Ada');
      const config = runtimeConfig({
        storeUrl: await testStore.create(),
        commercetools: emulatorCredentials(emulator),
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, sync: { mode: 'scheduled', every: '1s', overlap: '1s' }, records: { customer: { fields: { firstName: 'firstName' } } } }],
      });
      runtime = await startRuntime({ config, logger: pino({ level: 'silent' }), listen: true, engineThread: true });
      // The first poll is due at once; the next ones every second, each finding what changed since the last.
      await eventually(() => sink.records.get(`customer/${ada}`)?.firstName === 'Ada', 'the first poll reached the sink');
      await renameCustomer(client, ada, 'Augusta');
      const bea = await createCustomer(client, 'bea.thread@example.com', 'Bea');
      await eventually(() => sink.records.get(`customer/${ada}`)?.firstName === 'Augusta' && sink.records.get(`customer/${bea}`)?.firstName === 'Bea', 'a later poll reached the sink');
      const status = (await (await fetch(`${runtime.url}/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { scheduledSyncs: Array<{ destination: string; recordType: string; lastRunAt: string | null }> };
      expect(status.scheduledSyncs).toEqual([expect.objectContaining({ destination: 'sink', recordType: 'customer', lastRunAt: expect.any(String) as unknown })]);
    } finally {
      await runtime?.stop();
      await client.close();
      await sink.close();
      await emulator.close();
    }
  });
});

describe.each(testStores)('an interrupted poll ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('keeps its cursor and the old watermark, and the next process resumes after the last page it marked', async () => {
    const emulator = await startEmulator({ projectKey: 'scheduled-resume' });
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    const sink = await startSink();
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const history = await seedHistory(emulator, { customers: 5, orders: 0 });
      const ids = [...history.customerIds].sort();
      const config = configFor(emulator, sink, sink, 'sqlite::memory:');
      const syncs = scheduledSyncs(config.destinations).filter((sync) => sync.recordType === 'customer');
      const pages = createPageReader(client);
      const asked: Array<string | null> = [];
      let failSecondPage = true;
      const reader: PageReader = {
        async page(query) {
          asked.push(query.afterId);
          if (failSecondPage && asked.length === 2) throw new RetryableError('commercetools is away');
          return pages.page(query);
        },
      };
      let clock = Date.UTC(2026, 2, 1, 10, 0);
      const runner = (owner: string) =>
        createScheduledSync({
          db: store.db,
          syncs,
          reader,
          deletions: createDeletionReader(client),
          routes: compileRoutes(config),
          pii: piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity }),
          notify: () => undefined,
          logger: pino({ level: 'silent' }),
          leaseMs: 5_000,
          owner,
          now: () => clock,
          manual: true,
          pageSize: 2,
        });
      const started = clock;
      const first = runner('first');
      await first.start();
      // The first page is marked, the second fails: nothing completes, the watermark stays unset.
      expect(await first.tick()).toEqual([]);
      const interrupted = await store.db.selectFrom('scheduled_syncs').selectAll().executeTakeFirstOrThrow();
      expect(interrupted).toMatchObject({ watermark: null, last_error: 'commercetools is away', lease_owner: null });
      expect(Number(interrupted.run_started_at)).toBe(started);
      expect(JSON.parse(interrupted.cursor!)).toEqual({ afterId: ids[1], resourcesDone: false });
      const marked = async () => (await store.db.selectFrom('records').select('resource_id').where('destination', '=', 'sink').execute()).map((r) => r.resource_id).sort();
      expect(await marked()).toEqual(ids.slice(0, 2));
      await first.stop();

      // Another process, once the retry is due: it goes on after the second id and completes the poll.
      failSecondPage = false;
      clock += 60_000;
      const second = runner('second');
      await second.start();
      expect(await second.tick()).toEqual([{ destination: 'sink', recordType: 'customer', found: 5, deleted: 0, deletions: 'not-detectable' }]);
      expect(asked).toEqual([null, ids[1], ids[1], ids[3]]);
      expect(await marked()).toEqual(ids);
      const done = await store.db.selectFrom('scheduled_syncs').selectAll().executeTakeFirstOrThrow();
      // The watermark is where the interrupted poll started: what changed while it was interrupted is read next time.
      expect(Number(done.watermark)).toBe(started);
      expect(done).toMatchObject({ run_started_at: null, cursor: null, last_error: null });
      await second.stop();
    } finally {
      await store.close();
      await client.close();
      await sink.close();
      await emulator.close();
    }
  });
});

describe.each(testStores)('a refused Messages read ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('completes the poll with what it found and reports deletions as not detectable, with why', async () => {
    const emulator = await startEmulator({ projectKey: 'scheduled-refused' });
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    const sink = await startSink();
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      await seedHistory(emulator, { customers: 2, orders: 0 });
      const config = configFor(emulator, sink, sink, 'sqlite::memory:');
      const runner = createScheduledSync({
        db: store.db,
        syncs: scheduledSyncs(config.destinations).filter((sync) => sync.recordType === 'customer'),
        reader: createPageReader(client),
        deletions: {
          messagesEnabled: () => Promise.reject(new PermanentError('reading the project\'s messages configuration: 403 insufficient_scope')),
          page: () => Promise.reject(new Error('not asked')),
        },
        routes: compileRoutes(config),
        pii: piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity }),
        notify: () => undefined,
        logger: pino({ level: 'silent' }),
        leaseMs: 5_000,
        owner: 'refused',
        manual: true,
      });
      await runner.start();
      expect(await runner.tick()).toEqual([{ destination: 'sink', recordType: 'customer', found: 2, deleted: 0, deletions: 'not-detectable' }]);
      expect(await scheduledSyncStatus(store.db, scheduledSyncs(config.destinations).filter((sync) => sync.recordType === 'customer'))).toEqual([
        expect.objectContaining({ lastFound: 2, deletions: 'not-detectable', deletionsReason: 'reading deletions failed: reading the project\'s messages configuration: 403 insufficient_scope', lastError: null, watermark: expect.any(String) as string }),
      ]);
      await runner.stop();
    } finally {
      await store.close();
      await client.close();
      await sink.close();
      await emulator.close();
    }
  });
});

describe('the emulator\'s Messages API', () => {
  it('records a CustomerDeleted Message only while the project keeps Messages, and answers queries as commercetools does', async () => {
    const emulator = await startEmulator({ projectKey: 'emulator-messages' });
    const client = createCommercetoolsClient(emulatorCredentials(emulator));
    try {
      const query = async () => (await client.api.messages().get({ queryArgs: { where: 'type = "CustomerDeleted"', sort: ['createdAt asc'], withTotal: false } }).execute()).body;
      const before = await createCustomer(client, 'before@example.com', 'Before');
      await deleteCustomer(client, before);
      expect((await query()).results).toEqual([]);

      await enableMessages(client);
      const after = await createCustomer(client, 'after@example.com', 'After');
      await deleteCustomer(client, after);
      const page = await query();
      expect(page.total).toBeUndefined();
      expect(page.results).toEqual([expect.objectContaining({ type: 'CustomerDeleted', resource: { typeId: 'customer', id: after }, resourceVersion: 2, version: 1 })]);
      const one = await client.api.messages().withId({ ID: page.results[0]!.id }).get().execute();
      expect(one.body).toEqual(page.results[0]);
      // Without a token: 401, as every commercetools endpoint.
      expect((await fetch(`${emulator.apiUrl}/${emulator.projectKey}/messages`)).status).toBe(401);
    } finally {
      await client.close();
      await emulator.close();
    }
  });
});
