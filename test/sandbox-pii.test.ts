// The zero-PII check of issue 3: a full sandbox run (seeding, the initial load, live changes with bursts,
// redeliveries, destination faults, dead letters and their replay) with every log line written, then a scan of
// the ctbridge log and of every row of every table of the store for the seeded customers' emails, phone numbers
// and names. The sink holds them (the sandbox mapping sends them); ctbridge's own log and rows must not.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { runSandbox } from '../src/sandbox/run.ts';
import type { SeededShop } from '../src/sandbox/seed.ts';

const dir = mkdtempSync(join(tmpdir(), 'ctbridge-sandbox-pii-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every value of every row of every table of an SQLite file, as text. */
function allRows(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const tables = db.prepare(`select name from sqlite_master where type = 'table'`).all() as Array<{ name: string }>;
    return tables.flatMap(({ name }) =>
      (db.prepare(`select * from "${name}"`).all() as Array<Record<string, unknown>>).map((row) =>
        JSON.stringify(Object.fromEntries(Object.entries(row).map(([key, value]) => [key, value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value]))),
      ),
    );
  } finally {
    db.close();
  }
}

describe('personal data after a full sandbox run', () => {
  it('is in no log line and no stored row', async () => {
    let shop: SeededShop | undefined;
    const lines: string[] = [];
    const summary = await runSandbox({ dir, port: 0, seed: 5, durationSeconds: 10, quiet: true, signal: new AbortController().signal, write: (line) => lines.push(line), logLevel: 'debug', onSeeded: (seeded) => (shop = seeded) });
    expect(summary.customers.matching).toBe(summary.customers.total);
    expect(summary.accepted).toBeGreaterThan(100);

    const log = readFileSync(join(dir, 'sandbox.log'), 'utf8').split('\n').filter((line) => line !== '');
    expect(log.length).toBeGreaterThan(50);
    const rows = [...allRows(join(dir, 'sandbox.db')), ...allRows(join(dir, 'sandbox.inbox.db'))];
    expect(rows.length).toBeGreaterThan(100);
    // The scan covers what matters: every seeded customer's snapshot, its personal fields as digests.
    for (const customer of shop!.customers) expect(rows.some((row) => row.includes(customer.id) && row.includes('digest:'))).toBe(true);

    const needles = shop!.customers.flatMap((c) => [
      { what: `email of ${c.key}`, text: c.email.toLowerCase() },
      { what: `name of ${c.key}`, text: `${c.firstName} ${c.lastName}` },
      { what: `last name of ${c.key}`, text: `"${c.lastName}"` },
      ...c.phones.map((phone) => ({ what: `phone of ${c.key}`, text: phone })),
    ]);
    expect(needles.length).toBeGreaterThan(120);
    const hits = (haystack: string[], where: string) =>
      needles.flatMap(({ what, text }) => {
        const line = haystack.find((candidate) => candidate.toLowerCase().includes(text.toLowerCase()));
        return line === undefined ? [] : [`${what} in ${where}: ${line.slice(0, 300)}`];
      });
    expect([...hits(log, 'the log'), ...hits(rows, 'a stored row')]).toEqual([]);
  });
});
