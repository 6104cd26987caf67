// Failures a destination reports after it accepted an item (Ometria validates pushed records asynchronously and
// lists what it refused): each becomes the dead letter its send would have made had it failed permanently — one
// open dead letter per record, updated when there is one — and the record's row is marked unconfirmed, so its next
// sync (a replay marks it dirty) sends the whole record, not only what changed since the refused send. An event's
// delivery was kept when the connector said it might still be refused (`settlesAt`, store/event-queue.ts): it is
// made dead, as a failed delivery is, so the replay of its dead letter queues it again — mapped anew from its sealed
// source message (after the operator fixed the mapping or the destination), sent under its own idempotency key. A
// refusal reported after the kept delivery was deleted still becomes a dead letter, which says it cannot be
// replayed. Audited in the same transaction.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { LateFailure } from '../destinations/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redactText } from '../observability/redact.ts';
import { insertAudit, type AuditEntry } from '../store/audit-log.ts';
import type { Database } from '../store/schema.ts';
import type { EngineHooks } from './hooks.ts';

export async function recordLateFailures(db: Kysely<Database>, destination: string, failures: readonly LateFailure[], deps: { now: () => number; metrics: Metrics; logger: Logger; hooks: EngineHooks }): Promise<void> {
  if (failures.length === 0) return;
  const at = deps.now();
  const audit: AuditEntry[] = [];
  await db.transaction().execute(async (trx) => {
    for (const failure of failures) {
      // Destinations echo the values they refused; NUL is refused by PostgreSQL text.
      const error = redactText(failure.error).replaceAll('\u0000', '\uFFFD');
      const reason = `the destination refused it after accepting it: ${error}`;
      const columns = { correlation_id: failure.correlationId, reason, last_error: error, attempts: 1, attempt_log: JSON.stringify([{ at: failure.sentAt, error }]), payload: null, created_at: at };
      if (failure.kind === 'record') {
        await trx.updateTable('records').set({ unconfirmed: 1 }).where('destination', '=', destination).where('record_type', '=', failure.recordType).where('resource_id', '=', failure.resourceId).execute();
        const open = await trx
          .selectFrom('dead_letters')
          .select('id')
          .where('kind', '=', 'record')
          .where('destination', '=', destination)
          .where('item_type', '=', failure.recordType)
          .where('resource_id', '=', failure.resourceId)
          .where('replayed_at', 'is', null)
          .executeTakeFirst();
        if (open) await trx.updateTable('dead_letters').set(columns).where('id', '=', open.id).execute();
        else await trx.insertInto('dead_letters').values({ ...columns, destination, kind: 'record', item_type: failure.recordType, resource_id: failure.resourceId, dedupe_key: null, replayed_at: null }).execute();
        audit.push({ at, action: 'record.upsert', destination, itemType: failure.recordType, resourceId: failure.resourceId, version: null, fields: null, correlationId: failure.correlationId, outcome: 'dead-lettered', detail: reason });
      } else {
        // Whatever state the row is in: kept (settling), or still in flight when the refusal comes before the batch
        // finished (its finish keeps it dead). Its lease is left to its holder.
        const kept = await trx
          .updateTable('events')
          .set({ dead: 1, last_error: error, attempt_log: columns.attempt_log })
          .where('destination', '=', destination)
          .where('event_type', '=', failure.eventType)
          .where('dedupe_key', '=', failure.dedupeKey)
          .returning('resource_id')
          .executeTakeFirst();
        const replayable = kept !== undefined ? columns : { ...columns, reason: `${reason} (its delivery is no longer kept: it cannot be replayed)` };
        await trx.insertInto('dead_letters').values({ ...replayable, destination, kind: 'event', item_type: failure.eventType, resource_id: kept?.resource_id ?? null, dedupe_key: failure.dedupeKey, replayed_at: null }).execute();
        audit.push({ at, action: 'event.deliver', destination, itemType: failure.eventType, resourceId: failure.dedupeKey, version: null, fields: null, correlationId: failure.correlationId, outcome: 'dead-lettered', detail: reason });
      }
    }
    await insertAudit(trx, audit);
  });
  for (const failure of failures) {
    const kind = failure.kind;
    const key = failure.kind === 'record' ? failure.resourceId : failure.dedupeKey;
    deps.metrics.deadLettered.inc({ destination, kind });
    deps.logger.error({ correlationId: failure.correlationId, kind, key }, 'the destination refused an accepted item after validating it: dead-lettered');
    deps.hooks.onDeadLetter?.({ destination, kind, key, reason: redactText(failure.error) });
  }
}
