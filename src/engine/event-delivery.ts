// Event delivery for one destination: the steps of a batch (batch.ts runs them) that map each claimed event from
// its source message, hand it to the connector with the source message id as idempotency key, and record
// delivered / retry / dead letter (a delivery the destination may still refuse is kept until it settles, for the
// replay of a late refusal: store/event-queue.ts). Each event carries its person: from the resource its message
// carries, or, for order, payment and cart messages that only name their resource (OrderStateChanged,
// PaymentTransactionAdded…), from that resource as commercetools has it (for a payment, the order it belongs to,
// which also names a guest), read in one query per type for the batch; a storefront event's person is the shopper
// it names. The references a mapping reads are expanded before it maps: on the message, and on that order or cart
// (`$subject.store.obj.name`).
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.ts';
import type { Connector, EventItem } from '../destinations/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redact } from '../observability/redact.ts';
import { blockedPaymentData } from '../pii/payment-guard.ts';
import type { PiiKeys } from '../pii/keys.ts';
import type { Identities } from '../identity/identities.ts';
import { customerIdOf, messageSubject, storefrontSubject, type Person } from '../identity/person.ts';
import { isStorefrontEventType } from '../ingest/storefront-events.ts';
import { MappingError, type Mapped } from '../mapping/record-mapping.ts';
import type { ReferenceExpander } from '../mapping/references.ts';
import type { AuditEntry } from '../store/audit-log.ts';
import type { EventAudit, EventQueue, EventRow } from '../store/event-queue.ts';
import { PermanentError, toDeliveryError, type DeliveryError } from '../destinations/kit/errors.ts';
import type { EngineHooks } from './hooks.ts';
import { runBatch, type BatchEntry, type BatchKind } from './batch.ts';
import type { ResourceFetcher } from './record-sync.ts';
import type { EventRoute, Routes } from './routes.ts';

export interface EventDeliveryDeps {
  destination: string;
  connector: Connector;
  queue: EventQueue;
  routes: Routes;
  /** Fills in the referenced objects a mapping reads, from a shared cache. */
  references: ReferenceExpander;
  /** Reads the resource a message only names, to know whose it is. */
  fetcher: Pick<ResourceFetcher, 'fetchByIds' | 'fetchOrdersOfPayments'>;
  /** The token vault, once its keys are loaded. */
  pii: () => Promise<PiiKeys>;
  identities: Identities;
  engine: EngineConfig;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  now?: () => number;
}

