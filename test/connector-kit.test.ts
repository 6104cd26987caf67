// The connector kit on its own: the one status classification every connector (and the commercetools client)
// uses, and the destination fetch — it waits for the shared limiter before anything else, counts the call, times
// the exchange alone (a long wait for the limiter is no timeout: commit 2709796), pauses the destination on a 429
// or on the destination's own "budget spent" headers, or when the connector read it in a body (`pauseUntil`), and
// turns failures without an answer into RetryableErrors; the kit's http client classifies answers through it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PermanentError, RateLimitedError, RetryableError, classifyStatus, createDestinationFetch, createHttpClient, errorForStatus, type StatusClass } from '../src/destinations/kit/index.ts';
import { unlimitedLimiter } from './support/connector-test.ts';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

/** A platform fetch stand-in: answers with `answer`, or never (until the request's signal aborts it). */
function fakeFetch(answer?: () => Response) {
  const requests: Array<{ url: string; init: RequestInit | undefined }> = [];
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    requests.push({ url: input instanceof Request ? input.url : input.toString(), init });
    // As the platform's fetch: a request whose signal has already fired is never sent.
    if (init?.signal?.aborted) return Promise.reject(new DOMException('aborted', 'AbortError'));
    if (answer) return Promise.resolve(answer());
    return new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
  };
  return { fetch, requests };
}

describe('the status classification', () => {
  const table: Array<[number, StatusClass]> = [
    [0, 'retryable'],
    [200, 'success'],
    [202, 'success'],
    [204, 'success'],
    [304, 'success'],
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [408, 'retryable'],
    [409, 'permanent'],
    [410, 'permanent'],
    [413, 'permanent'],
    [422, 'permanent'],
    [423, 'retryable'],
    [425, 'retryable'],
    [429, 'rate-limited'],
    [500, 'retryable'],
    [502, 'retryable'],
    [503, 'retryable'],
    [504, 'retryable'],
    [599, 'retryable'],
  ];

  it.each(table)('classifies %i as %s, and errorForStatus makes the matching error', (status, expected) => {
    expect(classifyStatus(status)).toBe(expected);
    const error = errorForStatus(status, `answered ${status}`, 2_000);
    if (expected === 'success') return expect(error).toBeUndefined();
    const classes = { retryable: RetryableError, 'rate-limited': RateLimitedError, permanent: PermanentError } as const;
    expect(error).toBeInstanceOf(classes[expected]);
    expect(error!.retryable).toBe(expected !== 'permanent');
    expect(error!.status).toBe(status === 0 ? undefined : status);
    // The wait the destination asked for is kept for retries, never for a permanent failure.
    expect((error as RetryableError).retryAfterMs).toBe(expected === 'permanent' ? undefined : 2_000);
    if (expected === 'retryable') expect(error).not.toBeInstanceOf(RateLimitedError);
  });
});

