// Reconciliation on both stores: customers in the commercetools emulator, delivered through the engine to the http
// sink (read back through its read URL) and to the strict Intercom simulator (contacts read back by id). Each kind
// of difference is seeded the way it happens — a customer no notification announced (missing), a change no
// notification brought (stale), a customer deleted in commercetools while its notification was lost (extra), a
// commercetools-owned field edited at the destination (drift) — and reconciliation must find each one, say it
// without a personal value, and with repair fix it through the record path: what reached the sink and the
// simulator afterwards, and a second run that finds nothing. The scheduled runs are driven by an injected clock,
// the lease by a run held open (and shown by GET /v1/reconciliations).
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createPageReader } from '../src/backfill/reader.ts';
import { createCommercetoolsClient, resourceFetcher } from '../src/commercetools/client.ts';
import { ConfigError, parseConfigText } from '../src/config/load.ts';
import { configSchema, type Config } from '../src/config/schema.ts';
import { reportTable } from '../src/cli/reconcile-command.ts';
import type { ReconcileReport } from '../src/reconcile/reconcile.ts';
import { parseDuration } from '../src/config/schedule.ts';
import { createReconcileScheduler } from '../src/reconcile/schedule.ts';
import { createReconciler, resolveRecordTypes } from '../src/reconcile/service.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../src/sandbox/emulator.ts';
import { seedHistory } from '../src/sandbox/history.ts';
import { startIntercomSimulator, type IntercomSimulator } from '../src/sandbox/intercom/simulator.ts';
import { startSink, type Sink } from '../src/sandbox/sink.ts';
import { ADMIN_TOKEN, eventually, INGEST_TOKEN, runtimeConfig } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const CUSTOMERS = 6;
const INTERCOM_TOKEN = 'reconcile-intercom-token';

function reconcileConfig(storeUrl: string, emulator: Emulator, sink: Sink, sim: IntercomSimulator): Config {
  return runtimeConfig({
    storeUrl,
    commercetools: emulatorCredentials(emulator),
    engine: { maxAttempts: 3 },
    destinations: [
      {
        name: 'sink',
        type: 'http',
        url: `${sink.url}/records`,
        timeoutMs: 5_000,
        read: { url: `${sink.url}/records/{recordType}/{id}`, fieldsAt: '/fields' },
        records: { customer: { fields: { email: 'email', firstName: 'firstName', lastName: 'lastName' } } },
      },
      {
        name: 'support',
        type: 'intercom',
        token: INTERCOM_TOKEN,
        baseUrl: sim.url,
        records: { customer: { fields: { email: 'email', name: { template: '{{firstName}} {{lastName}}' } } } },
      },
    ],
  });
}