export function createEventDelivery(deps: EventDeliveryDeps): (rows: EventRow[]) => Promise<void> {
  const { destination, connector, queue, routes, references, fetcher, pii, identities, metrics, hooks } = deps;
  const batch = { ...deps, now: deps.now ?? Date.now };
  const kind: BatchKind<EventRow, EventItem> = {
    kind: 'event',
    operation: 'events',
    send: (items) => connector.sendEvents(items),
    keyOf: (row) => row.dedupe_key,
    logFields: (row) => ({ eventType: row.event_type, dedupeKey: row.dedupe_key }),
    since: (row) => row.created_at,
    lost: (refused) => [{ events: refused.map((row) => row.dedupe_key) }, 'the lease of events in flight was lost: their outcome is discarded, and they stay queued'],
  };

  return (rows) =>
    runBatch(batch, kind, rows, (recorder) => {
      let keys: PiiKeys;
      const delivered: EventRow[] = [];
      // Delivered, but the destination may still refuse them until then: kept for a replay (store/event-queue.ts).
      const settling = new Map<EventRow, number>();
      const skipped = new Set<EventRow>();
      const fieldsSent = new Map<EventRow, string[]>();
      const persons: Array<{ person: Person; destinationId: string | undefined }> = [];
      // A replayed dead event's message was sealed while it waited.
      const messageOf = (row: EventRow) => JSON.parse(keys.sealer.open(row.payload)) as Record<string, unknown>;
      const fail = (row: EventRow, error: DeliveryError) => recorder.fail(row, error, redact(messageOf(row)));
      return {
        async resolve() {
          keys = await pii();
          const routed: Array<{ row: EventRow; route: EventRoute; message: Record<string, unknown> }> = [];
          for (const row of rows) {
            const route = routes.event(destination, row.event_type);
            if (route) routed.push({ row, route, message: messageOf(row) });
            else fail(row, new PermanentError(`event mapping "${row.event_type}" no longer exists in the configuration`));
          }
          const expanded = await references.expand(routed.map(({ route, message }) => ({ resource: message, references: route.mapping.references })));
          const subjects = await subjectsOf(routed, fetcher);
          await expandSubjects(routed, subjects, references);
          const sendable: Array<BatchEntry<EventRow, EventItem>> = [];
          for (const [index, { row, route }] of routed.entries()) {
            const message = expanded[index];
            const subject = subjects.get(row);
            if (message instanceof Error || subject instanceof Error) {
              fail(row, toDeliveryError(message instanceof Error ? message : subject));
              continue;
            }
            const person = subject ? keys.persons(subject.typeId, subject.resource) : undefined;
            let mapped: Mapped;
            try {
              // `$subject`: the order or cart the message is about, for what the message alone does not say.
              const about = subject && MAPPED_SUBJECTS.has(subject.typeId) ? { context: { subject: subject.resource } } : {};
              mapped = await route.mapping.apply(message, { tokens: keys.tokens?.forSubject(customerIdOf(person)), ...about });
            } catch (error) {
              if (!(error instanceof MappingError)) throw error;
              fail(row, new PermanentError(`mapping ${row.event_type}: ${error.message}`));
              continue;
            }
            // A `when:` block leaves this event out of the destination: done, nothing sent.
            if (mapped.skip) {
              delivered.push(row);
              skipped.add(row);
              continue;
            }
            fieldsSent.set(row, Object.keys(mapped.payload));
            const blocked = blockedPaymentData(mapped.payload);
            if (blocked) {
              metrics.paymentDataBlocked.inc({ destination, kind: 'event' });
              fail(row, blocked);
              continue;
            }
            sendable.push({
              row,
              item: {
                eventType: row.event_type,
                sourceType: row.source_type,
                resource: row.resource_type && row.resource_id ? { typeId: row.resource_type, id: row.resource_id } : undefined,
                payload: mapped.payload,
                idempotencyKey: row.dedupe_key,
                correlationId: row.correlation_id,
                occurredAt: row.occurred_at ?? undefined,
                target: mapped.target,
              },
              // A guest's event goes to the customer the guest became (merged, or matched by email).
              person,
            });
          }
          return sendable;
        },
        sent({ row, item, person }, outcome) {
          delivered.push(row);
          if (outcome.skipped) {
            skipped.add(row);
            return;
          }
          if (outcome.settlesAt !== undefined) settling.set(row, outcome.settlesAt);
          // Guests become known here (an order placed without an account), so that registering merges them.
          if (person && item.person?.key === person.key) persons.push({ person, destinationId: outcome.personId ?? item.person.destinationId });
          hooks.onDelivered?.({ destination, eventType: row.event_type, dedupeKey: row.dedupe_key });
        },
        failed: ({ row }, error) => fail(row, error),
        finish() {
          const at = batch.now();
          const entry = (row: EventRow, outcome: AuditEntry['outcome'], detail: string | null): EventAudit => ({
            row,
            at,
            action: 'event.deliver',
            destination,
            itemType: row.event_type,
            resourceId: row.resource_id,
            version: null,
            fields: fieldsSent.get(row) ?? null,
            correlationId: row.correlation_id,
            outcome,
            detail,
          });
          const audit = [
            ...delivered.map((row) => entry(row, skipped.has(row) ? 'skipped' : 'ok', null)),
            ...recorder.retries.map((retry) => entry(retry.row, 'retry', retry.lastError)),
            ...recorder.deadLetters.map((letter) => entry(letter.row, 'dead-lettered', letter.reason)),
          ];
          const sealed = recorder.deadLetters.map((letter) => ({ ...letter, sealedPayload: keys.sealer.seal(keys.sealer.open(letter.row.payload)) }));
          return queue.finish(at, { delivered, settling, retries: recorder.retries, deadLetters: sealed, audit }, (trx) => identities.upsert(trx, destination, persons, at));
        },
      };
    });
}

