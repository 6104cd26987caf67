// Retention: snapshots and dead-letter payloads older than a store's (market's) retentionDays are purged, as
// data minimisation asks, audit entries older than auditDays, and each destination's payload log entries older than
// its payloadLog.retentionDays. A purged snapshot becomes empty, not null
// (null would mean the destination never had the record, and its deletion would then be skipped); the next
// change sends the whole record again. Runs in the engine once an hour and at start-up.
import { sql, type Kysely } from 'kysely';
import { purgeAudit } from '../store/audit-log.ts';
import { purgePayloadLog } from '../store/payload-log.ts';
import type { Database } from '../store/schema.ts';

export interface RetentionConfig {
  /** Days for every store not listed in `stores` (and for items with no store); undefined: kept. */
  days?: number | undefined;
  /** Days per store key. */
  stores: Record<string, number>;
  /** Days the audit log keeps an entry, whatever its store; undefined: kept. */
  auditDays?: number | undefined;
  /** Days each destination's payload log keeps a call (its payloadLog.retentionDays), by destination name. */
  payloadLogDays?: Record<string, number> | undefined;
}

export interface PurgeResult {
  snapshots: number;
  deadLetterPayloads: number;
  auditEntries: number;
  payloadEntries: number;
}

const DAY_MS = 24 * 3600 * 1000;

export async function purgeExpired(db: Kysely<Database>, retention: RetentionConfig, now: number): Promise<PurgeResult> {
  const result: PurgeResult = { snapshots: 0, deadLetterPayloads: 0, auditEntries: 0, payloadEntries: 0 };
  if (retention.auditDays !== undefined) result.auditEntries = await purgeAudit(db, now - retention.auditDays * DAY_MS);
  for (const [destination, days] of Object.entries(retention.payloadLogDays ?? {})) result.payloadEntries += await purgePayloadLog(db, destination, now - days * DAY_MS);
  const listed = Object.keys(retention.stores);
  const scopes: Array<{ days: number; stores: string[] | 'others' }> = [
    ...Object.entries(retention.stores).map(([store, days]) => ({ days, stores: [store] })),
    ...(retention.days === undefined ? [] : [{ days: retention.days, stores: 'others' as const }]),
  ];
  for (const { days, stores } of scopes) {
    const cutoff = now - days * DAY_MS;
    const snapshots = await db
      .updateTable('records')
      .set({ snapshot: '{}' })
      .where('snapshot', 'is not', null)
      .where('snapshot', '!=', '{}')
      .where('synced_at', '<', cutoff)
      .where((eb) => (stores === 'others' ? (listed.length === 0 ? eb.lit(true) : eb.or([eb('store_key', 'is', null), eb('store_key', 'not in', listed)])) : eb('store_key', 'in', stores)))
      .executeTakeFirst();
    result.snapshots += Number(snapshots.numUpdatedRows);
    // A record's dead letter belongs to its record's store; event and quarantine letters to the default.
    const storeOfLetter = sql<string | null>`(select r.store_key from records r where r.destination = dead_letters.destination and r.record_type = dead_letters.item_type and r.resource_id = dead_letters.resource_id and dead_letters.kind = 'record')`;
    const letters = await db
      .updateTable('dead_letters')
      .set({ payload: null })
      .where('payload', 'is not', null)
      .where('created_at', '<', cutoff)
      .where((eb) =>
        stores === 'others'
          ? listed.length === 0
            ? eb.lit(true)
            : eb.or([eb(storeOfLetter, 'is', null), eb(storeOfLetter, 'not in', listed)])
          : eb(storeOfLetter, 'in', stores),
      )
      .executeTakeFirst();
    result.deadLetterPayloads += Number(letters.numUpdatedRows);
  }
  return result;
}
