// The scheduled_syncs table (store/schema.ts ScheduledSyncsTable): one row per scheduled destination and record
// type, created from the configuration; the lease over it that lets one process poll each (a queue for
// engine/leases.ts: claim what is due, renew, give back), every write of a poll fenced by that lease; and what
// `ctbridge status`, /v1/status and /metrics show of it.
import { sql, type Kysely, type Selectable, type Transaction, type Updateable } from 'kysely';
import type { LeaseQueue } from '../engine/leases.ts';
import type { Database, ScheduledSyncsTable } from '../store/schema.ts';
import { describeSchedule, nextRun } from '../config/schedule.ts';
import type { ScheduledSyncConfig } from '../config/sync.ts';

export type ScheduledSyncRow = Selectable<ScheduledSyncsTable>;

export const syncKey = (destination: string, recordType: string): string => `${destination}\u0000${recordType}`;

/** Creates the rows of newly configured syncs (due at once) and reschedules those whose schedule changed. */
export async function ensureScheduledSyncs(db: Kysely<Database>, syncs: readonly ScheduledSyncConfig[], now: number): Promise<void> {
  for (const sync of syncs) {
    const schedule = describeSchedule(sync);
    await db
      .insertInto('scheduled_syncs')
      .values({ destination: sync.destination, record_type: sync.recordType, schedule, watermark: null, run_started_at: null, cursor: null, run_found: 0, deletions_watermark: null, deletions: null, deletions_reason: null, last_run_at: null, last_found: 0, last_deleted: 0, next_run_at: now, last_error: null, lease_owner: null, lease_until: null })
      .onConflict((oc) => oc.columns(['destination', 'record_type']).doNothing())
      .execute();
    await db
      .updateTable('scheduled_syncs')
      .set({ schedule, next_run_at: nextRun(sync, new Date(now)).getTime() })
      .where('destination', '=', sync.destination)
      .where('record_type', '=', sync.recordType)
      .where('schedule', '!=', schedule)
      .execute();
  }
}

/** The lease queue of engine/leases.ts over the configured syncs' rows: a claim takes those due that no live process holds. */
export function scheduledSyncQueue(db: Kysely<Database>, syncs: readonly ScheduledSyncConfig[]): LeaseQueue<ScheduledSyncRow> {
  const configured = new Set(syncs.map((s) => syncKey(s.destination, s.recordType)));
  return {
    async claim(token, limit, leaseUntil, now) {
      const due = await db
        .selectFrom('scheduled_syncs')
        .selectAll()
        .where('next_run_at', '<=', now)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .orderBy('next_run_at')
        .execute();
      const taken: ScheduledSyncRow[] = [];
      for (const row of due) {
        if (taken.length >= limit) break;
        if (!configured.has(syncKey(row.destination, row.record_type))) continue;
        // Taken only if nobody took it since it was read (compare and set on the lease as read).
        const updated = await db.updateTable('scheduled_syncs').set({ lease_owner: token, lease_until: leaseUntil }).where('destination', '=', row.destination).where('record_type', '=', row.record_type)
          .where((eb) => (row.lease_owner === null ? eb('lease_owner', 'is', null) : eb('lease_owner', '=', row.lease_owner)))
          .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) > 0) taken.push({ ...row, lease_owner: token, lease_until: leaseUntil });
      }
      return taken;
    },
    async renew(token, rows, leaseUntil) {
      for (const row of rows) await db.updateTable('scheduled_syncs').set({ lease_until: leaseUntil }).where('destination', '=', row.destination).where('record_type', '=', row.record_type).where('lease_owner', '=', token).execute();
    },
    async handBack(row, from, to, leaseUntil) {
      await db.updateTable('scheduled_syncs').set({ lease_owner: to, lease_until: leaseUntil }).where('destination', '=', row.destination).where('record_type', '=', row.record_type).where('lease_owner', '=', from).execute();
    },
    async giveUp(row, token) {
      await db.updateTable('scheduled_syncs').set({ lease_owner: null, lease_until: null }).where('destination', '=', row.destination).where('record_type', '=', row.record_type).where('lease_owner', '=', token).execute();
    },
    keyOf: (row) => syncKey(row.destination, row.record_type),
    sizeOf: () => 0,
  };
}

