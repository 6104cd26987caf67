// Generic HTTP destination (`type: http`): sends each mapped record or event as JSON to a URL, one per call or
// as array bodies of up to `batchSize` items. Every call carries an Idempotency-Key, the correlation id and an
// HMAC-SHA256 signature of the body so the receiver can verify it came from ctbridge.
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { PermanentError, toDeliveryError } from '../../engine/errors.ts';
import type { ResolvedPerson } from '../../identity/identities.ts';
import { defineDestination, type EventItem, type FieldProblem, type ItemOutcome, type PersonMergeItem, type RecordItem } from '../types.ts';

const auth = z.union([
  z.strictObject({ bearer: z.string().min(1) }),
  z.strictObject({ basic: z.strictObject({ username: z.string().min(1), password: z.string() }) }),
  z.strictObject({ header: z.strictObject({ name: z.string().min(1), value: z.string().min(1) }) }),
]);

const settings = z.object({
  url: z.url().describe('where records and events are sent'),
  eventsUrl: z.url().optional().describe('where events are sent; defaults to url'),
  method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
  deleteMethod: z.enum(['DELETE', 'POST']).default('DELETE').describe('DELETE calls url/{recordType}/{id}; POST sends {operation: "delete"}'),
  batchSize: z.number().int().min(1).max(1000).default(1).describe('above 1, bodies are JSON arrays of up to this many items'),
  timeoutMs: z.number().int().positive().default(10_000),
  signingSecret: z.string().min(16, 'signing secret must be at least 16 characters').optional(),
  auth: auth.optional(),
  headers: z.record(z.string(), z.string()).default({}),
  rateLimit: z.strictObject({ requestsPerSecond: z.number().positive(), burst: z.number().int().positive().optional() }).optional(),
  accepts: z
    .strictObject({ records: z.record(z.string(), z.array(z.string().min(1))).default({}), events: z.record(z.string(), z.array(z.string().min(1))).default({}) })
    .optional()
    .describe('the fields the receiver knows, per record or event mapping: a mapped field outside them is a start-up error'),
});

/** A `when:` block's routing for this type: another endpoint for the matching records or events. */
const target = z.strictObject({
  url: z.url().describe('where matching records (and, without eventsUrl, events) are sent instead'),
  eventsUrl: z.url().optional().describe('where matching events are sent instead'),
});

type Settings = z.infer<typeof settings>;
type Target = z.infer<typeof target>;

/** The JSON a receiver gets for one record or event. */
type Envelope = Record<string, unknown>;

