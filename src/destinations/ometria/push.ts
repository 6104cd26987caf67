// Records and events to Ometria's Push API: each item becomes its Ometria records (records.ts), contacts get their
// consent decided against what Ometria has (consent.ts), and the records go out in bodies of one @type and at most
// 100 records, filled with what other batches have waiting (pusher.ts); a record over 60 KB fails its item alone (a
// permanent error naming its size), its batch-mates go. Accepted records count as delivered and wait for Ometria's
// asynchronous validation (validation.ts); an accepted event says until when Ometria may still refuse it
// (`settlesAt`), for which the engine keeps its delivery.
import { PermanentError, toDeliveryError, type BatchOperation, type DeliveryError, type EventItem, type ItemOutcome, type RecordItem } from '../kit/index.ts';
import type { OmetriaClient } from './client.ts';
import { decideConsent, consentKey, storedConsent, withoutOptIn, type ContactConsent } from './consent.ts';
import { contactRecord, customEventRecord, orderRecords, productRecords, typeOfRecord, type OmetriaRecord, type OmetriaType } from './records.ts';
import type { ValidationWatcher, Waiting } from './validation.ts';
import type { Pusher } from './pusher.ts';

export const MAX_RECORD_BYTES = 60 * 1024;
/** Contacts first: a guest's contact before the order that names it. */
const TYPE_ORDER: readonly OmetriaType[] = ['contact', 'product', 'order', 'custom_event'];

export interface OmetriaConnection {
  client: OmetriaClient;
  validation: ValidationWatcher;
  pusher: Pusher;
}

/** One Ometria record to push, the item it came from, and what a later validation error would name. */
interface Outgoing {
  index: number;
  record: OmetriaRecord;
  waiting: Waiting;
  /** A contact's consent to keep once pushed. */
  consent?: { contactId: string; next: ContactConsent };
}

export const pushRecords: BatchOperation<OmetriaConnection, RecordItem> = {
  name: 'push records',
  async performBatch(connection, items) {
    const { client } = connection;
    const failures = new Map<number, DeliveryError>();
    const built: Array<{ index: number; records: OmetriaRecord[] }> = [];
    items.forEach((item, index) => {
      try {
        const type = typeOfRecord(item);
        if (type === undefined) throw new PermanentError(`${item.recordType}: Ometria has contacts, orders and products; records of ${item.resourceType} have no place there`);
        const records = type === 'contact' ? [contactRecord(item, client.settings, client.now())] : type === 'order' ? orderRecords(item, client.settings) : productRecords(item);
        built.push({ index, records });
      } catch (error) {
        failures.set(index, toDeliveryError(error));
      }
    });
    // Consent: decided per contact against what Ometria has, in item order (two items about one contact see each other).
    const contactIds = [...new Set(built.flatMap(({ records }) => records.filter((r) => r['@type'] === 'contact').map((r) => r.id)))];
    const consent = contactIds.length > 0 ? await storedConsent(client, contactIds) : new Map<string, ContactConsent>();
    const outgoing: Outgoing[] = [];
    for (const { index, records } of built) {
      const item = items[index]!;
      for (const record of records) {
        const waiting: Waiting = { kind: 'record', recordType: item.recordType, resourceId: item.resourceId, correlationId: item.correlationId, sentAt: client.now() };
        if (record['@type'] !== 'contact') {
          outgoing.push({ index, record, waiting });
          continue;
        }
        const fromItem = record.id === item.resourceId && item.operation === 'upsert' ? item.record : record;
        const decision = decideConsent(record, fromItem, consent.get(record.id));
        let body = decision.body as OmetriaRecord;
        const state = decision.next ?? consent.get(record.id);
        if (decision.next) consent.set(record.id, decision.next);
        // Whatever the mapping says, a suppressed contact is never sent an opt-in.
        if (state?.suppressed?.optin === true) body = withoutOptIn(body, state.suppressed.at) as OmetriaRecord;
        // A deleted (or erased) customer's consent is not kept: nothing about them stays behind.
        const keep = decision.next && item.operation === 'upsert';
        outgoing.push({ index, record: body, waiting, ...(keep && { consent: { contactId: record.id, next: decision.next! } }) });
      }
    }
    await push(connection, outgoing, failures);
    return items.map((_, index): ItemOutcome => {
      const failure = failures.get(index);
      return failure ? { ok: false, error: failure } : { ok: true };
    });
  },
};

