// The durable half of ingest and the routing that follows it.
// appendToInbox(): the one transaction an acknowledgement waits for, per group commit: each request's body goes
// into the inbox (an append-only log) as it arrived, sealed. routeInbox(): the router's side, in one transaction
// per batch: take the oldest bodies, normalise them again, quarantine what is not understood (one dead letter per
// body), drop notifications whose dedupe key was seen before, mark the record keys the rest dirty, queue the event
// deliveries they start (messages and carried resources sealed), and delete the bodies. Rows for one key inside a
// batch are merged first (coalescing, and PostgreSQL refuses to upsert one row twice in a statement). A batch is
// bounded in items and bytes; a body holding more items than one transaction should take (only bodies stored
// before ingest bounded them) is routed a slice at a time.
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { CommercetoolsNotification, ControlMessage, NormalizedItem } from '../ingest/message.ts';
import { normalizeSlice } from '../ingest/normalize.ts';
import type { Sealer } from '../pii/sealed.ts';
import type { Routes } from '../engine/routes.ts';
import type { Database, ErasureRequestsTable, EventsTable, InboxTable, RecordsTable } from './schema.ts';
import type { Dialect, InboxStore, Store } from './store.ts';
import { redact } from '../observability/redact.ts';
import { insertQuarantine } from './dead-letters.ts';
import { prepareBatch, type PreparedBatch } from './prepared.ts';
import { compareRecordKeys, prepareRecordMarks } from './record-queue.ts';

export interface RouteResult {
  /** Inbox rows (request bodies) taken. */
  routed: number;
  /** The items they held (InboxTable.items): notifications, unrecognised parts, notices. */
  items: number;
  /** Notifications in them, fresh and duplicate. */
  notifications: number;
  duplicates: number;
  /** Erasure requests queued (CustomerDeleted with dataErasure). */
  erasures: number;
  /** New work per destination: record keys marked dirty and events queued. */
  queued: Map<string, { records: number; events: number }>;
  /** Parts of the bodies that were not understood, now quarantine dead letters (one per body, `parts` in it). */
  quarantined: Array<{ deadLetterId: number; reason: string; correlationId: string; parts: number }>;
  /** Transport notices recorded (SNS subscription confirmations), for the operator's log. */
  notices: ControlMessage[];
  /** Each notification routed, when asked for (`detail`), for debug logging. */
  detail?: Array<{ correlationId: string; type: string; resource: CommercetoolsNotification['resource']; version: number | undefined; duplicate: boolean }>;
}

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
  return normalizeSlice(value, row.transport ? (JSON.parse(row.transport) as Record<string, string>) : {}, skip, limit);
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
function inboxCorrelationId(row: Pick<Selectable<InboxTable>, 'seq' | 'received_at'>): string {
  return `inbox-${row.received_at}-${row.seq}`;
}

/** router_state as one row (it always has one: migration 0003 inserts it). */
async function readRouterState(executor: Kysely<Database>, inbox: InboxStore): Promise<Pick<Selectable<Database['router_state']>, 'routed_seq' | 'slice_seq' | 'slice_done'>> {
  const row = await executor.selectFrom('router_state').select(['routed_seq', 'slice_seq', 'slice_done']).where('id', '=', 1).executeTakeFirst();
  return { routed_seq: inbox.separate ? (row?.routed_seq ?? 0) : 0, slice_seq: row?.slice_seq ?? 0, slice_done: row?.slice_done ?? 0 };
}

export interface RouteOptions {
  /** Opens sealed bodies, and seals the messages and resources routing stores. */
  sealer: Sealer;
  /** Fill RouteResult.detail (debug logging). */
  detail?: boolean;
  /** The attempts on the head were recorded: clear the record when this transaction commits. */
  clearAttempts?: boolean;
  /** Called with each row's seq before it is routed, inside the transaction: throwing fails the batch (tests). */
  onRow?: (seq: number) => void;
}

/**
 * Routes the oldest inbox rows holding about `itemBudget` items and ROUTE_BATCH_BYTES of body (at least one row;
 * a row holding more than ROUTE_SLICE_ITEMS, a slice of it), in one transaction, and takes them out of the inbox.
 */
