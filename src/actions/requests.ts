// The store side of agent actions: one row per call under an idempotency key (per client). A call reserves its
// key first (in-progress, with a lease), records what it is about to write (intent) before writing, and commits
// its outcome together with its audit entries in one transaction: a retry finds either the answer to give again,
// a call still in progress, or — lease expired — a call that died, whose intent tells what to look for.
//
// The lease is the row's `lease_until`: the holder renews it while the call runs, and every write the holder makes
// to the row (intent, outcome, giving the key back) is fenced by the value it last set. While a row is in progress
// that value only grows (a take-over needs it in the past and sets it in the future), so it names the holder: a
// call that outlived its lease (a hung process) finds the row taken over and writes nothing more to it.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { ActionRequestsTable, Database } from '../store/schema.ts';
import { insertAudit, type AuditEntry } from '../store/audit-log.ts';

export type RequestStatus = 'in-progress' | 'pending' | 'done' | 'refused' | 'rejected';

export interface ActionRequest {
  id: string;
  client: string;
  idempotencyKey: string;
  fingerprint: string;
  kind: string;
  orderId: string;
  role: string;
  status: RequestStatus;
  request: Record<string, unknown>;
  intent: Record<string, unknown> | null;
  httpStatus: number | null;
  answer: unknown;
  result: unknown;
  leaseUntil: number | null;
  decidedBy: string | null;
  correlationId: string;
  createdAt: number;
  updatedAt: number;
}

type Row = Selectable<ActionRequestsTable>;

