// The durable half of ingest and the routing that follows it.
// Routing, in one transaction: drop notifications whose dedupe key was seen before, mark the record keys they
// dirty and queue the event deliveries they start. Rows for one key inside a batch are merged first (coalescing,
// and PostgreSQL refuses to upsert one row twice in a statement).
// appendToInbox(): the one transaction an acknowledgement waits for, per group commit; it routes the rows at
// once when it can, else stores them in the inbox log. routeInbox(): the router's side, which takes the oldest
// inbox rows, routes them and deletes them.
import { sql, type Insertable, type Kysely, type Transaction } from 'kysely';
import type { CommercetoolsNotification } from '../ingest/message.ts';
import type { Routes } from '../engine/routes.ts';
import type { Database, EventsTable, InboxTable, RecordsTable } from './schema.ts';
import type { Dialect } from './store.ts';
import { redact } from '../observability/redact.ts';
import { insertQuarantine } from './dead-letters.ts';
import { prepareBatch, type PreparedBatch } from './prepared.ts';

export interface AcceptedNotification {
  notification: CommercetoolsNotification;
  correlationId: string;
}

export interface RouteResult {
  /** Inbox rows taken (fresh and duplicate). */
  routed: number;
  duplicates: number;
  /** New work per destination: record keys marked dirty and events queued. */
  queued: Map<string, { records: number; events: number }>;
  /** Oldest receipt time among the routed rows, for lag accounting. */
  oldestReceivedAt: number | undefined;
}

// SQLite allows 32,766 bound parameters per statement and PostgreSQL 65,535; chunks stay well below both.
const ROWS_PER_STATEMENT = 500;
// Only one process routes at a time on PostgreSQL, so events keep their arrival order per resource.
const ROUTER_LOCK_ID = 0x63746272;

type StoredNotification = Omit<CommercetoolsNotification, 'carriedResource'>;

/** An inbox row as appended: the notification already encoded, so it can cross to the writing thread as is. */
export type InboxRow = Insertable<InboxTable>;

/**
 * Commits the rows. When nothing older waits in the inbox and no other process is routing, they are routed in
 * the same transaction instead of being stored for the router: the inbox round trip (insert, read back, decode,
 * delete) is skipped and the order of events is still the order of arrival. Returns what was routed, or
 * undefined when the rows went into the inbox (including when routing them failed: the router then takes them
 * one at a time, and quarantines a row that keeps failing).
 */
export async function appendToInbox(db: Kysely<Database>, dialect: Dialect, routes: Routes, rows: readonly InboxRow[], now: number): Promise<RouteResult | undefined> {
  const st = statements(db);
  let routeFirst = true;
  for (;;) {
    try {
      return await db.transaction().execute(async (trx) => {
        if (routeFirst && (await mayRouteNow(trx, dialect))) return routeRows(trx, st, routes, rows, now);
        await st.insertInbox(trx, rows);
        return undefined;
      });
    } catch (error) {
      if (!routeFirst) throw error;
      routeFirst = false;
    }
  }
}

/** Whether this transaction may route the rows it appends: it holds the router's lock and the inbox is empty. */
async function mayRouteNow(trx: Transaction<Database>, dialect: Dialect): Promise<boolean> {
  if (!(await takeRouterLock(trx, dialect))) return false;
  return (await trx.selectFrom('inbox').select('seq').limit(1).executeTakeFirst()) === undefined;
}

