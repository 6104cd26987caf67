// Record sync for one destination: for a claimed batch of dirty keys, find each resource's latest state (the
// carried resource when it is the newest announced version, else one commercetools query per resource type),
// map it, diff it against the snapshot of what was last sent, send only what changed, and record the outcome.
// Versions older than the last synced one are never sent; deletions become the connector's delete. A customer
// mapping that reads `$orders` gets the customer's orders, read in one query per batch; the orders route of
// such a destination (routes.ts ORDERS_OF_CUSTOMERS) sends nothing and marks the order's customer dirty. The
// skeleton of a batch (in flight, identities, chunks, finish) is batch.ts's.
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.ts';
import type { Connector, ItemOutcome, PersonMergeItem, RecordItem } from '../destinations/types.ts';
import type { Identities } from '../identity/identities.ts';
import { customerIdOf, type Person } from '../identity/person.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redactMapped } from '../observability/redact.ts';
import { blockedPaymentData } from '../pii/payment-guard.ts';
import type { PiiKeys } from '../pii/keys.ts';
import type { Sealer } from '../pii/sealed.ts';
import { MappingError } from '../mapping/record-mapping.ts';
import { recordContext } from '../mapping/field.ts';
import type { ReferenceExpander, ReferenceLoader } from '../mapping/references.ts';
import type { AuditEntry } from '../store/audit-log.ts';
import type { DirtyKey, RecordQueue, RecordRow, RowAudit, SyncedResult } from '../store/record-queue.ts';
import { changedFields, pick } from './delta.ts';
import { PermanentError, RetryableError, toDeliveryError } from '../destinations/kit/errors.ts';
import { runBatch, type BatchKind } from './batch.ts';
import { sortOldestFirst } from '../commercetools/orders.ts';
import type { RecordRoute, Routes } from './routes.ts';
import type { EngineHooks } from './hooks.ts';
import { applyOwnership, ownershipByRecordType, type Ownership } from './ownership.ts';
import type { FieldState } from './field-state.ts';
import { loadFieldStates, saveFieldState } from '../store/inbound.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

/**
 * `records.refresh` of a key reconciliation marked for a forced resend (reconcile/): read commercetools again, and
 * send the whole record (or its delete) whatever the snapshot says, since the destination no longer holds it.
 */
export const FORCED_RESEND = 2;

/** Reads current resources from commercetools; ids missing from the result no longer exist. */
export interface ResourceFetcher {
  fetchByIds(typeId: string, ids: string[]): Promise<Map<string, Record<string, unknown>>>;
  /** The objects resources reference, for mappings that read them (`customerGroup.obj.name`). */
  fetchReferenced: ReferenceLoader;
  /** Each customer's orders in every store, oldest first (by createdAt); customers without orders are missing. */
  fetchOrdersOf(customerIds: string[]): Promise<Map<string, Record<string, unknown>[]>>;
  /** The order each payment belongs to, keyed by payment id (whose a payment Message is about). */
  fetchOrdersOfPayments(paymentIds: string[]): Promise<Map<string, Record<string, unknown>>>;
  /** Guest orders (no customerId) placed with one of these emails (as written), oldest first. */
  fetchGuestOrders(emails: string[]): Promise<Record<string, unknown>[]>;
  /** Resources whose top-level `field` (key, customerNumber…) is one of these values, keyed by that value. */
  fetchByField(typeId: string, field: string, values: string[]): Promise<Map<string, Record<string, unknown>>>;
}

export interface RecordSyncDeps {
  destination: string;
  connector: Connector;
  queue: RecordQueue;
  routes: Routes;
  fetcher: ResourceFetcher;
  /** Fills in the referenced objects a mapping reads (`customerGroup.obj.name`), from a shared cache. */
  references: ReferenceExpander;
  /** Snapshot digests and the token vault, once their keys are loaded. */
  pii: () => Promise<PiiKeys>;
  identities: Identities;
  engine: EngineConfig;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  now?: () => number;
  /** The store, for field ownership's state (two-way sync); without it ownership is not applied. */
  db?: Kysely<Database> | undefined;
}

type Latest =
  /** `ceiling`: commercetools overruled announced versions above it (see resolveLatest). */
  | { state: 'present'; version: number; resource: Record<string, unknown>; ceiling?: number }
  | { state: 'deleted'; version: number }
  /** Every announced version is already synced: nothing to read, nothing to send. */
  | { state: 'current' };

