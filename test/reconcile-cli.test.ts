// `ctbridge reconcile` as an operator runs it (child processes, output not a terminal): the report as a table and
// as JSON, --repair queuing the fixes in the store for the running ctbridge, and a wrong destination or record type
// refused as a usage error naming the option, before anything is read.
import { afterAll, describe, expect, it } from 'vitest';
import { FORCED_RESEND } from '../src/engine/record-sync.ts';
import type { ReconcileReport } from '../src/reconcile/reconcile.ts';
import { emulatorCredentials } from '../src/sandbox/emulator.ts';
import { seedHistory } from '../src/sandbox/history.ts';
import { openStore } from '../src/store/store.ts';
import { runCtbridge, withEmulatorAndSink, writeTempConfig } from './support/child-ctbridge.ts';
import { TEST_SERVER } from './support/harness.ts';
import { testStores } from './support/stores.ts';

describe.each(testStores)('reconcile command ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('prints the report as a table and as JSON, queues the repairs, and refuses a wrong option by name', { timeout: 120_000 }, async () => {
    await withEmulatorAndSink('reconcile-cli', async (emulator, sink) => {
      const { customerIds } = await seedHistory(emulator, { customers: 3, orders: 0 });
      const storeUrl = await testStore.create();
      const configPath = writeTempConfig('ctbridge-reconcile-cli-', {
        commercetools: emulatorCredentials(emulator),
        server: TEST_SERVER,
        store: storeUrl,
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, read: { url: `${sink.url}/records/{recordType}/{id}`, fieldsAt: '/fields' }, records: { customer: { fields: { email: 'email', firstName: 'firstName' } } } }],
      });

      const wrongType = await runCtbridge(['reconcile', '--destination', 'sink', '--records', 'invoice', '--config', configPath]);
      expect(wrongType.status).toBe(2);
      expect(wrongType.stderr).toContain('--records: "invoice" is not a record type of "sink" (it maps customer)');
      const wrongDestination = await runCtbridge(['reconcile', '--destination', 'crm', '--config', configPath]);
      expect(wrongDestination.status).toBe(2);
      expect(wrongDestination.stderr).toContain('--destination: no destination "crm" (configured: sink)');

      const table = await runCtbridge(['reconcile', '--destination', 'sink', '--config', configPath]);
      expect(table.status, table.stderr).toBe(0);
      for (const id of customerIds) expect(table.stdout).toMatch(new RegExp(`^missing\\s+customer\\s+${id}\\s+snapshot\\s+-$`, 'm'));
      expect(table.stdout).toContain('checked 3: in sync 0, missing 3, stale 0, extra 0, drift 0, pending 0, failed 0');
      expect(table.stdout).toContain('run again with --repair to queue the fixes');

      const json = await runCtbridge(['reconcile', '--destination', 'sink', '--repair', '--json', '--config', configPath]);
      expect(json.status, json.stderr).toBe(0);
      const report = JSON.parse(json.stdout) as ReconcileReport;
      expect(report).toMatchObject({ destination: 'sink', recordTypes: ['customer'], readBack: true, counts: { checked: 3, missing: 3 }, repair: { resend: 3, delete: 0 } });
      expect(json.stdout).not.toContain('@example.com');

      // Queued in the store for whichever ctbridge runs the engine; nothing was sent by the command itself.
      expect(sink.requests.filter((r) => r.method !== 'GET')).toEqual([]);
      const store = openStore(storeUrl);
      try {
        const queued = await store.db.selectFrom('records').select(['resource_id', 'refresh', 'correlation_id']).where('destination', '=', 'sink').execute();
        expect(queued.map((r) => r.resource_id).sort()).toEqual([...customerIds].sort());
        for (const row of queued) expect(row).toMatchObject({ refresh: FORCED_RESEND, correlation_id: report.repair!.correlationId });
        const audit = await store.db.selectFrom('audit_log').select(['action', 'detail']).where('action', '=', 'reconcile.done').execute();
        expect(audit).toHaveLength(2);
        expect(audit[1]!.detail).toContain('queued 3 resends and 0 deletes');
      } finally {
        await store.close();
      }
    });
  });
});
