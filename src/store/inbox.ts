// The durable half of ingest and the routing that follows it.
// appendToInbox(): the one transaction an acknowledgement waits for, per group commit: each request's body goes
// into the inbox (an append-only log) as it arrived. routeInbox(): the router's side, in one transaction per
// batch: take the oldest bodies, normalise them again, quarantine what is not understood, drop notifications
// whose dedupe key was seen before, mark the record keys the rest dirty, queue the event deliveries they start,
// and delete the bodies. Rows for one key inside a batch are merged first (coalescing, and PostgreSQL refuses to
// upsert one row twice in a statement).
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { CommercetoolsNotification, ControlMessage, NormalizedItem } from '../ingest/message.ts';
import { normalizeBody } from '../ingest/normalize.ts';
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
  /** Parts of the bodies that were not understood, now quarantine dead letters. */
  quarantined: Array<{ deadLetterId: number; reason: string; correlationId: string }>;
  /** Transport notices recorded (SNS subscription confirmations), for the operator's log. */
  notices: ControlMessage[];
  /** Each notification routed, when asked for (`detail`), for debug logging. */
  detail?: Array<{ correlationId: string; type: string; resource: CommercetoolsNotification['resource']; version: number | undefined; duplicate: boolean }>;
}

// SQLite allows 32,766 bound parameters per statement and PostgreSQL 65,535; chunks stay well below both.
const ROWS_PER_STATEMENT = 500;
// Only one process routes at a time on PostgreSQL, so events keep their arrival order per resource.
const ROUTER_LOCK_ID = 0x63746272;

/** An inbox row as appended: plain values and bytes, so it can cross to the writing thread as is. */
export type InboxRow = Insertable<InboxTable>;