function fromRow(row: Row): ActionRequest {
  const json = (value: string | null) => (value === null ? null : (JSON.parse(value) as unknown));
  return {
    id: row.id,
    client: row.client,
    idempotencyKey: row.idempotency_key,
    fingerprint: row.fingerprint,
    kind: row.kind,
    orderId: row.order_id,
    role: row.role,
    status: row.status as RequestStatus,
    request: json(row.request) as Record<string, unknown>,
    intent: json(row.intent) as Record<string, unknown> | null,
    httpStatus: row.http_status === null ? null : Number(row.http_status),
    answer: json(row.answer),
    result: json(row.result),
    // PostgreSQL returns bigint columns as strings.
    leaseUntil: row.lease_until === null ? null : Number(row.lease_until),
    decidedBy: row.decided_by,
    correlationId: row.correlation_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export async function findByKey(db: Kysely<Database>, client: string, key: string): Promise<ActionRequest | undefined> {
  const row = await db.selectFrom('action_requests').selectAll().where('client', '=', client).where('idempotency_key', '=', key).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function findById(db: Kysely<Database>, id: string): Promise<ActionRequest | undefined> {
  const row = await db.selectFrom('action_requests').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/** Reserves the key: the new row, or the one another call made first (the unique index decides). */
export async function reserve(
  db: Kysely<Database>,
  draft: Pick<ActionRequest, 'id' | 'client' | 'idempotencyKey' | 'fingerprint' | 'kind' | 'orderId' | 'role' | 'request' | 'correlationId'>,
  leaseUntil: number,
  now: number,
): Promise<{ created: true; lease: RequestLease } | { created: false; existing: ActionRequest }> {
  try {
    await db
      .insertInto('action_requests')
      .values({
        id: draft.id,
        client: draft.client,
        idempotency_key: draft.idempotencyKey,
        fingerprint: draft.fingerprint,
        kind: draft.kind,
        order_id: draft.orderId,
        role: draft.role,
        status: 'in-progress',
        request: JSON.stringify(draft.request),
        intent: null,
        http_status: null,
        answer: null,
        result: null,
        lease_until: leaseUntil,
        decided_by: null,
        correlation_id: draft.correlationId,
        created_at: now,
        updated_at: now,
      })
      .execute();
    return { created: true, lease: new RequestLease(db, draft.id, leaseUntil) };
  } catch (error) {
    const existing = await findByKey(db, draft.client, draft.idempotencyKey);
    if (!existing) throw error;
    return { created: false, existing };
  }
}

/**
 * Takes over a row from `status` (an in-progress call whose lease ran out, or a pending one being approved): only
 * one caller wins, the one whose update still finds the row as it read it. `intent` replaces the row's intent (an
 * approval records its approver, so whoever finishes it after a crash knows who decided).
 */
export async function takeOver(db: Kysely<Database>, seen: ActionRequest, leaseUntil: number, now: number, intent?: Record<string, unknown>): Promise<RequestLease | undefined> {
  let query = db
    .updateTable('action_requests')
    .set({ status: 'in-progress', lease_until: leaseUntil, updated_at: now, ...(intent && { intent: JSON.stringify(intent) }) })
    .where('id', '=', seen.id)
    .where('status', '=', seen.status)
    .where('updated_at', '=', seen.updatedAt);
  query = seen.leaseUntil === null ? query.where('lease_until', 'is', null) : query.where('lease_until', '=', seen.leaseUntil);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1 ? new RequestLease(db, seen.id, leaseUntil) : undefined;
}

/**
 * In-progress rows whose lease ran out before `now` (their call died), longest expired first. The status is a
 * literal so both databases see the partial index's condition (action_requests_expired) in the query.
 */
export async function abandoned(db: Kysely<Database>, now: number, limit: number): Promise<ActionRequest[]> {
  const rows = await db.selectFrom('action_requests').selectAll().where('status', '=', sql.lit('in-progress')).where('lease_until', '<', now).orderBy('lease_until').limit(limit).execute();
  return rows.map(fromRow);
}

export interface Outcome {
  status: Exclude<RequestStatus, 'in-progress'>;
  /** The answer to give again for the same key and body; kept from the first answer when omitted. */
  answer?: { httpStatus: number; body: unknown };
  result: unknown;
  decidedBy?: string;
}

/**
 * A call's hold on its row. Each write through it is fenced by the lease as this holder last set it and says
 * whether the holder still had the row; they run one after another, so a renewal never races the holder's own write.
 */
export class RequestLease {
  readonly #db: Kysely<Database>;
  readonly id: string;
  #until: number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(db: Kysely<Database>, id: string, until: number) {
    this.#db = db;
    this.id = id;
    this.#until = until;
  }

  #fenced(work: (until: number) => Promise<boolean>): Promise<boolean> {
    const next = this.#queue.then(() => work(this.#until));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #held(db: Kysely<Database>, until: number) {
    return db.updateTable('action_requests').where('id', '=', this.id).where('status', '=', 'in-progress').where('lease_until', '=', until);
  }

  /** Moves the lease on to `until`; false when another holder took the row over. */
  renew(until: number): Promise<boolean> {
    return this.#fenced(async (held) => {
      const result = await this.#held(this.#db, held).set({ lease_until: until }).executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      this.#until = until;
      return true;
    });
  }

  /** What the call is about to write, committed before it writes. */
  saveIntent(intent: Record<string, unknown>, now: number): Promise<boolean> {
    return this.#fenced(async (held) => Number((await this.#held(this.#db, held).set({ intent: JSON.stringify(intent), updated_at: now }).executeTakeFirst()).numUpdatedRows) === 1);
  }

  /** Commits the outcome and its audit entries together (neither, when the lease was lost). */
  finish(outcome: Outcome, audit: readonly AuditEntry[], now: number): Promise<boolean> {
    return this.#fenced((held) =>
      this.#db.transaction().execute(async (trx) => {
        const result = await this.#held(trx, held)
          .set({
            status: outcome.status,
            ...(outcome.answer && { http_status: outcome.answer.httpStatus, answer: JSON.stringify(outcome.answer.body) }),
            result: JSON.stringify(outcome.result),
            lease_until: null,
            ...(outcome.decidedBy !== undefined && { decided_by: outcome.decidedBy }),
            updated_at: now,
          })
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await insertAudit(trx, audit);
        return true;
      }),
    );
  }

  /** Gives the key back (nothing was written): a retry starts afresh. The audit entry stays. */
  release(audit: readonly AuditEntry[]): Promise<boolean> {
    return this.#fenced((held) =>
      this.#db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom('action_requests').where('id', '=', this.id).where('status', '=', 'in-progress').where('lease_until', '=', held).executeTakeFirst();
        if (Number(result.numDeletedRows) !== 1) return false;
        await insertAudit(trx, audit);
        return true;
      }),
    );
  }

  /** A pending request goes back to pending (its approval wrote nothing). */
  backToPending(audit: readonly AuditEntry[], now: number): Promise<boolean> {
    return this.#fenced((held) =>
      this.#db.transaction().execute(async (trx) => {
        const result = await this.#held(trx, held).set({ status: 'pending', lease_until: null, intent: null, updated_at: now }).executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await insertAudit(trx, audit);
        return true;
      }),
    );
  }
}
