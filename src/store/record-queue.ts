// The record-sync work queue of one destination (a WorkQueue, engine/work-queue.ts): claiming dirty keys under a
// lease, renewing it while the batch is in flight, and finishing them (synced, retry later, or dead letter). Every
// claim has an owner token of its own and every finishing write is fenced by it, so a worker whose lease expired and
// was taken over cannot overwrite its successor's result: its finish is refused, and the key is left dirty and
// unconfirmed (its send may have reached the destination after the successor's), so the next claim reads the latest
// state and sends the whole record.
import { insertAudit, type AuditEntry } from './audit-log.ts';
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, RecordsTable } from './schema.ts';
import type { Dialect } from './schema.ts';
import type { DeadLetter, Retry } from '../engine/failures.ts';
import type { WorkQueue } from '../engine/work-queue.ts';
import { prepare, prepareBatch, type PreparedBatch, type PreparedQuery } from './prepared.ts';
import { deadLetterColumns, retryColumns } from './failure-columns.ts';

export type RecordRow = Selectable<RecordsTable>;

export interface SyncedResult {
  row: RecordRow;
  syncedVersion: number | null;
  snapshot: Record<string, unknown> | null;
  destinationDeleted: boolean;
  destinationId: string | null;
  /**
   * Set when this batch sent the record: its store (market), for retention, and for an upsert the `when:` target it
   * went to (null: the destination's default), where its delete must go too.
   */
  sent?: { storeKey: string | null; target?: Record<string, unknown> | null } | undefined;
  /**
   * Set when commercetools overruled what notifications announced (engine/record-sync.ts resolveLatest): announced,
   * carried and deleted versions above it were implausible and are forgotten.
   */
  ceiling?: number | undefined;
}

/** A record key a batch's outcome marks dirty (a customer whose orders changed), to be read again from commercetools. */
export interface DirtyKey {
  destination: string;
  recordType: string;
  resourceType: string;
  resourceId: string;
  correlationId: string;
}

export type RetryResult = Retry<RecordRow>;
export type DeadLetterResult = DeadLetter<RecordRow>;
/** An audit entry about one claimed row: rewritten when the row's finish is refused (see LEASE_LOST). */
export type RowAudit<Row> = AuditEntry & { row?: Row };

/** What the audit log says of an outcome whose finish was refused because the lease had been lost. */
export const LEASE_LOST = 'the lease was lost while this was in flight: its outcome is discarded and the record is synced again, whole';

/** What a record-sync batch did: recorded by RecordQueue.finish. */
export interface RecordOutcome {
  synced: SyncedResult[];
  retries: RetryResult[];
  deadLetters: DeadLetterResult[];
  /** Keys the batch marks dirty (customers whose orders changed), to be read again from commercetools. */
  dirty?: readonly DirtyKey[];
  audit?: ReadonlyArray<RowAudit<RecordRow>>;
}

export class RecordQueue implements WorkQueue<RecordRow, RecordOutcome> {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;
  readonly #destination: string;

  readonly #claim: PreparedQuery<{ destination: string; owner: string; limit: number; now: number; leaseUntil: number }, RecordRow>;
  readonly #markSynced: PreparedQuery<MarkSyncedArgs, unknown>;
  readonly #upsertMarks: PreparedBatch<Insertable<RecordsTable>>;

