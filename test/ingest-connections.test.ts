// Slow, many and empty requests over raw sockets (issue 11, items 2 and 3): a body trickled past the request
// timeout and headers that never finish are answered 408 and their connections closed; unauthenticated clients
// holding large declared bodies open cannot take the in-flight budget from an authenticated one (bearer: refused
// before the body is read; HMAC: counted by what they sent, in a budget of their own); connections beyond the
// limit are closed while the admitted ones keep working; and a request with no body at all, or an empty one,
// gets 400 problem+json whatever the auth type, and the server keeps answering.
import { createHmac, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt, oidcKey } from './support/auth-fixtures.ts';
import { connect, exchange, requestText, untilClosed, type RawResponse } from './support/raw-http.ts';
import { eventually, INGEST_TOKEN, startHarness, type Harness, type HarnessOptions } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const PATH = '/v1/ingest/commercetools';
const HMAC_SECRET = 'an-hmac-secret-for-connection-tests';
const sign = (body: string | Buffer) => `sha256=${createHmac('sha256', HMAC_SECRET).update(body).digest('hex')}`;

function expectProblem(response: RawResponse | undefined, status: number, kind: string): void {
  expect(response?.status).toBe(status);
  expect(response?.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(response!.body)).toMatchObject({ type: `urn:ctbridge:problem:${kind}`, status });
}

/** Counts requests whose headers the server has read: the moment a request is admitted or refused. */
function requestsSeen(h: Harness): () => number {
  let seen = 0;
  h.runtime.app.server.on('request', () => (seen += 1));
  return () => seen;
}

/** Writes one byte to `socket` every few ms until it closes: a client trickling its request. */
function trickle(socket: Socket, byte: string): void {
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(byte);
  }, 50);
  socket.once('close', () => clearInterval(timer));
}

