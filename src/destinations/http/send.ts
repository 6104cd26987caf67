// The generic HTTP destination's operations: records, events and merges as JSON envelopes, sent in calls of up to
// batchSize items per URL and method. A chunk the receiver refuses as a whole (a permanent error) is sent again
// item by item so only the bad items fail; deleting what is already gone (404/410) is done.
import { PermanentError, toDeliveryError, type BatchOperation, type EventItem, type ItemOutcome, type PersonMergeItem, type RecordItem } from '../kit/index.ts';
import type { ResolvedPerson } from '../../identity/identities.ts';
import type { HttpDestinationClient } from './client.ts';
import type { HttpTarget } from './settings.ts';

/** The JSON a receiver gets for one record, event or merge. */
type Envelope = Record<string, unknown>;

interface Routed {
  url: string;
  method: string;
  envelope: Envelope;
}

export const sendRecords: BatchOperation<HttpDestinationClient, RecordItem> = {
  name: 'send records',
  performBatch: (client, items) =>
    deliver(client, items, (item) => {
      const envelope: Envelope = {
        kind: 'record',
        recordType: item.recordType,
        id: item.resourceId,
        version: item.version,
        sequence: item.sequence,
        operation: item.operation,
        fields: item.fields,
        changed: item.changed,
        idempotencyKey: item.idempotencyKey,
        ...personFields(item.person),
      };
      const url = (item.target as HttpTarget | undefined)?.url ?? client.settings.url;
      if (item.operation === 'delete' && client.settings.deleteMethod === 'DELETE') {
        return { url: `${url.replace(/\/$/, '')}/${encodeURIComponent(item.recordType)}/${encodeURIComponent(item.resourceId)}`, method: 'DELETE', envelope };
      }
      return { url, method: item.operation === 'delete' ? 'POST' : client.settings.method, envelope };
    }),
};

export const sendEvents: BatchOperation<HttpDestinationClient, EventItem> = {
  name: 'send events',
  performBatch: (client, items) =>
    deliver(client, items, (item) => ({
      url: routedEventsUrl(item.target as HttpTarget | undefined) ?? client.settings.eventsUrl ?? client.settings.url,
      method: client.settings.method,
      envelope: {
        kind: 'event',
        eventType: item.eventType,
        sourceType: item.sourceType,
        resource: item.resource,
        occurredAt: item.occurredAt === undefined ? undefined : new Date(item.occurredAt).toISOString(),
        payload: item.payload,
        idempotencyKey: item.idempotencyKey,
        ...personFields(item.person),
      },
    })),
};

export const sendMerges: BatchOperation<HttpDestinationClient, PersonMergeItem> = {
  name: 'send merges',
  performBatch: (client, items) =>
    deliver(client, items, (item) => ({
      url: client.settings.url,
      method: 'POST',
      envelope: { kind: 'merge', from: item.from.person, fromId: item.from.destinationId, into: item.into.person, intoId: item.into.destinationId, idempotencyKey: item.idempotencyKey },
    })),
};

/** Sends items in chunks of batchSize per URL and method; a failed chunk fails only its own items. */
async function deliver<T extends { idempotencyKey: string; correlationId: string }>(client: HttpDestinationClient, items: T[], route: (item: T) => Routed): Promise<ItemOutcome[]> {
  const { batchSize } = client.settings;
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const { url, method } = route(item);
    const key = `${method} ${url}`;
    const group = groups.get(key) ?? [];
    group.push(item);
    groups.set(key, group);
  }
  const byItem = new Map<T, ItemOutcome>();
  const sendChunk = async (chunk: T[]): Promise<void> => {
    const first = route(chunk[0]!);
    try {
      await client.send(first.url, first.method, chunk.map((item) => route(item).envelope), chunk.map((i) => i.idempotencyKey), chunk.map((i) => i.correlationId));
      for (const item of chunk) byItem.set(item, { ok: true });
    } catch (error) {
      // Deleting what is already gone is done: the record may never have arrived (a first send cut off by a
      // crash) or an earlier delete's answer was lost.
      if (first.method === 'DELETE' && error instanceof PermanentError && (error.status === 404 || error.status === 410)) {
        for (const item of chunk) byItem.set(item, { ok: true });
        return;
      }
      if (chunk.length > 1 && error instanceof PermanentError) {
        // The receiver refused the batch as a whole: send its items one by one so only the bad ones fail.
        await Promise.all(chunk.map((item) => sendChunk([item])));
        return;
      }
      for (const item of chunk) byItem.set(item, { ok: false, error: toDeliveryError(error) });
    }
  };
  const pending: Array<Promise<void>> = [];
  for (const group of groups.values()) {
    for (let start = 0; start < group.length; start += batchSize) pending.push(sendChunk(group.slice(start, start + batchSize)));
  }
  // Chunks go out concurrently; the destination's fetch paces them with its rate limiter.
  await Promise.all(pending);
  return items.map((item) => byItem.get(item)!);
}

/** Who an item is about: the person's key (a guest's is a keyed digest, never the email) and id, when known. */
function personFields(person: ResolvedPerson | undefined): Envelope {
  if (person === undefined) return {};
  return person.destinationId === undefined ? { person: person.key } : { person: person.key, personId: person.destinationId };
}

function routedEventsUrl(routed: HttpTarget | undefined): string | undefined {
  return routed === undefined ? undefined : (routed.eventsUrl ?? routed.url);
}
