// Ingest authentication: bearer, HMAC over the raw body (with and without a signed timestamp), Google OIDC tokens
// against a locally generated RSA key pair served as a JWKS through the injected fetcher, and Amazon SNS message
// signatures against a self-signed certificate served by a local HTTP server through the injected fetcher.
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, parseConfigText } from '../src/config/load.ts';
import type { IngestAuthConfig } from '../src/config/schema.ts';
import { ingestAuthSchema } from '../src/config/schema.ts';
import { createIngestAuth, createIngestAuthenticator } from '../src/ingest/auth.ts';
import { selfSignedCertificate, SNS_CERT_URL, SNS_TOPIC, snsMessage, startCertificateServer } from './support/auth-fixtures.ts';

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
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience, ...(options.email === undefined ? { allowAnyIdentity: true } : { email: options.email }) }), {
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
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience, allowAnyIdentity: true }), {
      now: () => start,
      fetchJwks: () => Promise.reject(new Error('connect ECONNREFUSED')),
    });
    await expect(auth({ headers: { authorization: `Bearer ${jwt(claims())}` }, rawBody: body })).resolves.toEqual({
      ok: false,
      reason: 'could not fetch JWKS: connect ECONNREFUSED',
    });
  });

  test('a JWKS endpoint answering an HTTP error gives a clear reason', async () => {
    const auth = createIngestAuthenticator(config({ type: 'oidc', jwksUrl, audience, allowAnyIdentity: true }), {
      now: () => start,
      fetchJwks: () => Promise.resolve(new Response('nope', { status: 503 })),
    });
    await expect(auth({ headers: { authorization: `Bearer ${jwt(claims())}` }, rawBody: body })).resolves.toEqual({
      ok: false,
      reason: 'could not fetch JWKS: HTTP 503',
    });
  });
});

