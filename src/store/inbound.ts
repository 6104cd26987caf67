// The storage of two-way sync: destination webhooks as they arrived (stored before the answer, deduplicated on
// the delivery's id, claimed under leases, finished as done, retried or dead) and the per-field state both
// directions decide with (engine/field-state.ts).
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { FieldState } from '../engine/field-state.ts';
import type { Database, InboundPollTable, InboundTable } from './schema.ts';

export type InboundRow = Selectable<InboundTable>;
type Db = Kysely<Database> | Transaction<Database>;

/** Stores a delivery unless one with its dedupe key is stored already; says which. */
export async function appendInbound(db: Db, entry: { destination: string; dedupeKey: string; body: string; correlationId: string; now: number }): Promise<'stored' | 'duplicate'> {
  const inserted = await db
    .insertInto('inbound')
    .values({ destination: entry.destination, dedupe_key: entry.dedupeKey, body: entry.body, correlation_id: entry.correlationId, received_at: entry.now, state: 'pending', due_at: entry.now })
    .onConflict((oc) => oc.columns(['destination', 'dedupe_key']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted ? 'stored' : 'duplicate';
}

/** Claims due deliveries of a destination under a lease: each row by compare-and-set, so two processes never share one. */
export async function claimInbound(db: Kysely<Database>, destination: string, options: { owner: string; limit: number; now: number; leaseMs: number }): Promise<InboundRow[]> {
  const { owner, limit, now, leaseMs } = options;
  const candidates = await db
    .selectFrom('inbound')
    .select('id')
    .where('destination', '=', destination)
    .where('state', '=', 'pending')
    .where('due_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .orderBy('id')
    .limit(limit)
    .execute();
  const claimed: InboundRow[] = [];
  for (const { id } of candidates) {
    const updated = await db
      .updateTable('inbound')
      .set({ lease_owner: owner, lease_until: now + leaseMs })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .returningAll()
      .executeTakeFirst();
    if (updated) claimed.push(updated);
  }
  return claimed;
}

/** Finishes a claimed delivery, only while this claim still holds its lease (false: another took it over). */
export async function finishInbound(trx: Transaction<Database>, row: InboundRow, outcome: { state: 'done' } | { state: 'dead'; error: string } | { state: 'pending'; error: string; dueAt: number; deferred?: boolean }): Promise<boolean> {
  // A deferral (the record was busy) is no failed attempt.
  const attempts = row.attempts + (outcome.state === 'done' || (outcome.state === 'pending' && outcome.deferred === true) ? 0 : 1);
  const log = outcome.state === 'done' ? row.attempt_log : JSON.stringify([...(JSON.parse(row.attempt_log ?? '[]') as unknown[]), { attempt: attempts, error: outcome.error }].slice(-20));
  const result = await trx
    .updateTable('inbound')
    .set({
      state: outcome.state,
      lease_owner: null,
      lease_until: null,
      attempts,
      attempt_log: log,
      last_error: outcome.state === 'done' ? null : outcome.error,
      // Once done the body goes: the row stays only as the dedupe memory. A dead one keeps it for replay.
      ...(outcome.state === 'done' && { body: null }),
      ...(outcome.state === 'pending' && { due_at: outcome.dueAt }),
    })
    .where('id', '=', row.id)
    .where('lease_owner', '=', row.lease_owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Forgets done deliveries received before `before` (the dedupe window's start), as the router forgets `seen`
 * notification ids: a redelivery older than the window is stored and worked again, which the field state makes
 * harmless (a value the destination already held is ignored). Dead and pending rows stay: they hold their body.
 */
export async function purgeDoneInbound(db: Db, before: number): Promise<number> {
  const result = await db.deleteFrom('inbound').where('state', '=', 'done').where('received_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Puts a dead delivery back in the queue (a dead letter replayed). */
export async function replayInbound(trx: Transaction<Database>, destination: string, dedupeKey: string, now: number): Promise<boolean> {
  const result = await trx
    .updateTable('inbound')
    .set({ state: 'pending', due_at: now, attempts: 0, last_error: null, lease_owner: null, lease_until: null })
    .where('destination', '=', destination)
    .where('dedupe_key', '=', dedupeKey)
    .where('state', '=', 'dead')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export interface FieldKey {
  destination: string;
  recordType: string;
  resourceId: string;
  field: string;
}

export const fieldKeyString = (key: Omit<FieldKey, 'destination'>): string => `${key.recordType}\u0000${key.resourceId}\u0000${key.field}`;

/** The field states of these records (all their fields), keyed by fieldKeyString. */
export async function loadFieldStates(db: Db, destination: string, recordType: string, resourceIds: readonly string[]): Promise<Map<string, FieldState>> {
  const states = new Map<string, FieldState>();
  if (resourceIds.length === 0) return states;
  const rows = await db.selectFrom('field_state').selectAll().where('destination', '=', destination).where('record_type', '=', recordType).where('resource_id', 'in', [...new Set(resourceIds)]).execute();
  for (const row of rows) states.set(fieldKeyString({ recordType: row.record_type, resourceId: row.resource_id, field: row.field }), { ct: row.ct, ctAt: Number(row.ct_at), dest: row.dest, destAt: Number(row.dest_at), destSeenAt: Number(row.dest_seen_at), destSeenByUs: Number(row.dest_seen_by_us) === 1, agreedAt: Number(row.agreed_at) });
  return states;
}

export async function saveFieldState(db: Db, key: FieldKey, state: FieldState): Promise<void> {
  const values = { ct: state.ct, ct_at: state.ctAt, dest: state.dest, dest_at: state.destAt, dest_seen_at: state.destSeenAt, dest_seen_by_us: state.destSeenByUs ? 1 : 0, agreed_at: state.agreedAt };
  await db
    .insertInto('field_state')
    .values({ destination: key.destination, record_type: key.recordType, resource_id: key.resourceId, field: key.field, ...values })
    .onConflict((oc) => oc.columns(['destination', 'record_type', 'resource_id', 'field']).doUpdateSet(values))
    .execute();
}

/** Replaces one field of a record's snapshot (what the destination holds) and keeps the rest. */
export async function setSnapshotField(trx: Transaction<Database>, key: FieldKey, value: unknown): Promise<void> {
  const row = await trx.selectFrom('records').select('snapshot').where('destination', '=', key.destination).where('record_type', '=', key.recordType).where('resource_id', '=', key.resourceId).executeTakeFirst();
  if (!row?.snapshot) return;
  const snapshot = JSON.parse(row.snapshot) as Record<string, unknown>;
  snapshot[key.field] = value;
  await trx.updateTable('records').set({ snapshot: JSON.stringify(snapshot) }).where('destination', '=', key.destination).where('record_type', '=', key.recordType).where('resource_id', '=', key.resourceId).execute();
}

/** Marks a record dirty so record sync sends commercetools' state again (the destination lost a conflict). */
export async function markRecordDirty(trx: Transaction<Database>, key: Omit<FieldKey, 'field'>, correlationId: string, now: number): Promise<void> {
  await trx
    .updateTable('records')
    .set({ dirty_seq: sql`case when dirty_seq > processed_seq then dirty_seq else dirty_seq + 1 end`, due_at: now, dirtied_at: now, refresh: 1, correlation_id: correlationId })
    .where('destination', '=', key.destination)
    .where('record_type', '=', key.recordType)
    .where('resource_id', '=', key.resourceId)
    .execute();
}

export type InboundPollRow = Selectable<InboundPollTable>;

/**
 * Takes the lease on polling a destination when a poll is due and no other process holds it (compare-and-set, so
 * two processes never poll at once); the row with its cursor, or undefined.
 */
export async function claimInboundPoll(db: Kysely<Database>, destination: string, options: { owner: string; now: number; leaseMs: number }): Promise<InboundPollRow | undefined> {
  const { owner, now, leaseMs } = options;
  await db.insertInto('inbound_polls').values({ destination, cursor: null, due_at: 0 }).onConflict((oc) => oc.column('destination').doNothing()).execute();
  return await db
    .updateTable('inbound_polls')
    .set({ lease_owner: owner, lease_until: now + leaseMs })
    .where('destination', '=', destination)
    .where('due_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .returningAll()
    .executeTakeFirst();
}

/** Ends a poll while this claim still holds its lease (false otherwise): the next cursor, or the error, and when next. */
export async function finishInboundPoll(db: Db, row: InboundPollRow, outcome: { cursor: string; dueAt: number; now: number } | { error: string; dueAt: number }): Promise<boolean> {
  const result = await db
    .updateTable('inbound_polls')
    .set({ lease_owner: null, lease_until: null, due_at: outcome.dueAt, ...('cursor' in outcome ? { cursor: outcome.cursor, polled_at: outcome.now, last_error: null } : { last_error: outcome.error }) })
    .where('destination', '=', row.destination)
    .where('lease_owner', '=', row.lease_owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Takes the record's lease for inbound work, as record sync's claim takes it (store/record-queue.ts), so the two
 * never decide on one record's field state at once: false when another holds it (record sync sending the record).
 */
export async function leaseRecord(db: Db, key: Omit<FieldKey, 'field'>, owner: string, now: number, leaseUntil: number): Promise<boolean> {
  const result = await db
    .updateTable('records')
    .set({ lease_owner: owner, lease_until: leaseUntil })
    .where('destination', '=', key.destination)
    .where('record_type', '=', key.recordType)
    .where('resource_id', '=', key.resourceId)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Gives back a record lease inbound work took (nothing when it has lapsed and another holds it now). */
export async function releaseRecord(db: Db, key: Omit<FieldKey, 'field'>, owner: string): Promise<void> {
  await db.updateTable('records').set({ lease_owner: null, lease_until: null }).where('destination', '=', key.destination).where('record_type', '=', key.recordType).where('resource_id', '=', key.resourceId).where('lease_owner', '=', owner).execute();
}

/**
 * Moves on the leases one inbound delivery holds while it is worked on: its own row's (claimInbound) and those of
 * the records it took (leaseRecord, under `recordOwner`), each only while that owner still holds it — a lease given
 * back or lost stays so. One row a statement: on PostgreSQL a renewal never holds one row's lock while waiting for
 * another's, so it cannot deadlock with the router's upserts or the delivery's own finish.
 */
export async function renewInboundLeases(db: Db, row: InboundRow, records: ReadonlyArray<Omit<FieldKey, 'field'>>, recordOwner: string, leaseUntil: number): Promise<void> {
  await db.updateTable('inbound').set({ lease_until: leaseUntil }).where('id', '=', row.id).where('state', '=', 'pending').where('lease_owner', '=', row.lease_owner).execute();
  for (const key of records) {
    await db.updateTable('records').set({ lease_until: leaseUntil }).where('destination', '=', key.destination).where('record_type', '=', key.recordType).where('resource_id', '=', key.resourceId).where('lease_owner', '=', recordOwner).execute();
  }
}