export async function routeInbox(store: Store, routes: Routes, itemBudget: number, now: number, options: RouteOptions): Promise<RouteResult> {
  const { inbox } = store;
  const { sealer } = options;
  const result: RouteResult = { routed: 0, items: 0, notifications: 0, duplicates: 0, erasures: 0, queued: new Map(), quarantined: [], notices: [], ...(options.detail && { detail: [] }) };
  let last: number | undefined;
  await store.db.transaction().execute(async (trx) => {
    if (!(await takeRouterLock(trx, store.dialect))) return;
    const mark = await routedSeq(trx, inbox);
    const source = inbox.separate ? inbox.db : trx;
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
      await routeItems(trx, store, routes, [{ row, items }], now, sealer, result);
      result.items = items.length;
      const attempts = options.clearAttempts ? { attempt_seq: 0, attempts: 0, attempt_error: null } : {};
      if (more) {
        await trx.updateTable('router_state').set({ slice_seq: row.seq, slice_done: done + items.length, ...attempts }).where('id', '=', 1).execute();
      } else {
        result.routed = 1;
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
    await routeItems(trx, store, routes, read, now, sealer, result);
    result.routed = rows.length;
    for (const row of rows) result.items += row.items;
    await markRouted(trx, inbox, upTo, options.clearAttempts ? { attempt_seq: 0, attempts: 0, attempt_error: null } : {});
    last = upTo;
  });
  if (last !== undefined) await dropRouted(inbox, last);
  return result;
}

/** Routes what the bodies (or a slice of one) hold: quarantine, transport notices, then the notifications. */
async function routeItems(trx: Transaction<Database>, store: Store, routes: Routes, bodies: ReadonlyArray<{ row: Selectable<InboxTable>; items: NormalizedItem[] }>, now: number, sealer: Sealer, result: RouteResult): Promise<void> {
  const accepted: AcceptedNotification[] = [];
  for (const { row, items } of bodies) {
    const unrecognised: Array<{ reason: string; body: unknown }> = [];
    for (const item of items) {
      if (item.kind === 'notification') {
        accepted.push({ notification: item.notification, correlationId: row.correlation_id ?? item.notification.dedupeKey, receivedAt: row.received_at });
      } else if (item.kind === 'unrecognised') {
        unrecognised.push(item.unrecognised);
      } else if (item.control.kind === 'sns-subscription-confirmation') {
        await trx.insertInto('transport_notices').values({ kind: item.control.kind, detail: JSON.stringify(item.control), received_at: row.received_at }).execute();
        result.notices.push(item.control);
      }
    }
    if (unrecognised.length > 0) {
      // One dead letter for all that a body holds and is not understood: its size is bounded by the body's.
      const correlationId = row.correlation_id ?? inboxCorrelationId(row);
      const reason = quarantineReason(unrecognised);
      const body = unrecognised.length === 1 ? unrecognised[0]!.body : { parts: unrecognised };
      const deadLetterId = await insertQuarantine(trx, { reason, correlationId, redactedBody: redact(body) }, now);
      result.quarantined.push({ deadLetterId, reason, correlationId, parts: unrecognised.length });
    }
  }
  await routeNotifications(trx, statements(store.db), routes, accepted, now, sealer, result);
}

/** Distinct reasons listed in a quarantine dead letter's reason (all of them are in its payload). */
const REASONS_LISTED = 5;

/** The reason of a body's quarantine dead letter: the one reason, or how many parts and why (grouped). */
function quarantineReason(parts: ReadonlyArray<{ reason: string }>): string {
  if (parts.length === 1) return parts[0]!.reason;
  // Reasons start with where in the body the part was ("[12] > SNS Message: …"): grouped without the positions.
  const groups = new Map<string, number>();
  for (const { reason } of parts) {
    const key = reason.replace(/\[\d+\]/g, '[*]');
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  const listed = [...groups].sort((a, b) => b[1] - a[1]).slice(0, REASONS_LISTED);
  const others = groups.size - listed.length;
  return `${parts.length} parts of the body not understood: ${listed.map(([reason, count]) => `${count} × ${reason}`).join('; ')}${others > 0 ? `; and ${others} other reason(s)` : ''}`;
}

interface AcceptedNotification {
  notification: CommercetoolsNotification;
  correlationId: string;
  receivedAt: number;
}

async function routeNotifications(trx: Transaction<Database>, st: Statements, routes: Routes, accepted: readonly AcceptedNotification[], now: number, sealer: Sealer, result: RouteResult): Promise<void> {
  result.notifications = accepted.length;
  if (accepted.length === 0) return;
  // Within the batch, the first of a key wins; across batches, the seen table decides.
  const firstOfKey = new Map<string, AcceptedNotification>();
  for (const item of accepted) if (!firstOfKey.has(item.notification.dedupeKey)) firstOfKey.set(item.notification.dedupeKey, item);
  const inserted = await st.insertSeen<{ dedupe_key: string }>(trx, [...firstOfKey.values()].map((item) => ({ dedupe_key: item.notification.dedupeKey, received_at: item.receivedAt })));
  const fresh = new Set(inserted.map((row) => row.dedupe_key));
  if (result.detail) {
    for (const { notification: n, correlationId } of accepted) {
      result.detail.push({ correlationId, type: n.type, resource: n.resource, version: n.resourceVersion, duplicate: !fresh.has(n.dedupeKey) || firstOfKey.get(n.dedupeKey)?.notification !== n });
    }
  }

  const marks = new Map<string, Mark>();
  const events: Array<Insertable<EventsTable>> = [];
  const erasures: Array<Insertable<ErasureRequestsTable>> = [];
  for (const item of firstOfKey.values()) {
    const n = item.notification;
    if (!fresh.has(n.dedupeKey)) continue;
    if (n.resource) {
      for (const route of routes.recordsFor(n.resource.typeId)) mergeMark(marks, markFor(route.destination, route.recordType, item));
    }
    // The customer asked to be forgotten: carried out by the engine's erasure loop (engine/erasure.ts).
    if (n.type === 'CustomerDeleted' && n.resource && (n.payload as { dataErasure?: unknown }).dataErasure === true) {
      erasures.push({ customer_id: n.resource.id, correlation_id: item.correlationId, source: 'message', requested_at: now });
    }
    // The message is kept sealed until its delivery (one seal for all the deliveries it starts).
    let payload: string | undefined;
    for (const route of routes.eventsFor(n.type)) {
      payload ??= sealer.seal(JSON.stringify(n.payload));
      events.push({
        destination: route.destination,
        event_type: route.eventType,
        dedupe_key: n.dedupeKey,
        source_type: n.type,
        resource_type: n.resource?.typeId ?? null,
        resource_id: n.resource?.id ?? null,
        payload,
        correlation_id: item.correlationId,
        occurred_at: n.occurredAt ?? null,
        created_at: item.receivedAt,
        due_at: now,
      });
    }
  }

  const count = (destination: string) => result.queued.get(destination) ?? result.queued.set(destination, { records: 0, events: 0 }).get(destination)!;
  for (const { row } of marks.values()) count(row.destination).records += 1;
  for (const event of events) count(event.destination).events += 1;

  // Only the carried resource that won the merge is encoded (and sealed, once for every destination it goes to).
  // In key order: the order a worker's finish locks the same rows in (RecordQueue.finish), or PostgreSQL may find
  // the two transactions deadlocked.
  const sealedResources = new Map<object, string>();
  const sealedResource = (resource: Record<string, unknown>) => sealedResources.get(resource) ?? sealedResources.set(resource, sealer.seal(JSON.stringify(resource))).get(resource)!;
  const rows = [...marks.values()].map(({ row, carried }) => ({ ...row, carried_resource: carried ? sealedResource(carried) : null }));
  await st.upsertMarks(trx, rows.sort(compareRecordKeys));
  await st.insertEvents(trx, events);
  if (erasures.length > 0) {
    await trx.insertInto('erasure_requests').values(erasures).execute();
    result.erasures += erasures.length;
  }
  result.duplicates = accepted.length - fresh.size;
}

/** A record key to mark dirty, with the resource it carries (encoded once the batch's marks are merged). */
interface Mark {
  row: Insertable<RecordsTable>;
  carried: Record<string, unknown> | undefined;
}

function markFor(destination: string, recordType: string, { notification: n, correlationId, receivedAt }: AcceptedNotification): Mark {
  const version = n.resourceVersion ?? null;
  const carried = n.carriedResource && !n.deleted && version !== null ? n.carriedResource : undefined;
  return {
    row: {
      destination,
      record_type: recordType,
      resource_id: n.resource!.id,
      resource_type: n.resource!.typeId,
      dirty_seq: 1,
      due_at: receivedAt,
      seen_version: version,
      deleted_version: n.deleted ? (version ?? Number.MAX_SAFE_INTEGER) : null,
      carried_version: carried ? version : null,
      carried_resource: null,
      refresh: version === null ? 1 : 0,
      correlation_id: correlationId,
      // Lag is measured from the moment ctbridge accepted the notification, not from routing.
      dirtied_at: receivedAt,
      occurred_at: n.occurredAt ?? null,
    },
    carried,
  };
}

/** Two marks of one key in a batch become one: highest versions win, the newest carried resource is kept. */
function mergeMark(marks: Map<string, Mark>, mark: Mark): void {
  const key = `${mark.row.destination}\u0000${mark.row.record_type}\u0000${mark.row.resource_id}`;
  const existing = marks.get(key);
  if (!existing) {
    marks.set(key, mark);
    return;
  }
  const [into, from] = [existing.row, mark.row];
  into.seen_version = maxNullable(into.seen_version ?? null, from.seen_version ?? null);
  into.deleted_version = maxNullable(into.deleted_version ?? null, from.deleted_version ?? null);
  if (from.carried_version != null && (into.carried_version == null || from.carried_version > into.carried_version)) {
    into.carried_version = from.carried_version;
    existing.carried = mark.carried;
  }
  if (from.refresh) into.refresh = 1;
  into.correlation_id = from.correlation_id;
}

function maxNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
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