/** Resource types whose resource says whose it is (customerId, customerEmail, customer) when a Message only names it. */
const LOOKED_UP = new Set(['order', 'payment', 'cart']);

type Subject = { typeId: string; resource: Record<string, unknown> };

/** The subjects a mapping reads as `$subject`. */
const MAPPED_SUBJECTS = new Set(['order', 'cart']);

/** Fills in the references the mappings read on `$subject` (`$subject.store.obj.name`), one expansion for the batch. */
async function expandSubjects(routed: ReadonlyArray<{ row: EventRow; route: EventRoute }>, subjects: Map<EventRow, Subject | Error | undefined>, expander: ReferenceExpander): Promise<void> {
  const wanted = routed.flatMap(({ row, route }) => {
    const subject = subjects.get(row);
    const reads = route.mapping.subjectReferences.length > 0 && subject !== undefined && !(subject instanceof Error) && MAPPED_SUBJECTS.has(subject.typeId);
    return reads ? [{ row, subject, references: route.mapping.subjectReferences }] : [];
  });
  if (wanted.length === 0) return;
  const expanded = await expander.expand(wanted.map(({ subject, references }) => ({ resource: subject.resource, references })));
  wanted.forEach(({ row, subject }, index) => {
    const resource = expanded[index];
    subjects.set(row, resource instanceof Error ? resource : { ...subject, resource: resource as Record<string, unknown> });
  });
}

/**
 * What each message is about, for its person: the resource it carries (or the customer it names), else the order
 * or cart it names as commercetools has it now (gone: nobody's), for a payment the order it belongs to (else the
 * payment itself, which may name its customer), or the error that kept it from being read.
 */
async function subjectsOf(routed: ReadonlyArray<{ row: EventRow; message: Record<string, unknown> }>, fetcher: Pick<ResourceFetcher, 'fetchByIds' | 'fetchOrdersOfPayments'>): Promise<Map<EventRow, Subject | Error | undefined>> {
  const subjects = new Map<EventRow, Subject | Error | undefined>();
  const wanted = new Map<string, EventRow[]>();
  for (const { row, message } of routed) {
    // A storefront event names its shopper (storefront-events.ts); a commercetools Message its resource.
    const subject = isStorefrontEventType(row.source_type) ? storefrontSubject(message) : messageSubject(message);
    subjects.set(row, subject);
    if (subject || row.resource_type === null || row.resource_id === null || !LOOKED_UP.has(row.resource_type)) continue;
    const list = wanted.get(row.resource_type);
    if (list) list.push(row);
    else wanted.set(row.resource_type, [row]);
  }
  await Promise.all(
    [...wanted].map(async ([typeId, typeRows]) => {
      try {
        const ids = [...new Set(typeRows.map((row) => row.resource_id!))];
        const orders = typeId === 'payment' ? await fetcher.fetchOrdersOfPayments(ids) : new Map<string, Record<string, unknown>>();
        const rest = ids.filter((id) => !orders.has(id));
        const found = rest.length > 0 ? await fetcher.fetchByIds(typeId, rest) : new Map<string, Record<string, unknown>>();
        for (const row of typeRows) {
          const order = orders.get(row.resource_id!);
          const resource = found.get(row.resource_id!);
          subjects.set(row, order ? { typeId: 'order', resource: order } : resource ? { typeId, resource } : undefined);
        }
      } catch (error) {
        for (const row of typeRows) subjects.set(row, error instanceof Error ? error : new Error(String(error)));
      }
    }),
  );
  return subjects;
}