interface Pending {
  row: RecordRow;
  route: RecordRoute;
  item: RecordItem;
  record: Record<string, unknown> | null;
  /** What the store keeps of it for the next delta (personal fields as digests). */
  snapshot: Record<string, unknown> | null;
  /** Who it is about (identity/person.ts). */
  person: Person | undefined;
  /** The store (market) of the resource, for retention. */
  storeKey: string | undefined;
  /** Field states of owned fields, stored once the send succeeds (engine/ownership.ts). */
  fieldStates?: Map<string, FieldState> | undefined;
}

export function createRecordSync(deps: RecordSyncDeps): (rows: RecordRow[]) => Promise<void> {
  const { destination, connector, queue, routes, fetcher, references, pii, identities, engine, metrics, logger, hooks } = deps;
  const batch = { ...deps, now: deps.now ?? Date.now };
  const owned = ownershipByRecordType(routes, destination);
  const kind: BatchKind<RecordRow, RecordItem> = {
    kind: 'record',
    operation: 'records',
    send: (items) => connector.sendRecords(items),
    keyOf: (row) => row.resource_id,
    logFields: (row) => ({ recordType: row.record_type, resourceId: row.resource_id }),
    since: (row) => row.dirtied_at,
    lost: (refused) => [{ records: refused.map((row) => `${row.record_type}/${row.resource_id}`) }, 'the lease of records in flight was lost: their outcome is discarded, and they are synced again whole'],
  };

  return (rows) =>
    runBatch<RecordRow, RecordItem, Pending>(batch, kind, rows, ({ retries, deadLetters, fail }) => {
      const synced: SyncedResult[] = [];
      const dirty: DirtyKey[] = [];
      const sent: Pending[] = [];
      const pending: Pending[] = [];
      const persons: Array<{ person: Person; destinationId: string | undefined }> = [];
      const fieldStates: Array<{ row: RecordRow; states: Map<string, FieldState> }> = [];
      let latest = new Map<RecordRow, Latest | Error>();
      return {
        async resolve() {
          const claimed: Array<{ row: RecordRow; route: RecordRoute }> = [];
          for (const row of rows) {
            const route = routes.record(destination, row.record_type);
            if (route) claimed.push({ row, route });
            else synced.push({ row, syncedVersion: row.synced_version, snapshot: parseJson(row.snapshot), destinationDeleted: row.destination_deleted === 1, destinationId: row.destination_id });
          }

          const keys = await pii();
          latest = await resolveLatest(claimed.map((c) => c.row), fetcher, engine.versionJumpConfirm, keys.sealer);
          await expandReferences(claimed, latest, references);
          const orders = await ordersOfCustomers(destination, claimed, latest, fetcher, identities, keys);
          const mergedCustomers = await mergedCustomersOfGuestOrders(destination, claimed, latest, identities, keys);
          const owners = await ownersOfCustomObjects(destination, claimed, latest, fetcher);
          const states = await ownedFieldStates(deps.db, destination, owned, claimed.map((c) => c.row));
          for (const { row, route } of claimed) {
            const state = latest.get(row);
            if (state instanceof Error) {
              fail(row, toDeliveryError(state), null);
              continue;
            }
            if (route.dirtiesCustomers) {
              const customers = customersOfOrder(row, state!, mergedCustomers.get(row));
              synced.push(customers.result);
              for (const customerId of customers.dirty) for (const recordType of route.dirtiesCustomers) dirty.push({ destination, recordType, resourceType: 'customer', resourceId: customerId, correlationId: row.correlation_id });
              continue;
            }
            if (route.dirtiesOwners) {
              const changed = owners.get(row)!;
              if (changed instanceof Error) {
                fail(row, toDeliveryError(changed), null);
                continue;
              }
              synced.push(changed.result);
              dirty.push(...changed.dirty);
              continue;
            }
            const ordersOf = route.mapping.readsOrders && state!.state === 'present' ? (orders instanceof Error ? orders : (orders.get(row.resource_id) ?? [])) : undefined;
            if (ordersOf instanceof Error) {
              fail(row, toDeliveryError(ordersOf), null);
              continue;
            }
            const person = personOf(row, state!, keys);
            let outcome: Plan;
            try {
              const ownership = owned.get(row.record_type);
              outcome = await plan(row, route, state!, connector.delta, keys, person, ordersOf, ownership && deps.db ? { ownership, states: states.get(`${row.record_type}\u0000${row.resource_id}`) ?? new Map() } : undefined);
            } catch (error) {
              if (!(error instanceof MappingError)) throw error;
              fail(row, new PermanentError(`mapping ${row.record_type}: ${error.message}`), null);
              continue;
            }
            if (outcome.kind === 'done') {
              synced.push(outcome.result);
              if (outcome.reason === 'stale') metrics.staleSkipped.inc({ destination });
              else metrics.unchanged.inc({ destination });
              continue;
            }
            const blocked = outcome.record ? blockedPaymentData(outcome.record) : undefined;
            if (blocked) {
              metrics.paymentDataBlocked.inc({ destination, kind: 'record' });
              fail(row, blocked, redactMapped(outcome.record!, route.mapping.personalFields));
              continue;
            }
            pending.push({ row, route, item: outcome.item, record: outcome.record, snapshot: outcome.snapshot, person, storeKey: state!.state === 'present' ? recordContext(state!.resource).store : undefined, fieldStates: outcome.fieldStates });
          }
          return pending;
        },
        sent(p, outcome) {
          sent.push(p);
          if (p.fieldStates && p.fieldStates.size > 0) fieldStates.push({ row: p.row, states: p.fieldStates });
          const deleted = p.item.operation === 'delete';
          // A guest matched to a registered customer is that customer: no identity of its own.
          if (!deleted && p.person && p.item.person?.key === p.person.key) {
            const destinationId = outcome.personId ?? (p.row.resource_type === 'customer' ? (outcome.destinationId ?? p.row.destination_id ?? undefined) : undefined);
            persons.push({ person: p.person, destinationId: destinationId ?? p.item.person.destinationId });
          }
          synced.push({
            row: p.row,
            syncedVersion: p.item.version,
            snapshot: deleted ? null : p.snapshot,
            destinationDeleted: deleted,
            destinationId: outcome.destinationId ?? p.row.destination_id,
            sent: { storeKey: p.storeKey ?? null, ...(!deleted && { target: p.item.target ?? null }) },
          });
          hooks.onSynced?.({ destination, recordType: p.row.record_type, resourceId: p.row.resource_id, version: p.item.version, operation: p.item.operation, changed: p.item.changed, coalesced: p.row.dirty_seq - p.row.processed_seq });
        },
        failed: (p, error) => fail(p.row, error, p.record ? redactMapped(p.record, p.route.mapping.personalFields) : null),
        async finish() {
          const merges = await mergeGuests(destination, connector, identities, persons, logger);
          // A customer whose `$orders` the merged guest's orders now join is read again (they count once merged).
          for (const merge of merges.done) {
            for (const p of sent) {
              if (p.person?.key === merge.into.person && p.route.mapping.readsOrders) dirty.push({ destination, recordType: p.row.record_type, resourceType: p.row.resource_type, resourceId: p.row.resource_id, correlationId: p.row.correlation_id });
            }
          }
          for (const result of synced) {
            const state = latest.get(result.row);
            if (state !== undefined && !(state instanceof Error) && state.state === 'present') result.ceiling = state.ceiling;
          }
          const at = batch.now();
          return queue.finish(at, { synced, retries, deadLetters, dirty, audit: [...auditEntries(destination, at, sent, pending, retries, deadLetters), ...merges.audit(at)] }, async (trx) => {
            await identities.upsert(trx, destination, persons, at);
            for (const merge of merges.done) await identities.markMerged(trx, destination, merge.from.person, merge.into.person, at);
            for (const { row, states: sentStates } of fieldStates) for (const [field, fieldState] of sentStates) await saveFieldState(trx, { destination, recordType: row.record_type, resourceId: row.resource_id, field }, fieldState);
          });
        },
      };
    });
}

