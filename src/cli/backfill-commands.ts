// `ctbridge backfill` (and `ctbridge catch-up`, backfills of what changed since a date): reads commercetools into a
// destination through the normal record path. It runs the engine in this process (no HTTP server) until the backfill
// is finished, showing progress; a `ctbridge start` sharing the store works on the same queues. Interrupted (Ctrl-C)
// or killed, the backfill keeps its cursor: the same command resumes it (once the killed process's lease has run
// out), and so does any ctbridge sharing the store.
import type { Command } from 'commander';
import { createBackfill, getBackfill, progressOf, resolveRequest, type BackfillRequest } from '../backfill/backfills.ts';
import type { Config } from '../config/schema.ts';
import { progressLine, summaryLine } from '../backfill/progress-view.ts';
import { createLogger } from '../observability/logger.ts';
import { startRuntime } from '../runtime.ts';
import { configOption, EXIT_FAILURE, exitUsage, exitWithError, loadConfigOrExit } from './common.ts';

const TTY_REFRESH_MS = 250;
const PLAIN_REFRESH_MS = 5_000;

interface BackfillOptions {
  config?: string;
  destination: string;
  records?: string;
  since?: string;
  where?: string;
  store?: string;
}

export function registerBackfillCommands(program: Command): void {
  program
    .command('backfill')
    .description('read commercetools (customers, orders, products…) into a destination through the normal record path; resumable')
    .requiredOption('--destination <name>', 'the destination to fill')
    .option('--records <types>', 'record types of the destination, comma-separated (default: all it maps)')
    .option('--since <date>', 'only resources modified since this ISO 8601 date')
    .option('--where <predicate>', 'a commercetools query predicate the resources must match')
    .option('--store <key>', 'only resources of this store (customers, orders, carts)')
    .addOption(configOption())
    .action(async (options: BackfillOptions) => {
      const config = loadConfigOrExit(options);
      const since = parseSince(options.since);
      const request = { destination: options.destination, records: options.records?.split(',').map((s) => s.trim()).filter(Boolean), since, where: options.where, store: options.store };
      await runBackfills(config, [request]);
    });

  program
    .command('catch-up')
    .description('after an outage: sync what changed in commercetools since a date into every destination (or one), as backfills of what was modified since then')
    .requiredOption('--since <date>', 'the ISO 8601 date (and time) the outage began; take it a little early')
    .option('--destination <name>', 'only this destination')
    .addOption(configOption())
    .action(async (options: { config?: string; since: string; destination?: string }) => {
      const config = loadConfigOrExit(options);
      const since = parseSince(options.since);
      const destinations = config.destinations.filter((d) => (options.destination === undefined || d.name === options.destination) && Object.keys(d.records).length > 0);
      if (options.destination !== undefined && destinations.length === 0) exitUsage(`--destination: no destination "${options.destination}" with records (configured: ${config.destinations.map((d) => d.name).join(', ')})`);
      // Deletions are not found this way (a deleted resource is not in a query): they come from the Messages API.
      process.stderr.write('catch-up finds what was created or changed since then; deletions in that time are not detected this way\n');
      await runBackfills(config, destinations.map((d) => ({ destination: d.name, since })));
    });
}

function parseSince(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const since = Date.parse(text);
  if (Number.isNaN(since) || !/^\d{4}-\d{2}-\d{2}/.test(text)) exitUsage(`--since: expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T12:00:00Z, got "${text}"`);
  return since;
}

/** Asks for the backfills (or resumes abandoned ones of the same scope) and runs the engine until all are finished. */
async function runBackfills(config: Config, requests: BackfillRequest[]): Promise<void> {
  const resolved = requests.map((request) => {
    const result = resolveRequest(config.destinations, request);
    if (!result.ok) exitUsage(result.detail);
    return { request, recordTypes: result.recordTypes };
  });
  const runtime = await startRuntime({ config, logger: createLogger({ level: 'warn' }), listen: false }).catch(exitWithError);
  const { db } = runtime.store;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ids: string[] = [];
    for (const { request, recordTypes } of resolved) {
      const created = await createBackfill(db, recordTypes, request, Date.now(), { resumeAbandoned: true });
      if (!created.ok) {
        process.stderr.write(`a backfill of the same scope is running: ${created.runningId} (watch it with GET /v1/backfills/${created.runningId}; if its process died, it resumes within engine.leaseMs in any ctbridge sharing the store)\n`);
        process.exitCode = EXIT_FAILURE;
        continue;
      }
      ids.push(created.backfill.id);
      process.stderr.write(`${created.resumed ? 'resuming' : 'started'} backfill ${created.backfill.id} of ${recordTypes.join(', ')} into ${request.destination}\n`);
    }
    runtime.engine.notify(resolved.map((r) => r.request.destination));
    const tty = process.stderr.isTTY === true;
    let lastPlain = 0;
    const open = new Set(ids);
    while (open.size > 0) {
      const lines: string[] = [];
      for (const id of [...open]) {
        const row = await getBackfill(db, id);
        if (!row) throw new Error(`backfill ${id} disappeared from the store`);
        const progress = await progressOf(db, row, Date.now());
        if (row.state !== 'running') {
          if (tty) process.stderr.write('\r\u001b[K');
          console.log(summaryLine(progress));
          if (row.state === 'failed') process.exitCode = EXIT_FAILURE;
          open.delete(id);
          continue;
        }
        lines.push(`${open.size > 1 ? `${row.destination}: ` : ''}${progressLine(progress, { bar: tty })}`);
      }
      if (open.size === 0) break;
      if (interrupted) {
        if (tty) process.stderr.write('\n');
        process.stderr.write(`interrupted: ${[...open].join(', ')} keep their cursor; run the same command again to resume\n`);
        process.exitCode = EXIT_FAILURE;
        return;
      }
      if (tty) process.stderr.write(`\r\u001b[K${lines.join(' | ')}`);
      else if (Date.now() - lastPlain >= PLAIN_REFRESH_MS) {
        lastPlain = Date.now();
        for (const line of lines) process.stderr.write(`${line}\n`);
      }
      await new Promise((resolve) => setTimeout(resolve, tty ? TTY_REFRESH_MS : 1000));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runtime.stop();
  }
}
