// Destination faults (issue 2, section 10): 500s, timeouts, connection resets and 429 with Retry-After are retried
// until everything is delivered, in order per key (record versions only increase; the events of one resource
// arrive in the order they were ingested), with the retries visible in /metrics. A permanent 400 becomes a dead
// letter (over HTTP and in `ctbridge dlq list`) that a replay delivers once the destination is fixed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Fault, SinkRequest } from '../src/sandbox/sink.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, messageBase, metricValue, startHarness, type Harness } from './support/harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Small backoff (the harness default) and enough attempts that no injected fault can exhaust them.
const engine = { maxAttempts: 50 };

/** Injects the given faults into the next requests (in order) and remembers which request got which. */
function injectFaults(h: Harness, faults: Fault[], when: (request: SinkRequest) => boolean = () => true): Array<{ request: SinkRequest; fault: Fault }> {
  const injected: Array<{ request: SinkRequest; fault: Fault }> = [];
  const pending = [...faults];
  h.sink.faultFor = (request) => {
    if (!when(request) || pending.length === 0) return undefined;
    const fault = pending.shift()!;
    injected.push({ request, fault });
    return fault;
  };
  return injected;
}

function mapped(customer: Record<string, unknown>): Record<string, unknown> {
  const addresses = (customer.addresses ?? []) as Array<{ city?: string }>;
  return { email: customer.email ?? null, firstName: customer.firstName ?? null, lastName: customer.lastName ?? null, city: addresses[0]?.city ?? null };
}

function orderMessage(orderId: string, version: number, type: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...messageBase(orderId, version, 'order'), type, ...extra };
}

async function deadLetters(h: Harness): Promise<Array<Record<string, unknown> & { id: number }>> {
  const response = await adminFetch(h, '/v1/dead-letters');
  expect(response.status).toBe(200);
  return ((await response.json()) as { items: Array<Record<string, unknown> & { id: number }> }).items;
}

