// Authentication of a destination's webhooks (POST /v1/inbound/<destination>), per the kind its `inbound.auth`
// names and its connector declares: monday's JWT (Authorization: <JWT>, HS256 with the app's Signing Secret,
// `exp` and, when configured, `aud` checked — developer.monday.com/apps/docs/authorization-header), an HMAC-SHA256
// over the raw body with a shared secret (the Momentis contract, and any system that signs), or a shared secret
// in a header. Only node:crypto; comparisons in constant time; reasons never hold what was presented.
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
