// The event-delivery queue of one destination (a WorkQueue, engine/work-queue.ts). Events of one resource go out in
// the order they arrived: an event is only claimable when no earlier live event of the same resource waits for the
// same destination. Leases are renewed while a batch is in flight, and finishing is fenced by the claim's lease token
// like the record queue: a refused delivery stays queued (its new holder sends it, under the same idempotency key). A
// delivered event is deleted, unless the destination may still refuse it (an outcome's `settlesAt`: Ometria validates
// later): then its row is kept, `settling`, with its sealed source message until that time, so that the dead letter
// of a late refusal (engine/late-failures.ts) is replayed like any event dead letter — mapped again from its message,
// sent under its own key. Settled rows are deleted by the destination's next finish that keeps some, and hourly by
// the engine.
import { insertAudit, type AuditEntry } from './audit-log.ts';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, EventsTable } from './schema.ts';
import type { Dialect } from './schema.ts';
import type { DeadLetter, Retry } from '../engine/failures.ts';
import type { WorkQueue } from '../engine/work-queue.ts';
import { deadLetterColumns, retryColumns } from './failure-columns.ts';

export type EventRow = Selectable<EventsTable>;

export type EventRetry = Retry<EventRow>;
/** `sealedPayload`: the source message as kept while dead (sealed, see pii/sealed.ts), for its replay. */
export type EventDeadLetter = DeadLetter<EventRow> & { sealedPayload?: string };
/** An audit entry about one claimed event: rewritten when its finish is refused. */
export type EventAudit = AuditEntry & { row?: EventRow };

export const EVENT_LEASE_LOST = 'the lease was lost while this was in flight: its outcome is discarded and the event stays queued';

/** `events.dead` of a delivery kept after it was delivered, until `due_at`, in case the destination refuses it later. */
export const EVENT_SETTLING = 2;

/** What an event-delivery batch did: recorded by EventQueue.finish. */
export interface EventOutcome {
  delivered: EventRow[];
  /** Delivered rows the destination may still refuse, with until when (ms): kept instead of deleted. */
  settling?: ReadonlyMap<EventRow, number>;
  retries: EventRetry[];
  deadLetters: EventDeadLetter[];
  audit?: readonly EventAudit[];
}

export class EventQueue implements WorkQueue<EventRow, EventOutcome> {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;
  readonly #destination: string;

  constructor(db: Kysely<Database>, dialect: Dialect, destination: string) {
    this.#db = db;
    this.#dialect = dialect;
    this.#destination = destination;
  }

