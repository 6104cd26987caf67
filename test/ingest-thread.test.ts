// The ingest thread as `ctbridge start` runs it, driven through the client the HTTP thread holds: bodies handed
// over in one tick (small ones, which Node allocates inside its shared buffer pool, beside a large one that owns
// its memory) are each committed to the inbox exactly as they arrived, and the caller's other pooled buffers are
// left intact. Runs on both stores.
import { randomBytes } from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { createSealer } from '../src/pii/sealed.ts';
import { bodyText } from '../src/store/inbox.ts';
import { openStore } from '../src/store/store.ts';
import { startIngestThread } from '../src/threads/ingest-client.ts';
import { customerMessage, eventually } from './support/harness.ts';
import { testStores } from './support/stores.ts';

function created(id: string) {
  return customerMessage({ id, version: 1, email: `${id}@example.com`, firstName: 'F' }, 'CustomerCreated');
}

/** A body as Fastify hands it over: the chunks concatenated (inside the shared pool when small). */
function received(value: unknown): Buffer {
  const text = JSON.stringify(value);
  return Buffer.concat([Buffer.from(text.slice(0, 10)), Buffer.from(text.slice(10))]);
}

describe.each(testStores)('the ingest thread on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('commits bodies handed over together, small and large, each as it arrived', async () => {
    const storeUrl = await testStore.create();
    const store = openStore(storeUrl);
    await store.migrate();
    const sealKey = randomBytes(32);
    const commits = new MessageChannel();
    const committed: number[] = [];
    commits.port2.on('message', (notice: { items: number }) => committed.push(notice.items));
    const failures: Error[] = [];
    const client = await startIngestThread({ storeUrl, sealKey, maxItemsPerBody: 1_000 }, commits.port1, (error) => failures.push(error));
    try {
      const small = ['s-1', 's-2', 's-3'].map((id) => received(created(id)));
      const large = received(Array.from({ length: 150 }, (_, i) => created(`l-${i}`)));
      // The premise: the small bodies share the pool's memory, the large one has its own.
      expect(small.every((body) => body.buffer.byteLength > body.byteLength)).toBe(true);
      expect(large.byteLength).toBeGreaterThan(Buffer.poolSize / 2);
      expect(large.buffer.byteLength).toBe(large.byteLength);
      const expected = [small[0]!, large, small[1]!, small[2]!].map((body) => body.toString('utf8'));
      const neighbour = received({ kept: 'by the caller' });

      // One tick: the four travel to the thread in one message.
      const results = await Promise.all([small[0]!, large, small[1]!, small[2]!].map((raw, i) => client.ingest({ raw, headers: {}, correlationId: `corr-${i}`, source: 'http' })));

      expect(results.map((result) => (result.ok ? result.outcome.accepted : result.problem))).toEqual([1, 150, 1, 1]);
      expect(JSON.parse(neighbour.toString('utf8'))).toEqual({ kept: 'by the caller' });
      const rows = await store.inbox.db.selectFrom('inbox').select(['body', 'seal', 'correlation_id', 'items']).orderBy('seq').execute();
      const sealer = createSealer(sealKey);
      expect(rows.map((row) => ({ body: bodyText(sealer.openInPlace(row.body, row.seal!)), correlationId: row.correlation_id, items: row.items }))).toEqual(
        expected.map((body, i) => ({ body, correlationId: `corr-${i}`, items: i === 1 ? 150 : 1 })),
      );
      // The engine hears of the commits on a port of its own, in no fixed order with the answers.
      await eventually(() => committed.reduce((sum, items) => sum + items, 0) === 153, 'the commits told to the engine');
      expect(failures).toEqual([]);
    } finally {
      await client.stop();
      commits.port2.close();
      await store.close();
    }
  });
});
