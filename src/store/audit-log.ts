// The audit log: one row per change ctbridge made, or tried and failed to make, in a destination or in
// commercetools — when, which record, which fields (names, never values), the correlation id and the outcome.
// Rows are written in the transaction that records the outcome, so the log and the queues never disagree.
import type { Kysely, Transaction } from 'kysely';
import type { AuditLogTable, Database } from './schema.ts';

export interface AuditEntry {
  at: number;
  /** record.upsert, record.delete, event.deliver, identity.merge, erasure… */
  action: string;
  destination: string | null;
  itemType: string | null;
  resourceId: string | null;
  version: number | null;
  fields: readonly string[] | null;
  correlationId: string | null;
  /** lease-lost: the outcome of a batch whose lease was lost meanwhile, discarded (engine/leases.ts). */
  outcome: 'ok' | 'retry' | 'dead-lettered' | 'skipped' | 'lease-lost' | ActionOutcome;
  /** Why it failed; must already be redacted (DeliveryError messages are). */
  detail: string | null;
}

/** Outcomes of agent actions (src/actions): the detail holds actor, role, amounts, reason, key and versions. */
export type ActionOutcome = 'done' | 'refused' | 'pending' | 'dry-run' | 'approved' | 'rejected' | 'failed';

export type AuditRow = Omit<AuditLogTable, 'id'> & { id: number };

const CHUNK = 200;

export async function insertAudit(trx: Transaction<Database> | Kysely<Database>, entries: readonly AuditEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += CHUNK) {
    await trx
      .insertInto('audit_log')
      .values(
        entries.slice(i, i + CHUNK).map((entry) => ({
          at: entry.at,
          action: entry.action,
          destination: entry.destination,
          item_type: entry.itemType,
          resource_id: entry.resourceId,
          version: entry.version,
          fields: entry.fields === null ? null : JSON.stringify(entry.fields),
          correlation_id: entry.correlationId,
          outcome: entry.outcome,
          detail: entry.detail,
        })),
      )
      .execute();
  }
}

/** A record's history, oldest first (at most `limit` entries, the newest ones). */
export async function auditOf(db: Kysely<Database>, resourceId: string, limit = 200): Promise<AuditRow[]> {
  const rows = await db.selectFrom('audit_log').selectAll().where('resource_id', '=', resourceId).orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({ ...row, id: Number(row.id), at: Number(row.at), version: row.version === null ? null : Number(row.version) })).reverse();
}

/** Deletes entries older than `before` (retention); returns how many. */
export async function purgeAudit(db: Kysely<Database>, before: number): Promise<number> {
  const result = await db.deleteFrom('audit_log').where('at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
