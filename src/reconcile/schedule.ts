// Scheduled reconciliation: a destination's `reconcile: { every: 24h }` runs `ctbridge reconcile` inside `ctbridge
// start`. Which process runs it is decided in the store: a lease on the destination's `reconciliations` row, taken
// only when the last run started `every` ago (or a run died: its lease ran out before it finished), renewed while
// the run lasts — so processes sharing a store run it once per period between them, and a restart neither repeats
// a run early nor skips one. Each finished run leaves its counts in that row (`/metrics`:
// ctbridge_reconcile_records) and a summary in the audit log. The clock is injected: `tick()` does one round, so
// tests drive the schedule without waiting.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { insertAudit } from '../store/audit-log.ts';
import type { Database } from '../store/schema.ts';
import { FINDING_KINDS, type ReconcileCounts, type ReconcileReport } from './reconcile.ts';
export { reconcileScheduleSchema, type ReconcileSchedule } from './config.ts';

export interface ScheduledDestination {
  name: string;
  everyMs: number;
  repair: boolean;
}

export interface ReconcileSchedulerOptions {
  db: Kysely<Database>;
  destinations: readonly ScheduledDestination[];
  /** Runs one reconciliation (reconcile.ts through service.ts). */
  run: (destination: string, options: { repair: boolean; runId: string }) => Promise<ReconcileReport>;
  logger: Logger;
  leaseMs: number;
  now?: () => number;
  /** How often to look for a due run (default: a minute, or `every` when shorter). */
  pollMs?: number;
}

export interface ReconcileScheduler {
  start(): void;
  /** One round: runs what is due and this process can lease; the reports of the runs it made. */
  tick(): Promise<ReconcileReport[]>;
  stop(): Promise<void>;
}

export function createReconcileScheduler(options: ReconcileSchedulerOptions): ReconcileScheduler {
  const { db, logger } = options;
  const now = options.now ?? Date.now;
  const owner = `${process.pid}-${randomUUID()}`;
  const pollMs = options.pollMs ?? Math.min(60_000, ...options.destinations.map((d) => d.everyMs));
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> | undefined;
  let stopped = true;

  const runOne = async (destination: ScheduledDestination): Promise<ReconcileReport | undefined> => {
    if (!(await claim(db, destination, owner, now(), options.leaseMs))) return undefined;
    const runId = randomUUID();
    const log = logger.child({ destination: destination.name, reconcile: runId });
    // Renewed while it runs, so no other process takes a long run over.
    const renewal = setInterval(() => void renew(db, destination.name, owner, now() + options.leaseMs).catch((error: unknown) => log.warn({ err: error }, 'renewing the reconciliation lease failed; tried again shortly')), Math.max(1, Math.floor(options.leaseMs / 3)));
    try {
      const report = await options.run(destination.name, { repair: destination.repair, runId });
      await finish(db, destination.name, owner, now(), { counts: report.counts }, runSummary(report, runId));
      log.info({ counts: report.counts, repair: report.repair }, 'scheduled reconciliation finished');
      return report;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log.error({ err: error }, 'scheduled reconciliation failed; tried again at the next period');
      await finish(db, destination.name, owner, now(), { error: message }, { at: now(), action: 'reconcile.failed', destination: destination.name, itemType: null, resourceId: runId, version: null, fields: null, correlationId: `reconcile:${runId}`, outcome: 'failed', detail: message }).catch((failure: unknown) => log.error({ err: failure }, 'recording the failed reconciliation failed'));
      return undefined;
    } finally {
      clearInterval(renewal);
    }
  };

  const tick = async (): Promise<ReconcileReport[]> => {
    const reports: ReconcileReport[] = [];
    // One destination at a time: a run reads every record, and commercetools' rate is shared with live sync.
    for (const destination of options.destinations) {
      if (stopped && timer !== undefined) break;
      const report = await runOne(destination).catch((error: unknown) => {
        logger.warn({ err: error, destination: destination.name }, 'looking for a due reconciliation failed; tried again shortly');
        return undefined;
      });
      if (report) reports.push(report);
    }
    return reports;
  };

  return {
    start() {
      if (options.destinations.length === 0 || !stopped) return;
      stopped = false;
      const loop = () => {
        round = tick().finally(() => {
          if (!stopped) timer = setTimeout(loop, pollMs);
        });
      };
      timer = setTimeout(loop, 0);
    },
    tick,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
      // A run cut short by the stop is due again for whoever comes next.
      await db.updateTable('reconciliations').set({ lease_owner: null, lease_until: null }).where('lease_owner', '=', owner).execute();
    },
  };
}

