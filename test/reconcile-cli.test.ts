// `ctbridge reconcile` as an operator runs it (child processes, output not a terminal): the report as a table and
// as JSON, --repair queuing the fixes in the store for the running ctbridge, and a wrong destination or record type
// refused as a usage error naming the option, before anything is read.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FORCED_RESEND } from '../src/engine/record-sync.ts';
import type { ReconcileReport } from '../src/reconcile/reconcile.ts';
import { emulatorCredentials, startEmulator } from '../src/sandbox/emulator.ts';
import { seedHistory } from '../src/sandbox/history.ts';
import { startSink } from '../src/sandbox/sink.ts';
import { openStore } from '../src/store/store.ts';
import { writeConfig } from './support/child-ctbridge.ts';
import { ADMIN_TOKEN, INGEST_TOKEN } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs the command to its end (without blocking this process's event loop: the emulator and sink live here). */
function ctbridge(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ctbridge.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe.each(testStores)('reconcile command ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('prints the report as a table and as JSON, queues the repairs, and refuses a wrong option by name', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ projectKey: 'reconcile-cli' });
    const sink = await startSink();
    try {
      const { customerIds } = await seedHistory(emulator, { customers: 3, orders: 0 });
      const dir = mkdtempSync(join(tmpdir(), 'ctbridge-reconcile-cli-'));
      const configPath = join(dir, 'ctbridge.yaml');
      const storeUrl = await testStore.create();
      writeConfig(configPath, {
        commercetools: emulatorCredentials(emulator),
        server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
        store: storeUrl,
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, read: { url: `${sink.url}/records/{recordType}/{id}`, fieldsAt: '/fields' }, records: { customer: { fields: { email: 'email', firstName: 'firstName' } } } }],
      });

      const wrongType = spawnSync(process.execPath, ['bin/ctbridge.js', 'reconcile', '--destination', 'sink', '--records', 'invoice', '--config', configPath], { cwd: ROOT, encoding: 'utf8' });
      expect(wrongType.status).toBe(2);
      expect(wrongType.stderr).toContain('--records: "invoice" is not a record type of "sink" (it maps customer)');
      const wrongDestination = spawnSync(process.execPath, ['bin/ctbridge.js', 'reconcile', '--destination', 'crm', '--config', configPath], { cwd: ROOT, encoding: 'utf8' });
      expect(wrongDestination.status).toBe(2);
      expect(wrongDestination.stderr).toContain('--destination: no destination "crm" (configured: sink)');

      const table = await ctbridge(['reconcile', '--destination', 'sink', '--config', configPath]);
      expect(table.status, table.stderr).toBe(0);
      for (const id of customerIds) expect(table.stdout).toMatch(new RegExp(`^missing\\s+customer\\s+${id}\\s+snapshot\\s+-$`, 'm'));
      expect(table.stdout).toContain('checked 3: in sync 0, missing 3, stale 0, extra 0, drift 0, pending 0, failed 0');
      expect(table.stdout).toContain('run again with --repair to queue the fixes');

      const json = await ctbridge(['reconcile', '--destination', 'sink', '--repair', '--json', '--config', configPath]);
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
    } finally {
      await sink.close();
      await emulator.close();
    }
  });
});
