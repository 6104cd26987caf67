// The backfills table (store/schema.ts BackfillsTable): asking for a backfill (one running per scope), reading one
// with its progress, cancelling it, and what the runner does with its lease — claim, advance the cursor with the
// marks of a page in one transaction, finish with a summary in the audit log.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { insertAudit } from '../store/audit-log.ts';
import type { BackfillsTable, Database } from '../store/schema.ts';
import type { DestinationConfig } from '../config/schema.ts';

/** The resource types a backfill can read (those the engine can fetch). */
export const READABLE_TYPES = ['customer', 'order', 'product', 'payment', 'cart', 'business-unit'] as const;

export type BackfillRow = Selectable<BackfillsTable>;

export interface BackfillRequest {
  destination: string;
  /** Record types of the destination's `records:`; all of them when omitted. */
  records?: readonly string[] | undefined;
  /** Only resources modified at or after this time (ms since the epoch). */
  since?: number | undefined;
  /** A commercetools query predicate, and-ed with the cursor. */
  where?: string | undefined;
  store?: string | undefined;
}

/** Where a backfill got to: the record type being read (index into record_types) and the last id read. */
export interface BackfillCursor {
  index: number;
  afterId: string | null;
}

export interface BackfillProgress {
  id: string;
  destination: string;
  recordTypes: string[];
  state: BackfillRow['state'];
  /** reading: pages are being read; delivering: all read, keys still queued; finished otherwise. */
  phase: 'reading' | 'delivering' | 'finished';
  read: number;
  queued: number;
  /** Queued keys the engine has finished (sent, or found unchanged or older than what was sent). */
  delivered: number;
  /** Dead letters of the backfill's record types since it started. */
  failed: number;
  /** Queued keys still waiting or in flight. */
  pending: number;
  createdAt: string;
  finishedAt: string | null;
  /** Resources read per second so far, and the seconds left at that rate (null while unknown). */
  ratePerSecond: number | null;
  etaSeconds: number | null;
  error: string | null;
  filters: { since: string | null; where: string | null; store: string | null };
}

/** A request checked against the configuration: the record types to read, in order. */
export function resolveRequest(destinations: readonly DestinationConfig[], request: BackfillRequest): { ok: true; recordTypes: string[] } | { ok: false; detail: string } {
  const destination = destinations.find((d) => d.name === request.destination);
  if (!destination) return { ok: false, detail: `unknown destination "${request.destination}" (configured: ${destinations.map((d) => d.name).join(', ') || 'none'})` };
  const configured = Object.keys(destination.records);
  const wanted = request.records && request.records.length > 0 ? [...new Set(request.records)] : configured;
  if (wanted.length === 0) return { ok: false, detail: `destination "${request.destination}" maps no records: nothing to backfill` };
  for (const recordType of wanted) {
    const mapping = Object.hasOwn(destination.records, recordType) ? destination.records[recordType] : undefined;
    if (!mapping) return { ok: false, detail: `destination "${request.destination}" has no record type "${recordType}" (its records: ${configured.join(', ') || 'none'})` };
    const resourceType = mapping.source ?? recordType;
    if (!(READABLE_TYPES as readonly string[]).includes(resourceType)) return { ok: false, detail: `record type "${recordType}" reads ${resourceType}s, which cannot be backfilled (readable: ${READABLE_TYPES.join(', ')})` };
    if (request.store !== undefined && !['customer', 'order', 'cart'].includes(resourceType)) return { ok: false, detail: `record type "${recordType}" reads ${resourceType}s, which belong to no store: --store applies to customers, orders and carts` };
  }
  return { ok: true, recordTypes: wanted };
}

export function scopeOf(destination: string, recordTypes: readonly string[], request: Pick<BackfillRequest, 'since' | 'where' | 'store'>): string {
  return JSON.stringify([destination, [...recordTypes].sort(), request.since ?? null, request.where ?? null, request.store ?? null]);
}

export type CreateResult = { ok: true; backfill: BackfillRow; resumed: boolean } | { ok: false; runningId: string };

/**
 * Creates a backfill, unless one of the same scope is running: then it is refused with that one's id. With
 * `resumeAbandoned`, a running one of the same scope whose lease has run out (its process died) is resumed instead.
 */
