// A destination's rate limit holds across processes sharing the store, on both stores: two ctbridge runtimes
// limited to 8 calls a second for one destination that refuses more than 12 a second are never refused (with a
// limit per process they would send 16 a second and be). And the limiter itself, on an injected clock: a store
// whose round trips outlast a slot still lets calls out, each taking one slot of the shared budget.
import type { KyselyPlugin } from 'kysely';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter } from '../src/engine/rate-limiter.ts';
import { startRuntime } from '../src/runtime.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';
import { INGEST_TOKEN, startHarness, testConfig, untilDone } from './support/harness.ts';

const WINDOW_MS = 1_000;
const ALLOWED_PER_WINDOW = 12;

describe.each(testStores)('rate limits on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

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

  it('lets a call out when the store answers more slowly than a slot lasts', async () => {
    const store = openStore(await testStore.create());
    await store.migrate();
    try {
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
    } finally {
      await store.close();
    }
  });
});
