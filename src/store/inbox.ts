// The inbox: the durable half of ingest, and the storage the router works on.
// appendToInbox(): the one transaction an acknowledgement waits for, per group commit: each request's body goes
// into the inbox (an append-only log) as it arrived, sealed. takeInbox(): the router's side, in one transaction
// per batch: read the oldest bodies again (normalised as ingest did), hand them with a RoutingWriter (the SQL of
// the routing inserts) to the routing rules (engine/routing.ts), and take the bodies out. A batch is bounded in
// items and bytes; a body holding more items than one transaction should take (only bodies stored before ingest
// bounded them) is taken a slice at a time. Also here: router_state (a separate inbox's mark, the slice in
// progress, the attempts on the head) and the quarantine of a head that cannot be routed.
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { ControlMessage, NormalizedItem } from '../ingest/message.ts';
import { intakeOf, normalizeIntake } from '../ingest/intake.ts';
import type { Sealer } from '../pii/sealed.ts';
import type { Database, ErasureRequestsTable, EventsTable, InboxTable, RecordsTable } from './schema.ts';
import type { Dialect, InboxStore, Store } from './store.ts';
import { redact } from '../observability/redact.ts';
import { insertQuarantine } from './dead-letters.ts';
import { prepareBatch, type PreparedBatch } from './prepared.ts';
import { compareRecordKeys, prepareRecordMarks } from './record-queue.ts';

// SQLite allows 32,766 bound parameters per statement and PostgreSQL 65,535; chunks stay well below both.
const ROWS_PER_STATEMENT = 500;
/**
 * Items one routing transaction takes from a single body at most: ingest refuses bodies holding more than
 * server.maxItemsPerBody (1,000 by default), so only a body stored before that bound, or under a higher one, is
 * routed in slices. Bounds the transaction and the engine thread's memory whatever a stored row holds.
 */
export const ROUTE_SLICE_ITEMS = 1_000;
/** Body bytes one routing transaction reads (at least one body, which server.bodyLimit bounds). */
const ROUTE_BATCH_BYTES = 1024 * 1024;
// Only one process routes at a time on PostgreSQL, so events keep their arrival order per resource.
const ROUTER_LOCK_ID = 0x63746272;

/** An inbox row as appended: plain values and bytes, so it can cross to the writing thread as is. */
export type InboxRow = Insertable<InboxTable>;

/** One accepted request body, encoded for the inbox; `seal` opens a body sealed in place (pii/sealed.ts). */
export function inboxRow(input: { body: Uint8Array; seal?: Uint8Array; transport: Record<string, string> | undefined; correlationId: string | undefined; items: number }, now: number): InboxRow {
  return {
    body: input.body,
    seal: input.seal ?? null,
    transport: input.transport ? JSON.stringify(input.transport) : null,
    correlation_id: input.correlationId ?? null,
    items: input.items,
    received_at: now,
  };
}

/** A body's bytes as text (a view of them, not a copy, on the way). */
export function bodyText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * Reads a stored body the way ingest read it when it accepted it: its items from the `skip`-th, at most `limit`
 * (all by default); `more` when the body holds more after those.
 */
export function readInboxBody(row: Pick<Selectable<InboxTable>, 'body' | 'seal' | 'transport'>, sealer: Sealer, skip = 0, limit = Number.POSITIVE_INFINITY): { items: NormalizedItem[]; more: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(bodyText(openBody(row, sealer)));
  } catch (error) {
    // Ingest only stores bodies it parsed; this is a row written by something else (or sealed under another key).
    const items: NormalizedItem[] = [{ kind: 'unrecognised', unrecognised: { reason: `the stored body cannot be read: ${(error as Error).message}`, body: null } }];
    return { items: skip === 0 ? items : [], more: false };
  }
  const transport = row.transport ? (JSON.parse(row.transport) as Record<string, string>) : {};
  return normalizeIntake(value, intakeOf(transport), transport, skip, limit);
}

/** A stored body's bytes, opened (the row's own copy is decrypted in place: every read gets a fresh one). */
function openBody(row: Pick<Selectable<InboxTable>, 'body' | 'seal'>, sealer: Sealer): Uint8Array {
  return row.seal ? sealer.openInPlace(row.body, row.seal) : row.body;
}