export async function createBackfill(db: Kysely<Database>, recordTypes: readonly string[], request: BackfillRequest, now: number, options: { resumeAbandoned?: boolean } = {}): Promise<CreateResult> {
  const scope = scopeOf(request.destination, recordTypes, request);
  const running = () => db.selectFrom('backfills').selectAll().where('scope', '=', scope).where('state', '=', 'running').executeTakeFirst();
  const existing = await running();
  if (existing) {
    if (options.resumeAbandoned && (existing.lease_until === null || existing.lease_until < now)) return { ok: true, backfill: existing, resumed: true };
    return { ok: false, runningId: existing.id };
  }
  const row: BackfillRow = {
    id: randomUUID(),
    destination: request.destination,
    record_types: JSON.stringify(recordTypes),
    since: request.since ?? null,
    where_predicate: request.where ?? null,
    store_key: request.store ?? null,
    scope,
    state: 'running',
    cursor: JSON.stringify({ index: 0, afterId: null } satisfies BackfillCursor),
    read: 0,
    queued: 0,
    error: null,
    created_at: now,
    read_done_at: null,
    finished_at: null,
    lease_owner: null,
    lease_until: null,
  };
  try {
    await db.insertInto('backfills').values(row).execute();
  } catch (error) {
    // Two asked at once: the unique index on running scopes let one in.
    const winner = await running();
    if (winner) return { ok: false, runningId: winner.id };
    throw error;
  }
  return { ok: true, backfill: row, resumed: false };
}

export function getBackfill(db: Kysely<Database>, id: string): Promise<BackfillRow | undefined> {
  return db.selectFrom('backfills').selectAll().where('id', '=', id).executeTakeFirst();
}

export function listBackfills(db: Kysely<Database>, options: { running?: boolean; limit?: number } = {}): Promise<BackfillRow[]> {
  return db
    .selectFrom('backfills')
    .selectAll()
    .$if(options.running === true, (qb) => qb.where('state', '=', 'running'))
    .orderBy('created_at', 'desc')
    .limit(options.limit ?? 100)
    .execute();
}

/** Cancels a running backfill: no more pages are read (keys already queued are still synced). */
export async function cancelBackfill(db: Kysely<Database>, id: string, now: number): Promise<{ ok: true; backfill: BackfillRow } | { ok: false; status: 404 | 409; detail: string }> {
  const row = await getBackfill(db, id);
  if (!row) return { ok: false, status: 404, detail: `backfill ${id} does not exist` };
  if (row.state !== 'running') return { ok: false, status: 409, detail: `backfill ${id} is ${row.state} already` };
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('backfills').set({ state: 'cancelled', finished_at: now, lease_owner: null, lease_until: null }).where('id', '=', id).where('state', '=', 'running').execute();
    await insertAudit(trx, [summaryEntry(row, 'cancelled', now, await countsOf(trx, row))]);
  });
  return { ok: true, backfill: (await getBackfill(db, id))! };
}

/** Keys the backfill queued that are still waiting or in flight, and dead letters of its record types since it began. */
async function countsOf(db: Kysely<Database> | Transaction<Database>, row: BackfillRow): Promise<{ pending: number; failed: number }> {
  const types = JSON.parse(row.record_types) as string[];
  const pending = await db
    .selectFrom('records')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('destination', '=', row.destination)
    .where('background', '=', 1)
    .where(sql<boolean>`dirty_seq > processed_seq`)
    .where('record_type', 'in', types)
    .executeTakeFirst();
  const failed = await db
    .selectFrom('dead_letters')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('destination', '=', row.destination)
    .where('kind', '=', 'record')
    .where('item_type', 'in', types)
    .where('created_at', '>=', row.created_at)
    .executeTakeFirst();
  return { pending: Number(pending?.n ?? 0), failed: Number(failed?.n ?? 0) };
}

export async function progressOf(db: Kysely<Database>, row: BackfillRow, now: number): Promise<BackfillProgress> {
  const { pending, failed } = await countsOf(db, row);
  const read = Number(row.read);
  const queued = Number(row.queued);
  const end = row.finished_at ?? now;
  const seconds = Math.max(0.001, (end - row.created_at) / 1000);
  const ratePerSecond = read > 0 ? Math.round(read / seconds) : null;
  const finished = row.state !== 'running';
  return {
    id: row.id,
    destination: row.destination,
    recordTypes: JSON.parse(row.record_types) as string[],
    state: row.state,
    phase: finished ? 'finished' : row.read_done_at === null ? 'reading' : 'delivering',
    read,
    queued,
    delivered: Math.max(0, queued - pending - failed),
    failed,
    pending,
    createdAt: new Date(row.created_at).toISOString(),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
    ratePerSecond,
    // The total is never counted (withTotal=false): the time left is that of the queued keys still pending.
    etaSeconds: finished ? 0 : ratePerSecond && row.read_done_at !== null ? Math.ceil(pending / ratePerSecond) : null,
    error: row.error,
    filters: { since: row.since === null ? null : new Date(row.since).toISOString(), where: row.where_predicate, store: row.store_key },
  };
}