describe.each(testStores)('destination faults on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('retries 500s, timeouts, resets and 429s until every record is delivered, versions only increasing', async () => {
    // What ctbridge itself saw of each failed attempt (the sink cannot tell whether its answer arrived in time).
    const retried: Array<{ key: string; error: string }> = [];
    const h = await startHarness({ storeUrl: await testStore.create(), engine, hooks: { onRetry: (event) => void retried.push({ key: event.key, error: event.error }) } });
    try {
      const injected = injectFaults(h, [
        { kind: 'status', status: 500 },
        { kind: 'hang', ms: 1_500 }, // the destination's timeoutMs is 1,000
        { kind: 'reset' },
        { kind: 'status', status: 429, retryAfterSeconds: 1 },
        { kind: 'status', status: 503 },
        { kind: 'reset' },
        { kind: 'status', status: 502 },
      ]);
      const ids = ['fault-a', 'fault-b', 'fault-c'];
      for (let round = 0; round < 5; round += 1) {
        for (const id of ids) {
          const message = h.commercetools.upsertCustomer(id, round === 0 ? { email: `${id}@example.com`, firstName: 'Zero', lastName: id, addresses: [{ city: 'Start' }] } : { firstName: `Round-${round}`, ...(round === 3 && { addresses: [{ city: `City-${round}` }] }) });
          expect((await h.post(message)).status).toBe(202);
        }
        await new Promise((resolve) => setTimeout(resolve, 30));
      }

      for (const id of ids) {
        const expected = mapped(h.commercetools.resources.get(id)!);
        await eventually(() => JSON.stringify(h.sink.records.get(`customer/${id}`)) === JSON.stringify(expected), `${id} at its final state`);
      }
      expect(injected).toHaveLength(7);
      for (const id of ids) {
        const versions = h.sink.versions.get(`customer/${id}`)!;
        for (let i = 1; i < versions.length; i += 1) expect(versions[i]!, `${id} versions ${versions.join(',')}`).toBeGreaterThan(versions[i - 1]!);
        expect(versions.at(-1)).toBe(5);
      }
      // Every failed attempt was retried, and counted.
      expect(await metricValue(h, 'ctbridge_retried_total', { destination: 'sink' })).toBeGreaterThanOrEqual(7);
      expect(await metricValue(h, 'ctbridge_dead_lettered_total', { destination: 'sink' })).toBe(0);

      // The item that got the 429 was not sent again before its Retry-After had passed (a lower bound only). A
      // record is identified by its id (the retry sends the latest version, under that version's key); an event
      // by its idempotency key.
      const limited = injected.find((i) => i.fault.kind === 'status' && i.fault.status === 429)!;
      const original = limited.request.body as { kind?: string; id?: string };
      const sameItem = (r: SinkRequest) => {
        const body = r.body as { kind?: string; id?: string };
        return original.kind === 'record' ? body.kind === 'record' && body.id === original.id : r.headers['idempotency-key'] === limited.request.headers['idempotency-key'];
      };
      // The hooks name a record by its id, an event by its idempotency key.
      const limitedKey = original.kind === 'record' ? original.id : limited.request.headers['idempotency-key'];
      if (retried.some((r) => r.key === limitedKey && / answered 429/.test(r.error))) {
        // Wait for it: an earlier attempt that ctbridge timed out on may already have brought the record to its
        // final state at the sink, so the checks above can pass before this retry is due.
        const retryOf = () => h.sink.requests.find((r) => r !== limited.request && r.receivedAt >= limited.request.receivedAt && sameItem(r));
        await eventually(() => retryOf() !== undefined, 'the retry of the item that got the 429');
        const retry = retryOf();
        expect(retry!.receivedAt - limited.request.receivedAt).toBeGreaterThanOrEqual(950);
      } else {
        // On a busy machine the sink can read a request after ctbridge's timeout (1 s) has given up on it: the 429
        // then never reached ctbridge, which retried that attempt as a timeout (and owes it no Retry-After).
        expect(retried.filter((r) => r.key === limitedKey).map((r) => r.error)).toContainEqual(expect.stringMatching(/timed out/));
      }
    } finally {
      await h.stop();
    }
  });

  it('delivers the events of one resource in arrival order, each once, through failures', async () => {
    const h = await startHarness({
      storeUrl: await testStore.create(),
      engine,
      destination: {
        events: {
          orderEvents: {
            on: ['OrderCreated', 'OrderStateChanged', 'OrderShipmentStateChanged', 'OrderPaymentStateChanged', 'ReturnInfoAdded'],
            fields: { orderId: 'resource.id', type: 'type', sequence: 'sequenceNumber' },
          },
        },
      },
    });
    try {
      // The first attempt of every other event fails, one way or another; a hang and a 429 come first.
      const seen = new Set<string>();
      const kinds: Fault[] = [
        { kind: 'status', status: 500 },
        { kind: 'reset' },
        { kind: 'status', status: 503 },
      ];
      const special: Fault[] = [
        { kind: 'hang', ms: 1_500 },
        { kind: 'status', status: 429, retryAfterSeconds: 1 },
      ];
      let injected = 0;
      h.sink.faultFor = (request) => {
        const key = request.headers['idempotency-key'] ?? '';
        if (request.path !== '/events' || seen.has(key)) return undefined;
        seen.add(key);
        if (seen.size % 2 === 0) return undefined;
        injected += 1;
        return special.shift() ?? kinds[injected % kinds.length];
      };

      const orders = ['order-1', 'order-2'];
      const steps: Array<[string, Record<string, unknown>]> = [
        ['OrderCreated', {}],
        ['OrderStateChanged', { orderState: 'Confirmed', oldOrderState: 'Open' }],
        ['OrderPaymentStateChanged', { paymentState: 'Paid' }],
        ['OrderShipmentStateChanged', { shipmentState: 'Shipped' }],
        ['ReturnInfoAdded', { returnInfo: { items: [] } }],
        ['OrderStateChanged', { orderState: 'Complete', oldOrderState: 'Confirmed' }],
      ];
      // Ingested one after the other, the two orders interleaved.
      for (const [index, [type, extra]] of steps.entries()) {
        for (const orderId of orders) {
          const body =
            type === 'OrderCreated'
              ? orderMessage(orderId, 1, type, { order: { id: orderId, version: 1, orderState: 'Open', customerEmail: 'buyer@example.com' } })
              : orderMessage(orderId, index + 1, type, extra);
          expect((await h.post(body)).status).toBe(202);
        }
      }

      const eventsOf = (orderId: string) => h.sink.applied.filter((item) => item.kind === 'event' && (item.body.payload as { orderId?: string }).orderId === orderId);
      await eventually(() => orders.every((id) => eventsOf(id).length === steps.length), 'every event delivered');
      for (const orderId of orders) {
        expect(eventsOf(orderId).map((e) => (e.body.payload as { sequence: number }).sequence)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(eventsOf(orderId).map((e) => e.body.sourceType)).toEqual(steps.map(([type]) => type));
      }
      expect(injected).toBe(6);
      expect(await metricValue(h, 'ctbridge_retried_total', { destination: 'sink', kind: 'event' })).toBeGreaterThanOrEqual(injected);
      expect(await metricValue(h, 'ctbridge_succeeded_total', { destination: 'sink', kind: 'event' })).toBe(orders.length * steps.length);
    } finally {
      await h.stop();
    }
  });

  it('records failures whose response bodies hold bytes a store refuses (NUL), so they back off and dead-letter', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), engine });
    try {
      injectFaults(
        h,
        [
          { kind: 'status', status: 500, body: 'upstream\u0000exploded' },
          { kind: 'status', status: 400, body: '{"error":"bad\u0000field"}' },
        ],
        (request) => request.path === '/records',
      );
      await h.post(h.commercetools.upsertCustomer('nul-error', { email: 'nul@example.com', firstName: 'Nul' }));
      let letters: Awaited<ReturnType<typeof deadLetters>> = [];
      await eventually(async () => (letters = await deadLetters(h)).length === 1, 'a dead letter');
      expect(letters[0]).toMatchObject({ kind: 'record', resourceId: 'nul-error', attempts: 2 });
      expect(letters[0]!.reason).toMatch(/permanent error.*400.*bad.field/);
      // Exactly the two injected attempts: the failures were recorded, not re-sent at every lease expiry.
      expect(h.sink.requests.filter((r) => r.path === '/records')).toHaveLength(2);
    } finally {
      await h.stop();
    }
  });

  it('dead-letters a permanent 400 with a redacted payload, lists it in the CLI, and delivers it on replay once fixed', async () => {
    const storeUrl = await testStore.create();
    const h = await startHarness({ storeUrl, engine });
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-dlq-'));
    try {
      const rejecting = (request: SinkRequest) => JSON.stringify(request.body).includes('dlq-1');
      h.sink.faultFor = (request) => (rejecting(request) ? { kind: 'status', status: 400, body: '{"error":"field email is invalid"}' } : undefined);

      const created = h.commercetools.upsertCustomer('dlq-1', { email: 'grace.hopper@example.com', firstName: 'Grace', lastName: 'Hopper' });
      expect((await h.post(created, { 'x-correlation-id': 'corr-dlq-1' })).status).toBe(202);
      let letters: Awaited<ReturnType<typeof deadLetters>> = [];
      await eventually(async () => (letters = await deadLetters(h)).length === 2, 'a record and an event dead letter');

      const record = letters.find((l) => l.kind === 'record')!;
      const event = letters.find((l) => l.kind === 'event')!;
      expect(record).toMatchObject({ destination: 'sink', itemType: 'customer', resourceId: 'dlq-1', correlationId: 'corr-dlq-1', attempts: 1 });
      expect(record.reason).toMatch(/permanent error.*400/);
      expect(record.attemptLog).toEqual([expect.objectContaining({ status: 400 })]);
      expect(event).toMatchObject({ destination: 'sink', itemType: 'customerEvents', resourceId: 'dlq-1', attempts: 1 });
      for (const letter of letters) {
        // Personal data never reaches a dead letter.
        expect(letter.payload).not.toBeNull();
        expect(JSON.stringify(letter)).not.toContain('grace.hopper@example.com');
        expect(JSON.stringify(letter.payload)).not.toContain('Hopper');
      }
      expect(await metricValue(h, 'ctbridge_dead_lettered_total', { destination: 'sink' })).toBe(2);
      expect(h.sink.records.has('customer/dlq-1')).toBe(false);

      // The CLI sees the same dead letters in the same store, while the server runs.
      const configPath = join(dir, 'ctbridge.yaml');
      writeFileSync(
        configPath,
        stringify({
          commercetools: { projectKey: 'test-project', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
          server: { ingest: { auth: { type: 'none' } } },
          store: storeUrl,
        }),
      );
      const { stdout } = await promisify(execFile)(process.execPath, ['bin/ctbridge.js', 'dlq', 'list', '--json', '--config', configPath], { cwd: ROOT });
      const listed = JSON.parse(stdout) as Array<{ id: number; kind: string; reason: string; payload: unknown }>;
      expect(listed.map((l) => l.id).sort()).toEqual(letters.map((l) => l.id).sort());
      expect(listed.find((l) => l.id === record.id)).toMatchObject({ kind: 'record', reason: record.reason });
      expect(stdout).not.toContain('grace.hopper@example.com');

      // The destination is fixed: replaying delivers both, once.
      h.sink.faultFor = undefined;
      for (const letter of [record, event]) {
        const replay = await adminFetch(h, `/v1/dead-letters/${letter.id}/replay`, { method: 'POST' });
        expect(replay.status).toBe(202);
      }
      await eventually(() => h.sink.records.get('customer/dlq-1')?.email === 'grace.hopper@example.com', 'the record delivered after replay');
      await eventually(() => h.sink.applied.some((i) => i.kind === 'event' && i.body.sourceType === 'CustomerCreated'), 'the event delivered after replay');
      expect(h.sink.records.get('customer/dlq-1')).toEqual({ email: 'grace.hopper@example.com', firstName: 'Grace', lastName: 'Hopper', city: null });
      const delivered = h.sink.applied.filter((i) => i.correlationId === 'corr-dlq-1');
      expect(delivered.map((i) => i.kind).sort()).toEqual(['event', 'record']);

      // A second replay of the same dead letter is refused.
      const again = await adminFetch(h, `/v1/dead-letters/${record.id}/replay`, { method: 'POST' });
      expect(again.status).toBe(409);
      expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await again.json()).toMatchObject({ type: 'urn:ctbridge:problem:conflict', status: 409 });
      expect(await deadLetters(h)).toEqual([]);
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
