// The generic HTTP connector's mapping of items to calls, in milliseconds: built from its definition
// (test/support/connector-test.ts) and sending straight to the sandbox's sink, asserting on what the sink
// received and applied — signed calls with their idempotency keys, array bodies of up to batchSize items, a batch
// refused as a whole sent again item by item, deletes by DELETE (one already gone is done), routing to a when:
// target, merges, and a 429 pausing the destination. The runtime's part is test/engine-basics.test.ts,
// test/destination-faults.test.ts and the others that run with the sink.
import { afterEach, describe, expect, it } from 'vitest';
import { httpDestination } from '../src/destinations/http/index.ts';
import { RateLimitedError } from '../src/destinations/kit/index.ts';
import { startSink, type Sink } from '../src/sandbox/sink.ts';
import { createTestConnector, eventItem, mergeItem, recordItem } from './support/connector-test.ts';

const SECRET = 'a-signing-secret-of-some-length';
const sinks: Sink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.close()));
});

async function sink(): Promise<Sink> {
  const started = await startSink({ signingSecret: SECRET });
  sinks.push(started);
  return started;
}

const connectorFor = (s: Sink, settings: Record<string, unknown> = {}) => createTestConnector(httpDestination, { url: `${s.url}/records`, eventsUrl: `${s.url}/events`, signingSecret: SECRET, ...settings });

describe('the HTTP connector', () => {
  it('sends a record as a signed JSON envelope with its idempotency key and correlation id', async () => {
    const s = await sink();
    const item = recordItem({ resourceId: 'c1', version: 3, fields: { email: 'ada@example.com' } });
    expect(await connectorFor(s).connector.sendRecords([item])).toEqual([{ ok: true }]);
    expect(s.signatureFailures).toBe(0);
    expect(s.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /records']);
    expect(s.requests[0]!.headers).toMatchObject({ 'idempotency-key': item.idempotencyKey, 'x-correlation-id': item.correlationId, 'content-type': 'application/json' });
    expect(s.requests[0]!.body).toEqual({ kind: 'record', recordType: 'customer', id: 'c1', version: 3, sequence: item.sequence, operation: 'upsert', fields: { email: 'ada@example.com' }, changed: ['email'], idempotencyKey: item.idempotencyKey, person: 'customer:c1' });
    expect(s.records.get('customer/c1')).toEqual({ email: 'ada@example.com' });
  });

  it('sends array bodies of up to batchSize items, and a batch refused as a whole again item by item', async () => {
    const s = await sink();
    const { connector } = connectorFor(s, { batchSize: 3 });
    const items = Array.from({ length: 5 }, (_, i) => recordItem({ resourceId: `b${i}`, fields: { n: i } }));
    let refused = false;
    s.faultFor = (request) => {
      if (refused || !Array.isArray(request.body) || request.body.length !== 3) return undefined;
      refused = true;
      return { kind: 'status', status: 400, body: '{"error":"one bad item"}' };
    };
    const outcomes = await connector.sendRecords(items);
    expect(outcomes).toEqual(items.map(() => ({ ok: true })));
    // The refused chunk's items one by one; the other chunk as it was.
    expect(s.requests.map((r) => (Array.isArray(r.body) ? r.body.length : 1)).sort()).toEqual([1, 1, 1, 2, 3]);
    expect([...s.records.keys()].sort()).toEqual(['customer/b0', 'customer/b1', 'customer/b2', 'customer/b3', 'customer/b4']);
  });

  it('deletes with DELETE url/recordType/id, and a record already gone (404) is deleted', async () => {
    const s = await sink();
    const { connector } = connectorFor(s);
    await connector.sendRecords([recordItem({ resourceId: 'd1', fields: { email: 'd1@example.com' } })]);
    s.faultFor = (request) => (request.path.endsWith('/gone') ? { kind: 'status', status: 404 } : undefined);
    const outcomes = await connector.sendRecords([recordItem({ resourceId: 'd1', operation: 'delete', fields: {} }), recordItem({ resourceId: 'gone', operation: 'delete', fields: {} })]);
    expect(outcomes).toEqual([{ ok: true }, { ok: true }]);
    expect(s.requests.slice(1).map((r) => `${r.method} ${r.path}`).sort()).toEqual(['DELETE /records/customer/d1', 'DELETE /records/customer/gone']);
    expect(s.records.has('customer/d1')).toBe(false);
  });

  it('sends events to eventsUrl, a when: target\'s items to its URL, and merges as merge envelopes', async () => {
    const s = await sink();
    const { connector } = connectorFor(s);
    const event = eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-1' }, person: { key: 'customer:c1', destinationId: 'x-1' } });
    const routed = eventItem({ eventType: 'placed-order', payload: { order_number: 'ON-2' }, target: { url: `${s.url}/b2b` } });
    expect(await connector.sendEvents([event, routed])).toEqual([{ ok: true }, { ok: true }]);
    const merge = mergeItem('lead-1', 'user-1');
    expect(await connector.mergePeople!([merge])).toEqual([{ ok: true }]);
    expect(s.requests.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['POST /b2b', 'POST /events', 'POST /records']);
    expect(s.requests.find((r) => r.path === '/events')!.body).toMatchObject({ kind: 'event', eventType: 'placed-order', payload: { order_number: 'ON-1' }, occurredAt: new Date(event.occurredAt!).toISOString(), person: 'customer:c1', personId: 'x-1' });
    expect(s.requests.find((r) => r.path === '/b2b')!.body).toMatchObject({ kind: 'event', payload: { order_number: 'ON-2' } });
    expect(s.applied.find((i) => i.kind === 'merge')!.body).toEqual({ kind: 'merge', from: merge.from.person, fromId: 'lead-1', into: merge.into.person, intoId: 'user-1', idempotencyKey: merge.idempotencyKey });
  });

  it('fails the items of a call answered 429 with a RateLimitedError, and pauses the destination for its Retry-After', async () => {
    const s = await sink();
    const { connector, limiter } = connectorFor(s);
    s.faults.push({ kind: 'status', status: 429, retryAfterSeconds: 2 });
    const before = Date.now();
    const [outcome] = await connector.sendRecords([recordItem({ resourceId: 'r1', fields: { a: 1 } })]);
    const after = Date.now();
    const error = (outcome as { ok: false; error: RateLimitedError }).error;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBe(2_000);
    expect(limiter.pausedUntil).toBeGreaterThanOrEqual(before + 2_000);
    expect(limiter.pausedUntil).toBeLessThanOrEqual(after + 2_000);
    expect(s.records.size).toBe(0);
  });
});
