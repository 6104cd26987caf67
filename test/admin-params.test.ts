// The admin API's parameters (issue 11, item 5): every malformed, repeated or unknown query or path parameter of
// every admin route is a 400 problem+json naming the parameter, never a 503 with a stack trace, and nothing is
// replayed by a request that was refused. Well-formed parameters still work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminFetch, eventually, startHarness, type Harness } from './support/harness.ts';
import { testStores } from './support/stores.ts';

describe.each(testStores)('admin parameters on $name', (testStore) => {
  let h: Harness;
  let letterId: number;
  beforeAll(async () => {
    h = await startHarness({ storeUrl: await testStore.create() });
    // One quarantined dead letter to list, show and replay.
    expect((await h.post({ hello: 'world' }, { 'x-correlation-id': 'admin-params' })).status).toBe(202);
    await eventually(async () => {
      const items = ((await (await adminFetch(h, '/v1/dead-letters')).json()) as { items: Array<{ id: number }> }).items;
      letterId = items[0]?.id ?? 0;
      return items.length === 1;
    }, 'the quarantined dead letter');
  });
  afterAll(async () => {
    await h?.stop();
    await testStore.cleanup();
  });

  const cases: Array<[method: 'GET' | 'POST', path: string, parameter: string]> = [
    ['GET', '/v1/dead-letters?after=xyz', 'after'],
    ['GET', '/v1/dead-letters?after=-1', 'after'],
    ['GET', '/v1/dead-letters?after=', 'after'],
    ['GET', '/v1/dead-letters?after=1e3', 'after'],
    ['GET', '/v1/dead-letters?limit=abc', 'limit'],
    ['GET', '/v1/dead-letters?limit=0', 'limit'],
    ['GET', '/v1/dead-letters?limit=5000', 'limit'],
    ['GET', '/v1/dead-letters?limit=1&limit=2', 'limit'],
    ['GET', '/v1/dead-letters?destination=sink&destination=other', 'destination'],
    ['GET', '/v1/dead-letters?destination=', 'destination'],
    ['GET', '/v1/dead-letters?all=yes', 'all'],
    ['GET', '/v1/dead-letters?destinaton=sink', 'destinaton'],
    ['GET', '/v1/dead-letters/abc', 'id'],
    ['GET', '/v1/dead-letters/0', 'id'],
    ['GET', '/v1/dead-letters/99999999999999999999', 'id'],
    ['GET', '/v1/dead-letters/1?verbose=true', 'verbose'],
    ['POST', '/v1/dead-letters/abc/replay', 'id'],
    ['POST', '/v1/dead-letters/1/replay?force=1', 'force'],
    ['POST', '/v1/dead-letters/replay?destination=sink&destination=other', 'destination'],
    ['POST', '/v1/dead-letters/replay?destinaton=sink', 'destinaton'],
    ['POST', '/v1/dead-letters/replay?destination=', 'destination'],
    ['GET', '/v1/status?destination=sink&destination=other', 'destination'],
    ['GET', '/v1/status?x=1', 'x'],
  ];

  it.each(cases)('%s %s: 400 naming "%s", no stack trace', async (method, path, parameter) => {
    const response = await adminFetch(h, path, { method });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const text = await response.text();
    const problem = JSON.parse(text) as { type: string; detail: string; invalidParams: Array<{ name: string }> };
    expect(problem.type).toBe('urn:ctbridge:problem:invalid-parameter');
    expect(problem.detail).toContain(`"${parameter}"`);
    expect(problem.invalidParams.map((p) => p.name)).toContain(parameter);
    expect(text).not.toMatch(/\bat .*:\d+:\d+|node_modules|\.ts:\d+/);
  });

  it('replays nothing on a refused replay request, and the well-formed parameters still work', async () => {
    const listed = await adminFetch(h, '/v1/dead-letters?destination=sink&limit=10&all=false');
    expect(listed.status).toBe(200);
    const after = (await (await adminFetch(h, `/v1/dead-letters?after=${letterId}`)).json()) as { items: unknown[] };
    expect(after.items).toEqual([]);
    expect((await adminFetch(h, `/v1/dead-letters/${letterId}`)).status).toBe(200);
    expect((await adminFetch(h, '/v1/dead-letters/987654')).status).toBe(404);
    expect((await adminFetch(h, '/v1/status')).status).toBe(200);

    // The quarantined letter is still unreplayed after every refused replay above.
    const letter = (await (await adminFetch(h, `/v1/dead-letters/${letterId}`)).json()) as { replayedAt: string | null };
    expect(letter.replayedAt).toBeNull();
  });

  it('checks the admin token before the parameters', async () => {
    const response = await fetch(`${h.runtime.url}/v1/dead-letters?after=xyz`);
    expect(response.status).toBe(401);
  });
});
