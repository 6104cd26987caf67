// A destination's rate limit holds across processes sharing the store, on both stores: two ctbridge runtimes
// limited to 8 calls a second for one destination that refuses more than 12 a second are never refused (with a
// limit per process they would send 16 a second and be); a limit a destination states only in an answer's body
// (monday's retry_in_seconds, no Retry-After) holds the other process off too, checked against the simulator's own
// log of when requests arrived and the pause the store recorded. And the limiter itself, on an injected clock: a
// store whose round trips outlast a slot still lets calls out, each taking one slot of the shared budget, and a
// pause longer than a call waits fails the call at once, rate-limited until the pause ends.
import type { KyselyPlugin } from 'kysely';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.ts';
import { createDestinationFetch, RateLimitedError } from '../src/destinations/kit/index.ts';
import { buildConnector } from '../src/engine/engine.ts';
import { createRateLimiter } from '../src/engine/rate-limiter.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { startRuntime } from '../src/runtime.ts';
import { startMondaySimulator } from '../src/sandbox/monday/simulator.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { recordItem } from './support/connector-test.ts';
import { testStores } from './support/stores.ts';
import { ADMIN_TOKEN, eventually, INGEST_TOKEN, startHarness, testConfig, untilDone } from './support/harness.ts';

const WINDOW_MS = 1_000;
const ALLOWED_PER_WINDOW = 12;