/** One accepted request body, encoded for the inbox. */
export function inboxRow(input: { body: Uint8Array; transport: Record<string, string> | undefined; correlationId: string | undefined; items: number }, now: number): InboxRow {
  return {
    body: input.body,
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

/** Reads a stored body the way ingest read it when it accepted it. */
export function readInboxBody(row: Pick<Selectable<InboxTable>, 'body' | 'transport'>): NormalizedItem[] {
  let value: unknown;
  try {
    value = JSON.parse(bodyText(row.body));
  } catch (error) {
    // Ingest only stores bodies it parsed; this is a row written by something else.
    return [{ kind: 'unrecognised', unrecognised: { reason: `the stored body is not JSON: ${(error as Error).message}`, body: null } }];
  }
  return normalizeBody(value, row.transport ? (JSON.parse(row.transport) as Record<string, string>) : {});
}

/** Commits the rows: the acknowledgement of every request among them waits for this. */
export async function appendToInbox(inbox: InboxStore, rows: readonly InboxRow[]): Promise<void> {
  const st = statements(inbox.db);
  // node-postgres binds a Buffer as bytea but would JSON-encode a plain Uint8Array (as one arrives from another thread).
  const bound = inbox.dialect === 'postgres' ? rows.map((row) => ({ ...row, body: asBuffer(row.body) })) : rows;
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

/** Marks the rows up to `seq` routed, inside the routing transaction. */
async function markRouted(trx: Transaction<Database>, inbox: InboxStore, seq: number): Promise<void> {
  if (inbox.separate) await trx.updateTable('router_state').set({ routed_seq: seq }).where('id', '=', 1).execute();
  else await trx.deleteFrom('inbox').where('seq', '<=', seq).execute();
}

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
    await store.db.updateTable('router_state').set({ routed_seq: 0 }).where('id', '=', 1).execute();
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

/** Moves the oldest unrouted inbox row to dead letters (kind quarantine, redacted); returns the dead letter id. */
export async function quarantineInboxHead(store: Store, reason: string, now: number): Promise<number | undefined> {
  const { inbox } = store;
  let headSeq: number | undefined;
  const id = await store.db.transaction().execute(async (trx) => {
    const mark = await routedSeq(trx, inbox);
    const head = await (inbox.separate ? inbox.db : trx).selectFrom('inbox').selectAll().where('seq', '>', mark).orderBy('seq').limit(1).executeTakeFirst();
    if (!head) return undefined;
    let payload: unknown;
    try {
      payload = redact(JSON.parse(bodyText(head.body)));
    } catch {
      payload = null;
    }
    const deadLetterId = await insertQuarantine(trx, { reason, correlationId: head.correlation_id ?? inboxCorrelationId(head), redactedBody: payload }, now);
    await markRouted(trx, inbox, head.seq);
    headSeq = head.seq;
    return deadLetterId;
  });
  if (headSeq !== undefined) await dropRouted(inbox, headSeq);
  return id;
}

/** For what a body holds that has no id of its own (an unrecognised part) and came without X-Correlation-Id. */
function inboxCorrelationId(row: Pick<Selectable<InboxTable>, 'seq' | 'received_at'>): string {
  return `inbox-${row.received_at}-${row.seq}`;
}

/**
 * Routes the oldest inbox rows holding about `itemBudget` items (at least one row, however large), in one
 * transaction, and takes them out of the inbox.
 */
export async function routeInbox(store: Store, routes: Routes, itemBudget: number, now: number, options: { detail?: boolean } = {}): Promise<RouteResult> {
  const { inbox } = store;
  const result: RouteResult = { routed: 0, items: 0, notifications: 0, duplicates: 0, erasures: 0, queued: new Map(), quarantined: [], notices: [], ...(options.detail && { detail: [] }) };
  let last: number | undefined;
  await store.db.transaction().execute(async (trx) => {
    if (!(await takeRouterLock(trx, store.dialect))) return;
    const mark = await routedSeq(trx, inbox);
    const source = inbox.separate ? inbox.db : trx;
    // Sizes first (small columns), then only the bodies that fit the budget.
    const sizes = await source.selectFrom('inbox').select(['seq', 'items']).where('seq', '>', mark).orderBy('seq').limit(ROWS_PER_STATEMENT).execute();
    if (sizes.length === 0) return;
    let upTo = sizes[0]!.seq;
    let items = 0;
    for (const row of sizes) {
      if (items > 0 && items + row.items > itemBudget) break;
      items += row.items;
      upTo = row.seq;
    }
    const rows = await source.selectFrom('inbox').selectAll().where('seq', '>', mark).where('seq', '<=', upTo).orderBy('seq').execute();

    const accepted: AcceptedNotification[] = [];
    for (const row of rows) {
      for (const item of readInboxBody(row)) {
        if (item.kind === 'notification') {
          accepted.push({ notification: item.notification, correlationId: row.correlation_id ?? item.notification.dedupeKey, receivedAt: row.received_at });
        } else if (item.kind === 'unrecognised') {
          const correlationId = row.correlation_id ?? inboxCorrelationId(row);
          const deadLetterId = await insertQuarantine(trx, { reason: item.unrecognised.reason, correlationId, redactedBody: redact(item.unrecognised.body) }, now);
          result.quarantined.push({ deadLetterId, reason: item.unrecognised.reason, correlationId });
        } else if (item.control.kind === 'sns-subscription-confirmation') {
          await trx.insertInto('transport_notices').values({ kind: item.control.kind, detail: JSON.stringify(item.control), received_at: row.received_at }).execute();
          result.notices.push(item.control);
        }
      }
    }
    await routeNotifications(trx, statements(store.db), routes, accepted, now, result);
    result.routed = rows.length;
    for (const row of rows) result.items += row.items;
    await markRouted(trx, inbox, upTo);
    last = upTo;
  });
  if (last !== undefined) await dropRouted(inbox, last);
  return result;
}

interface AcceptedNotification {
  notification: CommercetoolsNotification;
  correlationId: string;
  receivedAt: number;
}

async function routeNotifications(trx: Transaction<Database>, st: Statements, routes: Routes, accepted: readonly AcceptedNotification[], now: number, result: RouteResult): Promise<void> {
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
    for (const route of routes.eventsFor(n.type)) {
      events.push({
        destination: route.destination,
        event_type: route.eventType,
        dedupe_key: n.dedupeKey,
        source_type: n.type,
        resource_type: n.resource?.typeId ?? null,
        resource_id: n.resource?.id ?? null,
        payload: JSON.stringify(n.payload),
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

  // Only the carried resource that won the merge is encoded. In key order: the order a worker's finish locks the
  // same rows in (RecordQueue.finish), or PostgreSQL may find the two transactions deadlocked.
  const rows = [...marks.values()].map(({ row, carried }) => ({ ...row, carried_resource: carried ? JSON.stringify(carried) : null }));
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

