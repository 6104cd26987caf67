// A destination's rate limit holds across processes sharing the store, on both stores: two ctbridge runtimes
// limited to 8 calls a second for one destination that refuses more than 12 a second are never refused (with a
// limit per process they would send 16 a second and be).
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startRuntime } from '../src/runtime.ts';
import { testStores } from './support/stores.ts';
import { eventually, INGEST_TOKEN, startHarness, testConfig } from './support/harness.ts';

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

      await eventually(() => bodies.every(([, body]) => first.sink.records.has(`customer/${(body.resource as { id: string }).id}`)), 'all 40 customers at the sink', 60_000);
      expect(refused).toBe(0);
    } finally {
      await second.stop();
      await first.stop();
    }
  }, 90_000);
});
