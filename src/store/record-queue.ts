// SQL of the record-sync work queue: claiming dirty keys under a lease, and finishing them (synced, retry
// later, or dead letter). Every finishing write is fenced by the lease owner, so a worker whose lease expired
// and was taken over cannot overwrite its successor's result.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, RecordsTable } from './schema.ts';
import type { Dialect } from './store.ts';
import type { DeadLetter, Retry } from '../engine/failures.ts';

export type RecordRow = Selectable<RecordsTable>;

export interface SyncedResult {
  row: RecordRow;
  syncedVersion: number | null;
  snapshot: Record<string, unknown> | null;
  destinationDeleted: boolean;
  destinationId: string | null;
}

export type RetryResult = Retry<RecordRow>;
export type DeadLetterResult = DeadLetter<RecordRow>;

export class RecordQueue {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  async claim(destination: string, owner: string, limit: number, leaseMs: number, now: number): Promise<RecordRow[]> {
    const db = this.#db;
    const candidates = db
      .selectFrom('records')
      .select(['destination', 'record_type', 'resource_id'])
      .where('destination', '=', destination)
      .where(sql<boolean>`dirty_seq > processed_seq`)
      .where('due_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('due_at')
      .limit(limit)
      .$call((qb) => (this.#dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb));
    return db
      .updateTable('records')
      // due_at moves to the lease's end too: the claim query's index range then skips keys in flight, and a
      // lease that expires makes its key due again by itself.
      .set({ lease_owner: owner, lease_until: now + leaseMs, due_at: now + leaseMs, unconfirmed: sql`case when lease_owner is not null then 1 else unconfirmed end` })
      .where((eb) => eb(eb.refTuple('destination', 'record_type', 'resource_id'), 'in', candidates.$asTuple('destination', 'record_type', 'resource_id')))
      .returningAll()
      .execute();
  }

  /** Records the outcome of a batch in one transaction. */
  async finish(owner: string, now: number, outcome: { synced: SyncedResult[]; retries: RetryResult[]; deadLetters: DeadLetterResult[] }): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const s of outcome.synced) {
        await fenced(trx, s.row, owner)
          .set({
            processed_seq: s.row.dirty_seq,
            synced_version: s.syncedVersion,
            snapshot: s.snapshot === null ? null : JSON.stringify(s.snapshot),
            destination_deleted: s.destinationDeleted ? 1 : 0,
            destination_id: s.destinationId,
            unconfirmed: 0,
            // A refresh asked for while this batch was in flight must survive it.
            refresh: sql`case when dirty_seq > ${s.row.dirty_seq} then refresh else 0 end`,
            // The carried resource has served its purpose once a version at least as new is synced.
            carried_resource: s.syncedVersion === null ? sql`carried_resource` : sql`case when carried_version is null or carried_version <= ${s.syncedVersion} then null else carried_resource end`,
            carried_version: s.syncedVersion === null ? sql`carried_version` : sql`case when carried_version is null or carried_version <= ${s.syncedVersion} then null else carried_version end`,
            ...released(now),
            ...cleared(),
          })
          .execute();
      }
      for (const r of outcome.retries) {
        await fenced(trx, r.row, owner)
          .set({
            due_at: r.dueAt,
            attempts: r.attempts,
            first_failed_at: r.row.first_failed_at ?? now,
            last_error: r.lastError,
            attempt_log: JSON.stringify(r.attemptLog),
            lease_owner: null,
            lease_until: null,
            unconfirmed: 1,
          })
          .execute();
      }
      for (const d of outcome.deadLetters) {
        const updated = await fenced(trx, d.row, owner)
          .set({ processed_seq: d.row.dirty_seq, ...released(now), ...cleared() })
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) continue;
        const letter = {
          correlation_id: d.row.correlation_id,
          reason: d.reason,
          last_error: d.lastError,
          attempts: d.attempts,
          attempt_log: JSON.stringify(d.attemptLog),
          payload: JSON.stringify(d.redactedPayload),
          created_at: now,
        };
        // One open dead letter per record: a record that fails again before it is replayed updates its entry,
        // since replaying it sends the latest state anyway.
        const open = await trx
          .selectFrom('dead_letters')
          .select('id')
          .where('kind', '=', 'record')
          .where('destination', '=', d.row.destination)
          .where('item_type', '=', d.row.record_type)
          .where('resource_id', '=', d.row.resource_id)
          .where('replayed_at', 'is', null)
          .executeTakeFirst();
        if (open) {
          await trx.updateTable('dead_letters').set(letter).where('id', '=', open.id).execute();
        } else {
          await trx
            .insertInto('dead_letters')
            .values({ ...letter, destination: d.row.destination, kind: 'record', item_type: d.row.record_type, resource_id: d.row.resource_id, dedupe_key: null, replayed_at: null })
            .execute();
        }
      }
    });
  }

  /** Gives claimed keys back untouched (graceful shutdown): another worker may take them at once. */
  async release(owner: string): Promise<void> {
    await this.#db.updateTable('records').set({ lease_owner: null, lease_until: null, due_at: Date.now(), unconfirmed: 1 }).where('lease_owner', '=', owner).execute();
  }
}

function fenced(trx: Kysely<Database>, row: RecordRow, owner: string) {
  return trx
    .updateTable('records')
    .where('destination', '=', row.destination)
    .where('record_type', '=', row.record_type)
    .where('resource_id', '=', row.resource_id)
    .where('lease_owner', '=', owner);
}

function released(now: number) {
  return { lease_owner: null, lease_until: null, due_at: now, dirtied_at: now };
}

function cleared() {
  return { attempts: 0, first_failed_at: null, last_error: null, attempt_log: null };
}