  /** Claims up to `limit` of the destination's due events under the lease `token` until `leaseUntil`. */
  async claim(token: string, limit: number, leaseUntil: number, now: number): Promise<EventRow[]> {
    const db = this.#db;
    const destination = this.#destination;
    const candidates = db
      .selectFrom('events as e')
      .select('e.id')
      .where('e.destination', '=', destination)
      .where('e.dead', '=', 0)
      .where('e.due_at', '<=', now)
      .where((eb) => eb.or([eb('e.lease_until', 'is', null), eb('e.lease_until', '<', now)]))
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('events as p')
              .select(sql`1`.as('one'))
              .whereRef('p.destination', '=', 'e.destination')
              .whereRef('p.resource_id', '=', 'e.resource_id')
              .whereRef('p.id', '<', 'e.id')
              .where('p.dead', '=', 0),
          ),
        ),
      )
      .orderBy('e.id')
      .limit(limit)
      .$call((qb) => (this.#dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb));
    return db
      .updateTable('events')
      .set({ lease_owner: token, lease_until: leaseUntil, due_at: leaseUntil })
      .where('id', 'in', candidates)
      .returningAll()
      .execute();
  }

  /** Moves the lease `token` holds on these events on to `leaseUntil`; on PostgreSQL skipping rows others have locked (see RecordQueue.renew). */
  async renew(token: string, rows: readonly EventRow[], leaseUntil: number): Promise<void> {
    if (rows.length === 0) return;
    const held = this.#db
      .selectFrom('events')
      .select('id')
      .where(
        'id',
        'in',
        rows.map((row) => row.id),
      )
      .where('lease_owner', '=', token)
      .$call((qb) => (this.#dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb));
    await this.#db.updateTable('events').set({ lease_until: leaseUntil, due_at: leaseUntil }).where('id', 'in', held).execute();
  }

  /** Gives up the lease `token` took of an event, leaving it due at once (engine/leases.ts: a claim over its byte budget). */
  async giveUp(row: EventRow, token: string, now: number): Promise<void> {
    await this.#db.updateTable('events').set({ lease_owner: null, lease_until: null, due_at: now }).where('id', '=', row.id).where('lease_owner', '=', token).execute();
  }

  /** Gives the lease a claim (`from`) took of an event back to the batch (`to`) that still has it in flight. */
  async handBack(row: EventRow, from: string, to: string, leaseUntil: number): Promise<void> {
    await this.#db.updateTable('events').set({ lease_owner: to, lease_until: leaseUntil, due_at: leaseUntil }).where('id', '=', row.id).where('lease_owner', '=', from).execute();
  }

  /**
   * Records the outcome of a batch in one transaction, each row's writes fenced by the token it was claimed with.
   * Returns the rows whose lease was lost meanwhile; their audit entries say so.
   */
  async finish(now: number, outcome: EventOutcome, also?: (trx: Transaction<Database>) => Promise<void>): Promise<{ refused: EventRow[] }> {
    const refused: EventRow[] = [];
    await this.#db.transaction().execute(async (trx) => {
      refused.length = 0;
      const settling = outcome.settling ?? new Map<EventRow, number>();
      for (const rows of byOwner(outcome.delivered)) {
        const owner = ownerOf(rows[0]!);
        const done = new Set<number>();
        const gone = rows.filter((row) => !settling.has(row));
        if (gone.length > 0) {
          const deleted = await trx
            .deleteFrom('events')
            .where(
              'id',
              'in',
              gone.map((row) => row.id),
            )
            .where('lease_owner', '=', owner)
            .returning('id')
            .execute();
          for (const row of deleted) done.add(Number(row.id));
        }
        for (const [until, kept] of byValue(rows.filter((row) => settling.has(row)), settling)) {
          const updated = await trx
            .updateTable('events')
            // A refusal reported while the event was in flight has made it dead already (late-failures.ts): it stays so.
            .set({ dead: sql<number>`case when dead = 1 then 1 else ${sql.lit(EVENT_SETTLING)} end`, due_at: until, lease_owner: null, lease_until: null })
            .where(
              'id',
              'in',
              kept.map((row) => row.id),
            )
            .where('lease_owner', '=', owner)
            .returning('id')
            .execute();
          for (const row of updated) done.add(Number(row.id));
        }
        for (const row of rows) if (!done.has(Number(row.id))) refused.push(row);
      }
      if (settling.size > 0) await purgeSettledEvents(trx, now, this.#destination);
      for (const r of outcome.retries) {
        const updated = await trx
          .updateTable('events')
          .set(retryColumns(r, now))
          .where('id', '=', r.row.id)
          .where('lease_owner', '=', ownerOf(r.row))
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) refused.push(r.row);
      }
      for (const d of outcome.deadLetters) {
        const updated = await trx
          .updateTable('events')
          .set({ dead: 1, lease_owner: null, lease_until: null, attempts: d.attempts, last_error: d.lastError, attempt_log: JSON.stringify(d.attemptLog), ...(d.sealedPayload !== undefined && { payload: d.sealedPayload }) })
          .where('id', '=', d.row.id)
          .where('lease_owner', '=', ownerOf(d.row))
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) {
          refused.push(d.row);
          continue;
        }
        await trx
          .insertInto('dead_letters')
          .values({
            ...deadLetterColumns(d, now),
            destination: d.row.destination,
            kind: 'event',
            item_type: d.row.event_type,
            resource_id: d.row.resource_id,
            dedupe_key: d.row.dedupe_key,
            replayed_at: null,
          })
          .execute();
      }
      const lost = new Set(refused);
      const audit = (outcome.audit ?? []).map((entry) => (entry.row !== undefined && lost.has(entry.row) ? { ...entry, outcome: 'lease-lost' as const, detail: EVENT_LEASE_LOST } : entry));
      if (audit.length > 0) await insertAudit(trx, audit);
      await also?.(trx);
    });
    return { refused };
  }

  /** Gives the events this process (`tokenPattern`, engine/leases.ts) still holds back (graceful shutdown). */
  async release(tokens: string): Promise<void> {
    await this.#db.updateTable('events').set({ lease_owner: null, lease_until: null, due_at: Date.now() }).where('destination', '=', this.#destination).where('lease_owner', 'like', tokens).execute();
  }

  keyOf(row: EventRow): string {
    return String(row.id);
  }

  sizeOf(row: EventRow): number {
    return row.payload.length;
  }
}

/**
 * Deletes the deliveries kept for a late refusal whose time has passed, of one destination or of all (those of
 * destinations no longer configured too); returns how many.
 */
export async function purgeSettledEvents(db: Kysely<Database>, now: number, destination?: string): Promise<number> {
  const deleted = await db
    .deleteFrom('events')
    .$call((qb) => (destination === undefined ? qb : qb.where('destination', '=', destination)))
    .where('dead', '=', EVENT_SETTLING)
    .where('due_at', '<=', now)
    .executeTakeFirst();
  return Number(deleted.numDeletedRows);
}

/** The lease token an event was claimed with ('' matches no lease). */
const ownerOf = (row: EventRow): string => row.lease_owner ?? '';

/** Rows grouped by their value in `values` (the time they settle: a connector call gives its items one). */
function byValue(rows: readonly EventRow[], values: ReadonlyMap<EventRow, number>): Map<number, EventRow[]> {
  const groups = new Map<number, EventRow[]>();
  for (const row of rows) {
    const value = values.get(row)!;
    const group = groups.get(value);
    if (group) group.push(row);
    else groups.set(value, [row]);
  }
  return groups;
}

/** Rows grouped by the lease token they were claimed with (a batch has one). */
function byOwner(rows: readonly EventRow[]): EventRow[][] {
  const groups = new Map<string, EventRow[]>();
  for (const row of rows) {
    const group = groups.get(ownerOf(row));
    if (group) group.push(row);
    else groups.set(ownerOf(row), [row]);
  }
  return [...groups.values()];
}
