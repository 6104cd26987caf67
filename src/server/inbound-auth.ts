// Authentication of a destination's webhooks (POST /v1/inbound/<destination>), per the kind its `inbound.auth` names
// and its connector declares: monday's JWT (Authorization: <JWT>, HS256 with the app's Signing Secret, `exp` and,
// when configured, `aud` checked — developer.monday.com/apps/docs/authorization-header), an HMAC-SHA256 over the raw
// body with a shared secret (any system that signs), Momentis' timestamped HMAC (`Momentis-Signature: t=<unix
// seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, spec/momentis: a `t` outside the tolerance is refused, so
// a captured delivery cannot be replayed later), or a shared secret in a header. Only node:crypto; comparisons in
// constant time; reasons never hold what was presented.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { InboundAuth } from '../config/ownership.ts';

export type InboundAuthResult = { ok: true } | { ok: false; reason: string };

const OK: InboundAuthResult = { ok: true };
const fail = (reason: string): InboundAuthResult => ({ ok: false, reason });
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();
const sameSecret = (presented: string, secret: string) => timingSafeEqual(sha256(presented), sha256(secret));

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}

export function checkInboundAuth(auth: InboundAuth, request: { headers: Record<string, string | string[] | undefined>; rawBody: Buffer }, nowMs: number): InboundAuthResult {
  switch (auth.type) {
    case 'monday':
      return checkMondayJwt(header(request.headers, 'authorization'), auth.signingSecret, auth.audience, nowMs);
    case 'sharedSecret': {
      const presented = header(request.headers, auth.header);
      if (presented === undefined) return fail(`missing ${auth.header} header`);
      return sameSecret(presented, auth.secret) ? OK : fail('shared secret mismatch');
    }
    case 'momentis':
      return checkMomentisSignature(header(request.headers, auth.header), request.rawBody, auth.secret, auth.toleranceSeconds, nowMs);
    case 'hmac': {
      const presented = header(request.headers, auth.header);
      if (presented === undefined) return fail(`missing ${auth.header} header`);
      if (!presented.startsWith(auth.prefix)) return fail(`the ${auth.header} header does not start with "${auth.prefix}"`);
      const text = presented.slice(auth.prefix.length);
      const signature = auth.encoding === 'hex' ? (/^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : undefined) : /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : undefined;
      if (!signature) return fail(`the ${auth.header} header is not ${auth.encoding}`);
      const expected = createHmac('sha256', auth.secret).update(request.rawBody).digest();
      return signature.length === expected.length && timingSafeEqual(signature, expected) ? OK : fail('signature mismatch');
    }
  }
}

/** monday sends the JWT itself as the Authorization value (no scheme); a `Bearer ` prefix is tolerated. */
export function checkMondayJwt(authorization: string | undefined, secret: string, audience: string | undefined, nowMs: number): InboundAuthResult {
  if (!authorization) return fail('missing Authorization header (monday signs webhooks with a JWT)');
  const token = authorization.replace(/^Bearer\s+/i, '');
  const parts = token.split('.');
  if (parts.length !== 3) return fail('the Authorization header is not a JWT');
  const [head, payload, signature] = parts as [string, string, string];
  let header: { alg?: unknown };
  let claims: { exp?: unknown; aud?: unknown };
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: unknown };
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown; aud?: unknown };
  } catch {
    return fail('the JWT is not readable');
  }
  if (header.alg !== 'HS256') return fail('the JWT is not signed with HS256');
  const expected = createHmac('sha256', secret).update(`${head}.${payload}`).digest();
  const presented = Buffer.from(signature, 'base64url');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return fail('JWT signature mismatch');
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs) return fail('the JWT has expired');
  if (audience !== undefined && claims.aud !== audience) return fail('the JWT is for another audience');
  return OK;
}

/** A JWT as monday signs one (HS256), for the simulator and tests. */
export function signMondayJwt(claims: Record<string, unknown>, secret: string): string {
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${signature}`;
}

/** Momentis' signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (more v1 allowed, for a secret being rolled). */
export function checkMomentisSignature(presented: string | undefined, rawBody: Buffer, secret: string, toleranceSeconds: number, nowMs: number): InboundAuthResult {
  if (presented === undefined) return fail('missing Momentis-Signature header');
  let t: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of presented.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2) as [string, string | undefined];
    if (name === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (t === undefined) return fail('the signature has no timestamp (t=)');
  if (signatures.length === 0) return fail('the signature has no v1 value');
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) return fail(`the signature's timestamp is outside the tolerance of ${toleranceSeconds} s`);
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  return signatures.some((signature) => timingSafeEqual(signature, expected)) ? OK : fail('signature mismatch');
}

/** The Momentis-Signature value for a body sent at `nowMs`, for the simulator and tests. */
export function signMomentisBody(rawBody: string | Buffer, secret: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex')}`;
}