describe.each(testStores)('reconcile ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('finds missing, stale, extra and drifted records without a personal value, repairs them through the record path, and then finds nothing', async () => {
    const emulator = await startEmulator({ projectKey: 'reconcile-test' });
    const sink = await startSink();
    const sim = await startIntercomSimulator({ token: INTERCOM_TOKEN });
    const commercetools = createCommercetoolsClient(emulatorCredentials(emulator));
    let runtime: Runtime | undefined;
    try {
      const { customerIds } = await seedHistory(emulator, { customers: CUSTOMERS, orders: 0 });
      const config = reconcileConfig(await testStore.create(), emulator, sink, sim);
      const started = await startRuntime({ config, logger: pino({ level: 'silent' }) });
      runtime = started;
      const reconciler = createReconciler({ config, store: started.store, reader: createPageReader(commercetools), fetcher: resourceFetcher(commercetools), logger: pino({ level: 'silent' }) });
      const run = (destination: string, repair = false) => reconciler.run(destination, { repair, runId: randomUUID(), onQueued: () => started.engine.notify([destination]) });
      const settled = () =>
        eventually(async () => {
          const busy = await started.store.db.selectFrom('records').select('resource_id').where((eb) => eb('dirty_seq', '>', eb.ref('processed_seq'))).execute();
          return busy.length === 0;
        }, 'every queued repair was synced');
      const contactOf = (customerId: string) => [...sim.workspace.contacts.values()].find((c) => c.external_id === customerId && !c.archived);

      // Nothing was ever delivered: every customer is missing; repair sends them all.
      for (const destination of ['sink', 'support']) {
        const first = await run(destination, true);
        expect(first.counts).toMatchObject({ checked: CUSTOMERS, missing: CUSTOMERS, stale: 0, extra: 0, drift: 0, failed: 0 });
        expect(first.repair).toMatchObject({ resend: CUSTOMERS, delete: 0 });
      }
      await eventually(() => sink.records.size === CUSTOMERS && customerIds.every((id) => contactOf(id) !== undefined), 'every customer reached the sink and Intercom');
      await settled();

      // Each kind of difference, seeded as it happens.
      const project = emulator.mock.project(emulator.projectKey);
      const storage = project.config.storage;
      const [staleId, extraId, driftId] = customerIds as [string, string, string];
      const staleCustomer = (await project.get('customer', staleId)) as unknown as Record<string, unknown>;
      await storage.add(emulator.projectKey, 'customer', { ...staleCustomer, firstName: 'Renamed', version: 2, lastModifiedAt: new Date().toISOString() } as never);
      await storage.delete(emulator.projectKey, 'customer', extraId, {});
      const newId = randomUUID();
      await project.unsafeAdd('customer', { ...staleCustomer, id: newId, email: 'never-announced@example.com', firstName: 'Newcomer', version: 1 } as never);
      sink.records.set(`customer/${driftId}`, { ...sink.records.get(`customer/${driftId}`), firstName: 'EditedAtSink' });
      contactOf(driftId)!.name = 'Edited In Intercom';

      const expected = [
        { kind: 'missing', resourceId: newId, at: 'snapshot' },
        { kind: 'stale', resourceId: staleId, at: 'snapshot' },
        { kind: 'extra', resourceId: extraId, at: 'destination' },
        { kind: 'drift', resourceId: driftId, at: 'destination' },
      ];
      const byKind = (report: ReconcileReport) => report.findings.map((f) => ({ kind: f.kind, resourceId: f.resourceId, at: f.at, fields: f.fields.map((d) => d.field) })).sort((a, b) => a.kind.localeCompare(b.kind));
      const found = { sink: await run('sink'), support: await run('support') };
      expect(found.sink.counts).toEqual({ checked: CUSTOMERS + 1, inSync: CUSTOMERS - 3, missing: 1, stale: 1, extra: 1, drift: 1, pending: 0, failed: 0 });
      expect(found.support.counts).toEqual(found.sink.counts);
      expect(byKind(found.sink)).toEqual(expected.map((e) => ({ ...e, recordType: undefined, fields: e.kind === 'stale' || e.kind === 'drift' ? ['firstName'] : [] })).map(({ recordType: _, ...e }) => e).sort((a, b) => a.kind.localeCompare(b.kind)));
      expect(byKind(found.support)).toEqual(expected.map((e) => ({ ...e, fields: e.kind === 'stale' || e.kind === 'drift' ? ['name'] : [] })).sort((a, b) => a.kind.localeCompare(b.kind)));
      // Digests on both sides of a difference, and two different values never share one.
      const drift = found.sink.findings.find((f) => f.kind === 'drift')!.fields[0]!;
      expect(drift.expected).toMatch(/^digest:/);
      expect(drift.found).toMatch(/^digest:/);
      expect(drift.expected).not.toBe(drift.found);
      // No personal value in the report, as JSON or as the table.
      for (const report of Object.values(found)) {
        for (const text of [JSON.stringify(report), reportTable(report)]) {
          for (const personal of ['@example.com', 'Renamed', 'Newcomer', 'EditedAtSink', 'Edited In Intercom', 'Customer', 'History']) expect(text).not.toContain(personal);
        }
      }
      expect(reportTable(found.sink)).toMatch(/^drift\s+customer\s+\S+\s+destination\s+firstName$/m);

      // Repair: queued through the record path, and what reached the destinations afterwards.
      for (const destination of ['sink', 'support']) {
        const repaired = await run(destination, true);
        expect(repaired.repair).toMatchObject({ resend: 3, delete: 1 });
      }
      await eventually(
        () =>
          sink.records.get(`customer/${newId}`)?.firstName === 'Newcomer' &&
          sink.records.get(`customer/${staleId}`)?.firstName === 'Renamed' &&
          !sink.records.has(`customer/${extraId}`) &&
          sink.records.get(`customer/${driftId}`)?.firstName === 'Customer2' &&
          contactOf(newId)?.name === 'Newcomer History' &&
          contactOf(staleId)?.name === 'Renamed History' &&
          contactOf(extraId) === undefined &&
          contactOf(driftId)?.name === 'Customer2 History',
        'the repairs reached the sink and Intercom',
      );
      await settled();
      expect(sink.records.get(`customer/${newId}`)).toEqual({ email: 'never-announced@example.com', firstName: 'Newcomer', lastName: 'History' });
      expect(sim.bugs).toEqual([]);

      // Everything agrees now.
      for (const destination of ['sink', 'support']) {
        const clean = await run(destination);
        expect(clean.counts).toEqual({ checked: CUSTOMERS, inSync: CUSTOMERS, missing: 0, stale: 0, extra: 0, drift: 0, pending: 0, failed: 0 });
        expect(clean.findings).toEqual([]);
      }
      await reconciler.close();
    } finally {
      await runtime?.stop();
      await commercetools.close();
      await sim.close();
      await sink.close();
      await emulator.close();
    }
  });

  it('runs scheduled reconciliations once per period under a lease, with counts on /metrics and a summary in the audit log', async () => {
    const emulator = await startEmulator({ projectKey: 'reconcile-schedule' });
    const sink = await startSink();
    const sim = await startIntercomSimulator({ token: INTERCOM_TOKEN });
    const commercetools = createCommercetoolsClient(emulatorCredentials(emulator));
    let runtime: Runtime | undefined;
    try {
      await seedHistory(emulator, { customers: 3, orders: 0 });
      const config = reconcileConfig(await testStore.create(), emulator, sink, sim);
      const started = await startRuntime({ config, logger: pino({ level: 'silent' }), work: false });
      runtime = started;
      const logger = pino({ level: 'silent' });
      const reconciler = createReconciler({ config, store: started.store, reader: createPageReader(commercetools), fetcher: resourceFetcher(commercetools), logger });
      // The store's lease times are compared with the wall clock by the admin API: the injected clock starts now.
      let clock = Date.now();
      const hour = parseDuration('1h')!;
      const scheduler = (run: (destination: string, options: { repair: boolean; runId: string }) => Promise<ReconcileReport>) =>
        createReconcileScheduler({ db: started.store.db, destinations: [{ name: 'sink', everyMs: hour, repair: false }], run, logger, leaseMs: 3_600_000, now: () => clock });
      const runs: string[] = [];
      const first = scheduler((destination, options) => {
        runs.push(options.runId);
        return reconciler.run(destination, options);
      });

      const reports = await first.tick();
      expect(reports.map((r) => r.counts)).toEqual([expect.objectContaining({ checked: 3, missing: 3 })]);
      // Not due again within the period, due after it.
      clock += hour - 1;
      expect(await first.tick()).toEqual([]);
      clock += 1;
      expect(await first.tick()).toHaveLength(1);
      expect(runs).toHaveLength(2);

      // Another process sharing the store does not run it while this one holds the lease.
      clock += hour;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const running = new Promise<void>((resolve) => (entered = resolve));
      const holder = scheduler(async (destination, options) => {
        entered();
        await held;
        return reconciler.run(destination, options);
      });
      const holding = holder.tick();
      await running;
      const other = scheduler((destination, options) => reconciler.run(destination, options));
      expect(await other.tick()).toEqual([]);
      // The admin API shows the run in progress.
      const listed = async () => ((await (await fetch(`${started.url}/v1/reconciliations`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { items: Array<Record<string, unknown>> }).items;
      const counts = { checked: 3, inSync: 0, missing: 3, stale: 0, extra: 0, drift: 0, pending: 0, failed: 0 };
      expect(await listed()).toEqual([{ destination: 'sink', every: null, running: true, startedAt: new Date(clock).toISOString(), finishedAt: new Date(clock - hour).toISOString(), counts, error: null }]);
      const typo = await fetch(`${started.url}/v1/reconciliations?destination=sink`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(typo.status).toBe(400);
      expect(await typo.json()).toMatchObject({ type: 'urn:ctbridge:problem:invalid-parameter', invalidParams: [{ name: 'destination', reason: 'unknown parameter' }] });
      release();
      expect(await holding).toHaveLength(1);
      expect(await listed()).toEqual([{ destination: 'sink', every: null, running: false, startedAt: new Date(clock).toISOString(), finishedAt: new Date(clock).toISOString(), counts, error: null }]);

      const metrics = await (await fetch(`${started.url}/metrics`)).text();
      expect(metrics).toMatch(/^ctbridge_reconcile_records\{destination="sink",kind="missing"\} 3$/m);
      expect(metrics).toMatch(/^ctbridge_reconcile_records\{destination="sink",kind="drift"\} 0$/m);
      const audit = await started.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'reconcile.done').execute();
      expect(audit).toHaveLength(3);
      expect(audit[0]).toMatchObject({ destination: 'sink', outcome: 'ok', resource_id: runs[0] });
      expect(audit[0]!.detail).toContain('checked 3, in sync 0, missing 3, stale 0, extra 0, drift 0');
      await reconciler.close();
    } finally {
      await runtime?.stop();
      await commercetools.close();
      await sim.close();
      await sink.close();
      await emulator.close();
    }
  });
});

describe('reconcile configuration', () => {
  it('takes reconcile.every as a duration of at least a minute, naming the field when it is wrong', () => {
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1d12h')).toBe(129_600_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('24 hours')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    const base = { server: { ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } }, commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' }, store: 'sqlite::memory:' };
    const destination = (reconcile: unknown) => ({ ...base, destinations: [{ name: 'sink', type: 'http', url: 'http://127.0.0.1:1/records', records: { customer: { fields: { email: 'email' } } }, reconcile }] });
    expect(configSchema.parse(destination({ every: '24h' })).destinations[0]!.reconcile).toEqual({ every: '24h', repair: false });
    for (const [every, message] of [
      ['daily', 'a duration such as 24h'],
      ['30s', 'at least 1m'],
    ] as const) {
      let problems: string[] = [];
      try {
        parseConfigText(JSON.stringify(destination({ every })), 'ctbridge.yaml', {});
      } catch (error) {
        if (error instanceof ConfigError) problems = error.problems.map((p) => `${p.path}: ${p.message}`);
      }
      expect(problems).toEqual([expect.stringMatching(new RegExp(`^destinations\\[0\\]\\.reconcile\\.every.*: .*${message}`))]);
    }
  });

  it('checks the record types a reconcile asks for against the destination', () => {
    const config = configSchema.parse({
      server: { ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
      store: 'sqlite::memory:',
      destinations: [{ name: 'sink', type: 'http', url: 'http://127.0.0.1:1/records', records: { customer: { fields: { email: 'email' } }, order: { fields: { n: 'orderNumber' } } } }],
    });
    expect(resolveRecordTypes(config.destinations, 'sink', undefined)).toEqual({ ok: true, recordTypes: ['customer', 'order'] });
    expect(resolveRecordTypes(config.destinations, 'sink', ['order'])).toEqual({ ok: true, recordTypes: ['order'] });
    expect(resolveRecordTypes(config.destinations, 'crm', undefined)).toEqual({ ok: false, detail: '--destination: no destination "crm" (configured: sink)' });
    expect(resolveRecordTypes(config.destinations, 'sink', ['product'])).toEqual({ ok: false, detail: '--records: "product" is not a record type of "sink" (it maps customer, order)' });
  });
});
