// `ctbridge backfill`: reads commercetools into a destination through the normal record path. It runs the engine in
// this process (no HTTP server) until the backfill is finished, showing progress; a `ctbridge start` sharing the
// store works on the same queues. Interrupted (Ctrl-C) or killed, the backfill keeps its cursor: the same command
// resumes it (once the killed process's lease has run out), and so does any ctbridge sharing the store.
import type { Command } from 'commander';
import { createBackfill, getBackfill, progressOf, resolveRequest } from '../backfill/backfills.ts';
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
      const since = options.since === undefined ? undefined : Date.parse(options.since);
      if (since !== undefined && (Number.isNaN(since) || !/^\d{4}-\d{2}-\d{2}/.test(options.since!))) exitUsage(`--since: expected an ISO 8601 date such as 2024-01-31, got "${options.since}"`);
      const request = { destination: options.destination, records: options.records?.split(',').map((s) => s.trim()).filter(Boolean), since, where: options.where, store: options.store };
      const resolved = resolveRequest(config.destinations, request);
      if (!resolved.ok) exitUsage(resolved.detail);

      const runtime = await startRuntime({ config, logger: createLogger({ level: 'warn' }), listen: false }).catch(exitWithError);
      const { db } = runtime.store;
      let interrupted = false;
      const onSignal = () => {
        interrupted = true;
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const created = await createBackfill(db, resolved.recordTypes, request, Date.now(), { resumeAbandoned: true });
        if (!created.ok) {
          process.stderr.write(`a backfill of the same scope is running: ${created.runningId} (watch it with GET /v1/backfills/${created.runningId}; if its process died, it resumes within engine.leaseMs in any ctbridge sharing the store)\n`);
          process.exitCode = EXIT_FAILURE;
          return;
        }
        const { id } = created.backfill;
        process.stderr.write(`${created.resumed ? 'resuming' : 'started'} backfill ${id} of ${resolved.recordTypes.join(', ')} into ${options.destination}\n`);
        runtime.engine.notify([options.destination]);
        const tty = process.stderr.isTTY === true;
        let lastPlain = 0;
        for (;;) {
          const row = await getBackfill(db, id);
          if (!row) throw new Error(`backfill ${id} disappeared from the store`);
          const progress = await progressOf(db, row, Date.now());
          if (row.state !== 'running') {
            if (tty) process.stderr.write('\r\u001b[K');
            console.log(summaryLine(progress));
            if (row.state === 'failed') process.exitCode = EXIT_FAILURE;
            return;
          }
          if (interrupted) {
            if (tty) process.stderr.write('\n');
            process.stderr.write(`interrupted: backfill ${id} keeps its cursor; run the same command again to resume it\n`);
            process.exitCode = EXIT_FAILURE;
            return;
          }
          if (tty) process.stderr.write(`\r\u001b[K${progressLine(progress, { bar: true })}`);
          else if (Date.now() - lastPlain >= PLAIN_REFRESH_MS) {
            lastPlain = Date.now();
            process.stderr.write(`${progressLine(progress, { bar: false })}\n`);
          }
          await new Promise((resolve) => setTimeout(resolve, tty ? TTY_REFRESH_MS : Math.min(PLAIN_REFRESH_MS, 1000)));
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await runtime.stop();
      }
    });
}