  constructor(db: Kysely<Database>, dialect: Dialect, destination: string) {
    this.#db = db;
    this.#dialect = dialect;
    this.#destination = destination;
    this.#upsertMarks = prepareRecordMarks(db);
    this.#claim = prepare(db, (a) => {
      const candidates = db
        .selectFrom('records')
        .select(['destination', 'record_type', 'resource_id'])
        .where('destination', '=', a.destination)
        .where(sql<boolean>`dirty_seq > processed_seq`)
        .where('due_at', '<=', a.now)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', a.now)]))
        // Live keys first: a backfill's keys (background = 1) are claimed only when no live key is due.
        .orderBy('background')
        .orderBy('due_at')
        .limit(a.limit)
        .$call((qb) => (dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb));
      return (
        db
          .updateTable('records')
          // due_at moves to the lease's end too: the claim query's index range then skips keys in flight, and a
          // lease that expires makes its key due again by itself.
          // Every claim bumps send_seq: the key's sends are numbered in the order they happen (RecordItem.sequence).
          .set({ lease_owner: a.owner, lease_until: a.leaseUntil, due_at: a.leaseUntil, unconfirmed: sql`case when lease_owner is not null then 1 else unconfirmed end`, send_seq: sql`send_seq + 1` })
          .where((eb) => eb(eb.refTuple('destination', 'record_type', 'resource_id'), 'in', candidates.$asTuple('destination', 'record_type', 'resource_id')))
          .returningAll()
      );
    });
    this.#markSynced = prepare(db, (a: MarkSyncedArgs) => {
      // The carried resource has served its purpose once a version at least as new is synced, or commercetools
      // showed its version implausible.
      const overruled = (column: string) => sql<boolean>`cast(${a.ceiling} as bigint) is not null and ${sql.ref(column)} > cast(${a.ceiling} as bigint)`;
      const carriedServed = sql<boolean>`(cast(${a.syncedVersion} as bigint) is not null and (carried_version is null or carried_version <= cast(${a.syncedVersion} as bigint))) or ${overruled('carried_version')}`;
      return fenced(db, a)
        .set({
          processed_seq: a.dirtySeq,
          synced_version: a.syncedVersion,
          snapshot: a.snapshot,
          destination_deleted: a.destinationDeleted,
          destination_id: a.destinationId,
          store_key: sql`case when cast(${a.sent} as integer) = 1 then cast(${a.storeKey} as text) else store_key end`,
          synced_at: sql`case when cast(${a.sent} as integer) = 1 then cast(${a.now} as bigint) else synced_at end`,
          sent_target: sql`case when cast(${a.targetSent} as integer) = 1 then cast(${a.target} as text) else sent_target end`,
          // A refresh, or an unknown outcome (a refused finish of a lost lease), that came while this batch was in
          // flight must survive it.
          unconfirmed: sql`case when dirty_seq > ${a.dirtySeq} then unconfirmed else 0 end`,
          // After an overruled announcement a version announced meanwhile may have been forgotten with it: read again.
          refresh: sql`case when dirty_seq > ${a.dirtySeq} then (case when cast(${a.ceiling} as bigint) is not null then 1 else refresh end) else 0 end`,
          seen_version: sql`case when ${overruled('seen_version')} then cast(${a.syncedVersion} as bigint) else seen_version end`,
          deleted_version: sql`case when ${overruled('deleted_version')} then null else deleted_version end`,
          carried_resource: sql`case when ${carriedServed} then null else carried_resource end`,
          carried_version: sql`case when ${carriedServed} then null else carried_version end`,
          ...released(a.now),
          ...cleared(),
        });
    });
  }

  /** Claims up to `limit` of the destination's due dirty keys under the lease `token` until `leaseUntil`. */
  async claim(token: string, limit: number, leaseUntil: number, now: number): Promise<RecordRow[]> {
    const result = await this.#claim(this.#db, { destination: this.#destination, owner: token, limit, now, leaseUntil });
    return result.rows;
  }

  /**
   * Moves the lease `token` holds on these rows on to `leaseUntil` (and their due time with it). On PostgreSQL a
   * row another transaction has locked (the batch's own finish, a router upsert) is skipped, not waited for: a
   * renewal then never deadlocks with them, and the next renewal comes long before the lease ends.
   */
  async renew(token: string, rows: readonly RecordRow[], leaseUntil: number): Promise<void> {
    if (rows.length === 0) return;
    const byDestination = new Map<string, Map<string, string[]>>();
    for (const row of rows) {
      const types = byDestination.get(row.destination) ?? new Map<string, string[]>();
      byDestination.set(row.destination, types);
      const ids = types.get(row.record_type);
      if (ids) ids.push(row.resource_id);
      else types.set(row.record_type, [row.resource_id]);
    }
    for (const [destination, types] of byDestination) {
      const held = this.#db
        .selectFrom('records')
        .select(['destination', 'record_type', 'resource_id'])
        .where('destination', '=', destination)
        .where((eb) => eb.or([...types].map(([type, ids]) => eb.and([eb('record_type', '=', type), eb('resource_id', 'in', ids)]))))
        .where('lease_owner', '=', token)
        .$call((qb) => (this.#dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb));
      await this.#db
        .updateTable('records')
        .set({ lease_until: leaseUntil, due_at: leaseUntil })
        .where((eb) => eb(eb.refTuple('destination', 'record_type', 'resource_id'), 'in', held.$asTuple('destination', 'record_type', 'resource_id')))
        .execute();
    }
  }

  /** Gives the lease a claim (`from`) took of a key back to the batch (`to`) that still has it in flight. */
  async handBack(row: RecordRow, from: string, to: string, leaseUntil: number): Promise<void> {
    await fenced(this.#db, keyOf(row, from)).set({ lease_owner: to, lease_until: leaseUntil, due_at: leaseUntil }).execute();
  }

  /** Gives up the lease `token` took of `row`, leaving the key due at once (engine/leases.ts: a claim over its byte budget). */
  async giveUp(row: RecordRow, token: string, now: number): Promise<void> {
    await fenced(this.#db, keyOf(row, token)).set({ lease_owner: null, lease_until: null, due_at: now }).execute();
  }

  /**
   * Records the outcome of a batch in one transaction. Rows are updated in key order, the order the router's
   * upserts lock them in too: on PostgreSQL two transactions locking the same rows in different orders deadlock.
   * Each row's writes are fenced by the lease token it was claimed with; the rows whose lease was lost meanwhile
   * are returned, their audit entries say so, and they are marked dirty and unconfirmed.
   */
  async finish(now: number, outcome: RecordOutcome, also?: (trx: Transaction<Database>) => Promise<void>): Promise<{ refused: RecordRow[] }> {
    // Each dirtied key once: PostgreSQL refuses to upsert one row twice in a statement.
    const dirty = new Map((outcome.dirty ?? []).map((key) => [`${key.destination}\u0000${key.recordType}\u0000${key.resourceId}`, key]));
    const refused: RecordRow[] = [];
    const fencedStep = (row: RecordRow, apply: (trx: Transaction<Database>) => Promise<boolean>) => ({
      row,
      apply: async (trx: Transaction<Database>) => {
        if (await apply(trx)) return;
        refused.push(row);
        await markLost(trx, row, now);
      },
    });
    const steps = [
      ...outcome.synced.map((synced) => fencedStep(synced.row, (trx) => this.#applySynced(trx, now, synced))),
      ...outcome.retries.map((retry) => fencedStep(retry.row, (trx) => applyRetry(trx, now, retry))),
      ...outcome.deadLetters.map((letter) => fencedStep(letter.row, (trx) => applyDeadLetter(trx, now, letter))),
      ...[...dirty.values()].map((key) => ({ row: { destination: key.destination, record_type: key.recordType, resource_id: key.resourceId }, apply: async (trx: Transaction<Database>) => void (await this.#upsertMarks(trx, [refreshMark(key, now)])) })),
    ].sort((a, b) => compareRecordKeys(a.row, b.row));
    await this.#db.transaction().execute(async (trx) => {
      refused.length = 0;
      for (const step of steps) await step.apply(trx);
      const lost = new Set(refused);
      const audit = (outcome.audit ?? []).map((entry) => (entry.row !== undefined && lost.has(entry.row) ? { ...entry, outcome: 'lease-lost' as const, detail: LEASE_LOST } : entry));
      if (audit.length > 0) await insertAudit(trx, audit);
      await also?.(trx);
    });
    return { refused };
  }

  async #applySynced(trx: Transaction<Database>, now: number, s: SyncedResult): Promise<boolean> {
    const result = await this.#markSynced(trx, {
      destination: s.row.destination,
      recordType: s.row.record_type,
      resourceId: s.row.resource_id,
      owner: ownerOf(s.row),
      dirtySeq: s.row.dirty_seq,
      syncedVersion: s.syncedVersion,
      snapshot: s.snapshot === null ? null : JSON.stringify(s.snapshot),
      destinationDeleted: s.destinationDeleted ? 1 : 0,
      destinationId: s.destinationId,
      sent: s.sent ? 1 : 0,
      storeKey: s.sent?.storeKey ?? null,
      targetSent: s.sent?.target === undefined ? 0 : 1,
      target: s.sent?.target ? JSON.stringify(s.sent.target) : null,
      ceiling: s.ceiling ?? null,
      now,
    });
    return Number(result.numAffectedRows ?? 0) > 0;
  }

  /** Gives the keys this process (`tokenPattern`, engine/leases.ts) still holds back untouched (graceful shutdown): another worker may take them at once. */
  async release(tokens: string): Promise<void> {
    await this.#db.updateTable('records').set({ lease_owner: null, lease_until: null, due_at: Date.now(), unconfirmed: 1 }).where('destination', '=', this.#destination).where('lease_owner', 'like', tokens).execute();
  }

  keyOf(row: RecordRow): string {
    return `${row.record_type}\u0000${row.resource_id}`;
  }

  sizeOf(row: RecordRow): number {
    return row.carried_resource?.length ?? 0;
  }
}

interface LeasedKey {
  destination: string;
  recordType: string;
  resourceId: string;
  owner: string;
}

interface MarkSyncedArgs extends LeasedKey {
  dirtySeq: number;
  syncedVersion: number | null;
  snapshot: string | null;
  destinationDeleted: number;
  destinationId: string | null;
  /** 1 when the record was sent in this batch: its store key and the time are recorded. */
  sent: number;
  storeKey: string | null;
  /** 1 when an upsert was sent: `target` (JSON, null for the default) is where it went. */
  targetSent: number;
  target: string | null;
  ceiling: number | null;
  now: number;
}

async function applyRetry(trx: Transaction<Database>, now: number, r: RetryResult): Promise<boolean> {
  const updated = await fenced(trx, keyOf(r.row, ownerOf(r.row)))
    .set({ ...retryColumns(r, now), unconfirmed: 1 })
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/**
 * A finish refused: the lease was lost, and what this batch sent may have reached the destination after what the
 * new holder sent. The key becomes dirty (again) and unconfirmed, to be read from commercetools and sent whole;
 * the holder's lease and due time stay as they are (its own finish keeps the mark, see markSynced).
 */
async function markLost(trx: Transaction<Database>, row: RecordRow, now: number): Promise<void> {
  await trx
    .updateTable('records')
    .set({
      dirty_seq: sql`dirty_seq + 1`,
      unconfirmed: 1,
      refresh: 1,
      due_at: sql`case when lease_owner is null and attempts = 0 then cast(${now} as bigint) else due_at end`,
      dirtied_at: sql`case when dirty_seq > processed_seq then dirtied_at else cast(${now} as bigint) end`,
    })
    .where('destination', '=', row.destination)
    .where('record_type', '=', row.record_type)
    .where('resource_id', '=', row.resource_id)
    .execute();
}

async function applyDeadLetter(trx: Transaction<Database>, now: number, d: DeadLetterResult): Promise<boolean> {
  const updated = await fenced(trx, keyOf(d.row, ownerOf(d.row)))
    .set({
      processed_seq: d.row.dirty_seq,
      // The resource a message carried is not kept for a dead record (it may hold personal or payment data): a
      // replay reads the current state from commercetools. One carried by a newer message stays for its sync.
      carried_resource: sql`case when dirty_seq = ${d.row.dirty_seq} then null else carried_resource end`,
      carried_version: sql`case when dirty_seq = ${d.row.dirty_seq} then null else carried_version end`,
      ...released(now),
      ...cleared(),
    })
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return false;
  const letter = deadLetterColumns(d, now);
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
  return true;
}

/**
 * The upsert that marks record keys dirty (the router's, and a batch's dependent keys): a new key is inserted, a
 * known one gets dirty_seq + 1 with the newest versions and carried resource kept.
 */
export function prepareRecordMarks(db: Kysely<Database>): PreparedBatch<Insertable<RecordsTable>> {
  const newerCarried = sql`excluded.carried_version is not null and (records.carried_version is null or excluded.carried_version > records.carried_version)`;
  return prepareBatch(db, (rows: Array<Insertable<RecordsTable>>) =>
    db
      .insertInto('records')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['destination', 'record_type', 'resource_id']).doUpdateSet({
          dirty_seq: sql`records.dirty_seq + 1`,
          seen_version: greater('seen_version'),
          deleted_version: greater('deleted_version'),
          carried_version: sql`case when ${newerCarried} then excluded.carried_version else records.carried_version end`,
          carried_resource: sql`case when ${newerCarried} then excluded.carried_resource else records.carried_resource end`,
          correlation_id: sql`excluded.correlation_id`,
          refresh: sql`case when excluded.refresh > records.refresh then excluded.refresh else records.refresh end`,
          // A live mark (background 0) makes the key live; a backfill's mark leaves a dirty key's priority as it is.
          background: sql`case when excluded.background = 0 then 0 when records.dirty_seq > records.processed_seq then records.background else excluded.background end`,
          // A key waiting out a backoff or in flight keeps its due time; a clean key becomes due now.
          due_at: sql`case when records.attempts > 0 or records.lease_until > excluded.due_at then records.due_at else excluded.due_at end`,
          dirtied_at: sql`case when records.dirty_seq > records.processed_seq then records.dirtied_at else excluded.dirtied_at end`,
          occurred_at: sql`case when records.dirty_seq > records.processed_seq and records.occurred_at is not null then records.occurred_at else excluded.occurred_at end`,
        }),
      ),
  );
}

/** The greater of the stored and the incoming value, where NULL means "unknown" on either side. */
const greater = (column: string) =>
  sql<number | null>`case when excluded.${sql.ref(column)} is not null and (records.${sql.ref(column)} is null or excluded.${sql.ref(column)} > records.${sql.ref(column)}) then excluded.${sql.ref(column)} else records.${sql.ref(column)} end`;

/** A mark that knows no version: the record is read again from commercetools (refresh). */
function refreshMark(key: DirtyKey, now: number): Insertable<RecordsTable> {
  return {
    destination: key.destination,
    record_type: key.recordType,
    resource_id: key.resourceId,
    resource_type: key.resourceType,
    dirty_seq: 1,
    due_at: now,
    seen_version: null,
    deleted_version: null,
    carried_version: null,
    carried_resource: null,
    refresh: 1,
    correlation_id: key.correlationId,
    dirtied_at: now,
    occurred_at: null,
  };
}

/** The one order in which transactions lock records rows (see finish and the router's upserts). */
export function compareRecordKeys(a: RecordKey, b: RecordKey): number {
  return compare(a.destination, b.destination) || compare(a.record_type, b.record_type) || compare(a.resource_id, b.resource_id);
}

type RecordKey = { destination: string; record_type: string; resource_id: string };

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const keyOf = (row: RecordRow, owner: string): LeasedKey => ({ destination: row.destination, recordType: row.record_type, resourceId: row.resource_id, owner });

/** The lease token a row was claimed with (a claimed row always has one; '' matches no lease). */
const ownerOf = (row: RecordRow): string => row.lease_owner ?? '';

/** An update of one record key that only applies while `owner` holds its lease. */
function fenced(trx: Kysely<Database>, key: LeasedKey) {
  return trx
    .updateTable('records')
    .where('destination', '=', key.destination)
    .where('record_type', '=', key.recordType)
    .where('resource_id', '=', key.resourceId)
    .where('lease_owner', '=', key.owner);
}

function released(now: number) {
  return { lease_owner: null, lease_until: null, due_at: now, dirtied_at: now };
}

function cleared() {
  return { attempts: 0, first_failed_at: null, last_error: null, attempt_log: null };
}
