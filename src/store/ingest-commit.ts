// The durable half of ingest: in one transaction, remember each notification's dedupe key, mark the record keys
// it dirties and create the event deliveries it starts. Rows for one key inside a batch are merged first
// (coalescing, and PostgreSQL refuses to upsert one row twice in a statement).
import { sql, type Insertable, type Kysely, type Transaction } from 'kysely';
import type { CommercetoolsNotification } from '../ingest/message.ts';
import type { Routes } from '../engine/routes.ts';
import type { Database, EventsTable, RecordsTable } from './schema.ts';

export interface AcceptedNotification {
  notification: CommercetoolsNotification;
  correlationId: string;
}

export interface CommitResult {
  /** Per input item: true when it was new, false when its dedupe key had been seen before. */
  fresh: boolean[];
  /** Destinations that received new work, to wake their workers. */
  touchedDestinations: Set<string>;
  /** New work per destination: record keys marked dirty and events queued. */
  queued: Map<string, { records: number; events: number }>;
}

// SQLite allows 32,766 bound parameters per statement and PostgreSQL 65,535; chunks stay well below both.
const ROWS_PER_STATEMENT = 500;

export async function commitNotifications(db: Kysely<Database>, routes: Routes, items: readonly AcceptedNotification[], now: number): Promise<CommitResult> {
  return db.transaction().execute((trx) => commitInTransaction(trx, routes, items, now));
}

async function commitInTransaction(trx: Transaction<Database>, routes: Routes, items: readonly AcceptedNotification[], now: number): Promise<CommitResult> {
  const fresh = new Array<boolean>(items.length).fill(false);
  const firstIndex = new Map<string, number>();
  items.forEach((item, index) => {
    if (!firstIndex.has(item.notification.dedupeKey)) firstIndex.set(item.notification.dedupeKey, index);
  });

  const inserted = new Set<string>();
  const unique = [...firstIndex.values()].map((index) => items[index]!);
  for (const chunk of chunks(unique, ROWS_PER_STATEMENT)) {
    const rows = await trx
      .insertInto('inbox')
      .values(
        chunk.map(({ notification: n, correlationId }) => ({
          dedupe_key: n.dedupeKey,
          notification_type: n.notificationType,
          type: n.type,
          resource_type: n.resource?.typeId ?? null,
          resource_id: n.resource?.id ?? null,
          resource_version: n.resourceVersion ?? null,
          correlation_id: correlationId,
          received_at: now,
        })),
      )
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .returning('dedupe_key')
      .execute();
    for (const row of rows) inserted.add(row.dedupe_key);
  }

  const marks = new Map<string, RecordsTable>();
  const events: Array<Insertable<EventsTable>> = [];
  const touchedDestinations = new Set<string>();
  for (const [dedupeKey, index] of firstIndex) {
    if (!inserted.has(dedupeKey)) continue;
    fresh[index] = true;
    const { notification: n, correlationId } = items[index]!;
    if (n.resource) {
      for (const route of routes.recordsFor(n.resource.typeId)) {
        mergeMark(marks, markFor(route.destination, route.recordType, n, correlationId, now));
        touchedDestinations.add(route.destination);
      }
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
        correlation_id: correlationId,
        occurred_at: n.occurredAt ?? null,
        created_at: now,
        due_at: now,
        lease_owner: null,
        lease_until: null,
        attempts: 0,
        first_failed_at: null,
        last_error: null,
        attempt_log: null,
        dead: 0,
      });
      touchedDestinations.add(route.destination);
    }
  }

  const queued = new Map<string, { records: number; events: number }>();
  const count = (destination: string) => queued.get(destination) ?? queued.set(destination, { records: 0, events: 0 }).get(destination)!;
  for (const mark of marks.values()) count(mark.destination).records += 1;
  for (const event of events) count(event.destination).events += 1;

  for (const chunk of chunks([...marks.values()], ROWS_PER_STATEMENT)) await upsertMarks(trx, chunk);
  for (const chunk of chunks(events, ROWS_PER_STATEMENT)) {
    await trx
      .insertInto('events')
      .values(chunk)
      .onConflict((oc) => oc.columns(['destination', 'event_type', 'dedupe_key']).doNothing())
      .execute();
  }
  return { fresh, touchedDestinations, queued };
}

function markFor(destination: string, recordType: string, n: CommercetoolsNotification, correlationId: string, now: number): RecordsTable {
  const version = n.resourceVersion ?? null;
  const carried = n.carriedResource && !n.deleted && version !== null ? n.carriedResource : undefined;
  return {
    destination,
    record_type: recordType,
    resource_id: n.resource!.id,
    resource_type: n.resource!.typeId,
    dirty_seq: 1,
    processed_seq: 0,
    due_at: now,
    lease_owner: null,
    lease_until: null,
    seen_version: version,
    deleted_version: n.deleted ? (version ?? Number.MAX_SAFE_INTEGER) : null,
    carried_version: carried ? version : null,
    carried_resource: carried ? JSON.stringify(carried) : null,
    synced_version: null,
    snapshot: null,
    destination_deleted: 0,
    destination_id: null,
    attempts: 0,
    first_failed_at: null,
    last_error: null,
    attempt_log: null,
    correlation_id: correlationId,
    dirtied_at: now,
    occurred_at: n.occurredAt ?? null,
  };
}

/** Two marks of one key in a batch become one: highest versions win, the newest carried resource is kept. */
function mergeMark(marks: Map<string, RecordsTable>, mark: RecordsTable): void {
  const key = `${mark.destination}\u0000${mark.record_type}\u0000${mark.resource_id}`;
  const existing = marks.get(key);
  if (!existing) {
    marks.set(key, mark);
    return;
  }
  existing.seen_version = maxNullable(existing.seen_version, mark.seen_version);
  existing.deleted_version = maxNullable(existing.deleted_version, mark.deleted_version);
  if (mark.carried_version !== null && (existing.carried_version === null || mark.carried_version > existing.carried_version)) {
    existing.carried_version = mark.carried_version;
    existing.carried_resource = mark.carried_resource;
  }
  existing.correlation_id = mark.correlation_id;
  existing.occurred_at = existing.occurred_at === null ? mark.occurred_at : mark.occurred_at === null ? existing.occurred_at : Math.min(existing.occurred_at, mark.occurred_at);
}

function maxNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** The greater of the stored and the incoming value, where NULL means "unknown" on either side. */
const greater = (column: string) =>
  sql<number | null>`case when excluded.${sql.ref(column)} is not null and (records.${sql.ref(column)} is null or excluded.${sql.ref(column)} > records.${sql.ref(column)}) then excluded.${sql.ref(column)} else records.${sql.ref(column)} end`;

async function upsertMarks(trx: Transaction<Database>, rows: RecordsTable[]): Promise<void> {
  const newerCarried = sql`excluded.carried_version is not null and (records.carried_version is null or excluded.carried_version > records.carried_version)`;
  await trx
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
        // A key waiting out a backoff keeps its due time; a clean key becomes due now.
        due_at: sql`case when records.attempts > 0 then records.due_at else excluded.due_at end`,
        dirtied_at: sql`case when records.dirty_seq > records.processed_seq then records.dirtied_at else excluded.dirtied_at end`,
        occurred_at: sql`case when records.dirty_seq > records.processed_seq and records.occurred_at is not null then records.occurred_at else excluded.occurred_at end`,
      }),
    )
    .execute();
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
