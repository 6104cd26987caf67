// `ctbridge reconcile`: compares commercetools' current state, mapped for a destination, with what ctbridge last
// delivered there and (for connectors that read back) with what the destination holds now, and prints what differs
// — missing, stale, extra, drift — as a table or JSON, by field names and keyed digests, never values. With
// --repair the fixes are queued through the record path, for the running ctbridge (or the next start) to send.
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { createPageReader } from '../backfill/reader.ts';
import { createCommercetoolsClient, resourceFetcher } from '../commercetools/client.ts';
import { createLogger } from '../observability/logger.ts';
import { FINDING_KINDS, type ReconcileCounts, type ReconcileReport } from '../reconcile/reconcile.ts';
import { runSummary } from '../reconcile/schedule.ts';
import { createReconciler, resolveRecordTypes } from '../reconcile/service.ts';
import { insertAudit } from '../store/audit-log.ts';
import { openStore } from '../store/store.ts';
import { configOption, exitUsage, exitWithError, loadConfigOrExit } from './common.ts';

const PLAIN_PROGRESS_MS = 5_000;

interface ReconcileOptions {
  config?: string;
  destination: string;
  records?: string;
  repair?: boolean;
  json?: boolean;
}

export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description('compare commercetools with what a destination was sent (and, where the connector can read back, holds): missing, stale, extra and drifted records; --repair queues the fixes')
    .requiredOption('--destination <name>', 'the destination to reconcile')
    .option('--records <types>', 'record types of the destination, comma-separated (default: all it maps)')
    .option('--repair', 'queue the fixes through the record path: a forced resend of missing, stale and drifted records, the delete of extra ones')
    .option('--json', 'print the report as JSON')
    .addOption(configOption())
    .action(async (options: ReconcileOptions) => {
      const config = loadConfigOrExit(options);
      const records = options.records?.split(',').map((s) => s.trim()).filter(Boolean);
      const resolved = resolveRecordTypes(config.destinations, options.destination, records);
      if (!resolved.ok) exitUsage(resolved.detail);
      const logger = createLogger({ level: 'warn' });
      const store = openStore(config.store);
      const commercetools = createCommercetoolsClient(config.commercetools);
      const reconciler = createReconciler({ config, store, reader: createPageReader(commercetools), fetcher: resourceFetcher(commercetools), logger });
      try {
        await store.migrate();
        const runId = randomUUID();
        if (!options.json) process.stderr.write(`reconciling ${resolved.recordTypes.join(', ')} of ${options.destination}…\n`);
        // Progress on stderr: redrawn on a terminal, a line every few seconds otherwise.
        const tty = process.stderr.isTTY === true;
        let lastLine = Date.now();
        const onProgress = (recordType: string, counts: ReconcileCounts) => {
          const line = `${recordType}: checked ${counts.checked}, ${FINDING_KINDS.map((kind) => `${kind} ${counts[kind]}`).join(', ')}`;
          if (tty) process.stderr.write(`\r\u001b[K${line}`);
          else if (Date.now() - lastLine >= PLAIN_PROGRESS_MS) {
            lastLine = Date.now();
            process.stderr.write(`${line}\n`);
          }
        };
        const report = await reconciler.run(options.destination, { recordTypes: resolved.recordTypes, repair: options.repair === true, runId, ...(!options.json && { onProgress }) });
        if (tty && !options.json) process.stderr.write('\r\u001b[K');
        await insertAudit(store.db, [runSummary(report, runId)]);
        console.log(options.json ? JSON.stringify(report, null, 2) : reportTable(report));
      } catch (error) {
        exitWithError(error);
      } finally {
        await reconciler.close();
        await commercetools.close();
        await store.close();
      }
    });
}

/** The report for a terminal: one line per finding (kind, record, where, fields), then the counts and the repairs. */
export function reportTable(report: ReconcileReport): string {
  const header = ['KIND', 'RECORD', 'ID', 'AT', 'FIELDS'];
  const lines = report.findings.map((f) => [f.kind, f.recordType, f.resourceId, f.at, f.fields.map((d) => d.field).join(', ') || '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)));
  const row = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  const { counts } = report;
  const out: string[] = [];
  out.push(`${report.destination}: ${report.recordTypes.join(', ')}; ${report.readBack ? 'compared with what the destination holds and with what was sent' : 'compared with what was sent (this destination is not read back)'}`);
  if (lines.length > 0) out.push(row(header), ...lines.map(row));
  if (report.findingsOmitted > 0) out.push(`… and ${report.findingsOmitted} more (--json lists the first ones too; the counts are complete)`);
  for (const p of report.problems) out.push(`could not compare ${p.recordType} ${p.resourceId}: ${p.message}`);
  out.push(`checked ${counts.checked}: in sync ${counts.inSync}, ${FINDING_KINDS.map((kind) => `${kind} ${counts[kind]}`).join(', ')}, pending ${counts.pending}, failed ${counts.failed}`);
  if (report.repair) out.push(`repair: queued ${report.repair.resend} forced resends and ${report.repair.delete} deletes (correlation id ${report.repair.correlationId}); a running ctbridge sends them`);
  else if (FINDING_KINDS.some((kind) => counts[kind] > 0)) out.push('run again with --repair to queue the fixes');
  return out.join('\n');
}