export const httpDestination = defineDestination({
  type: 'http',
  description: 'POST/PUT/PATCH mapped records and events as JSON to any HTTP endpoint',
  settings,
  target,
  checkFields(config, mapped) {
    if (!config.accepts) return [];
    const problems: FieldProblem[] = [];
    for (const block of ['records', 'events'] as const) {
      for (const [mapping, fields] of Object.entries(mapped[block])) {
        const accepted = config.accepts[block][mapping];
        if (accepted === undefined) continue;
        for (const field of fields) {
          if (!accepted.includes(field)) problems.push({ block, mapping, field, message: `the receiver has no field "${field}" (accepts.${block}.${mapping}: ${accepted.join(', ')})` });
        }
      }
    }
    return problems;
  },
  create(config: Settings, { http }) {
    const baseHeaders: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'ctbridge', ...config.headers, ...authHeaders(config) };

    async function send(url: string, method: string, envelopes: Envelope[], keys: string[], correlationIds: string[]): Promise<void> {
      const body = JSON.stringify(config.batchSize > 1 ? envelopes : envelopes[0]);
      const headers: Record<string, string> = {
        ...baseHeaders,
        // One key per call: for a batch, the keys of its items joined, so a retried batch is recognisable too.
        'idempotency-key': headerList(keys),
        'x-correlation-id': headerList(correlationIds),
      };
      if (config.signingSecret) headers['x-ctbridge-signature'] = `sha256=${createHmac('sha256', config.signingSecret).update(body).digest('hex')}`;
      await http.request({ method, url, headers, body, timeoutMs: config.timeoutMs });
    }

    /** Sends items in chunks of batchSize; a failed chunk fails only its own items. */
    async function deliver<T extends { idempotencyKey: string; correlationId: string }>(
      items: T[],
      route: (item: T) => { url: string; method: string; envelope: Envelope },
    ): Promise<ItemOutcome[]> {
      const outcomes: ItemOutcome[] = [];
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
          await send(first.url, first.method, chunk.map((item) => route(item).envelope), chunk.map((i) => i.idempotencyKey), chunk.map((i) => i.correlationId));
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
        for (let start = 0; start < group.length; start += config.batchSize) pending.push(sendChunk(group.slice(start, start + config.batchSize)));
      }
      // Chunks go out concurrently; the destination's rate limiter in the HTTP client paces them.
      await Promise.all(pending);
      for (const item of items) outcomes.push(byItem.get(item)!);
      return outcomes;
    }

    return {
      limits: { maxBatchSize: Math.max(config.batchSize, 1) * 8, rateLimit: config.rateLimit },
      delta: 'changed',
      sendRecords(items: RecordItem[]) {
        return deliver(items, (item) => {
          const envelope: Envelope = {
            kind: 'record',
            recordType: item.recordType,
            id: item.resourceId,
            version: item.version,
            operation: item.operation,
            fields: item.fields,
            changed: item.changed,
            idempotencyKey: item.idempotencyKey,
            ...personFields(item.person),
          };
          const url = (item.target as Target | undefined)?.url ?? config.url;
          if (item.operation === 'delete' && config.deleteMethod === 'DELETE') {
            return { url: `${url.replace(/\/$/, '')}/${encodeURIComponent(item.recordType)}/${encodeURIComponent(item.resourceId)}`, method: 'DELETE', envelope };
          }
          return { url, method: item.operation === 'delete' ? 'POST' : config.method, envelope };
        });
      },
      sendEvents(items: EventItem[]) {
        return deliver(items, (item) => ({
          url: routedEventsUrl(item.target as Target | undefined) ?? config.eventsUrl ?? config.url,
          method: config.method,
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
        }));
      },
      mergePeople(items: PersonMergeItem[]) {
        return deliver(items, (item) => ({
          url: config.url,
          method: 'POST',
          envelope: { kind: 'merge', from: item.from.person, fromId: item.from.destinationId, into: item.into.person, intoId: item.into.destinationId, idempotencyKey: item.idempotencyKey },
        }));
      },
    };
  },
});

/** Who an item is about: the person's key (a guest's is a keyed digest, never the email) and id, when known. */
function personFields(person: ResolvedPerson | undefined): Envelope {
  if (person === undefined) return {};
  return person.destinationId === undefined ? { person: person.key } : { person: person.key, personId: person.destinationId };
}

/**
 * Values joined for a header, each percent-encoded (encodeURIComponent): ids come from the notifications, and a
 * header cannot carry characters beyond Latin-1 or control characters (the request would fail every time), nor a
 * comma inside one of its values. A UUID is unchanged; the envelope carries each key exactly.
 */
function headerList(values: readonly string[]): string {
  return values.map((value) => encodeURIComponent(value.toWellFormed())).join(',');
}

function routedEventsUrl(routed: Target | undefined): string | undefined {
  return routed === undefined ? undefined : (routed.eventsUrl ?? routed.url);
}

function authHeaders(config: Settings): Record<string, string> {
  const auth = config.auth;
  if (!auth) return {};
  if ('bearer' in auth) return { authorization: `Bearer ${auth.bearer}` };
  if ('basic' in auth) return { authorization: `Basic ${Buffer.from(`${auth.basic.username}:${auth.basic.password}`).toString('base64')}` };
  return { [auth.header.name.toLowerCase()]: auth.header.value };
}