/** Takes the destination's lease when a run is due: never run, last started `every` ago, or died (lease ran out unfinished). */
async function claim(db: Kysely<Database>, destination: ScheduledDestination, owner: string, at: number, leaseMs: number): Promise<boolean> {
  await db.insertInto('reconciliations').values({ destination: destination.name, lease_owner: null, lease_until: null, started_at: null, finished_at: null, counts: null, error: null }).onConflict((oc) => oc.column('destination').doNothing()).execute();
  const result = await db
    .updateTable('reconciliations')
    .set({ lease_owner: owner, lease_until: at + leaseMs, started_at: at })
    .where('destination', '=', destination.name)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', at)]))
    .where((eb) => eb.or([eb('started_at', 'is', null), eb('started_at', '<=', at - destination.everyMs), eb('finished_at', 'is', null), eb('finished_at', '<', eb.ref('started_at'))]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

async function renew(db: Kysely<Database>, destination: string, owner: string, until: number): Promise<void> {
  await db.updateTable('reconciliations').set({ lease_until: until }).where('destination', '=', destination).where('lease_owner', '=', owner).execute();
}

async function finish(db: Kysely<Database>, destination: string, owner: string, at: number, outcome: { counts?: ReconcileCounts; error?: string }, audit: Parameters<typeof insertAudit>[1][number]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('reconciliations')
      .set({ lease_owner: null, lease_until: null, finished_at: at, error: outcome.error ?? null, ...(outcome.counts && { counts: JSON.stringify(outcome.counts) }) })
      .where('destination', '=', destination)
      .where('lease_owner', '=', owner)
      .execute();
    await insertAudit(trx, [audit]);
  });
}

/** The audit log's summary of a run: its counts and what it queued (no record ids, no values). */
export function runSummary(report: ReconcileReport, runId: string): Parameters<typeof insertAudit>[1][number] {
  const { counts } = report;
  const queued = report.repair ? `; queued ${report.repair.resend} resends and ${report.repair.delete} deletes` : '';
  return {
    at: Date.parse(report.finishedAt),
    action: 'reconcile.done',
    destination: report.destination,
    itemType: null,
    resourceId: runId,
    version: null,
    fields: report.recordTypes,
    correlationId: `reconcile:${runId}`,
    outcome: 'ok',
    detail: `checked ${counts.checked}, in sync ${counts.inSync}, missing ${counts.missing}, stale ${counts.stale}, extra ${counts.extra}, drift ${counts.drift}, pending ${counts.pending}, failed ${counts.failed}${queued}${report.readBack ? '' : ' (snapshots only: the destination is not read back)'}`,
  };
}

/** `ctbridge_reconcile_records{destination,kind}`: what each destination's last scheduled reconciliation found. */
export function registerReconcileMetrics(registry: Registry, db: Kysely<Database>): void {
  new Gauge({
    name: 'ctbridge_reconcile_records',
    help: "The last finished reconciliation of each destination: records checked, in sync, missing, stale, extra, drift (a commercetools-owned field changed at the destination), pending and failed",
    labelNames: ['destination', 'kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await db.selectFrom('reconciliations').select(['destination', 'counts']).where('counts', 'is not', null).execute()) {
        const counts = JSON.parse(row.counts!) as ReconcileCounts;
        for (const kind of ['checked', 'inSync', ...FINDING_KINDS, 'pending', 'failed'] as const) this.set({ destination: row.destination, kind }, counts[kind]);
      }
    },
  });
  new Gauge({
    name: 'ctbridge_reconcile_last_finished_seconds',
    help: 'When each destination was last reconciled (Unix seconds)',
    labelNames: ['destination'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await db.selectFrom('reconciliations').select(['destination', 'finished_at']).where('finished_at', 'is not', null).execute()) this.set({ destination: row.destination }, Number(row.finished_at) / 1000);
    },
  });
}