/**
 * An order of the ORDERS_OF_CUSTOMERS route: the customers whose `$orders` it changed (its customer — for a guest
 * order, the customer the guest was merged into — and the one it had when last seen, if another), and what the
 * row keeps: the customer id, to know the previous one.
 */
function customersOfOrder(row: RecordRow, state: Latest, mergedCustomer: string | undefined): { result: SyncedResult; dirty: string[] } {
  const before = parseJson(row.snapshot)?.customerId;
  const kept = { row, destinationDeleted: false, destinationId: null };
  if (state.state === 'current' || (row.synced_version !== null && state.version < row.synced_version)) {
    return { result: { ...kept, syncedVersion: row.synced_version, snapshot: parseJson(row.snapshot) }, dirty: [] };
  }
  const now = state.state === 'present' ? (typeof state.resource.customerId === 'string' ? state.resource.customerId : mergedCustomer) : undefined;
  const dirty = [...new Set([now, typeof before === 'string' ? before : undefined].filter((id): id is string => id !== undefined))];
  return { result: { ...kept, syncedVersion: state.version, snapshot: now === undefined ? null : { customerId: now } }, dirty };
}

/**
 * Custom objects of the CUSTOM_OBJECT_OWNERS route: the records that read them (whose key field equals the object's
 * key, in the object's container — now, and when last seen, in case the object was deleted or its key was another),
 * and what the row keeps: the object's container and key. Owners found by a field other than their id are looked
 * up in one query per resource type and field.
 */
