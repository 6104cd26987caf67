// A backfill survives being killed, on both stores: 20,000 orders and 5,000 customers from the commercetools
// emulator into the http sink. `ctbridge backfill` starts it and is SIGKILLed a third of the way in; a `ctbridge
// start` sharing the store takes it over from its cursor (no new request) and is SIGKILLed two thirds of the way
// in; the next `ctbridge start` finishes it. Every record reaches the sink exactly once, at its latest version.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getBackfill, listBackfills } from '../src/backfill/backfills.ts';
import { emulatorCredentials, startEmulator } from '../src/sandbox/emulator.ts';
import { startSink } from '../src/sandbox/sink.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { freePort, spawnCtbridge, waitForReady, writeConfig, type ChildCtbridge } from './support/child-ctbridge.ts';
import { ADMIN_TOKEN, INGEST_TOKEN, untilDone } from './support/harness.ts';
import { HISTORY_RECORDS, seedHistory } from '../src/sandbox/history.ts';
import { testStores } from './support/stores.ts';

const CUSTOMERS = 5_000;
const ORDERS = 20_000;
const TOTAL = CUSTOMERS + ORDERS;

describe.each(testStores)('backfill killed and resumed ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('delivers 20,000 orders and 5,000 customers exactly once at their latest version across two SIGKILLs', { timeout: 600_000 }, async () => {
    const emulator = await startEmulator({ projectKey: 'backfill-resume' });
    const sink = await startSink();
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-backfill-'));
    const logFile = join(dir, 'ctbridge.log');
    const context = () => `child output in ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`;
    let child: ChildCtbridge | undefined;
    let store: Store | undefined;
    try {
      const history = await seedHistory(emulator, { customers: CUSTOMERS, orders: ORDERS });
      const port = await freePort();
      const storeUrl = await testStore.create();
      const configPath = join(dir, 'ctbridge.yaml');
      writeConfig(configPath, {
        commercetools: emulatorCredentials(emulator),
        server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
        store: storeUrl,
        // Short leases: what a killed process held is taken over quickly.
        engine: { pollIntervalMs: 50, leaseMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 1_000 },
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, records: HISTORY_RECORDS }],
      });
      const readSoFar = async () => {
        store ??= openStore(storeUrl);
        const [row] = await listBackfills(store.db);
        return row;
      };
      const until = async (what: string, done: (row: Awaited<ReturnType<typeof readSoFar>>) => boolean) =>
        untilDone(async () => {
          const row = await readSoFar().catch(() => undefined);
          return { done: row !== undefined && done(row), remaining: TOTAL - Number(row?.read ?? 0) + Number(row?.queued ?? 0) - sink.records.size };
        }, what, 60_000);

      // 1. The command line starts it, and is killed a third of the way in.
      child = spawnCtbridge(configPath, logFile, {}, ['backfill', '--destination', 'sink', '--records', 'order,customer']);
      await until('a third read by the backfill command', (row) => Number(row!.read) >= TOTAL / 3).catch((error: Error) => {
        throw new Error(`${error.message}\n${context()}`);
      });
      expect(await child.kill('SIGKILL'), context()).toEqual({ code: null, signal: 'SIGKILL' });
      const first = (await readSoFar())!;
      expect(first.state).toBe('running');

      // 2. A server sharing the store resumes it from its cursor (nobody asks again), and is killed two thirds in.
      child = spawnCtbridge(configPath, logFile);
      await waitForReady(`http://127.0.0.1:${port}`, child);
      await until('two thirds read after the first resume', (row) => Number(row!.read) >= (2 * TOTAL) / 3 || row!.state !== 'running');
      expect(await child.kill('SIGKILL'), context()).toEqual({ code: null, signal: 'SIGKILL' });

      // 3. The next start finishes it.
      child = spawnCtbridge(configPath, logFile);
      await waitForReady(`http://127.0.0.1:${port}`, child);
      await until('the backfill finished', (row) => row!.state !== 'running');
      const progress = (await (await fetch(`http://127.0.0.1:${port}/v1/backfills/${first.id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as Record<string, unknown>;
      expect(progress, context()).toMatchObject({ id: first.id, state: 'done', read: TOTAL, queued: TOTAL, delivered: TOTAL, failed: 0, pending: 0 });
      expect(await child.kill('SIGTERM'), context()).toEqual({ code: 0, signal: null });
      child = undefined;

      // Each page was read once (the cursor moved with its marks), and every record was applied once, at version 1.
      expect((await getBackfill(store!.db, first.id))!.read).toBe(TOTAL);
      expect(sink.records.size).toBe(TOTAL);
      const wrong: string[] = [];
      for (const id of history.customerIds) if (JSON.stringify(sink.versions.get(`customer/${id}`)) !== '[1]') wrong.push(`customer/${id}`);
      for (const id of history.orderIds) if (JSON.stringify(sink.versions.get(`order/${id}`)) !== '[1]') wrong.push(`order/${id}`);
      expect(wrong.slice(0, 5)).toEqual([]);
      const audit = await store!.db.selectFrom('audit_log').select(['action', 'resource_id']).where('action', 'like', 'backfill.%').execute();
      expect(audit).toEqual([{ action: 'backfill.done', resource_id: first.id }]);
    } finally {
      await child?.kill('SIGKILL');
      await store?.close();
      await sink.close();
      await emulator.close();
    }
  });
});
