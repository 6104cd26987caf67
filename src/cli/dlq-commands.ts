// Operator commands against the store: `dlq list/show/replay` and `status`. They read the same tables as the
// admin HTTP API; a running ctbridge picks replayed work up at its next poll.
import type { Command } from 'commander';
import { present } from '../server/admin-routes.ts';
import { DeadLetters } from '../store/dead-letters.ts';
import { listBackfills, progressOf } from '../backfill/backfills.ts';
import { progressLine } from '../backfill/progress-view.ts';
import { readStatus } from '../store/status.ts';
import { scheduledSyncLines, scheduledSyncStatus } from '../backfill/scheduled-syncs.ts';
import { configuredScheduledSyncs } from '../backfill/scheduled-sync.ts';
import { configOption, exitWithError, withStore } from './common.ts';

export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description('inspect and replay dead letters');

  dlq
    .command('list')
    .description('list dead letters not yet replayed')
    .option('--json', 'print JSON')
    .option('--destination <name>', 'only this destination')
    .option('--all', 'include replayed ones')
    .addOption(configOption())
    .action((options: { config?: string; json?: boolean; destination?: string; all?: boolean }) =>
      withStore(options, async (store) => {
        const letters = (await new DeadLetters(store.db).list({ destination: options.destination, includeReplayed: options.all ?? false, limit: 10_000 })).map(present);
        if (options.json) return console.log(JSON.stringify(letters, null, 2));
        if (letters.length === 0) return console.log('no dead letters');
        for (const l of letters) {
          console.log(`${String(l.id).padStart(6)}  ${l.createdAt}  ${(l.destination ?? '-').padEnd(14)} ${l.kind.padEnd(10)} ${(l.itemType ?? '').padEnd(14)} ${l.resourceId ?? ''}  ${l.reason}`);
        }
      }),
    );

  dlq
    .command('show')
    .description('show one dead letter with its attempt history and redacted payload')
    .argument('<id>')
    .addOption(configOption())
    .action((id: string, options: { config?: string }) =>
      withStore(options, async (store) => {
        const letter = /^\d+$/.test(id) ? await new DeadLetters(store.db).get(Number(id)) : undefined;
        if (!letter) return exitWithError(new Error(`dead letter ${id} does not exist`));
        console.log(JSON.stringify(present(letter), null, 2));
      }),
    );

  dlq
    .command('replay')
    .description('replay one dead letter, or all of them (of one destination)')
    .argument('[id]')
    .option('--all', 'replay every dead letter')
    .option('--destination <name>', 'with --all: only this destination')
    .addOption(configOption())
    .action((id: string | undefined, options: { config?: string; all?: boolean; destination?: string }) =>
      withStore(options, async (store) => {
        const deadLetters = new DeadLetters(store.db);
        if (options.all) {
          const result = await deadLetters.replayAll({
            destination: options.destination,
            onProgress: (done, failed) => process.stderr.write(`\rreplayed ${done}, skipped ${failed}`),
          });
          process.stderr.write('\n');
          for (const skip of result.skipped) console.log(`skipped ${skip.id}: ${skip.reason}`);
          return console.log(`replayed ${result.replayed.length} dead letters`);
        }
        if (!id || !/^\d+$/.test(id)) return exitWithError(new Error('give a dead letter id, or --all'));
        const result = await deadLetters.replay(Number(id));
        if (!result.ok) return exitWithError(new Error(result.reason));
        console.log(`replayed dead letter ${id} (${result.deadLetter.kind} ${result.deadLetter.item_type ?? ''} ${result.deadLetter.resource_id ?? ''})`);
      }),
    );

  program
    .command('status')
    .description('queue depth, in flight, oldest pending age and dead letters per destination')
    .option('--json', 'print JSON')
    .addOption(configOption())
    .action((options: { config?: string; json?: boolean }) =>
      withStore(options, async (store, config) => {
        const base = await readStatus(store, config.destinations.map((d) => d.name));
        const running = await listBackfills(store.db, { running: true });
        const status = {
          ...base,
          backfills: await Promise.all(running.map((row) => progressOf(store.db, row, Date.now()))),
          scheduledSyncs: await scheduledSyncStatus(store.db, configuredScheduledSyncs(config.destinations)),
        };
        if (options.json) return console.log(JSON.stringify(status, null, 2));
        console.log(`inbox (accepted, not yet routed): ${status.inbox}`);
        console.log('destination       records  events  in-flight  oldest-pending  dead-letters');
        for (const d of status.destinations) {
          const age = d.oldestPendingAgeMs === null ? '-' : `${(d.oldestPendingAgeMs / 1000).toFixed(1)} s`;
          console.log(`${d.destination.padEnd(16)} ${String(d.pendingRecords).padStart(8)} ${String(d.pendingEvents).padStart(7)} ${String(d.inFlight).padStart(10)} ${age.padStart(15)} ${String(d.deadLetters).padStart(13)}`);
        }
        console.log(`quarantined payloads: ${status.quarantined}; transport notices: ${status.notices}`);
        for (const b of status.backfills) console.log(`backfill ${b.id} → ${b.destination} (${b.recordTypes.join(', ')}): ${progressLine(b, { bar: false })}`);
        for (const line of scheduledSyncLines(status.scheduledSyncs)) console.log(line);
      }),
    );
}