async function ownersOfCustomObjects(destination: string, claimed: ReadonlyArray<{ row: RecordRow; route: RecordRoute }>, latest: Map<RecordRow, Latest | Error>, fetcher: ResourceFetcher): Promise<Map<RecordRow, { result: SyncedResult; dirty: DirtyKey[] } | Error>> {
  type Located = { container: string; key: string };
  const located = (value: unknown): Located | undefined => {
    const { container, key } = (value ?? {}) as Record<string, unknown>;
    return typeof container === 'string' && typeof key === 'string' ? { container, key } : undefined;
  };
  const changes: Array<{ row: RecordRow; route: RecordRoute; result: SyncedResult; objects: Located[] }> = [];
  for (const { row, route } of claimed) {
    const state = latest.get(row);
    if (!route.dirtiesOwners || state === undefined || state instanceof Error) continue;
    const before = located(parseJson(row.snapshot));
    const kept = { row, destinationDeleted: false, destinationId: null };
    if (state.state === 'current' || (row.synced_version !== null && state.version < row.synced_version)) {
      changes.push({ row, route, result: { ...kept, syncedVersion: row.synced_version, snapshot: parseJson(row.snapshot) }, objects: [] });
      continue;
    }
    const now = state.state === 'present' ? located(state.resource) : undefined;
    const objects = [now, before].filter((o): o is Located => o !== undefined);
    changes.push({ row, route, result: { ...kept, syncedVersion: state.version, snapshot: now ?? null }, objects: objects.filter((o, i) => objects.findIndex((p) => p.container === o.container && p.key === o.key) === i) });
  }
  const result = new Map<RecordRow, { result: SyncedResult; dirty: DirtyKey[] } | Error>();
  if (changes.length === 0) return result;
  // The owners to look up by a field other than their id: per resource type and field, the keys.
  const lookups = new Map<string, { resourceType: string; keyField: string; keys: Set<string> }>();
  for (const { route, objects } of changes) {
    for (const owner of route.dirtiesOwners!) {
      if (owner.keyField === 'id') continue;
      for (const object of objects) {
        if (object.container !== owner.container) continue;
        const group = `${owner.resourceType}\u0000${owner.keyField}`;
        const entry = lookups.get(group) ?? { resourceType: owner.resourceType, keyField: owner.keyField, keys: new Set<string>() };
        entry.keys.add(object.key);
        lookups.set(group, entry);
      }
    }
  }
  const found = new Map<string, Map<string, Record<string, unknown>>>();
  try {
    await Promise.all([...lookups].map(async ([group, { resourceType, keyField, keys }]) => found.set(group, await fetcher.fetchByField(resourceType, keyField, [...keys]))));
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    for (const { row } of changes) result.set(row, failure);
    return result;
  }
  for (const { row, route, result: synced, objects } of changes) {
    const dirty: DirtyKey[] = [];
    for (const owner of route.dirtiesOwners!) {
      for (const object of objects) {
        if (object.container !== owner.container) continue;
        const id = owner.keyField === 'id' ? object.key : found.get(`${owner.resourceType}\u0000${owner.keyField}`)?.get(object.key)?.id;
        if (typeof id === 'string') dirty.push({ destination, recordType: owner.recordType, resourceType: owner.resourceType, resourceId: id, correlationId: row.correlation_id });
      }
    }
    result.set(row, { result: synced, dirty });
  }
  return result;
}