describe('the destination fetch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits for the limiter before calling, and counts the call once it has its slot', async () => {
    let release!: () => void;
    const slot = new Promise<void>((resolve) => (release = resolve));
    const limiter = { acquire: () => slot, pauseUntil: () => undefined };
    const platform = fakeFetch(() => new Response('{}', { status: 200 }));
    let counted = 0;
    const fetch = createDestinationFetch({ limiter, onCall: () => (counted += 1), fetch: platform.fetch });
    const answer = fetch('http://destination.test/x', { method: 'POST', body: 'b' });
    await Promise.resolve();
    expect(platform.requests).toHaveLength(0);
    expect(counted).toBe(0);
    release();
    expect((await answer).status).toBe(200);
    expect(platform.requests.map((r) => [r.url, r.init?.method, r.init?.body])).toEqual([['http://destination.test/x', 'POST', 'b']]);
    expect(counted).toBe(1);
  });

  it('does not count the wait for the limiter against the timeout, only the exchange', async () => {
    vi.useFakeTimers();
    let release!: () => void;
    const slot = new Promise<void>((resolve) => (release = resolve));
    const answering = fakeFetch(() => new Response('ok', { status: 200 }));
    const fetch = createDestinationFetch({ limiter: { acquire: () => slot, pauseUntil: () => undefined }, fetch: answering.fetch }, { timeoutMs: 1_000 });
    const answer = fetch('http://destination.test/slow-limiter');
    // A minute in the limiter's queue, sixty times the timeout.
    await vi.advanceTimersByTimeAsync(60_000);
    release();
    expect(await (await answer).text()).toBe('ok');

    const hanging = fakeFetch();
    const timed = createDestinationFetch({ limiter: unlimitedLimiter(), fetch: hanging.fetch }, { timeoutMs: 1_000 });
    const failure = timed('http://destination.test/hangs').catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(999);
    expect(hanging.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const error = await failure;
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toBe('timed out after 1000 ms');
  });

  it('pauses the destination on a 429 for its Retry-After, or a second when it says nothing', async () => {
    const limiter = unlimitedLimiter();
    let retryAfter: string | undefined = '7';
    const platform = fakeFetch(() => new Response('slow down', { status: 429, headers: retryAfter ? { 'retry-after': retryAfter } : {} }));
    const fetch = createDestinationFetch({ limiter, now: () => NOW, fetch: platform.fetch });
    const answer = await fetch('http://destination.test/');
    expect(answer.status).toBe(429);
    expect(await answer.text()).toBe('slow down');
    expect(limiter.pausedUntil).toBe(NOW + 7_000);

    retryAfter = undefined;
    const later = createDestinationFetch({ limiter, now: () => NOW + 60_000, fetch: platform.fetch });
    await later('http://destination.test/');
    expect(limiter.pausedUntil).toBe(NOW + 61_000);
  });

  it('pauses when the destination\'s own headers say the budget is spent, on any status, and not for a 503\'s Retry-After', async () => {
    const limiter = unlimitedLimiter();
    let answer = () => new Response('{}', { status: 200, headers: { 'x-left': '3' } });
    const platform = fakeFetch(() => answer());
    const fetch = createDestinationFetch({ limiter, now: () => NOW, fetch: platform.fetch }).with({ budgetResetAt: (headers) => (headers.get('x-left') === '0' ? NOW + 5_000 : undefined) });
    await fetch('http://destination.test/');
    expect(limiter.pausedUntil).toBe(0);
    answer = () => new Response(null, { status: 204, headers: { 'x-left': '0' } });
    expect((await fetch('http://destination.test/')).status).toBe(204);
    expect(limiter.pausedUntil).toBe(NOW + 5_000);

    const other = unlimitedLimiter();
    const unavailable = createDestinationFetch({ limiter: other, now: () => NOW, fetch: fakeFetch(() => new Response('', { status: 503, headers: { 'retry-after': '30' } })).fetch });
    expect((await unavailable('http://destination.test/')).status).toBe(503);
    expect(other.pausedUntil).toBe(0);
  });

  it('pauses the destination until the time a connector read in an answer\'s body, through any fetch of it, and ignores a time already past', () => {
    const limiter = unlimitedLimiter();
    const platform = fakeFetch(() => new Response('{}'));
    const fetch = createDestinationFetch({ limiter, now: () => NOW, fetch: platform.fetch });
    fetch.pauseUntil(NOW);
    fetch.pauseUntil(NOW - 5_000);
    fetch.pauseUntil(Number.NaN);
    expect(limiter.pausedUntil).toBe(0);
    // The connector's fetch with its own options pauses the same limiter.
    fetch.with({ timeoutMs: 2_000 }).pauseUntil(NOW + 15_000);
    expect(limiter.pausedUntil).toBe(NOW + 15_000);
    // Pausing makes no call.
    expect(platform.requests).toHaveLength(0);
    expect(limiter.acquired).toBe(0);
  });

  it('fails retryably, without calling, when the limiter cannot be reached', async () => {
    const platform = fakeFetch(() => new Response('{}'));
    let counted = 0;
    const fetch = createDestinationFetch({ limiter: { acquire: () => Promise.reject(new Error('store unavailable')), pauseUntil: () => undefined }, onCall: () => (counted += 1), fetch: platform.fetch });
    const error = await fetch('http://destination.test/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toBe('the rate limiter is unavailable: store unavailable');
    expect(platform.requests).toHaveLength(0);
    expect(counted).toBe(0);
  });

  it('fails retryably, naming the cause, when the connection is refused', async () => {
    // A port nothing listens on any more.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const fetch = createDestinationFetch({ limiter: unlimitedLimiter() });
    const error = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toBe('network error: ECONNREFUSED');
  });

  it('gives a caller\'s own abort back as it is, not as a timeout', async () => {
    const controller = new AbortController();
    const fetch = createDestinationFetch({ limiter: unlimitedLimiter(), fetch: fakeFetch().fetch });
    const failure = fetch('http://destination.test/', { signal: controller.signal }).catch((e: unknown) => e);
    await Promise.resolve();
    await Promise.resolve();
    controller.abort();
    const error = await failure;
    expect(error).not.toBeInstanceOf(RetryableError);
    expect((error as Error).name).toBe('AbortError');
  });
});

describe('the kit\'s http client', () => {
  const client = (answer: () => Response, limiter = unlimitedLimiter()) => createHttpClient(createDestinationFetch({ limiter, now: () => NOW, fetch: fakeFetch(answer).fetch }));

  it('answers a success with its text and JSON', async () => {
    const response = await client(() => new Response('{"id":"x1"}', { status: 201, headers: { 'content-type': 'application/json' } })).request({ method: 'POST', url: 'http://destination.test/items', body: '{}' });
    expect(response).toMatchObject({ status: 201, text: '{"id":"x1"}', json: { id: 'x1' } });
  });

  it('throws the classified error: the method, the URL without credentials and the answer\'s start in its message', async () => {
    const error = await client(() => new Response('{"error":"bad field"}', { status: 400 }))
      .request({ method: 'PUT', url: 'https://user:secret@destination.test/items?token=abc' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as Error).message).not.toMatch(/secret|abc/);
    expect((error as Error).message).toMatch(/^PUT https:\/\/\S+\/items\S* answered 400: \{"error":"bad field"\}$/);
  });

  it('makes a 429 a RateLimitedError with the wait it paused the destination for, and a 503 a RetryableError with its Retry-After', async () => {
    const limiter = unlimitedLimiter();
    const limited = await client(() => new Response('', { status: 429, headers: { 'retry-after': '3' } }), limiter)
      .request({ method: 'POST', url: 'http://destination.test/' })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(3_000);
    expect(limiter.pausedUntil).toBe(NOW + 3_000);

    const unavailable = await client(() => new Response('', { status: 503, headers: { 'retry-after': '2' } }))
      .request({ method: 'POST', url: 'http://destination.test/' })
      .catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(RetryableError);
    expect(unavailable).not.toBeInstanceOf(RateLimitedError);
    expect((unavailable as RetryableError).retryAfterMs).toBe(2_000);
  });
});
