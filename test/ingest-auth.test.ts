// Ingest authentication: bearer, HMAC over the raw body and Google OIDC tokens, against a locally generated
// RSA key pair served as a JWKS through the injected fetcher.
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { IngestAuthConfig } from '../src/config/schema.ts';
import { ingestAuthSchema } from '../src/config/schema.ts';
import { createIngestAuthenticator } from '../src/ingest/auth.ts';

type Headers = Record<string, string | string[] | undefined>;
const body = Buffer.from('{"notificationType":"Message","id":"m-1"}', 'utf8');

function config(input: unknown): IngestAuthConfig {
  return ingestAuthSchema.parse(input);
}

describe('none', () => {
  test('accepts anything', async () => {
    const auth = createIngestAuthenticator(config({ type: 'none' }));
    await expect(auth({ headers: {}, rawBody: body })).resolves.toEqual({ ok: true });
  });
});

describe('bearer', () => {
  const token = 'a-long-enough-ingest-token-123';
  const auth = createIngestAuthenticator(config({ type: 'bearer', token }));
  const check = (headers: Headers) => auth({ headers, rawBody: body });

  test('the right token is accepted, whatever the scheme capitalisation', async () => {
    await expect(check({ authorization: `Bearer ${token}` })).resolves.toEqual({ ok: true });
    await expect(check({ authorization: `bearer ${token}` })).resolves.toEqual({ ok: true });
  });

  test('a wrong token is rejected without echoing either token', async () => {
    const result = await check({ authorization: 'Bearer a-long-enough-ingest-token-124' });
    expect(result).toEqual({ ok: false, reason: 'bearer token mismatch' });
  });

  test('a prefix or extension of the token is rejected', async () => {
    await expect(check({ authorization: `Bearer ${token.slice(0, -1)}` })).resolves.toMatchObject({ ok: false });
    await expect(check({ authorization: `Bearer ${token}x` })).resolves.toMatchObject({ ok: false });
  });

  test('missing, empty, other schemes and repeated headers are rejected with a precise reason', async () => {
    await expect(check({})).resolves.toEqual({ ok: false, reason: 'missing Authorization header' });
    await expect(check({ authorization: '' })).resolves.toEqual({ ok: false, reason: 'missing Authorization header' });
    await expect(check({ authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` })).resolves.toEqual({
      ok: false,
      reason: 'Authorization header is not a Bearer token',
    });
    await expect(check({ authorization: 'Bearer' })).resolves.toMatchObject({ ok: false, reason: expect.stringContaining('malformed Bearer token') as unknown });
    await expect(check({ authorization: [`Bearer ${token}`, `Bearer ${token}`] })).resolves.toEqual({ ok: false, reason: 'multiple Authorization headers' });
  });
});

describe('hmac', () => {
  const secret = 'an-hmac-secret-of-some-length';
  const sign256 = (data: Buffer, encoding: 'hex' | 'base64') => createHmac('sha256', secret).update(data).digest(encoding);

  test('default header, hex encoding and sha256= prefix: the signature of the raw bytes is accepted', async () => {
    const auth = createIngestAuthenticator(config({ type: 'hmac', secret }));
    await expect(auth({ headers: { 'x-ctbridge-signature': `sha256=${sign256(body, 'hex')}` }, rawBody: body })).resolves.toEqual({ ok: true });
    await expect(auth({ headers: { 'x-ctbridge-signature': `sha256=${sign256(body, 'hex').toUpperCase()}` }, rawBody: body })).resolves.toEqual({ ok: true });
  });

  test('a body that differs by one byte is rejected', async () => {
    const auth = createIngestAuthenticator(config({ type: 'hmac', secret }));
    const tampered = Buffer.from(body);
    const at = tampered.length - 2;
    tampered.writeUInt8(tampered.readUInt8(at) ^ 1, at);
    const result = await auth({ headers: { 'x-ctbridge-signature': `sha256=${sign256(body, 'hex')}` }, rawBody: tampered });
    expect(result).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  test('the signature is over bytes, not over re-serialised JSON', async () => {
    const auth = createIngestAuthenticator(config({ type: 'hmac', secret }));
    const spaced = Buffer.from('{ "notificationType": "Message", "id": "m-1" }', 'utf8');
    const result = await auth({ headers: { 'x-ctbridge-signature': `sha256=${sign256(body, 'hex')}` }, rawBody: spaced });
    expect(result).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  test('configured header, base64 encoding, no prefix', async () => {
    const auth = createIngestAuthenticator(config({ type: 'hmac', secret, header: 'X-Signature', encoding: 'base64', prefix: '' }));
    await expect(auth({ headers: { 'x-signature': sign256(body, 'base64') }, rawBody: body })).resolves.toEqual({ ok: true });
    await expect(auth({ headers: { 'x-signature': sign256(Buffer.from('other'), 'base64') }, rawBody: body })).resolves.toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
  });

  test('missing header, wrong prefix, malformed or truncated signatures are rejected', async () => {
    const auth = createIngestAuthenticator(config({ type: 'hmac', secret }));
    const check = (value: string | undefined) => auth({ headers: { 'x-ctbridge-signature': value }, rawBody: body });
    const good = sign256(body, 'hex');
    await expect(check(undefined)).resolves.toEqual({ ok: false, reason: 'missing X-Ctbridge-Signature header' });
    await expect(check(good)).resolves.toEqual({ ok: false, reason: 'X-Ctbridge-Signature header does not start with "sha256="' });
    await expect(check(`sha256=${good.slice(0, -1)}`)).resolves.toMatchObject({ ok: false, reason: expect.stringContaining('not a hex-encoded signature') as unknown });
    await expect(check(`sha256=${good.slice(0, -2)}`)).resolves.toEqual({ ok: false, reason: 'signature mismatch' });
    await expect(check('sha256=zz')).resolves.toMatchObject({ ok: false });
  });
});

describe('oidc', () => {
  const audience = 'https://ctbridge.example.com/v1/ingest/commercetools';
  const jwksUrl = 'https://www.googleapis.com/oauth2/v3/certs';
  const start = Date.parse('2025-01-01T12:00:00Z');

  function keyPair(kid: string): { kid: string; privateKey: KeyObject; jwk: Record<string, unknown> } {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
  }
  const key1 = keyPair('key-1');
  const key2 = keyPair('key-2');
  const stranger = keyPair('key-1');

  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  function jwt(claims: Record<string, unknown>, options: { key?: KeyObject; header?: Record<string, unknown> } = {}): string {
    const header = options.header ?? { alg: 'RS256', kid: 'key-1', typ: 'JWT' };
    const input = `${b64url(header)}.${b64url(claims)}`;
    const signature = sign('RSA-SHA256', Buffer.from(input), options.key ?? key1.privateKey).toString('base64url');
    return `${input}.${signature}`;
  }

  function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const nowS = Math.floor(start / 1000);
    return {
      iss: 'https://accounts.google.com',
      aud: audience,
      azp: '1234567890',
      sub: '1234567890',
      email: 'commercetools-push@my-project.iam.gserviceaccount.com',
      email_verified: true,
      iat: nowS - 10,
      exp: nowS + 3590,
      ...overrides,
    };
  }

  function setup(options: { email?: string; keys?: () => Record<string, unknown>[]; cacheControl?: string } = {}) {
    const clock = { now: start };
    const fetched: string[] = [];
    let keys = options.keys ?? (() => [key1.jwk]);
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience, ...(options.email === undefined ? {} : { email: options.email }) }), {
      now: () => clock.now,
      fetchJwks: (url) => {
        fetched.push(url);
        const document = { keys: keys() };
        return Promise.resolve(
          options.cacheControl === undefined
            ? document
            : new Response(JSON.stringify(document), { headers: { 'content-type': 'application/json', 'cache-control': options.cacheControl } }),
        );
      },
    });
    const check = (token: string) => auth({ headers: { authorization: `Bearer ${token}` }, rawBody: body });
    return { auth, check, clock, fetched, setKeys: (next: () => Record<string, unknown>[]) => (keys = next) };
  }

  test('a valid Google-style token is accepted', async () => {
    const { check, fetched } = setup();
    await expect(check(jwt(claims()))).resolves.toEqual({ ok: true });
    expect(fetched).toEqual([jwksUrl]);
  });

  test('an array audience containing ours and the short issuer form are accepted', async () => {
    const { check } = setup();
    await expect(check(jwt(claims({ aud: ['other', audience], iss: 'accounts.google.com' })))).resolves.toEqual({ ok: true });
  });

  test.each<[string, () => string, string]>([
    ['wrong audience', () => jwt(claims({ aud: 'https://elsewhere.example.com' })), 'token audience does not match'],
    ['wrong issuer', () => jwt(claims({ iss: 'https://evil.example.com' })), 'token issuer is not accepted'],
    ['expired beyond the skew', () => jwt(claims({ exp: Math.floor(start / 1000) - 61 })), 'token expired'],
    ['no exp', () => jwt(claims({ exp: undefined })), 'token has no exp'],
    ['not yet valid', () => jwt(claims({ nbf: Math.floor(start / 1000) + 120 })), 'token not yet valid (nbf)'],
    ['issued in the future', () => jwt(claims({ iat: Math.floor(start / 1000) + 120 })), 'token issued in the future (iat)'],
    ['signed by another key with the same kid', () => jwt(claims(), { key: stranger.privateKey }), 'token signature is invalid'],
    ['tampered payload', () => {
      const [h, , s] = jwt(claims()).split('.');
      return `${h}.${b64url(claims({ aud: audience, sub: 'someone-else' }))}.${s}`;
    }, 'token signature is invalid'],
    ['unknown kid', () => jwt(claims(), { header: { alg: 'RS256', kid: 'key-9' } }), 'token signed with an unknown key (kid)'],
    ['no kid', () => jwt(claims(), { header: { alg: 'RS256' } }), 'token has no kid'],
    ['alg none', () => `${b64url({ alg: 'none', kid: 'key-1' })}.${b64url(claims())}.`, 'token algorithm is not RS256'],
    ['an empty signature', () => `${b64url({ alg: 'RS256', kid: 'key-1' })}.${b64url(claims())}.`, 'malformed token: signature is not base64url'],
    ['alg none with a signature part', () => `${b64url({ alg: 'none', kid: 'key-1' })}.${b64url(claims())}.AAAA`, 'token algorithm is not RS256'],
    ['HS256', () => jwt(claims(), { header: { alg: 'HS256', kid: 'key-1' } }), 'token algorithm is not RS256'],
    ['not a JWT', () => 'not-a-jwt', 'malformed token: expected a JWT with three parts'],
    ['garbage header', () => `%%%.${b64url(claims())}.AAAA`, 'malformed token: header is not base64url-encoded JSON'],
  ])('rejected: %s', async (_name, token, reason) => {
    const { check } = setup();
    const presented = token();
    const result = await check(presented);
    expect(result).toEqual({ ok: false, reason });
    if (!result.ok) expect(result.reason).not.toContain(presented.slice(0, 20));
  });

  test('expiry is judged with 60 s of clock skew', async () => {
    const { check } = setup();
    await expect(check(jwt(claims({ exp: Math.floor(start / 1000) - 30 })))).resolves.toEqual({ ok: true });
  });

  test('missing Authorization header', async () => {
    const { auth } = setup();
    await expect(auth({ headers: {}, rawBody: body })).resolves.toEqual({ ok: false, reason: 'missing Authorization header' });
  });

  test('configured service account email must match and be verified', async () => {
    const email = 'commercetools-push@my-project.iam.gserviceaccount.com';
    const { check } = setup({ email });
    await expect(check(jwt(claims()))).resolves.toEqual({ ok: true });
    await expect(check(jwt(claims({ email: 'someone@my-project.iam.gserviceaccount.com' })))).resolves.toEqual({
      ok: false,
      reason: 'token email does not match the configured service account',
    });
    await expect(check(jwt(claims({ email_verified: false })))).resolves.toEqual({ ok: false, reason: 'token email is not verified' });
  });

  test('the JWKS is cached and refetched when its Cache-Control max-age runs out', async () => {
    const { check, clock, fetched } = setup({ cacheControl: 'public, max-age=120, must-revalidate' });
    await check(jwt(claims()));
    clock.now += 60_000;
    await expect(check(jwt(claims()))).resolves.toEqual({ ok: true });
    expect(fetched).toHaveLength(1);
    clock.now += 61_000;
    await expect(check(jwt(claims({ exp: Math.floor(clock.now / 1000) + 3600 })))).resolves.toEqual({ ok: true });
    expect(fetched).toHaveLength(2);
  });

  test('an unknown kid refetches the JWKS at most once per 30 s, which picks up a rotated key', async () => {
    const { check, clock, fetched, setKeys } = setup();
    await expect(check(jwt(claims()))).resolves.toEqual({ ok: true });
    setKeys(() => [key1.jwk, key2.jwk]);
    const rotated = () => jwt(claims({ exp: Math.floor(clock.now / 1000) + 3600 }), { key: key2.privateKey, header: { alg: 'RS256', kid: 'key-2' } });

    // Just fetched: an unknown kid does not trigger another fetch yet.
    await expect(check(rotated())).resolves.toEqual({ ok: false, reason: 'token signed with an unknown key (kid)' });
    expect(fetched).toHaveLength(1);

    clock.now += 31_000;
    await expect(check(rotated())).resolves.toEqual({ ok: true });
    expect(fetched).toHaveLength(2);

    // A flood of made-up kids does not turn into a flood of fetches.
    for (let i = 0; i < 5; i++) {
      await expect(check(jwt(claims(), { header: { alg: 'RS256', kid: `made-up-${i}` } }))).resolves.toMatchObject({ ok: false });
    }
    expect(fetched).toHaveLength(2);
  });

  test('a JWKS endpoint that fails gives a clear reason', async () => {
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience }), {
      now: () => start,
      fetchJwks: () => Promise.reject(new Error('connect ECONNREFUSED')),
    });
    await expect(auth({ headers: { authorization: `Bearer ${jwt(claims())}` }, rawBody: body })).resolves.toEqual({
      ok: false,
      reason: 'could not fetch JWKS: connect ECONNREFUSED',
    });
  });

  test('a JWKS endpoint answering an HTTP error gives a clear reason', async () => {
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience }), {
      now: () => start,
      fetchJwks: () => Promise.resolve(new Response('nope', { status: 503 })),
    });
    await expect(auth({ headers: { authorization: `Bearer ${jwt(claims())}` }, rawBody: body })).resolves.toEqual({
      ok: false,
      reason: 'could not fetch JWKS: HTTP 503',
    });
  });
});
