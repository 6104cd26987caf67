// Backfills in one process, on both stores: commercetools (the emulator) read page by page into the http sink
// through the normal record path; a live update that lands while the backfill holds an older read is not
// overwritten; a second backfill of the same scope is refused with the running one's id; a finished one leaves its
// summary in the audit log and /metrics; running it again sends nothing (every record unchanged).
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../src/sandbox/emulator.ts';
import { startSink, type Sink } from '../src/sandbox/sink.ts';
import { ADMIN_TOKEN, eventually, INGEST_TOKEN, messageBase, runtimeConfig, untilDone } from './support/harness.ts';
import { bumpOrder, HISTORY_RECORDS, seedHistory } from '../src/sandbox/history.ts';
import { testStores } from './support/stores.ts';

const CUSTOMERS = 300;
const ORDERS = 1_200;

describe.each(testStores)('backfill ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('reads every order and customer once into the sink, keeps a newer live state, refuses a second of the same scope, and finds nothing to send the second time', async () => {
    const emulator = await startEmulator({ projectKey: 'backfill-test' });
    const sink = await startSink();
    let runtime: Runtime | undefined;
    try {
      const history = await seedHistory(emulator, { customers: CUSTOMERS, orders: ORDERS });
      const config = runtimeConfig({
        storeUrl: await testStore.create(),
        commercetools: emulatorCredentials(emulator),
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, records: HISTORY_RECORDS }],
      });
      const started = await startRuntime({ config, logger: pino({ level: 'silent' }) });
      runtime = started;
      const admin = (path: string, init: RequestInit = {}) => fetch(`${started.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });

      // The order the live update is about: the first of the second page of orders (ids in order).
      const raced = [...history.orderIds].sort()[600]!;
      let racedPage = false;
      let second: Response | undefined;
      let backfillId = '';
      // While the backfill's page holding the raced order (at version 1) is on its way, the order changes in
      // commercetools and the live message about it is synced: the page then arrives with the older version.
      const storage = emulator.mock.project(emulator.projectKey).config.storage as unknown as { query(projectKey: string, typeId: string, params: Record<string, unknown>): Promise<{ results: Array<{ id: string }> }> };
      const query = storage.query.bind(storage);
      storage.query = async (projectKey, typeId, params) => {
        const page = await query(projectKey, typeId, params);
        // A page of the backfill's (sorted) reads: the emulator layer carries `sort` to the storage under its own name.
        if (racedPage || typeId !== 'order' || !Object.keys(params).some((key) => key.endsWith('Sort')) || !page.results.some((order) => order.id === raced)) return page;
        racedPage = true;
        const updated = await bumpOrder(emulator, raced, { orderState: 'Confirmed' });
        const live = await fetch(`${started.url}/v1/ingest/commercetools`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
          body: JSON.stringify({ ...messageBase(raced, updated.version as number, 'order'), type: 'OrderStateChanged', orderState: 'Confirmed' }),
        });
        expect(live.status).toBe(202);
        await eventually(() => sink.records.get(`order/${raced}`)?.state === 'Confirmed', 'the live update reached the sink');
        // Meanwhile the same backfill is asked for again: refused, naming the running one.
        second = await admin('/v1/backfills', { method: 'POST', body: JSON.stringify({ destination: 'sink', records: ['order', 'customer'] }) });
        return page;
      };

      const created = await admin('/v1/backfills', { method: 'POST', body: JSON.stringify({ destination: 'sink', records: ['order', 'customer'] }) });
      expect(created.status).toBe(202);
      backfillId = ((await created.json()) as { id: string }).id;
      const progress = async () => (await (await admin(`/v1/backfills/${backfillId}`)).json()) as { state: string; read: number; queued: number; delivered: number; failed: number; pending: number };
      await untilDone(async () => {
        const p = await progress();
        return { done: p.state !== 'running', remaining: ORDERS + CUSTOMERS - p.delivered };
      }, 'the backfill finished');

      const done = await progress();
      expect(done).toMatchObject({ state: 'done', read: ORDERS + CUSTOMERS, queued: ORDERS + CUSTOMERS, delivered: ORDERS + CUSTOMERS, failed: 0, pending: 0 });
      expect(second?.status).toBe(409);
      expect(await second?.json()).toMatchObject({ runningId: backfillId });

      // Every record once, at its latest version; the raced order at the live version, never the backfill's older read.
      expect(sink.records.size).toBe(ORDERS + CUSTOMERS);
      for (const id of history.customerIds) expect(sink.versions.get(`customer/${id}`)).toEqual([1]);
      for (const id of history.orderIds) expect(sink.versions.get(`order/${id}`)).toEqual(id === raced ? [2] : [1]);
      expect(sink.records.get(`order/${raced}`)).toMatchObject({ state: 'Confirmed' });
      expect(sink.records.get(`order/${history.orderIds[0]}`)).toMatchObject({ orderNumber: 'H-0', state: 'Open', total: 1000, customerId: history.customerIds[0] });

      // The summary in the audit log, and the count on /metrics.
      const audit = await started.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'backfill.done').execute();
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ destination: 'sink', resource_id: backfillId, outcome: 'ok' });
      expect(audit[0]!.detail).toContain(`read ${ORDERS + CUSTOMERS}, queued ${ORDERS + CUSTOMERS}, pending 0, dead letters 0`);
      const metrics = await (await fetch(`${started.url}/metrics`)).text();
      expect(metrics).toMatch(/^ctbridge_backfills\{state="done"\} 1$/m);

      // The same scope again, now that none runs: accepted, and every record is unchanged — nothing is sent.
      const requestsBefore = sink.requests.length;
      const again = await admin('/v1/backfills', { method: 'POST', body: JSON.stringify({ destination: 'sink', records: ['order', 'customer'] }) });
      expect(again.status).toBe(202);
      const againId = ((await again.json()) as { id: string }).id;
      expect(againId).not.toBe(backfillId);
      await untilDone(async () => {
        const p = (await (await admin(`/v1/backfills/${againId}`)).json()) as { state: string; read: number };
        return { done: p.state !== 'running', remaining: ORDERS + CUSTOMERS - p.read };
      }, 'the second backfill finished');
      expect(await (await admin(`/v1/backfills/${againId}`)).json()).toMatchObject({ state: 'done', read: ORDERS + CUSTOMERS, failed: 0 });
      expect(sink.requests.length).toBe(requestsBefore);
    } finally {
      await runtime?.stop();
      await sink.close();
      await emulator.close();
    }
  });

  it('refuses a backfill it cannot run with a precise problem, and cancels a running one', async () => {
    const emulator: Emulator = await startEmulator({ projectKey: 'backfill-refusals' });
    const sink: Sink = await startSink();
    let runtime: Runtime | undefined;
    try {
      await seedHistory(emulator, { customers: 0, orders: 50 });
      const config = runtimeConfig({
        storeUrl: await testStore.create(),
        commercetools: emulatorCredentials(emulator),
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, records: HISTORY_RECORDS }],
      });
      // Workers off: the backfill is asked for and cancelled before anything reads it.
      const started = await startRuntime({ config, logger: pino({ level: 'silent' }), work: false });
      runtime = started;
      const post = (body: unknown) => fetch(`${started.url}/v1/backfills`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const problem = async (response: Response) => ({ status: response.status, body: (await response.json()) as { type: string; detail: string } });

      expect(await problem(await post({ destination: 'nowhere' }))).toMatchObject({ status: 400, body: { type: 'urn:ctbridge:problem:bad-request', detail: 'unknown destination "nowhere" (configured: sink)' } });
      expect(await problem(await post({ destination: 'sink', records: ['invoice'] }))).toMatchObject({ status: 400, body: { detail: 'destination "sink" has no record type "invoice" (its records: customer, order)' } });
      expect(await problem(await post({ destination: 'sink', since: 'yesterday' }))).toMatchObject({ status: 400, body: { detail: 'body field "since": expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T12:00:00Z' } });
      expect(await problem(await post({ destination: 'sink', limit: 5 }))).toMatchObject({ status: 400, body: { detail: 'body field "limit": unknown field' } });
      expect((await fetch(`${started.url}/v1/backfills`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);

      const created = await post({ destination: 'sink', records: ['order'], since: '2025-01-01' });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      const cancel = () => fetch(`${started.url}/v1/backfills/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(await (await cancel()).json()).toMatchObject({ id, state: 'cancelled', read: 0 });
      expect(await problem(await cancel())).toMatchObject({ status: 409, body: { detail: `backfill ${id} is cancelled already` } });
      expect((await fetch(`${started.url}/v1/backfills/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(404);
      const audit = await started.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'backfill.cancelled').execute();
      expect(audit.map((entry) => entry.resource_id)).toEqual([id]);
      expect(sink.requests).toHaveLength(0);
    } finally {
      await runtime?.stop();
      await sink.close();
      await emulator.close();
    }
  });
});
