// The routing rules: what the notifications in accepted bodies become. In the transaction that takes the bodies
// out of the inbox (store/inbox.ts takeInbox): what is not understood is quarantined (one dead letter per body),
// transport notices are kept, notifications whose dedupe key was seen before are dropped, and each fresh one
// fans out per destination (routes.ts) into record keys marked dirty and event deliveries queued (messages and
// carried resources sealed); a resource deleted with dataErasure (ResourceDeleted, or a *Deleted Message carrying
// it) queues one erasure request, however many notifications say so. Marks of one key inside a batch are merged
// first (coalescing, and PostgreSQL refuses to upsert one row twice in a statement).
import type { Insertable } from 'kysely';
import type { CommercetoolsNotification, ControlMessage } from '../ingest/message.ts';
import { RESERVED_DEDUPE_PREFIX } from '../ingest/normalize.ts';
import { redact } from '../observability/redact.ts';
import type { Sealer } from '../pii/sealed.ts';
import { inboxCorrelationId, takeInbox, type InboxBody, type RoutingWriter, type TakeOptions } from '../store/inbox.ts';
import type { ErasureRequestsTable, EventsTable, RecordsTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { Routes } from './routes.ts';

export interface RouteResult {
  /** Inbox rows (request bodies) taken. */
  routed: number;
  /** The items they held (InboxTable.items): notifications, unrecognised parts, notices. */
  items: number;
  /** Notifications in them, fresh and duplicate. */
  notifications: number;
  duplicates: number;
  /** Erasure requests queued (resources deleted with dataErasure). */
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

export interface RouteOptions extends TakeOptions {
  /** Fill RouteResult.detail (debug logging). */
  detail?: boolean;
}


/**
 * Routes the oldest inbox rows holding about `itemBudget` items (store/inbox.ts takeInbox bounds the batch), in one
 * transaction that takes them out of the inbox.
 */
export async function routeInbox(store: Store, routes: Routes, itemBudget: number, now: number, options: RouteOptions): Promise<RouteResult> {
  const result: RouteResult = { routed: 0, items: 0, notifications: 0, duplicates: 0, erasures: 0, queued: new Map(), quarantined: [], notices: [], ...(options.detail && { detail: [] }) };
  const taken = await takeInbox(store, itemBudget, options, (writer, bodies) => routeBodies(writer, routes, bodies, now, options.sealer, result));
  result.routed = taken.routed;
  result.items = taken.items;
  return result;
}

/** Routes what the bodies (or a slice of one) hold: quarantine, transport notices, then the notifications. */
async function routeBodies(writer: RoutingWriter, routes: Routes, bodies: readonly InboxBody[], now: number, sealer: Sealer, result: RouteResult): Promise<void> {
  const accepted: AcceptedNotification[] = [];
  for (const { row, items } of bodies) {
    const unrecognised: Array<{ reason: string; body: unknown }> = [];
    for (const item of items) {
      if (item.kind === 'notification') {
        accepted.push({ notification: item.notification, correlationId: row.correlation_id ?? item.notification.dedupeKey, receivedAt: row.received_at });
      } else if (item.kind === 'unrecognised') {
        unrecognised.push(item.unrecognised);
      } else if (item.control.kind === 'sns-subscription-confirmation') {
        await writer.notice(item.control, row.received_at);
        result.notices.push(item.control);
      }
    }
    if (unrecognised.length > 0) {
      // One dead letter for all that a body holds and is not understood: its size is bounded by the body's.
      const correlationId = row.correlation_id ?? inboxCorrelationId(row);
      const reason = quarantineReason(unrecognised);
      const body = unrecognised.length === 1 ? unrecognised[0]!.body : { parts: unrecognised };
      const deadLetterId = await writer.quarantine({ reason, correlationId, redactedBody: redact(body) }, now);
      result.quarantined.push({ deadLetterId, reason, correlationId, parts: unrecognised.length });
    }
  }
  await routeNotifications(writer, routes, accepted, now, sealer, result);
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

async function routeNotifications(writer: RoutingWriter, routes: Routes, accepted: readonly AcceptedNotification[], now: number, sealer: Sealer, result: RouteResult): Promise<void> {
  result.notifications = accepted.length;
  if (accepted.length === 0) return;
  // Within the batch, the first of a key wins; across batches, the seen table decides.
  const firstOfKey = new Map<string, AcceptedNotification>();
  for (const item of accepted) if (!firstOfKey.has(item.notification.dedupeKey)) firstOfKey.set(item.notification.dedupeKey, item);
  const fresh = await writer.seen([...firstOfKey.values()].map((item) => ({ dedupe_key: item.notification.dedupeKey, received_at: item.receivedAt })));
  if (result.detail) {
    for (const { notification: n, correlationId } of accepted) {
      result.detail.push({ correlationId, type: n.type, resource: n.resource, version: n.resourceVersion, duplicate: !fresh.has(n.dedupeKey) || firstOfKey.get(n.dedupeKey)?.notification !== n });
    }
  }

  const marks = new Map<string, Mark>();
  const events: Array<Insertable<EventsTable>> = [];
  const erasures = new Map<string, Insertable<ErasureRequestsTable>>();
  for (const item of firstOfKey.values()) {
    const n = item.notification;
    if (!fresh.has(n.dedupeKey)) continue;
    if (n.resource) {
      for (const route of routes.recordsFor(n.resource.typeId)) mergeMark(marks, markFor(route.destination, route.recordType, item));
    }
    // Deleted with dataErasure: ctbridge forgets it too, in the engine's erasure loop (engine/erasure.ts).
    if (n.dataErasure && n.resource) {
      const key = erasureKey(n.resource.typeId, n.resource.id);
      if (!erasures.has(key)) erasures.set(key, { resource_type: n.resource.typeId, resource_id: n.resource.id, correlation_id: item.correlationId, source: n.type, requested_at: now });
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
  const sealedResources = new Map<object, string>();
  const sealedResource = (resource: Record<string, unknown>) => sealedResources.get(resource) ?? sealedResources.set(resource, sealer.seal(JSON.stringify(resource))).get(resource)!;
  await writer.markRecords([...marks.values()].map(({ row, carried }) => ({ ...row, carried_resource: carried ? sealedResource(carried) : null })));
  await writer.queueEvents(events);
  if (erasures.size > 0) {
    // One erasure per resource: commercetools may say it twice (a ResourceDeleted and a relay's Message, in either
    // order, together or apart), and a second one would delete again and audit again. The seen table remembers
    // that it was asked for, in this transaction, for as long as it remembers the notifications themselves.
    const asked = await writer.seen([...erasures.keys()].map((key) => ({ dedupe_key: key, received_at: now })));
    const requests = [...erasures].filter(([key]) => asked.has(key)).map(([, request]) => request);
    await writer.requestErasures(requests);
    result.erasures += requests.length;
  }
  result.duplicates = accepted.length - fresh.size;
}

/**
 * The seen table's key for "an erasure of this resource was asked for": normalisation refuses Message and Event ids
 * with its prefix, and a change notification's key (`<id>:<version>:<type>`) never has it.
 */
function erasureKey(typeId: string, id: string): string {
  return `${RESERVED_DEDUPE_PREFIX}erasure:${typeId}:${id}`;
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
