// SQL of the event-delivery queue. Events of one resource go out in the order they arrived: an event is only
// claimable when no earlier live event of the same resource waits for the same destination. Finishing is fenced
// by the lease owner like the record queue.
import { insertAudit, type AuditEntry } from './audit-log.ts';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, EventsTable } from './schema.ts';
import type { Dialect } from './store.ts';
import type { DeadLetter, Retry } from '../engine/failures.ts';
import { deadLetterColumns, retryColumns } from './failure-columns.ts';

export type EventRow = Selectable<EventsTable>;

export type EventRetry = Retry<EventRow>;
/** `sealedPayload`: the source message as kept while dead (sealed, see pii/sealed.ts), for its replay. */
export type EventDeadLetter = DeadLetter<EventRow> & { sealedPayload?: string };

export class EventQueue {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  async claim(destination: string, owner: string, limit: number, leaseMs: number, now: number): Promise<EventRow[]> {
    const db = this.#db;
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
      .set({ lease_owner: owner, lease_until: now + leaseMs, due_at: now + leaseMs })
      .where('id', 'in', candidates)
      .returningAll()
      .execute();
  }

  async finish(owner: string, now: number, outcome: { delivered: EventRow[]; retries: EventRetry[]; deadLetters: EventDeadLetter[]; audit?: readonly AuditEntry[] }, also?: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      if (outcome.audit && outcome.audit.length > 0) await insertAudit(trx, outcome.audit);
      await also?.(trx);
      if (outcome.delivered.length > 0) {
        await trx
          .deleteFrom('events')
          .where('id', 'in', outcome.delivered.map((row) => row.id))
          .where('lease_owner', '=', owner)
          .execute();
      }
      for (const r of outcome.retries) {
        await trx
          .updateTable('events')
          .set(retryColumns(r, now))
          .where('id', '=', r.row.id)
          .where('lease_owner', '=', owner)
          .execute();
      }
      for (const d of outcome.deadLetters) {
        const updated = await trx
          .updateTable('events')
          .set({ dead: 1, lease_owner: null, lease_until: null, attempts: d.attempts, last_error: d.lastError, attempt_log: JSON.stringify(d.attemptLog), ...(d.sealedPayload !== undefined && { payload: d.sealedPayload }) })
          .where('id', '=', d.row.id)
          .where('lease_owner', '=', owner)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) continue;
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
    });
  }

  async release(owner: string): Promise<void> {
    await this.#db.updateTable('events').set({ lease_owner: null, lease_until: null, due_at: Date.now() }).where('lease_owner', '=', owner).execute();
  }
}