describe.each(testStores)('slow and many connections on $name', (testStore) => {
  const harnesses: Harness[] = [];
  const sockets: Socket[] = [];
  const start = async (options: Omit<HarnessOptions, 'storeUrl'>) => {
    const h = await startHarness({ storeUrl: await testStore.create(), ...options });
    harnesses.push(h);
    return h;
  };
  const open = async (h: Harness) => {
    const socket = await connect(h.runtime.url!);
    sockets.push(socket);
    return socket;
  };
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const h of harnesses.splice(0)) await h.stop();
  });
  afterAll(() => testStore.cleanup());

  it('answers 408 and closes a connection that trickles its body past the request timeout, and gives its budget back', async () => {
    const h = await start({ server: { requestTimeoutMs: 400, headersTimeoutMs: 200, maxInFlightBytes: 1000 } });
    const slow = await open(h);
    const closed = untilClosed(slow);
    // Authenticated, so admitted: it reserves 900 of the 1000 bytes in flight, then sends a byte at a time.
    slow.write(requestText('POST', PATH, { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json', 'content-length': 900 }, '['));
    trickle(slow, ' ');
    const { response } = await closed;
    expectProblem(response, 408, 'timeout');
    expect(slow.destroyed).toBe(true);

    // Its 900 bytes are free again: a 600-byte body fits.
    const message = h.commercetools.upsertCustomer('after-trickle', { email: 'after-trickle@example.com' });
    const response2 = await h.post(JSON.stringify(message).padEnd(600, ' '));
    expect(response2.status).toBe(202);
    await eventually(() => h.sink.records.has('customer/after-trickle'), 'the message synced');
  });

  it('answers 408 and closes a connection that never finishes its headers', async () => {
    const h = await start({ server: { requestTimeoutMs: 400, headersTimeoutMs: 200 } });
    const slow = await open(h);
    const closed = untilClosed(slow);
    slow.write(`POST ${PATH} HTTP/1.1\r\nHost: localhost\r\nX-Padding: `);
    trickle(slow, 'a');
    const { response } = await closed;
    expectProblem(response, 408, 'timeout');
    expect((await h.post(h.commercetools.upsertCustomer('after-headers', { email: 'a@example.com' }))).status).toBe(202);
  });

  it('bearer: unauthenticated clients declaring 1 MiB bodies are refused before their body and cannot take the budget', async () => {
    const h = await start({});
    const seen = requestsSeen(h);
    const attackers = await Promise.all(Array.from({ length: 8 }, () => open(h)));
    const answers = attackers.map((socket) => untilClosed(socket));
    attackers.forEach((socket, i) =>
      socket.write(requestText('POST', PATH, { 'content-type': 'application/json', 'content-length': 1024 * 1024, ...(i % 2 === 0 && { authorization: 'Bearer not-the-token-0123456789' }) }, '[')),
    );
    await eventually(() => seen() >= 8, 'the server read the 8 requests');

    const message = h.commercetools.upsertCustomer('legit-bearer', { email: 'legit@example.com' });
    expect((await h.post(message)).status).toBe(202);
    await eventually(() => h.sink.records.has('customer/legit-bearer'), 'the authenticated message synced');
    for (const answer of answers) expectProblem((await answer).response, 401, 'unauthorized');
  });

  it('hmac: unauthenticated clients holding 1 MiB bodies open hold only what they sent; a signed request is stored', async () => {
    const h = await start({ server: { ingest: { auth: { type: 'hmac', secret: HMAC_SECRET } } } });
    const seen = requestsSeen(h);
    const attackers = await Promise.all(Array.from({ length: 8 }, () => open(h)));
    for (const socket of attackers) {
      socket.write(requestText('POST', PATH, { 'content-type': 'application/json', 'content-length': 1024 * 1024, 'x-ctbridge-signature': `sha256=${'ab'.repeat(32)}` }, '['));
    }
    await eventually(() => seen() >= 8, 'the server read the 8 requests');

    const body = JSON.stringify(h.commercetools.upsertCustomer('legit-hmac', { email: 'legit-hmac@example.com' }));
    const response = await fetch(`${h.runtime.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ctbridge-signature': sign(body) }, body });
    expect(response.status).toBe(202);
    await eventually(() => h.sink.records.has('customer/legit-hmac'), 'the signed message synced');
    expect(attackers.every((socket) => !socket.destroyed)).toBe(true);
  });

  it('hmac: bodies waiting for their signature check hold at most maxUnverifiedBytes; beyond, 503 and the connection closed', async () => {
    const h = await start({ server: { maxUnverifiedBytes: 64 * 1024, ingest: { auth: { type: 'hmac', secret: HMAC_SECRET } } } });
    const hog = await open(h);
    hog.write(requestText('POST', PATH, { 'content-type': 'application/json', 'content-length': 200 * 1024, 'x-ctbridge-signature': `sha256=${'ab'.repeat(32)}` }, `[${' '.repeat(60 * 1024)}`));

    const body = JSON.stringify(h.commercetools.upsertCustomer('while-hogged', { email: 'hogged@example.com' })).padEnd(10 * 1024, ' ');
    let refused: RawResponse | undefined;
    await eventually(async () => {
      const socket = await open(h);
      const answer = untilClosed(socket);
      socket.write(requestText('POST', PATH, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-ctbridge-signature': sign(body) }, body));
      // A request that got through is answered 202 on a connection kept alive: close it from this side.
      socket.once('data', () => socket.end());
      refused = (await answer).response;
      return refused?.status === 503;
    }, 'a request refused while the unverified budget is held');
    expectProblem(refused, 503, 'overloaded');
    expect(refused!.headers.connection).toBe('close');

    hog.destroy();
    await eventually(async () => (await fetch(`${h.runtime.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ctbridge-signature': sign(body) }, body })).status === 202, 'accepted once the hog is gone');
    await eventually(() => h.sink.records.has('customer/while-hogged'), 'the signed message synced');
  });

  it('closes connections beyond the limit at once, while admitted ones and new ones after a release still work', async () => {
    const h = await start({ server: { maxConnections: 3 } });
    const connections = () => new Promise<number>((resolve, reject) => h.runtime.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    const held = [await open(h), await open(h), await open(h)];
    await eventually(async () => (await connections()) === 3, 'three connections open');

    const excess = await open(h);
    const { text } = await untilClosed(excess);
    expect(text).toBe('');

    const post = (socket: Socket, id: string) => {
      const body = JSON.stringify(h.commercetools.upsertCustomer(id, { email: `${id}@example.com` }));
      return exchange(socket, requestText('POST', PATH, { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, body));
    };
    expect((await post(held[0]!, 'on-held')).status).toBe(202);

    held[1]!.destroy();
    await eventually(async () => (await connections()) === 2, 'the released connection counted out');
    expect((await post(await open(h), 'after-release')).status).toBe(202);
    await eventually(() => h.sink.records.has('customer/on-held') && h.sink.records.has('customer/after-release'), 'both synced');
  });
});

describe.each(testStores)('empty and bodiless requests on $name', (testStore) => {
  const key = oidcKey();
  const audience = 'https://ctbridge.example.com/v1/ingest/commercetools';
  const email = 'commercetools-push@my-project.iam.gserviceaccount.com';
  const token = () => {
    const nowS = Math.floor(Date.now() / 1000);
    return mintJwt(key, { iss: 'https://accounts.google.com', aud: audience, email, email_verified: true, iat: nowS - 10, exp: nowS + 600 });
  };
  const kinds: Array<{ name: string; auth: Record<string, unknown>; credential: (body: string) => Record<string, string> }> = [
    { name: 'bearer', auth: { type: 'bearer', token: INGEST_TOKEN }, credential: () => ({ authorization: `Bearer ${INGEST_TOKEN}` }) },
    { name: 'hmac', auth: { type: 'hmac', secret: HMAC_SECRET }, credential: (body) => ({ 'x-ctbridge-signature': sign(body) }) },
    { name: 'oidc', auth: { type: 'oidc', jwksUrl: 'https://www.googleapis.com/oauth2/v3/certs', audience, email }, credential: () => ({ authorization: `Bearer ${token()}` }) },
  ];
  const framings: Array<{ name: string; headers: Record<string, string>; body: string }> = [
    { name: 'no body, no Content-Type, no Content-Length', headers: {}, body: '' },
    { name: 'Content-Length: 0 without Content-Type', headers: { 'content-length': '0' }, body: '' },
    { name: 'Content-Length: 0 with Content-Type', headers: { 'content-length': '0', 'content-type': 'application/json' }, body: '' },
    { name: 'chunked and empty, without Content-Type', headers: { 'transfer-encoding': 'chunked' }, body: '0\r\n\r\n' },
    { name: 'chunked and empty, with Content-Type', headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/json' }, body: '0\r\n\r\n' },
  ];

  let store: string;
  beforeAll(async () => {
    store = await testStore.create();
  });
  afterAll(() => testStore.cleanup());

  it.each(kinds)('$name: 400 empty-body for every framing of nothing, and the server keeps answering', async ({ auth, credential }) => {
    const h = await startHarness({ storeUrl: store, server: { ingest: { auth } as never }, ingestAuth: { fetchJwks: () => Promise.resolve({ keys: [key.jwk] }) } });
    try {
      for (const framing of framings) {
        const socket = await connect(h.runtime.url!);
        try {
          const response = await exchange(socket, requestText('POST', PATH, { ...credential(''), ...framing.headers }, framing.body));
          expectProblem(response, 400, 'empty-body');
          expect(response.body, framing.name).not.toMatch(/at .*\.ts:\d+/);
        } finally {
          socket.destroy();
        }
      }
      const id = `after-empty-${randomUUID()}`;
      const body = JSON.stringify(h.commercetools.upsertCustomer(id, { email: 'after-empty@example.com' }));
      const response = await fetch(`${h.runtime.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', ...credential(body) }, body });
      expect(response.status).toBe(202);
      await eventually(() => h.sink.records.has(`customer/${id}`), 'a message after the empty ones synced');
    } finally {
      await h.stop();
    }
  });
});
