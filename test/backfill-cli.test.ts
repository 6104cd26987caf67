// The backfill commands as an operator runs them (child processes, output not a terminal): `ctbridge catch-up
// --since DATE` syncs what commercetools changed since then into the destination and prints a summary; a wrong
// date or record type is a usage error naming the option, before anything is read.
import { afterAll, describe, expect, it } from 'vitest';
import { emulatorCredentials } from '../src/sandbox/emulator.ts';
import { HISTORY_RECORDS, seedHistory } from '../src/sandbox/history.ts';
import { runCtbridge, withEmulatorAndSink, writeTempConfig } from './support/child-ctbridge.ts';
import { TEST_SERVER } from './support/harness.ts';
import { testStores } from './support/stores.ts';

describe.each(testStores)('backfill commands ($name)', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('catch-up sends what changed since the date, and refuses a wrong date or record type by name', { timeout: 120_000 }, async () => {
    await withEmulatorAndSink('backfill-cli', async (emulator, sink) => {
      // 300 orders modified a minute apart from 2025-01-01T00:00Z, 100 customers likewise.
      const history = await seedHistory(emulator, { customers: 100, orders: 300 });
      const configPath = writeTempConfig('ctbridge-backfill-cli-', {
        commercetools: emulatorCredentials(emulator),
        server: TEST_SERVER,
        store: await testStore.create(),
        engine: { pollIntervalMs: 50, leaseMs: 2_000 },
        destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, timeoutMs: 5_000, records: HISTORY_RECORDS }],
      });

      const wrongDate = await runCtbridge(['catch-up', '--since', 'last week', '--config', configPath]);
      expect(wrongDate.status).toBe(2);
      expect(wrongDate.stderr).toContain('--since: expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T12:00:00Z, got "last week"');
      const wrongType = await runCtbridge(['backfill', '--destination', 'sink', '--records', 'invoice', '--config', configPath]);
      expect(wrongType.status).toBe(2);
      expect(wrongType.stderr).toContain('destination "sink" has no record type "invoice" (its records: customer, order)');

      // Since 02:00 on the first day: orders 120 to 299 and no customer (the last was modified at 01:39).
      const result = await runCtbridge(['catch-up', '--since', '2025-01-01T02:00:00Z', '--config', configPath]);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^backfill [0-9a-f-]{36} done: read 180, queued 180, delivered 180, dead letters 0, [\d.]+ s$/m);
      expect(result.stderr).toContain('deletions in that time are not detected this way');
      expect([...sink.records.keys()].sort()).toEqual(history.orderIds.slice(120).map((id) => `order/${id}`).sort());
    });
  });
});