/** One router at a time, until the transaction ends; on SQLite the write transaction itself is that lock. */
async function takeRouterLock(trx: Transaction<Database>, dialect: Dialect): Promise<boolean> {
  if (dialect !== 'postgres') return true;
  const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${ROUTER_LOCK_ID}) as locked`.execute(trx);
  return rows[0]?.locked === true;
}

/** Moves the oldest inbox row to dead letters (kind quarantine, redacted); returns the dead letter id. */
export async function quarantineInboxHead(db: Kysely<Database>, reason: string, now: number): Promise<number | undefined> {
  return db.transaction().execute(async (trx) => {
    const head = await trx.selectFrom('inbox').selectAll().orderBy('seq').limit(1).executeTakeFirst();
    if (!head) return undefined;
    let payload: unknown;
    try {
      payload = redact(JSON.parse(head.notification));
    } catch {
      payload = null;
    }
    const id = await insertQuarantine(trx, { reason, correlationId: head.correlation_id, redactedBody: payload, dedupeKey: head.dedupe_key }, now);
    await trx.deleteFrom('inbox').where('seq', '=', head.seq).execute();
    return id;
  });
}

export function inboxRow({ notification, correlationId }: AcceptedNotification, now: number): InboxRow {
  const { carriedResource, ...stored } = notification;
  // The carried resource is one of the payload's own properties; store its name, not a second copy.
  const carriedKey = carriedResource ? Object.keys(notification.payload).find((key) => notification.payload[key] === carriedResource) : undefined;
  return {
    dedupe_key: notification.dedupeKey,
    notification: JSON.stringify(stored),
    carried_key: carriedKey ?? null,
    correlation_id: correlationId,
    received_at: now,
  };
}

export async function routeInbox(db: Kysely<Database>, dialect: Dialect, routes: Routes, limit: number, now: number): Promise<RouteResult> {
  return db.transaction().execute(async (trx) => {
    const empty: RouteResult = { routed: 0, duplicates: 0, queued: new Map(), oldestReceivedAt: undefined };
    if (!(await takeRouterLock(trx, dialect))) return empty;
    const rows = await trx.selectFrom('inbox').selectAll().orderBy('seq').limit(limit).execute();
    if (rows.length === 0) return empty;
    const result = await routeRows(trx, statements(db), routes, rows, now);
    for (const chunk of chunks(rows, ROWS_PER_STATEMENT)) {
      await trx.deleteFrom('inbox').where('seq', 'in', chunk.map((row) => row.seq)).execute();
    }
    return result;
  });
}

async function routeRows(trx: Transaction<Database>, st: Statements, routes: Routes, rows: readonly InboxRow[], now: number): Promise<RouteResult> {
  // Within the batch, the first row of a key wins; across batches, the seen table decides.
  const firstOfKey = new Map<string, InboxRow>();
  for (const row of rows) if (!firstOfKey.has(row.dedupe_key)) firstOfKey.set(row.dedupe_key, row);
  const inserted = await st.insertSeen<{ dedupe_key: string }>(trx, [...firstOfKey.values()].map((row) => ({ dedupe_key: row.dedupe_key, received_at: row.received_at })));
  const fresh = new Set(inserted.map((row) => row.dedupe_key));

  const marks = new Map<string, Insertable<RecordsTable>>();
  const events: Array<Insertable<EventsTable>> = [];
  for (const row of firstOfKey.values()) {
    if (!fresh.has(row.dedupe_key)) continue;
    const stored = JSON.parse(row.notification) as StoredNotification;
    const carried = row.carried_key ? (stored.payload[row.carried_key] as Record<string, unknown> | undefined) : undefined;
    if (stored.resource) {
      for (const route of routes.recordsFor(stored.resource.typeId)) {
        mergeMark(marks, markFor(route.destination, route.recordType, stored, carried, row));
      }
    }
    for (const route of routes.eventsFor(stored.type)) {
      events.push({
        destination: route.destination,
        event_type: route.eventType,
        dedupe_key: stored.dedupeKey,
        source_type: stored.type,
        resource_type: stored.resource?.typeId ?? null,
        resource_id: stored.resource?.id ?? null,
        payload: JSON.stringify(stored.payload),
        correlation_id: row.correlation_id,
        occurred_at: stored.occurredAt ?? null,
        created_at: row.received_at,
        due_at: now,
      });
    }
  }

  const queued = new Map<string, { records: number; events: number }>();
  const count = (destination: string) => queued.get(destination) ?? queued.set(destination, { records: 0, events: 0 }).get(destination)!;
  for (const mark of marks.values()) count(mark.destination).records += 1;
  for (const event of events) count(event.destination).events += 1;

  await st.upsertMarks(trx, [...marks.values()]);
  await st.insertEvents(trx, events);
  return { routed: rows.length, duplicates: rows.length - fresh.size, queued, oldestReceivedAt: Math.min(...rows.map((r) => r.received_at)) };
}

function markFor(destination: string, recordType: string, n: StoredNotification, carried: Record<string, unknown> | undefined, row: InboxRow): Insertable<RecordsTable> {
  const version = n.resourceVersion ?? null;
  const keepCarried = carried && !n.deleted && version !== null;
  return {
    destination,
    record_type: recordType,
    resource_id: n.resource!.id,
    resource_type: n.resource!.typeId,
    dirty_seq: 1,
    due_at: row.received_at,
    seen_version: version,
    deleted_version: n.deleted ? (version ?? Number.MAX_SAFE_INTEGER) : null,
    carried_version: keepCarried ? version : null,
    carried_resource: keepCarried ? JSON.stringify(carried) : null,
    refresh: version === null ? 1 : 0,
    correlation_id: row.correlation_id,
    // Lag is measured from the moment ctbridge accepted the notification, not from routing.
    dirtied_at: row.received_at,
    occurred_at: n.occurredAt ?? null,
  };
}

/** Two marks of one key in a batch become one: highest versions win, the newest carried resource is kept. */
function mergeMark(marks: Map<string, Insertable<RecordsTable>>, mark: Insertable<RecordsTable>): void {
  const key = `${mark.destination}\u0000${mark.record_type}\u0000${mark.resource_id}`;
  const existing = marks.get(key);
  if (!existing) {
    marks.set(key, mark);
    return;
  }
  existing.seen_version = maxNullable(existing.seen_version ?? null, mark.seen_version ?? null);
  existing.deleted_version = maxNullable(existing.deleted_version ?? null, mark.deleted_version ?? null);
  if (mark.carried_version != null && (existing.carried_version == null || mark.carried_version > existing.carried_version)) {
    existing.carried_version = mark.carried_version;
    existing.carried_resource = mark.carried_resource ?? null;
  }
  existing.correlation_id = mark.correlation_id;
}

function maxNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** The greater of the stored and the incoming value, where NULL means "unknown" on either side. */
const greater = (column: string) =>
  sql<number | null>`case when excluded.${sql.ref(column)} is not null and (records.${sql.ref(column)} is null or excluded.${sql.ref(column)} > records.${sql.ref(column)}) then excluded.${sql.ref(column)} else records.${sql.ref(column)} end`;

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
  const newerCarried = sql`excluded.carried_version is not null and (records.carried_version is null or excluded.carried_version > records.carried_version)`;
  compiled = {
    insertInbox: prepareBatch(db, (rows: InboxRow[]) => db.insertInto('inbox').values(rows)),
    insertSeen: prepareBatch(db, (rows: Array<{ dedupe_key: string; received_at: number }>) =>
      db
        .insertInto('seen')
        .values(rows)
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returning('dedupe_key'),
    ),
    upsertMarks: prepareBatch(db, (rows: Array<Insertable<RecordsTable>>) =>
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
            // A key waiting out a backoff or in flight keeps its due time; a clean key becomes due now.
            due_at: sql`case when records.attempts > 0 or records.lease_until > excluded.due_at then records.due_at else excluded.due_at end`,
            dirtied_at: sql`case when records.dirty_seq > records.processed_seq then records.dirtied_at else excluded.dirtied_at end`,
            occurred_at: sql`case when records.dirty_seq > records.processed_seq and records.occurred_at is not null then records.occurred_at else excluded.occurred_at end`,
          }),
        ),
    ),
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

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