/** Takes the lease of a running backfill no live process holds; undefined when there is none. */
export async function claimBackfill(db: Kysely<Database>, owner: string, now: number, leaseUntil: number, exclude: readonly string[] = []): Promise<BackfillRow | undefined> {
  const candidates = await db
    .selectFrom('backfills')
    .select(['id', 'lease_owner'])
    .where('state', '=', 'running')
    .$if(exclude.length > 0, (qb) => qb.where('id', 'not in', exclude))
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]))
    .orderBy('created_at')
    .limit(10)
    .execute();
  for (const candidate of candidates) {
    const taken = await db
      .updateTable('backfills')
      .set({ lease_owner: owner, lease_until: leaseUntil })
      .where('id', '=', candidate.id)
      .where('state', '=', 'running')
      .where((eb) => (candidate.lease_owner === null ? eb('lease_owner', 'is', null) : eb('lease_owner', '=', candidate.lease_owner)))
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]))
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) > 0) return getBackfill(db, candidate.id);
  }
  return undefined;
}

/** The lease is lost (or the backfill was cancelled): the runner stops working on it. */
export class BackfillLeaseLost extends Error {}

/** In the page's transaction: moves the cursor and the counts on, fenced by the lease (throws BackfillLeaseLost). */
export async function advance(trx: Transaction<Database>, id: string, owner: string, change: { cursor: BackfillCursor; read: number; queued: number; leaseUntil: number; readDoneAt: number | null }): Promise<void> {
  const updated = await trx
    .updateTable('backfills')
    .set({
      cursor: JSON.stringify(change.cursor),
      read: sql`${sql.ref('read')} + ${change.read}`,
      queued: sql`${sql.ref('queued')} + ${change.queued}`,
      lease_until: change.leaseUntil,
      read_done_at: change.readDoneAt,
    })
    .where('id', '=', id)
    .where('state', '=', 'running')
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) throw new BackfillLeaseLost(`backfill ${id} is no longer this process's (cancelled, or its lease was taken over)`);
}

/** Renews the lease while waiting for the queue; false when it was lost or the backfill is no longer running. */
export async function renewBackfill(db: Kysely<Database>, id: string, owner: string, leaseUntil: number): Promise<boolean> {
  const updated = await db.updateTable('backfills').set({ lease_until: leaseUntil }).where('id', '=', id).where('state', '=', 'running').where('lease_owner', '=', owner).executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

export function pendingCount(db: Kysely<Database>, row: BackfillRow): Promise<number> {
  return countsOf(db, row).then((counts) => counts.pending);
}

/** Ends a backfill (done or failed) with its summary in the audit log, fenced by the lease. */
export async function finishBackfill(db: Kysely<Database>, row: BackfillRow, owner: string, state: 'done' | 'failed', now: number, error: string | null = null): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('backfills')
      .set({ state, finished_at: now, error, lease_owner: null, lease_until: null })
      .where('id', '=', row.id)
      .where('state', '=', 'running')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false;
    const current = (await trx.selectFrom('backfills').selectAll().where('id', '=', row.id).executeTakeFirst())!;
    await insertAudit(trx, [summaryEntry(current, state, now, await countsOf(trx, current), error)]);
    return true;
  });
}

/** The audit log's summary of a finished backfill: counts, duration, dead letters (no personal data). */
function summaryEntry(row: BackfillRow, state: string, now: number, counts: { pending: number; failed: number }, error: string | null = null) {
  const seconds = ((now - row.created_at) / 1000).toFixed(1);
  return {
    at: now,
    action: `backfill.${state}`,
    destination: row.destination,
    itemType: 'backfill',
    resourceId: row.id,
    version: null,
    fields: JSON.parse(row.record_types) as string[],
    correlationId: `backfill:${row.id}`,
    outcome: state === 'failed' ? ('dead-lettered' as const) : state === 'cancelled' ? ('skipped' as const) : ('ok' as const),
    detail: `read ${Number(row.read)}, queued ${Number(row.queued)}, pending ${counts.pending}, dead letters ${counts.failed}, ${seconds} s${error ? `; ${error}` : ''}`,
  };
}
