// A store URL's credentials never show (issue 11, item 11), on both stores: the unauthenticated /readyz says
// whether ctbridge is ready and nothing about where its store is, and the start-up log line names the store
// without user info or secret query parameters (a password may come in either).
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { startAndAnnounce } from '../src/cli/run-commands.ts';
import { createLogger } from '../src/observability/logger.ts';
import { startSink } from '../src/sandbox/sink.ts';
import { FakeCommercetools, testConfig } from './support/harness.ts';
import { testStores } from './support/stores.ts';

/** The store URL with a password in the user info and secrets in the query (PostgreSQL ignores them here). */
function withCredentials(url: string): string {
  if (!url.startsWith('postgres')) return url;
  const target = new URL(url);
  target.password = 'hunter2-userinfo';
  target.search = '?password=hunter2-query&sslpassword=hunter2-sslkey&application_name=ctbridge-test';
  return target.toString();
}

describe.each(testStores)('store credentials on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('are not in /readyz (which names no store at all) nor in the start-up log line', async () => {
    const storeUrl = withCredentials(await testStore.create());
    const where = new URL(storeUrl.replace(/^sqlite:/, 'file://'));
    const details = storeUrl.startsWith('sqlite:') ? [storeUrl.slice('sqlite:'.length)] : ['hunter2', where.hostname, where.pathname.slice(1), where.username];
    const lines: string[] = [];
    const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) }) });
    const sink = await startSink();
    const runtime = await startAndAnnounce({ config: testConfig(storeUrl, sink.url), logger, fetcher: new FakeCommercetools() });
    try {
      const response = await fetch(`${runtime.url}/readyz`);
      expect(response.status).toBe(200);
      const body = await response.text();
      expect(JSON.parse(body)).toEqual({ status: 'ready' });
      for (const detail of details) expect(body, detail).not.toContain(detail);

      const started = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'ctbridge started');
      expect(started).toBeDefined();
      expect(JSON.stringify(lines)).not.toContain('hunter2');
      if (storeUrl.startsWith('postgres')) {
        expect(started!.store).toBe(`postgres://***@${where.host}${where.pathname}?password=***&sslpassword=***&application_name=ctbridge-test`);
      } else {
        expect(started!.store).toBe(storeUrl);
      }
    } finally {
      await runtime.stop();
      await sink.close();
    }
  });
});