/**
 * The orders of the customers whose mappings read `$orders`, in one query per batch (or the error that prevented
 * it): their own, and the guest orders of the guests merged into them at this destination (identity table). Guest
 * orders are looked up by the customer's email, as written and lower-cased, and count when their guest (store and
 * email digest) is one merged into that customer.
 */
async function ordersOfCustomers(destination: string, claimed: ReadonlyArray<{ row: RecordRow; route: RecordRoute }>, latest: Map<RecordRow, Latest | Error>, fetcher: ResourceFetcher, identities: Identities, keys: PiiKeys): Promise<Map<string, Record<string, unknown>[]> | Error> {
  const customers = new Map<string, Record<string, unknown>>();
  for (const { row, route } of claimed) {
    const state = latest.get(row);
    if (route.mapping.readsOrders && state !== undefined && !(state instanceof Error) && state.state === 'present') customers.set(row.resource_id, state.resource);
  }
  return customersOrders(destination, customers, fetcher, identities, keys);
}

/**
 * The orders of these customers (by id, with their resources), as a mapping reading `$orders` sees them: their
 * own, and the guest orders of the guests merged into them at this destination. Reconciliation maps with it too.
 */
export async function customersOrders(destination: string, customers: ReadonlyMap<string, Record<string, unknown>>, fetcher: ResourceFetcher, identities: Identities, keys: PiiKeys): Promise<Map<string, Record<string, unknown>[]> | Error> {
  if (customers.size === 0) return new Map();
  try {
    const orders = await fetcher.fetchOrdersOf([...customers.keys()]);
    const merged = await identities.mergedGuests(destination, [...customers.keys()].map((id) => `customer:${id}`));
    if (merged.size === 0) return orders;
    const emails = new Set<string>();
    for (const [id, customer] of customers) {
      if (!merged.has(`customer:${id}`) || typeof customer.email !== 'string') continue;
      emails.add(customer.email);
      emails.add(customer.email.trim().toLowerCase());
    }
    if (emails.size === 0) return orders;
    const guestOrders = await fetcher.fetchGuestOrders([...emails]);
    for (const [id] of customers) {
      const guests = merged.get(`customer:${id}`);
      if (!guests) continue;
      const theirs = guestOrders.filter((order) => {
        const person = keys.persons('order', order);
        return person?.kind === 'guest' && guests.has(person.key);
      });
      if (theirs.length > 0) orders.set(id, sortOldestFirst([...(orders.get(id) ?? []), ...theirs]));
    }
    return orders;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** For guest orders of the ORDERS_OF_CUSTOMERS route: the customer (id) each one's guest was merged into. */
async function mergedCustomersOfGuestOrders(destination: string, claimed: ReadonlyArray<{ row: RecordRow; route: RecordRoute }>, latest: Map<RecordRow, Latest | Error>, identities: Identities, keys: PiiKeys): Promise<Map<RecordRow, string>> {
  const guests = new Map<RecordRow, string>();
  for (const { row, route } of claimed) {
    const state = latest.get(row);
    if (!route.dirtiesCustomers || state === undefined || state instanceof Error || state.state !== 'present' || typeof state.resource.customerId === 'string') continue;
    const person = keys.persons('order', state.resource);
    if (person?.kind === 'guest') guests.set(row, person.key);
  }
  const result = new Map<RecordRow, string>();
  if (guests.size === 0) return result;
  const into = await identities.mergedInto(destination, [...guests.values()]);
  for (const [row, guest] of guests) {
    const customer = into.get(guest);
    if (customer?.startsWith('customer:')) result.set(row, customer.slice('customer:'.length));
  }
  return result;
}

/** The person a record is about: from its resource, or (for a deleted customer) from its key. */
function personOf(row: RecordRow, state: Latest, keys: PiiKeys): Person | undefined {
  if (state.state === 'present') return keys.persons(row.resource_type, state.resource);
  return row.resource_type === 'customer' ? { key: `customer:${row.resource_id}`, kind: 'customer', storeKey: '', emailDigest: undefined } : undefined;
}

/**
 * Guests whose email the registered customers just synced have become those customers: the connector merges the
 * profiles (or, without a merge operation, they are only linked), and later events of the guest go to the
 * customer. A merge that fails is tried again at the customer's next sync.
 */
async function mergeGuests(destination: string, connector: Connector, identities: Identities, persons: ReadonlyArray<{ person: Person; destinationId: string | undefined }>, logger: Logger) {
  const candidates = await identities.guestsToMerge(destination, persons);
  const items: PersonMergeItem[] = candidates.map((c) => ({
    from: { person: c.guest.person, destinationId: c.guest.destination_id ?? undefined },
    into: { person: c.into.key, destinationId: c.intoDestinationId },
    idempotencyKey: `${destination}:merge:${c.guest.person}:${c.into.key}`,
    correlationId: `merge:${c.into.key}`,
  }));
  const outcomes: ItemOutcome[] = items.length === 0 ? [] : connector.mergePeople ? await connector.mergePeople(items).catch((error: unknown) => items.map(() => ({ ok: false as const, error: toDeliveryError(error) }))) : items.map(() => ({ ok: true as const }));
  const done = items.filter((_, i) => outcomes[i]!.ok);
  for (const [i, item] of items.entries()) {
    const outcome = outcomes[i]!;
    if (!outcome.ok) logger.warn({ into: item.into.person, error: outcome.error.message }, 'merging a guest into a customer failed; tried again at their next sync');
  }
  return {
    done,
    audit: (at: number): AuditEntry[] =>
      items.map((item, i) => {
        const outcome = outcomes[i]!;
        return {
          at,
          action: 'identity.merge',
          destination,
          itemType: 'person',
          resourceId: item.into.person.replace(/^customer:/, ''),
          version: null,
          fields: null,
          correlationId: item.correlationId,
          outcome: outcome.ok ? 'ok' : 'retry',
          detail: outcome.ok ? (connector.mergePeople ? 'a guest profile merged into this customer' : 'a guest linked to this customer (the connector has no merge operation)') : outcome.error.message,
        };
      }),
  };
}

/** What the audit log gets of a batch: each change sent, and each that failed (field names, never values). */
function auditEntries(destination: string, at: number, sent: readonly Pending[], pending: readonly Pending[], retries: ReadonlyArray<{ row: RecordRow; lastError: string }>, deadLetters: ReadonlyArray<{ row: RecordRow; reason: string }>): Array<RowAudit<RecordRow>> {
  const planned = new Map(pending.map((p) => [p.row, p.item]));
  const entry = (row: RecordRow, item: RecordItem | undefined, outcome: AuditEntry['outcome'], detail: string | null): RowAudit<RecordRow> => ({
    row,
    at,
    action: item?.operation === 'delete' ? 'record.delete' : 'record.upsert',
    destination,
    itemType: row.record_type,
    resourceId: row.resource_id,
    version: item?.version ?? null,
    fields: item ? item.changed : null,
    correlationId: row.correlation_id,
    outcome,
    detail,
  });
  return [
    ...sent.map((p) => entry(p.row, p.item, 'ok', null)),
    ...retries.map((retry) => entry(retry.row, planned.get(retry.row), 'retry', retry.lastError)),
    ...deadLetters.map((letter) => entry(letter.row, planned.get(letter.row), 'dead-lettered', letter.reason)),
  ];
}

type Plan =
  | { kind: 'done'; reason: 'stale' | 'unchanged'; result: SyncedResult }
  | { kind: 'send'; item: RecordItem; record: Record<string, unknown> | null; snapshot: Record<string, unknown> | null; fieldStates?: Map<string, FieldState> | undefined };

async function plan(row: RecordRow, route: RecordRoute, latest: Latest, delta: Connector['delta'], pii: PiiKeys, person: Person | undefined, orders: readonly unknown[] | undefined, owned?: { ownership: Ownership; states: ReadonlyMap<string, FieldState> }): Promise<Plan> {
  const snapshot = parseJson(row.snapshot);
  const unchanged = (reason: 'stale' | 'unchanged', version = row.synced_version): Plan => ({
    kind: 'done',
    reason,
    result: { row, syncedVersion: version, snapshot, destinationDeleted: row.destination_deleted === 1, destinationId: row.destination_id },
  });
  if (latest.state === 'current') return unchanged('unchanged');
  if (row.synced_version !== null && latest.version < row.synced_version) return unchanged('stale');
  const base = { recordType: row.record_type, resourceType: row.resource_type, resourceId: row.resource_id, version: latest.version, sequence: row.send_seq, destinationId: row.destination_id ?? undefined, correlationId: row.correlation_id, target: undefined };

  if (latest.state === 'deleted') {
    // Nothing to delete when the destination never received the record, or already deleted it.
    if (route.onDelete === 'ignore' || (snapshot === null && row.unconfirmed === 0) || row.destination_deleted === 1) {
      return unchanged('unchanged', latest.version);
    }
    return {
      kind: 'send',
      record: null,
      snapshot: null,
      // Where the record was sent (a `when:` block's target) is where it is deleted.
      item: { ...base, target: row.sent_target === null ? undefined : (JSON.parse(row.sent_target) as Record<string, unknown>), operation: 'delete', fields: {}, record: {}, changed: [], idempotencyKey: `${row.destination}:${row.record_type}:${row.resource_id}:${latest.version}:delete` },
    };
  }

  const mapped = await route.mapping.apply(latest.resource, { tokens: pii.tokens?.forSubject(customerIdOf(person)), orders });
  // A `when:` block leaves this record out of the destination: nothing to send, now or for this version.
  if (mapped.skip) return unchanged('unchanged', Math.max(latest.version, row.synced_version ?? 0));
  const record = mapped.payload;
  // After an attempt whose outcome is unknown the destination may hold either state: send the whole record.
  let nextSnapshot = pii.snapshot(record, route.mapping.personalFields);
  // A resend reconciliation asked for (the destination differs from the snapshot): the whole record too.
  const forced = row.refresh === FORCED_RESEND;
  let changed = changedFields(row.unconfirmed === 1 || forced ? undefined : (snapshot ?? undefined), nextSnapshot);
  let fieldStates: Map<string, FieldState> | undefined;
  let held = new Set<string>();
  if (owned) {
    // Fields the destination owns or shares (two-way sync): only what ownership lets commercetools send.
    const lastModified = typeof latest.resource.lastModifiedAt === 'string' ? Date.parse(latest.resource.lastModifiedAt) : 0;
    const applied = applyOwnership({ ownership: owned.ownership, previous: snapshot, next: nextSnapshot, record, changed, states: owned.states, ctAt: lastModified, digest: pii.fieldDigest });
    ({ changed, snapshot: nextSnapshot, states: fieldStates, held } = applied);
  }
  if (changed.length === 0) return unchanged('unchanged', Math.max(latest.version, row.synced_version ?? 0));
  return {
    kind: 'send',
    record,
    snapshot: nextSnapshot,
    fieldStates,
    item: {
      ...base,
      target: mapped.target,
      operation: 'upsert',
      // A connector that takes whole records gets them without the fields ownership holds back.
      fields: delta === 'changed' ? pick(record, changed) : held.size > 0 ? Object.fromEntries(Object.entries(record).filter(([name]) => !held.has(name))) : record,
      record,
      changed,
      // The last confirmed send, also after an unconfirmed one: what it held and the record has no more must go.
      previous: snapshot ?? undefined,
      // With $orders the record also changes with the customer's orders, at the same customer version, and may
      // come back to an earlier state: the key's dirty_seq tells changes apart, and stays the same for a retry.
      // A forced resend is a send of its own: under the version's key a receiver that applies each key once would drop it.
      idempotencyKey: `${row.destination}:${row.record_type}:${row.resource_id}:${latest.version}${orders === undefined ? '' : `:${row.dirty_seq}`}${forced ? `:resend-${row.dirty_seq}` : ''}`,
    },
  };
}

/** Replaces each present resource whose mapping reads referenced objects by its expanded copy (or the error). */
async function expandReferences(claimed: ReadonlyArray<{ row: RecordRow; route: RecordRoute }>, latest: Map<RecordRow, Latest | Error>, expander: ReferenceExpander): Promise<void> {
  const wanted: Array<{ row: RecordRow; state: Extract<Latest, { state: 'present' }>; route: RecordRoute }> = [];
  for (const { row, route } of claimed) {
    const state = latest.get(row);
    if (route.mapping.references.length > 0 && state !== undefined && !(state instanceof Error) && state.state === 'present') wanted.push({ row, state, route });
  }
  if (wanted.length === 0) return;
  const expanded = await expander.expand(wanted.map(({ state, route }) => ({ resource: state.resource, references: route.mapping.references })));
  wanted.forEach(({ row, state }, index) => {
    const resource = expanded[index];
    latest.set(row, resource instanceof Error ? resource : { ...state, resource: resource as Record<string, unknown> });
  });
}

/**
 * The newest known state of each row's resource, or the error that prevented finding it. A notification's version
 * and carried resource are evidence, not truth: a deletion or a carried resource more than `jump` versions ahead
 * of the last synced version is confirmed with commercetools first, and when commercetools has a version more than
 * `jump` behind an announced one, commercetools is right (its state is sent, and the announcement forgotten:
 * `ceiling`); a smaller lag is retried, as commercetools may not show the newest version yet.
 */
async function resolveLatest(rows: RecordRow[], fetcher: ResourceFetcher, jump: number, sealer: Sealer): Promise<Map<RecordRow, Latest | Error>> {
  const result = new Map<RecordRow, Latest | Error>();
  const toFetch = new Map<string, RecordRow[]>();
  const farAhead = (version: number | null, row: RecordRow) => version !== null && version - (row.synced_version ?? 0) > jump;
  for (const row of rows) {
    if (row.deleted_version !== null && (row.synced_version === null || row.deleted_version >= row.synced_version) && !farAhead(row.deleted_version, row)) {
      result.set(row, { state: 'deleted', version: row.deleted_version });
    } else if (row.refresh === 0 && row.unconfirmed === 0 && row.seen_version !== null && row.synced_version !== null && row.seen_version <= row.synced_version) {
      // The tail of a burst: the first sync already read a version at least as new as anything announced.
      result.set(row, { state: 'current' });
    } else if (row.carried_version !== null && row.carried_resource !== null && row.carried_version >= (row.seen_version ?? 0) && !farAhead(row.carried_version, row)) {
      // Kept sealed while it waited (store/inbox.ts).
      result.set(row, { state: 'present', version: row.carried_version, resource: JSON.parse(sealer.open(row.carried_resource)) as Record<string, unknown> });
    } else {
      const list = toFetch.get(row.resource_type) ?? [];
      list.push(row);
      toFetch.set(row.resource_type, list);
    }
  }
  await Promise.all(
    [...toFetch].map(async ([typeId, typeRows]) => {
      try {
        const found = await fetcher.fetchByIds(typeId, [...new Set(typeRows.map((r) => r.resource_id))]);
        for (const row of typeRows) {
          const resource = found.get(row.resource_id);
          if (!resource) {
            // The deletion came after every version seen or synced: label it newer than all of them, so the delete
            // never carries the same version as the upsert before it (a version-guarded receiver would drop it).
            const seen = farAhead(row.seen_version, row) ? null : row.seen_version;
            result.set(row, { state: 'deleted', version: Math.max(seen ?? 0, row.synced_version ?? 0) + 1 });
            continue;
          }
          const version = typeof resource.version === 'number' ? resource.version : 0;
          const announced = Math.max(row.seen_version ?? 0, row.carried_version ?? 0, row.deleted_version ?? 0);
          if (row.seen_version !== null && version < row.seen_version && row.seen_version - version <= jump) {
            result.set(row, new RetryableError(`commercetools returned version ${version} of ${typeId} ${row.resource_id}, older than the announced ${row.seen_version}`));
          } else {
            result.set(row, { state: 'present', version, resource, ...(announced > version + jump && { ceiling: version + jump }) });
          }
        }
      } catch (error) {
        for (const row of typeRows) result.set(row, error instanceof Error ? error : new Error(String(error)));
      }
    }),
  );
  return result;
}

function parseJson(text: string | null): Record<string, unknown> | null {
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

/** The field states of the claimed records with owned fields, keyed by record type and resource id, then field. */
async function ownedFieldStates(db: Kysely<Database> | undefined, destination: string, owned: ReadonlyMap<string, Ownership>, rows: readonly RecordRow[]): Promise<Map<string, Map<string, FieldState>>> {
  const result = new Map<string, Map<string, FieldState>>();
  if (!db || owned.size === 0) return result;
  const byType = new Map<string, string[]>();
  for (const row of rows) if (owned.has(row.record_type)) byType.set(row.record_type, [...(byType.get(row.record_type) ?? []), row.resource_id]);
  for (const [recordType, ids] of byType) {
    for (const [key, state] of await loadFieldStates(db, destination, recordType, ids)) {
      const [type, id, field] = key.split('\u0000') as [string, string, string];
      const perRecord = result.get(`${type}\u0000${id}`) ?? new Map<string, FieldState>();
      perRecord.set(field, state);
      result.set(`${type}\u0000${id}`, perRecord);
    }
  }
  return result;
}