/** Commits the rows: the acknowledgement of every request among them waits for this. */
export async function appendToInbox(inbox: InboxStore, rows: readonly InboxRow[]): Promise<void> {
  const st = statements(inbox.db);
  // node-postgres binds a Buffer as bytea but would JSON-encode a plain Uint8Array (as one arrives from another thread).
  const bound = inbox.dialect === 'postgres' ? rows.map((row) => ({ ...row, body: asBuffer(row.body), seal: row.seal ? asBuffer(row.seal) : null })) : rows;
  await inbox.db.transaction().execute((trx) => st.insertInbox(trx, bound));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** One router at a time, until the transaction ends; on SQLite the write transaction itself is that lock. */
async function takeRouterLock(trx: Transaction<Database>, dialect: Dialect): Promise<boolean> {
  if (dialect !== 'postgres') return true;
  const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${ROUTER_LOCK_ID}) as locked`.execute(trx);
  return rows[0]?.locked === true;
}

// How the router takes rows out of the inbox, atomically with the work it makes of them:
// - inbox in the main database: it deletes them in the transaction that routes them;
// - inbox in a file of its own: that transaction cannot reach the other file, so it records the last seq it routed
//   (router_state.routed_seq) and deletes the rows afterwards; after a crash in between, rows at or below that
//   seq are only deleted, never routed twice. (SQLite commits one writer at a time, so seqs become visible in
//   order: no row can appear later below the mark. PostgreSQL gives no such promise, hence the first way there.)

/** The last inbox seq routed (0 when the inbox shares the main database: there, routed rows are gone). */
async function routedSeq(executor: Kysely<Database>, inbox: InboxStore): Promise<number> {
  if (!inbox.separate) return 0;
  const row = await executor.selectFrom('router_state').select('routed_seq').where('id', '=', 1).executeTakeFirst();
  return row?.routed_seq ?? 0;
}

/**
 * Marks the rows up to `seq` routed, inside the routing transaction; `state` (a slice finished, the attempts on
 * the head cleared) goes into router_state with it.
 */
async function markRouted(trx: Transaction<Database>, inbox: InboxStore, seq: number, state: Partial<RouterStateColumns> = {}): Promise<void> {
  if (inbox.separate) await trx.updateTable('router_state').set({ routed_seq: seq, ...state }).where('id', '=', 1).execute();
  else {
    await trx.deleteFrom('inbox').where('seq', '<=', seq).execute();
    if (Object.keys(state).length > 0) await trx.updateTable('router_state').set(state).where('id', '=', 1).execute();
  }
}

type RouterStateColumns = Omit<Selectable<Database['router_state']>, 'id' | 'routed_seq'>;

/** After the routing transaction: removes what a separate inbox still holds of the routed rows. */
async function dropRouted(inbox: InboxStore, seq: number): Promise<void> {
  if (inbox.separate) await inbox.db.deleteFrom('inbox').where('seq', '<=', seq).execute();
}

/**
 * Makes the router's mark and a separate inbox agree, once at start-up: rows a crash left behind after they were
 * routed are deleted; and if the inbox file was replaced (its sequence is behind the mark: the rows it held are
 * gone with it), the mark starts again from zero, so that nothing committed to the new file is skipped.
 * Returns a warning for the log when the mark was reset.
 */
export async function reconcileInbox(store: Store): Promise<string | undefined> {
  const { inbox } = store;
  if (!inbox.separate) return undefined;
  const mark = await routedSeq(store.db, inbox);
  if (mark === 0) return undefined;
  const sequence = await sql<{ seq: number }>`select seq from sqlite_sequence where name = 'inbox'`.execute(inbox.db).catch(() => ({ rows: [] }));
  const issued = Number(sequence.rows[0]?.seq ?? 0);
  if (issued < mark) {
    await store.db.updateTable('router_state').set({ routed_seq: 0, slice_seq: 0, slice_done: 0, attempt_seq: 0, attempts: 0, attempt_error: null }).where('id', '=', 1).execute();
    return `the inbox file was replaced (its last sequence number ${issued} is below the ${mark} already routed); whatever it held before is lost, routing starts again from its first row`;
  }
  await dropRouted(inbox, mark);
  return undefined;
}

/** Inbox rows not yet routed, oldest first (status, tests). */
export async function pendingInbox(store: Store, limit = 10_000): Promise<Array<Selectable<InboxTable>>> {
  const mark = await routedSeq(store.db, store.inbox);
  return store.inbox.db.selectFrom('inbox').selectAll().where('seq', '>', mark).orderBy('seq').limit(limit).execute();
}

/** How many items the inbox holds that are not yet routed. */
export async function pendingInboxItems(store: Store): Promise<number> {
  const mark = await routedSeq(store.db, store.inbox);
  const row = await store.inbox.db.selectFrom('inbox').select((eb) => eb.fn.sum<number>('items').as('items')).where('seq', '>', mark).executeTakeFirst();
  return Number(row?.items ?? 0);
}

// Attempts on the head. The router records that it is about to route the head before it does so whenever that
// may fail again (after a failure, and once per start-up: a previous process may have died routing it), and clears
// the record in the transaction that routes it. A record still there when the next attempt starts means the last
// one failed or stopped the process (out of memory, killed), so a row that keeps doing so is quarantined after a
// bounded number of attempts instead of stopping ctbridge at every start.

/** The router's record of attempts on the head of the inbox (see inbox-router.ts). */
export interface HeadAttempts {
  /** The head's seq when an attempt was recorded (0: none). */
  seq: number;
  /** Attempts started on it and not (yet) committed. */
  attempts: number;
  /** Why the last one failed, when it failed with an error (not when the process stopped). */
  error: string | null;
}

/** The first unrouted row's seq (undefined when the inbox is empty). */
export async function inboxHead(store: Store): Promise<{ seq: number } | undefined> {
  const mark = await routedSeq(store.db, store.inbox);
  return store.inbox.db.selectFrom('inbox').select('seq').where('seq', '>', mark).orderBy('seq').limit(1).executeTakeFirst();
}

export async function readHeadAttempts(db: Kysely<Database>): Promise<HeadAttempts> {
  const row = await db.selectFrom('router_state').select(['attempt_seq', 'attempts', 'attempt_error']).where('id', '=', 1).executeTakeFirst();
  return { seq: row?.attempt_seq ?? 0, attempts: row?.attempts ?? 0, error: row?.attempt_error ?? null };
}

/**
 * Records one more attempt on the head (committed before the attempt starts) and returns the count; attempts on
 * an earlier head are forgotten.
 */
export async function recordHeadAttempt(db: Kysely<Database>, head: { seq: number }): Promise<HeadAttempts> {
  return db.transaction().execute(async (trx) => {
    const before = await readHeadAttempts(trx);
    const same = before.seq === head.seq;
    const next = { seq: head.seq, attempts: (same ? before.attempts : 0) + 1, error: same ? before.error : null };
    await trx.updateTable('router_state').set({ attempt_seq: next.seq, attempts: next.attempts, attempt_error: next.error }).where('id', '=', 1).execute();
    return next;
  });
}

/** Keeps why the attempt on the head failed; `counts: false` (the store was briefly away) takes the attempt back. */
export async function recordHeadFailure(db: Kysely<Database>, head: { seq: number }, error: string, counts: boolean): Promise<void> {
  await db
    .updateTable('router_state')
    .set({ attempt_error: error.slice(0, 1000).replaceAll('\u0000', '\uFFFD'), ...(!counts && { attempts: sql<number>`case when attempts > 0 then attempts - 1 else 0 end` }) })
    .where('id', '=', 1)
    .where('attempt_seq', '=', head.seq)
    .execute();
}

/** Bodies larger than this are not parsed again to keep a redacted copy when quarantined whole (see below). */
const QUARANTINE_PARSE_BYTES = 1024 * 1024;

/**
 * Moves the oldest unrouted inbox row to dead letters (kind quarantine, redacted) and clears the attempts on it;
 * returns the dead letter id. A row quarantined because routing it kept stopping the process may be one that
 * cannot be read within the engine's memory: its body is only kept (redacted) when it is small enough to read.
 */
export async function quarantineInboxHead(store: Store, sealer: Sealer, reason: string, now: number): Promise<{ deadLetterId: number; correlationId: string } | undefined> {
  const { inbox } = store;
  let headSeq: number | undefined;
  const quarantined = await store.db.transaction().execute(async (trx) => {
    if (!(await takeRouterLock(trx, store.dialect))) return undefined;
    const mark = await routedSeq(trx, inbox);
    const head = await (inbox.separate ? inbox.db : trx).selectFrom('inbox').selectAll().where('seq', '>', mark).orderBy('seq').limit(1).executeTakeFirst();
    if (!head) return undefined;
    let payload: unknown = null;
    if (head.body.byteLength <= QUARANTINE_PARSE_BYTES) {
      try {
        payload = redact(JSON.parse(bodyText(openBody(head, sealer))));
      } catch {
        payload = null;
      }
    }
    const correlationId = head.correlation_id ?? inboxCorrelationId(head);
    const deadLetterId = await insertQuarantine(trx, { reason, correlationId, redactedBody: payload }, now);
    await markRouted(trx, inbox, head.seq, CLEARED);
    headSeq = head.seq;
    return { deadLetterId, correlationId };
  });
  if (headSeq !== undefined) await dropRouted(inbox, headSeq);
  return quarantined;
}

/** router_state once the head it described is routed: no slice in progress, no attempts recorded. */
const CLEARED = { slice_seq: 0, slice_done: 0, attempt_seq: 0, attempts: 0, attempt_error: null } satisfies RouterStateColumns;

/** For what a body holds that has no id of its own (an unrecognised part) and came without X-Correlation-Id. */
export function inboxCorrelationId(row: Pick<Selectable<InboxTable>, 'seq' | 'received_at'>): string {
  return `inbox-${row.received_at}-${row.seq}`;
}

/** router_state as one row (it always has one: migration 0003 inserts it). */
async function readRouterState(executor: Kysely<Database>, inbox: InboxStore): Promise<Pick<Selectable<Database['router_state']>, 'routed_seq' | 'slice_seq' | 'slice_done'>> {
  const row = await executor.selectFrom('router_state').select(['routed_seq', 'slice_seq', 'slice_done']).where('id', '=', 1).executeTakeFirst();
  return { routed_seq: inbox.separate ? (row?.routed_seq ?? 0) : 0, slice_seq: row?.slice_seq ?? 0, slice_done: row?.slice_done ?? 0 };
}

/** A body (or a slice of one) the router takes, read the way ingest read it. */
export interface InboxBody {
  row: Selectable<InboxTable>;
  items: NormalizedItem[];
}

/**
 * What routing writes, inside the transaction that takes the bodies out of the inbox: the storage half of the
 * router, whose rules (dedupe, fan-out, erasure, quarantine) are engine/routing.ts's.
 */
export interface RoutingWriter {
  /** Keeps a transport notice (an SNS subscription confirmation) for the operator. */
  notice(control: ControlMessage, receivedAt: number): Promise<void>;
  /** One quarantine dead letter (its body already redacted); returns its id. */
  quarantine(entry: { reason: string; correlationId: string; redactedBody: unknown }, now: number): Promise<number>;
  /** Records the dedupe keys as seen; returns those not seen before. */
  seen(rows: ReadonlyArray<{ dedupe_key: string; received_at: number }>): Promise<Set<string>>;
  /** Marks record keys dirty (one row per key). */
  markRecords(rows: Array<Insertable<RecordsTable>>): Promise<void>;
  /** Queues event deliveries (one already queued for its destination, type and dedupe key is left as it is). */
  queueEvents(rows: ReadonlyArray<Insertable<EventsTable>>): Promise<void>;
  requestErasures(rows: ReadonlyArray<Insertable<ErasureRequestsTable>>): Promise<void>;
}

export interface TakeOptions {
  /** Opens sealed bodies. */
  sealer: Sealer;
  /** The attempts on the head were recorded: clear the record when this transaction commits. */
  clearAttempts?: boolean;
  /** Called with each row's seq before it is routed, inside the transaction: throwing fails the batch (tests). */
  onRow?: (seq: number) => void;
}

/**
 * Takes the oldest inbox rows holding about `itemBudget` items and ROUTE_BATCH_BYTES of body (at least one row;
 * a row holding more than ROUTE_SLICE_ITEMS, a slice of it) out of the inbox, in one transaction with what `route`
 * writes of them. Returns how many rows were taken (a slice that leaves more of its body counts none) and items read.
 */
export async function takeInbox(store: Store, itemBudget: number, options: TakeOptions, route: (writer: RoutingWriter, bodies: readonly InboxBody[]) => Promise<void>): Promise<{ routed: number; items: number }> {
  const { inbox } = store;
  const { sealer } = options;
  const taken = { routed: 0, items: 0 };
  let last: number | undefined;
  await store.db.transaction().execute(async (trx) => {
    if (!(await takeRouterLock(trx, store.dialect))) return;
    const mark = await routedSeq(trx, inbox);
    const source = inbox.separate ? inbox.db : trx;
    const writer = routingWriter(trx, statements(store.db));
    // Sizes first (small columns), then only the bodies that fit the budget.
    const sizes = await source
      .selectFrom('inbox')
      .select(['seq', 'items', sql<number>`length(body)`.as('bytes')])
      .where('seq', '>', mark)
      .orderBy('seq')
      .limit(ROWS_PER_STATEMENT)
      .execute();
    if (sizes.length === 0) return;

    // A body holding more than a transaction should take: this transaction routes the next slice of it only.
    const head = sizes[0]!;
    if (head.items > ROUTE_SLICE_ITEMS) {
      const state = await readRouterState(trx, inbox);
      const done = state.slice_seq === head.seq ? state.slice_done : 0;
      const row = await source.selectFrom('inbox').selectAll().where('seq', '=', head.seq).executeTakeFirstOrThrow();
      options.onRow?.(row.seq);
      const { items, more } = readInboxBody(row, sealer, done, ROUTE_SLICE_ITEMS);
      await route(writer, [{ row, items }]);
      taken.items = items.length;
      const attempts = options.clearAttempts ? { attempt_seq: 0, attempts: 0, attempt_error: null } : {};
      if (more) {
        await trx.updateTable('router_state').set({ slice_seq: row.seq, slice_done: done + items.length, ...attempts }).where('id', '=', 1).execute();
      } else {
        taken.routed = 1;
        await markRouted(trx, inbox, row.seq, { slice_seq: 0, slice_done: 0, ...attempts });
        last = row.seq;
      }
      return;
    }

    let upTo = head.seq;
    let items = 0;
    let bytes = 0;
    for (const row of sizes) {
      if (items > 0 && (items + row.items > itemBudget || bytes + Number(row.bytes) > ROUTE_BATCH_BYTES || row.items > ROUTE_SLICE_ITEMS)) break;
      items += row.items;
      bytes += Number(row.bytes);
      upTo = row.seq;
    }
    const rows = await source.selectFrom('inbox').selectAll().where('seq', '>', mark).where('seq', '<=', upTo).orderBy('seq').execute();
    const read = rows.map((row) => {
      options.onRow?.(row.seq);
      return { row, items: readInboxBody(row, sealer).items };
    });
    await route(writer, read);
    taken.routed = rows.length;
    for (const row of rows) taken.items += row.items;
    await markRouted(trx, inbox, upTo, options.clearAttempts ? { attempt_seq: 0, attempts: 0, attempt_error: null } : {});
    last = upTo;
  });
  if (last !== undefined) await dropRouted(inbox, last);
  return taken;
}

function routingWriter(trx: Transaction<Database>, st: Statements): RoutingWriter {
  return {
    async notice(control, receivedAt) {
      await trx.insertInto('transport_notices').values({ kind: control.kind, detail: JSON.stringify(control), received_at: receivedAt }).execute();
    },
    quarantine: (entry, now) => insertQuarantine(trx, entry, now),
    async seen(rows) {
      const inserted = await st.insertSeen<{ dedupe_key: string }>(trx, rows);
      return new Set(inserted.map((row) => row.dedupe_key));
    },
    // In key order: the order a worker's finish locks the same rows in (RecordQueue.finish), or PostgreSQL may find
    // the two transactions deadlocked.
    markRecords: (rows) => st.upsertMarks(trx, rows.sort(compareRecordKeys)).then(() => undefined),
    queueEvents: (rows) => st.insertEvents(trx, rows).then(() => undefined),
    async requestErasures(rows) {
      if (rows.length > 0) await trx.insertInto('erasure_requests').values([...rows]).execute();
    },
  };
}

/** The routing statements, compiled once per database (see prepared.ts). */
interface Statements {
  insertInbox: PreparedBatch<InboxRow>;
  /** Returns the dedupe keys not seen before. */
  insertSeen: PreparedBatch<{ dedupe_key: string; received_at: number }>;
  upsertMarks: PreparedBatch<Insertable<RecordsTable>>;
  insertEvents: PreparedBatch<Insertable<EventsTable>>;
}

const statementsByDb = new WeakMap<Kysely<Database>, Statements>();

function statements(db: Kysely<Database>): Statements {
  let compiled = statementsByDb.get(db);
  if (compiled) return compiled;
  compiled = {
    insertInbox: prepareBatch(db, (rows: InboxRow[]) => db.insertInto('inbox').values(rows)),
    insertSeen: prepareBatch(db, (rows: Array<{ dedupe_key: string; received_at: number }>) =>
      db
        .insertInto('seen')
        .values(rows)
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returning('dedupe_key'),
    ),
    upsertMarks: prepareRecordMarks(db),
    insertEvents: prepareBatch(db, (rows: Array<Insertable<EventsTable>>) =>
      db
        .insertInto('events')
        .values(rows)
        .onConflict((oc) => oc.columns(['destination', 'event_type', 'dedupe_key']).doNothing()),
    ),
  };
  statementsByDb.set(db, compiled);
  return compiled;
}