export const pushEvents: BatchOperation<OmetriaConnection, EventItem> = {
  name: 'push custom events',
  async performBatch(connection, items) {
    const { client } = connection;
    const failures = new Map<number, DeliveryError>();
    const outgoing: Outgoing[] = [];
    items.forEach((item, index) => {
      try {
        const record = customEventRecord(item, client.now());
        outgoing.push({ index, record, waiting: { kind: 'event', eventType: item.eventType, dedupeKey: item.idempotencyKey, correlationId: item.correlationId, sentAt: client.now() } });
      } catch (error) {
        failures.set(index, toDeliveryError(error));
      }
    });
    await push(connection, outgoing, failures);
    // A refusal is reported by the first read of the error list after it, and an event still waiting after settleMs
    // is settled by a read: reads are at most maxCheckMs apart, one more such wait for a read that failed or waited
    // for pushes. Until then the engine keeps the event's delivery, so that a refusal's dead letter can be replayed.
    const { settleMs, maxCheckMs } = client.settings.validation;
    const settlesAt = client.now() + settleMs + 2 * maxCheckMs;
    return items.map((_, index): ItemOutcome => {
      const failure = failures.get(index);
      return failure ? { ok: false, error: failure } : { ok: true, settlesAt };
    });
  },
};

/** Pushes the records in bodies of one type and at most 100; fills `failures` by item index. */
async function push({ client, validation, pusher }: OmetriaConnection, outgoing: Outgoing[], failures: Map<number, DeliveryError>): Promise<void> {
  // Too large for Ometria: the item fails alone (with all of its records), its batch-mates go.
  for (const entry of outgoing) {
    const bytes = Buffer.byteLength(JSON.stringify(entry.record));
    if (bytes > MAX_RECORD_BYTES && !failures.has(entry.index)) {
      failures.set(entry.index, new PermanentError(`the ${entry.record['@type']} record is ${bytes} bytes; Ometria takes at most ${MAX_RECORD_BYTES} bytes (60 KB) per record: map fewer or shorter fields`));
    }
  }
  const accepted: Outgoing[] = [];
  // Contacts first (a guest's contact before the order that names it); each type's records with whatever else waits.
  for (const type of TYPE_ORDER) {
    const ofType = outgoing.filter((entry) => entry.record['@type'] === type && !failures.has(entry.index));
    const results = await pusher.push(type, ofType.map((entry) => entry.record));
    ofType.forEach((entry, at) => {
      const result = results[at]!;
      if (result.ok) accepted.push(entry);
      else if (!failures.has(entry.index)) failures.set(entry.index, result.error);
    });
  }
  const delivered = accepted.filter((entry) => !failures.has(entry.index));
  const withConsent = delivered.filter((entry) => entry.consent !== undefined);
  if (withConsent.length > 0) await client.state.put(withConsent.map((entry) => ({ key: consentKey(entry.consent!.contactId), value: entry.consent!.next, subject: subjectOf(entry) })));
  await validation.pushed(delivered.map((entry) => ({ type: entry.record['@type'], id: entry.record.id, waiting: entry.waiting })));
}

/** The customer a consent entry is about (an erasure removes it): a contact pushed for a customer record. */
function subjectOf(entry: Outgoing): string | undefined {
  return entry.waiting.kind === 'record' && entry.record.id === entry.waiting.resourceId ? entry.record.id : undefined;
}