describe.each(testStores)('rate limits on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  /** A fresh, migrated store for one test of the limiter itself, closed after it. */
  async function withStore(run: (store: Store) => Promise<void>): Promise<void> {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      await run(store);
    } finally {
      await store.close();
    }
  }

  it('keeps two processes together under one destination limit', async () => {
    const storeUrl = await testStore.create();
    // 8 calls a second for the destination as a whole; one call per record (no batching).
    const destination = { rateLimit: { requestsPerSecond: 8 }, events: {} };
    const first = await startHarness({ storeUrl, destination });
    // Both processes serve one shop: whichever claims a key reads the same commercetools (a key whose attempt is
    // unconfirmed is read back from there, whoever first took it).
    const second = await startRuntime({ config: testConfig(storeUrl, first.sink.url, { destination }), logger: pino({ level: 'silent' }), fetcher: first.commercetools });
    try {
      // The destination answers 429 to any call beyond its allowance in the current one-second window.
      const windows = new Map<number, number>();
      let refused = 0;
      first.sink.faultFor = () => {
        const window = Math.floor(Date.now() / WINDOW_MS);
        const count = (windows.get(window) ?? 0) + 1;
        windows.set(window, count);
        if (count <= ALLOWED_PER_WINDOW) return undefined;
        refused += 1;
        return { kind: 'status', status: 429, retryAfterSeconds: 1 };
      };
      const postTo = (url: string, body: unknown) =>
        fetch(`${url}/v1/ingest/commercetools`, { method: 'POST', headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const bodies = [
        ...Array.from({ length: 20 }, (_, i) => [first.runtime.url!, first.commercetools.upsertCustomer(`a${i}`, { email: `a${i}@example.com` })] as const),
        ...Array.from({ length: 20 }, (_, i) => [second.url!, first.commercetools.upsertCustomer(`b${i}`, { email: `b${i}@example.com` })] as const),
      ];
      for (const response of await Promise.all(bodies.map(([url, body]) => postTo(url, body)))) expect(response.status).toBe(202);

      // How long 40 calls at 8 a second take depends on the CPU the machine leaves the two runtimes: the wait fails
      // only when deliveries stop.
      const notDelivered = () => bodies.filter(([, body]) => !first.sink.records.has(`customer/${(body.resource as { id: string }).id}`)).length;
      await untilDone(() => Promise.resolve({ done: notDelivered() === 0, remaining: notDelivered() }), 'all 40 customers at the sink');
      expect(refused).toBe(0);
    } finally {
      await second.stop();
      await first.stop();
    }
  }, 300_000);

  it('a limit monday states only in its answer\'s body holds the other process off until then', async () => {
    const token = 'monday-rate-token';
    const sim = await startMondaySimulator({ token });
    const board = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }] });
    const storeUrl = await testStore.create();
    const config = configSchema.parse({
      commercetools: { projectKey: 'test-project', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
      server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
      store: storeUrl,
      destinations: [{ name: 'crm', type: 'monday', token, endpoint: sim.url, boards: { customer: { board: board.id, externalIdColumn: 'ext_id' } }, records: { customer: { fields: { name: 'firstName' } } } }],
    });
    // Two processes: each its own connection to the store and the connector its engine builds, with its own limiter.
    const stores: Store[] = [openStore(storeUrl), openStore(storeUrl)];
    await stores[0]!.migrate();
    const noSealer = () => Promise.reject(new Error('the monday connector keeps nothing sealed'));
    const [first, second] = stores.map((store) => buildConnector(config.destinations[0]!, store, createMetrics(), pino({ level: 'silent' }), {}, noSealer));
    try {
      await first!.prepare!();
      await second!.prepare!();
      // The concurrency limit in monday's flat shape, HTTP 200, its wait only in error_data: no Retry-After.
      sim.faults.push({ kind: 'legacy', errorCode: 'FIELD_LIMIT_EXCEEDED', message: 'Concurrency limit exceeded for the field', statusCode: 429, errorData: { retry_in_seconds: 1, entity: 'boards' } });
      const limitedIndex = sim.requests.length;
      const [limited] = await first!.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
      expect(limited?.ok === false && limited.error).toBeInstanceOf(RateLimitedError);
      // Answered HTTP 200: the kit's fetch alone, reading statuses and headers, would pause nothing.
      expect(sim.requests[limitedIndex]!.status).toBe(200);
      const limitedAt = sim.requests[limitedIndex]!.at;

      const pausedUntil = async () => Number((await stores[1]!.db.selectFrom('rate_limits').select('paused_until').where('destination', '=', 'crm').executeTakeFirst())?.paused_until ?? 0);
      await eventually(async () => (await pausedUntil()) >= limitedAt + 1_000, 'the pause recorded in the store');
      const recorded = await pausedUntil();

      // The other process has work at once; its calls wait for the pause.
      const [sent] = await second!.sendRecords([recordItem({ resourceId: 'c2', fields: { name: 'Alan' } })]);
      expect(sent?.ok).toBe(true);
      const after = sim.requests.slice(limitedIndex + 1);
      expect(after.length).toBeGreaterThan(0);
      expect(after.filter((request) => request.at < recorded)).toEqual([]);
      expect(sim.account.itemsOf(board.id).map((item) => item.name)).toEqual(['Alan']);
    } finally {
      await Promise.all([first, second].map((connector) => connector?.close?.() ?? Promise.resolve()));
      await Promise.all(stores.map((store) => store.close()));
      await sim.close();
    }
  });

  it('lets a call out when the store answers more slowly than a slot lasts', async () => {
    await withStore(async (store) => {
      let clock = 1_000_000;
      // The store is busy for its first three round trips: each takes 500 ms on the limiter's clock, four slots at
      // 8 calls a second.
      let slowRoundTrips = 3;
      const busy: KyselyPlugin = {
        transformQuery: ({ node }) => node,
        transformResult: ({ result }) => {
          if (slowRoundTrips > 0) {
            slowRoundTrips -= 1;
            clock += 500;
          }
          return Promise.resolve(result);
        },
      };
      const limiter = createRateLimiter(store.db.withPlugin(busy), 'sink', () => clock);
      limiter.setRate({ requestsPerSecond: 8 });
      const start = clock;

      await limiter.acquire();

      // One call took one slot (125 ms) of the destination's shared budget: the block reserved before the slow
      // round trip was used, not thrown away as stale and reserved again (which, with every round trip that slow,
      // would never let a call out and would push the other processes' slots further out each time).
      const row = await store.db.selectFrom('rate_limits').select('theoretical_arrival').where('destination', '=', 'sink').executeTakeFirstOrThrow();
      expect(Number(row.theoretical_arrival)).toBe(start + 125);
      expect(slowRoundTrips).toBe(2);
    });
  });

  it('fails a call at once, rate-limited until then, when another process paused the destination for longer than a call waits', async () => {
    await withStore(async (store) => {
      const clock = 2_000_000;
      const [pausing, waiting] = [createRateLimiter(store.db, 'crm', () => clock), createRateLimiter(store.db, 'crm', () => clock)];
      waiting.setRate({ requestsPerSecond: 8 });
      // Another process learnt that the destination's daily limit is spent for two hours.
      pausing.pauseUntil(clock + 2 * 3_600_000);
      await eventually(async () => Number((await store.db.selectFrom('rate_limits').select('paused_until').where('destination', '=', 'crm').executeTakeFirst())?.paused_until ?? 0) > clock, 'the pause recorded');

      // Through the kit's fetch, as a connector calls: no call goes out, and the items are retried when the pause ends.
      let called = 0;
      const fetch = createDestinationFetch({ limiter: waiting, now: () => clock, fetch: () => ((called += 1), Promise.resolve(new Response('{}'))) });
      const failure = await fetch('http://127.0.0.1:1/items', { method: 'POST' }).then(() => undefined, (error: unknown) => error);
      expect(failure).toBeInstanceOf(RateLimitedError);
      expect(failure).toMatchObject({ status: 429, retryAfterMs: 2 * 3_600_000, message: `the destination's limit is spent until ${new Date(clock + 2 * 3_600_000).toISOString()}` });
      expect(called).toBe(0);
    });
  });
});