describe('hmac with a signed timestamp', () => {
  const secret = 'an-hmac-secret-of-some-length';
  const now = Date.parse('2026-03-01T12:00:00Z');
  const nowS = Math.floor(now / 1000);
  const auth = createIngestAuthenticator(config({ type: 'hmac', secret, timestampHeader: 'X-Ctbridge-Timestamp', toleranceSeconds: 300 }), { now: () => now });
  const signature = (timestamp: string | number, data: Buffer = body) => `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(data).digest('hex')}`;
  const check = (headers: Headers, data: Buffer = body) => auth({ headers, rawBody: data });

  test('a signature over `${timestamp}.${body}` within the tolerance, either way, is accepted', async () => {
    for (const timestamp of [nowS, nowS - 300, nowS + 300]) {
      await expect(check({ 'x-ctbridge-signature': signature(timestamp), 'x-ctbridge-timestamp': String(timestamp) })).resolves.toEqual({ ok: true });
    }
  });

  test.each<[string, () => Headers, string]>([
    ['too old', () => ({ 'x-ctbridge-signature': signature(nowS - 301), 'x-ctbridge-timestamp': String(nowS - 301) }), 'X-Ctbridge-Timestamp is more than 300 s old'],
    ['in the future', () => ({ 'x-ctbridge-signature': signature(nowS + 301), 'x-ctbridge-timestamp': String(nowS + 301) }), 'X-Ctbridge-Timestamp is more than 300 s in the future'],
    ['missing', () => ({ 'x-ctbridge-signature': signature(nowS) }), 'missing X-Ctbridge-Timestamp header'],
    ['tampered (signed for another time)', () => ({ 'x-ctbridge-signature': signature(nowS - 200), 'x-ctbridge-timestamp': String(nowS) }), 'signature mismatch'],
    ['signed over the body alone', () => ({ 'x-ctbridge-signature': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`, 'x-ctbridge-timestamp': String(nowS) }), 'signature mismatch'],
    ['not Unix seconds', () => ({ 'x-ctbridge-signature': signature('2026-03-01T12:00:00Z'), 'x-ctbridge-timestamp': '2026-03-01T12:00:00Z' }), 'X-Ctbridge-Timestamp header is not a time in Unix seconds'],
    ['given twice', () => ({ 'x-ctbridge-signature': signature(nowS), 'x-ctbridge-timestamp': [String(nowS), String(nowS)] }), 'multiple X-Ctbridge-Timestamp headers'],
  ])('rejected: timestamp %s', async (_name, headers, reason) => {
    await expect(check(headers())).resolves.toEqual({ ok: false, reason });
  });

  test('the timestamp is judged from the headers alone, before the body is read', async () => {
    const steps = createIngestAuth(config({ type: 'hmac', secret, timestampHeader: 'X-Ctbridge-Timestamp' }), { now: () => now });
    expect(steps.coversBody).toBe(true);
    await expect(steps.checkHeaders({ 'x-ctbridge-signature': signature(nowS - 3600), 'x-ctbridge-timestamp': String(nowS - 3600) })).resolves.toMatchObject({ ok: false });
    await expect(steps.checkHeaders({ 'x-ctbridge-signature': signature(nowS), 'x-ctbridge-timestamp': String(nowS) })).resolves.toEqual({ ok: true });
  });
});

describe('oidc identity', () => {
  const base = { type: 'oidc', jwksUrl: 'https://www.googleapis.com/oauth2/v3/certs', audience: 'https://ctbridge.example.com' };
  const yaml = (auth: string) => `commercetools:
  projectKey: demo
  region: europe-west1.gcp
  clientId: id
  clientSecret: secret
server:
  ingest:
    auth:
${auth}`;

  test('a configuration without email or allowAnyIdentity fails, naming the path', () => {
    const text = yaml('      type: oidc\n      jwksUrl: https://www.googleapis.com/oauth2/v3/certs\n      audience: https://ctbridge.example.com\n');
    expect(() => parseConfigText(text, 'ctbridge.yaml', {})).toThrow(ConfigError);
    expect(() => parseConfigText(text, 'ctbridge.yaml', {})).toThrow(/^ctbridge\.yaml: server\.ingest\.auth\.email: set email to the push subscription's service account \(or allowAnyIdentity: true/);
    expect(ingestAuthSchema.safeParse(base).success).toBe(false);
  });

  test('email and allowAnyIdentity: true together fail too; either alone is accepted', () => {
    const both = ingestAuthSchema.safeParse({ ...base, email: 'a@p.iam.gserviceaccount.com', allowAnyIdentity: true });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]?.path).toEqual(['allowAnyIdentity']);
    expect(ingestAuthSchema.safeParse({ ...base, email: 'a@p.iam.gserviceaccount.com' }).success).toBe(true);
    expect(ingestAuthSchema.safeParse({ ...base, allowAnyIdentity: true }).success).toBe(true);
  });

  test('with email, a token of another identity is refused; with allowAnyIdentity, any identity is accepted', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k', alg: 'RS256', use: 'sig' };
    const now = Date.parse('2026-03-01T12:00:00Z');
    const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const token = (email: string) => {
      const input = `${b64url({ alg: 'RS256', kid: 'k' })}.${b64url({ iss: 'https://accounts.google.com', aud: base.audience, email, email_verified: true, exp: now / 1000 + 600 })}`;
      return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    };
    const options = { now: () => now, fetchJwks: () => Promise.resolve({ keys: [jwk] }) };
    const pinned = createIngestAuthenticator(config({ ...base, email: 'push@my-project.iam.gserviceaccount.com' }), options);
    const anyone = createIngestAuthenticator(config({ ...base, allowAnyIdentity: true }), options);
    const headers = (email: string) => ({ authorization: `Bearer ${token(email)}` });
    await expect(pinned({ headers: headers('push@my-project.iam.gserviceaccount.com'), rawBody: body })).resolves.toEqual({ ok: true });
    await expect(pinned({ headers: headers('attacker@gmail.com'), rawBody: body })).resolves.toEqual({ ok: false, reason: 'token email does not match the configured service account' });
    await expect(anyone({ headers: headers('attacker@gmail.com'), rawBody: body })).resolves.toEqual({ ok: true });
  });
});

describe('sns', () => {
  const { pem, privateKey } = selfSignedCertificate({ commonName: 'sns.amazonaws.com' });
  const other = selfSignedCertificate({ commonName: 'sns.amazonaws.com' });
  let certificates: Awaited<ReturnType<typeof startCertificateServer>>;
  beforeAll(async () => {
    certificates = await startCertificateServer(pem);
  });
  afterAll(() => certificates.close());

  const now = Date.parse('2026-03-01T12:00:00Z');
  function setup(input: Record<string, unknown> = {}) {
    certificates.fetched.length = 0;
    const auth = createIngestAuthenticator(config({ type: 'sns', ...input }), { now: () => now, fetchCertificate: (url) => certificates.fetchCertificate(url) });
    const check = (message: Record<string, string>, headers: Headers = {}) =>
      auth({ headers: { 'x-amz-sns-message-type': message.Type, ...headers }, rawBody: Buffer.from(JSON.stringify(message)) });
    return { auth, check };
  }

  test('valid SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA) signatures are accepted, with and without Subject', async () => {
    const { check } = setup();
    await expect(check(snsMessage(privateKey, { version: '1' }))).resolves.toEqual({ ok: true });
    await expect(check(snsMessage(privateKey, { version: '2' }))).resolves.toEqual({ ok: true });
    await expect(check(snsMessage(privateKey, { version: '2', subject: 'a subject' }))).resolves.toEqual({ ok: true });
    await expect(check(snsMessage(privateKey, { version: '1', type: 'SubscriptionConfirmation' }))).resolves.toEqual({ ok: true });
    await expect(check(snsMessage(privateKey, { version: '2', type: 'UnsubscribeConfirmation' }))).resolves.toEqual({ ok: true });
  });

  test('the certificate is fetched once by URL and cached', async () => {
    const { check } = setup();
    await expect(check(snsMessage(privateKey))).resolves.toEqual({ ok: true });
    await expect(check(snsMessage(privateKey, { version: '1' }))).resolves.toEqual({ ok: true });
    expect(certificates.fetched).toEqual([SNS_CERT_URL]);
  });

  test.each<[string, (m: Record<string, string>) => Record<string, string>, string]>([
    ['a tampered Message', (m) => ({ ...m, Message: `${m.Message} ` }), 'SNS signature is invalid'],
    ['a tampered TopicArn', (m) => ({ ...m, TopicArn: 'arn:aws:sns:eu-west-1:123456789012:other' }), 'SNS signature is invalid'],
    ['an added Subject', (m) => ({ ...m, Subject: 'injected' }), 'SNS signature is invalid'],
    ['SignatureVersion 1 claimed for a SHA256 signature', (m) => ({ ...m, SignatureVersion: '1' }), 'SNS signature is invalid'],
    ['SignatureVersion 3', (m) => ({ ...m, SignatureVersion: '3' }), 'unsupported SignatureVersion (expected 1 or 2)'],
    ['no Signature', ({ Signature: _, ...m }) => m, 'the SNS message has no Signature'],
  ])('rejected: %s', async (_name, change, reason) => {
    const { check } = setup();
    await expect(check(change(snsMessage(privateKey)))).resolves.toEqual({ ok: false, reason });
  });

  test('a message signed by another key (the certificate at the URL is AWS\'s, the signature is not) is rejected', async () => {
    const { check } = setup();
    await expect(check(snsMessage(other.privateKey))).resolves.toEqual({ ok: false, reason: 'SNS signature is invalid' });
  });

  test.each([
    ['http, not https', 'http://sns.eu-west-1.amazonaws.com/cert.pem', 'SigningCertURL is not https'],
    ['another host', 'https://evil.example.com/cert.pem', 'SigningCertURL is not on an Amazon SNS host'],
    ['an SNS-looking subdomain of another host', 'https://sns.eu-west-1.amazonaws.com.evil.example.com/cert.pem', 'SigningCertURL is not on an Amazon SNS host'],
    ['another AWS service', 'https://s3.eu-west-1.amazonaws.com/bucket/cert.pem', 'SigningCertURL is not on an Amazon SNS host'],
    ['credentials in the URL', 'https://user:pw@sns.eu-west-1.amazonaws.com/cert.pem', 'SigningCertURL is not on an Amazon SNS host'],
    ['another port', 'https://sns.eu-west-1.amazonaws.com:8443/cert.pem', 'SigningCertURL is not on an Amazon SNS host'],
    ['not a URL', 'sns.eu-west-1.amazonaws.com/cert.pem', 'SigningCertURL is not a URL'],
  ])('SigningCertURL with %s is rejected before anything is fetched', async (_name, certUrl, reason) => {
    const { check } = setup();
    // Signed correctly over its fields: only the URL is wrong.
    await expect(check(snsMessage(privateKey, { certUrl }))).resolves.toEqual({ ok: false, reason });
    expect(certificates.fetched).toEqual([]);
  });

  test('an SNS host in China is accepted', async () => {
    const { check } = setup();
    const certUrl = 'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem';
    await expect(check(snsMessage(privateKey, { certUrl }))).resolves.toEqual({ ok: true });
    expect(certificates.fetched).toEqual([certUrl]);
  });

  test('with topicArns, a message of another topic is rejected before anything is fetched', async () => {
    const { check } = setup({ topicArns: [SNS_TOPIC] });
    await expect(check(snsMessage(privateKey, { topic: 'arn:aws:sns:eu-west-1:123456789012:other' }))).resolves.toEqual({ ok: false, reason: 'the message is from a topic that is not configured (topicArns)' });
    expect(certificates.fetched).toEqual([]);
    await expect(check(snsMessage(privateKey))).resolves.toEqual({ ok: true });
  });

  test('the x-amz-sns-message-type header is required, and must match the message Type', async () => {
    const { auth, check } = setup();
    const message = snsMessage(privateKey);
    await expect(auth({ headers: {}, rawBody: Buffer.from(JSON.stringify(message)) })).resolves.toEqual({ ok: false, reason: 'missing x-amz-sns-message-type header' });
    await expect(check(message, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' })).resolves.toEqual({ ok: false, reason: 'the message Type differs from x-amz-sns-message-type' });
  });

  test('a body that is not an SNS message is rejected', async () => {
    const { auth } = setup();
    const headers = { 'x-amz-sns-message-type': 'Notification' };
    await expect(auth({ headers, rawBody: Buffer.from('{"notificationType":"Message"}') })).resolves.toMatchObject({ ok: false, reason: 'the body is not an SNS message (Type)' });
    await expect(auth({ headers, rawBody: Buffer.from('not json') })).resolves.toMatchObject({ ok: false });
  });

  test('a certificate that cannot be fetched is a retryable refusal, not retried at once', async () => {
    let calls = 0;
    const auth = createIngestAuthenticator(config({ type: 'sns' }), {
      now: () => now,
      fetchCertificate: () => {
        calls += 1;
        return Promise.resolve(new Response('no', { status: 404 }));
      },
    });
    const message = snsMessage(privateKey);
    const check = () => auth({ headers: { 'x-amz-sns-message-type': 'Notification' }, rawBody: Buffer.from(JSON.stringify(message)) });
    await expect(check()).resolves.toEqual({ ok: false, retryable: true, reason: 'the SNS signing certificate could not be fetched: HTTP 404' });
    await expect(check()).resolves.toMatchObject({ ok: false, retryable: true });
    expect(calls).toBe(1);
  });

  test('certificate URLs a forger makes up do not become a stream of fetches: at most 10 a minute', async () => {
    const clock = { now };
    const fetched: string[] = [];
    const auth = createIngestAuthenticator(config({ type: 'sns' }), {
      now: () => clock.now,
      fetchCertificate: (url) => {
        fetched.push(url);
        return Promise.resolve(new Response('no', { status: 404 }));
      },
    });
    const check = (i: number) => auth({ headers: { 'x-amz-sns-message-type': 'Notification' }, rawBody: Buffer.from(JSON.stringify(snsMessage(privateKey, { certUrl: `https://sns.eu-west-1.amazonaws.com/made-up-${i}.pem` }))) });
    for (let i = 0; i < 10; i++) await expect(check(i)).resolves.toMatchObject({ ok: false, retryable: true });
    await expect(check(10)).resolves.toEqual({ ok: false, retryable: true, reason: 'too many SNS signing certificates fetched in the last minute' });
    expect(fetched).toHaveLength(10);
    clock.now += 60_000;
    await expect(check(11)).resolves.toMatchObject({ ok: false, reason: 'the SNS signing certificate could not be fetched: HTTP 404' });
    expect(fetched).toHaveLength(11);
  });

  test('an oversized certificate response is refused', async () => {
    const auth = createIngestAuthenticator(config({ type: 'sns' }), { now: () => now, fetchCertificate: () => Promise.resolve(new Response('x'.repeat(100_000))) });
    const result = await auth({ headers: { 'x-amz-sns-message-type': 'Notification' }, rawBody: Buffer.from(JSON.stringify(snsMessage(privateKey))) });
    expect(result).toEqual({ ok: false, retryable: true, reason: 'the SNS signing certificate could not be fetched: the certificate is too large' });
  });

  test('an expired certificate is refused', async () => {
    const expired = selfSignedCertificate({ commonName: 'sns.amazonaws.com', validFrom: new Date('2020-01-01T00:00:00Z'), validTo: new Date('2021-01-01T00:00:00Z') });
    const auth = createIngestAuthenticator(config({ type: 'sns' }), { now: () => now, fetchCertificate: () => Promise.resolve(new Response(expired.pem)) });
    const result = await auth({ headers: { 'x-amz-sns-message-type': 'Notification' }, rawBody: Buffer.from(JSON.stringify(snsMessage(expired.privateKey))) });
    expect(result).toEqual({ ok: false, reason: 'the SNS signing certificate is not valid now' });
  });
});