/** The poll lost its lease (another process took the sync over): this one stops. */
export class ScheduledSyncLeaseLost extends Error {}

/** Updates the row in the poll's transaction (or on its own), fenced by the lease; throws ScheduledSyncLeaseLost. */
export async function updateFenced(db: Kysely<Database> | Transaction<Database>, row: Pick<ScheduledSyncRow, 'destination' | 'record_type'>, token: string, set: Updateable<ScheduledSyncsTable>): Promise<void> {
  const updated = await db.updateTable('scheduled_syncs').set(set).where('destination', '=', row.destination).where('record_type', '=', row.record_type).where('lease_owner', '=', token).executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) throw new ScheduledSyncLeaseLost(`the scheduled sync of ${row.record_type} into ${row.destination} was taken over by another process`);
}

/** Gives back what a process still holds (its tokens match `pattern`, leases.ts tokenPattern). */
export async function releaseScheduledSyncs(db: Kysely<Database>, pattern: string): Promise<void> {
  await db.updateTable('scheduled_syncs').set({ lease_owner: null, lease_until: null }).where('lease_owner', 'like', pattern).execute();
}

export interface ScheduledSyncStatus {
  destination: string;
  recordType: string;
  schedule: string;
  /** A poll is in progress (or was interrupted and resumes from its cursor). */
  running: boolean;
  lastRunAt: string | null;
  /** What the next poll reads from (before the overlap): the start of the last complete one. */
  watermark: string | null;
  nextRunAt: string;
  /** Resources the last complete poll found changed (read again within the overlap included), and deletions it found. */
  lastFound: number;
  lastDeleted: number;
  /** detected, not-detectable (with the reason), or unknown before the first poll. */
  deletions: 'detected' | 'not-detectable' | 'unknown';
  deletionsReason: string | null;
  lastError: string | null;
}

export async function scheduledSyncStatus(db: Kysely<Database>, syncs: readonly ScheduledSyncConfig[]): Promise<ScheduledSyncStatus[]> {
  if (syncs.length === 0) return [];
  const rows = await db.selectFrom('scheduled_syncs').selectAll().execute();
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return syncs.map((sync) => {
    const row = rows.find((r) => r.destination === sync.destination && r.record_type === sync.recordType);
    return {
      destination: sync.destination,
      recordType: sync.recordType,
      schedule: describeSchedule(sync),
      running: row?.run_started_at !== null && row?.run_started_at !== undefined,
      lastRunAt: iso(row?.last_run_at ?? null),
      watermark: iso(row?.watermark ?? null),
      // A sync no process has started yet is due at once.
      nextRunAt: iso(row?.next_run_at ?? Date.now())!,
      lastFound: Number(row?.last_found ?? 0),
      lastDeleted: Number(row?.last_deleted ?? 0),
      deletions: row?.deletions === 'detected' || row?.deletions === 'not-detectable' ? row.deletions : 'unknown',
      deletionsReason: row?.deletions_reason ?? null,
      lastError: row?.last_error ?? null,
    };
  });
}

/** `ctbridge status`'s lines: one per scheduled sync, what it is and where it got. */
export function scheduledSyncLines(statuses: readonly ScheduledSyncStatus[]): string[] {
  return statuses.map((s) => {
    const parts = [
      `scheduled sync ${s.recordType} → ${s.destination} (${s.schedule})${s.running ? ', polling' : ''}`,
      `last run ${s.lastRunAt ?? 'never'}`,
      `watermark ${s.watermark ?? '-'}`,
      `next run ${s.nextRunAt}`,
      `found ${s.lastFound}, deleted ${s.lastDeleted}`,
      s.deletions === 'not-detectable' ? `deletions not detectable: ${s.deletionsReason ?? ''}` : `deletions ${s.deletions}`,
    ];
    if (s.lastError !== null) parts.push(`last error: ${s.lastError}`);
    return parts.join('; ');
  });
}

/** Background keys of the record type still waiting: a first poll (all of it) keeps at most a window of them queued. */
export async function pendingBackground(db: Kysely<Database>, destination: string, recordType: string): Promise<number> {
  const row = await db
    .selectFrom('records')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('destination', '=', destination)
    .where('background', '=', 1)
    .where(sql<boolean>`dirty_seq > processed_seq`)
    .where('record_type', '=', recordType)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
