// Authenticates requests to the ingest endpoint: a shared bearer token, an HMAC-SHA256 signature over the raw body
// (optionally with a signed timestamp), a Google-issued OIDC token (what Pub/Sub push sends when the subscription
// has authentication enabled), or an Amazon SNS message signature (sns-auth.ts). Only node:crypto is used, so there
// is no JWT library to trust. Reasons are specific enough to fix a setup mistake but never contain the secret, the
// token or the signature that was presented.
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { IngestAuthConfig } from '../config/schema.ts';
import { fail, singleHeader, type IngestAuth, type IngestAuthRequest, type IngestAuthResult } from './auth-check.ts';
import { createSnsAuth, type FetchCertificate } from './sns-auth.ts';

export type { IngestAuth, IngestAuthRequest, IngestAuthResult } from './auth-check.ts';

export interface IngestAuthOptions {
  /** Fetches the JWKS document; may resolve to a fetch Response (whose Cache-Control is honoured) or the parsed JSON. */
  fetchJwks?: (url: string) => Promise<unknown>;
  /** Fetches an SNS signing certificate (only ever called with an https URL on an SNS host). */
  fetchCertificate?: FetchCertificate;
  /** Current time in ms since epoch. */
  now?: () => number;
}

const CLOCK_SKEW_S = 60;
/** Unknown kids are what a key rotation looks like, but also what an attacker can send at will: refetch rarely. */
const UNKNOWN_KID_REFETCH_MS = 30_000;
/** With no keys at all, every request would otherwise trigger a fetch of a failing endpoint. */
const FAILED_FETCH_RETRY_MS = 5_000;
const DEFAULT_JWKS_TTL_MS = 60 * 60 * 1000;
const MAX_JWKS_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_TOKEN_LENGTH = 16 * 1024;
const OK: IngestAuthResult = { ok: true };

export function createIngestAuth(config: IngestAuthConfig, options?: IngestAuthOptions): IngestAuth {
  const now = options?.now ?? Date.now;
  switch (config.type) {
    case 'none':
      return headerAuth(() => OK);
    case 'bearer': {
      const expected = sha256(Buffer.from(config.token, 'utf8'));
      return headerAuth((headers) => {
        const token = bearerToken(headers);
        if (!token.ok) return token;
        // Comparing digests keeps the comparison constant-time and equal-length whatever was presented.
        const presented = sha256(Buffer.from(token.token, 'utf8'));
        return timingSafeEqual(presented, expected) ? OK : fail('bearer token mismatch');
      });
    }
    case 'hmac':
      return {
        coversBody: true,
        checkHeaders: (headers) => {
          const presented = hmacHeaders(config, headers, now);
          return Promise.resolve(presented.ok ? OK : presented);
        },
        checkBody: (request) => Promise.resolve(checkHmac(config, request, now)),
      };
    case 'oidc': {
      const keys = new JwksCache(config.jwksUrl, options?.fetchJwks ?? defaultFetchJwks, now);
      return { coversBody: false, checkHeaders: (headers) => verifyOidc(config, keys, now, headers), checkBody: () => Promise.resolve(OK) };
    }
    case 'sns':
      return createSnsAuth(config, { now, ...(options?.fetchCertificate && { fetchCertificate: options.fetchCertificate }) });
  }
}

/** Both steps at once, for callers that have the body already (and the tests). */
export function createIngestAuthenticator(config: IngestAuthConfig, options?: IngestAuthOptions): (request: IngestAuthRequest) => Promise<IngestAuthResult> {
  const auth = createIngestAuth(config, options);
  return async (request) => {
    const headers = await auth.checkHeaders(request.headers);
    return headers.ok ? auth.checkBody(request) : headers;
  };
}

function headerAuth(check: (headers: IngestAuthRequest['headers']) => IngestAuthResult): IngestAuth {
  return { coversBody: false, checkHeaders: (headers) => Promise.resolve(check(headers)), checkBody: () => Promise.resolve(OK) };
}

// ---------------------------------------------------------------------------------------------------------------
// Bearer and HMAC

type HmacConfig = Extract<IngestAuthConfig, { type: 'hmac' }>;
type Presented = { ok: true; signature: Buffer; timestamp: string | undefined } | { ok: false; reason: string };

/** The signature and the timestamp as presented: well-formed, and the timestamp within the tolerance. */
function hmacHeaders(config: HmacConfig, headers: IngestAuthRequest['headers'], now: () => number): Presented {
  const header = singleHeader(headers, config.header);
  if (!header.ok) return header;
  let presentedText = header.value.trim();
  if (config.prefix !== '') {
    if (!presentedText.toLowerCase().startsWith(config.prefix.toLowerCase())) {
      return fail(`${config.header} header does not start with "${config.prefix}"`);
    }
    presentedText = presentedText.slice(config.prefix.length);
  }
  const signature = decodeSignature(presentedText, config.encoding);
  if (signature === undefined) return fail(`${config.header} header is not a ${config.encoding}-encoded signature`);
  if (config.timestampHeader === undefined) return { ok: true, signature, timestamp: undefined };

  const stamp = singleHeader(headers, config.timestampHeader);
  if (!stamp.ok) return stamp;
  const timestamp = stamp.value.trim();
  if (!/^\d{1,12}$/.test(timestamp)) return fail(`${config.timestampHeader} header is not a time in Unix seconds`);
  const ageS = now() / 1000 - Number(timestamp);
  if (ageS > config.toleranceSeconds) return fail(`${config.timestampHeader} is more than ${config.toleranceSeconds} s old`);
  if (-ageS > config.toleranceSeconds) return fail(`${config.timestampHeader} is more than ${config.toleranceSeconds} s in the future`);
  return { ok: true, signature, timestamp };
}

function checkHmac(config: HmacConfig, request: IngestAuthRequest, now: () => number): IngestAuthResult {
  const presented = hmacHeaders(config, request.headers, now);
  if (!presented.ok) return presented;
  const hmac = createHmac('sha256', config.secret);
  // With a timestamp, the signed text is `${timestamp}.${body}`: the time cannot be changed without the secret.
  if (presented.timestamp !== undefined) hmac.update(`${presented.timestamp}.`, 'ascii');
  const expected = hmac.update(request.rawBody).digest();
  // A well-formed signature of the wrong length cannot be right; the length of an HMAC-SHA256 is no secret.
  if (presented.signature.length !== expected.length || !timingSafeEqual(presented.signature, expected)) return fail('signature mismatch');
  return OK;
}

function decodeSignature(text: string, encoding: 'hex' | 'base64'): Buffer | undefined {
  if (encoding === 'hex') return /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : undefined;
  return /^[A-Za-z0-9+/\-_]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : undefined;
}

export function bearerToken(headers: IngestAuthRequest['headers']): { ok: true; token: string } | { ok: false; reason: string } {
  const header = singleHeader(headers, 'Authorization');
  if (!header.ok) return header;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header.value);
  if (match?.[1] === undefined) {
    return fail(/^Bearer\b/i.test(header.value.trim()) ? 'Authorization header has an empty or malformed Bearer token' : 'Authorization header is not a Bearer token');
  }
  return { ok: true, token: match[1] };
}

// ---------------------------------------------------------------------------------------------------------------
// OIDC

async function verifyOidc(
  config: Extract<IngestAuthConfig, { type: 'oidc' }>,
  keys: JwksCache,
  now: () => number,
  headers: IngestAuthRequest['headers'],
): Promise<IngestAuthResult> {
  const bearer = bearerToken(headers);
  if (!bearer.ok) return bearer;
  const verified = await verifyJwt(bearer.token, { issuers: config.issuers, audience: config.audience }, keys, now);
  if (!verified.ok) return verified;
  const claims = verified.claims;
  // The configuration holds either the service account or allowAnyIdentity: true (see the schema).
  if (config.email !== undefined) {
    if (claims.email !== config.email) return fail('token email does not match the configured service account');
    if (claims.email_verified !== true && claims.email_verified !== 'true') return fail('token email is not verified');
  }
  return { ok: true };
}

export type JwtVerification = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: string };

/**
 * An RS256 JWT signed by a key of the JWKS, from one of `issuers`, for `audience`, within its lifetime (with a
 * minute of clock skew); also what the agent-facing API checks bearer tokens with (server/api-clients.ts).
 */
export async function verifyJwt(token: string, expected: { issuers: readonly string[]; audience: string }, keys: JwksCache, now: () => number): Promise<JwtVerification> {
  if (token.length > MAX_TOKEN_LENGTH) return fail('token too large');
  const parts = token.split('.');
  if (parts.length !== 3) return fail('malformed token: expected a JWT with three parts');
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  const header = decodeJsonPart(headerPart);
  const claims = decodeJsonPart(payloadPart);
  if (header === undefined) return fail('malformed token: header is not base64url-encoded JSON');
  if (claims === undefined) return fail('malformed token: payload is not base64url-encoded JSON');
  // Pinning the algorithm is what stops 'none' and HS256-with-the-public-key forgeries.
  if (header.alg !== 'RS256') return fail('token algorithm is not RS256');
  if (!/^[A-Za-z0-9_-]+$/.test(signaturePart)) return fail('malformed token: signature is not base64url');
  if (typeof header.kid !== 'string' || header.kid === '') return fail('token has no kid');

  const key = await keys.get(header.kid);
  if (!key.ok) return key;
  const signed = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  let valid: boolean;
  try {
    valid = verify('RSA-SHA256', signed, key.key, Buffer.from(signaturePart, 'base64url'));
  } catch {
    valid = false;
  }
  if (!valid) return fail('token signature is invalid');

  const nowS = now() / 1000;
  if (typeof claims.iss !== 'string' || !expected.issuers.includes(claims.iss)) return fail('token issuer is not accepted');
  const audience = claims.aud;
  const audienceOk = audience === expected.audience || (Array.isArray(audience) && audience.includes(expected.audience));
  if (!audienceOk) return fail('token audience does not match');
  if (typeof claims.exp !== 'number') return fail('token has no exp');
  if (nowS > claims.exp + CLOCK_SKEW_S) return fail('token expired');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || nowS + CLOCK_SKEW_S < claims.nbf)) return fail('token not yet valid (nbf)');
  if (claims.iat !== undefined && (typeof claims.iat !== 'number' || nowS + CLOCK_SKEW_S < claims.iat)) return fail('token issued in the future (iat)');
  return { ok: true, claims };
}

function decodeJsonPart(part: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

type KeyLookup = { ok: true; key: KeyObject } | { ok: false; reason: string };

/** The JWKS, refreshed when its Cache-Control lifetime runs out, or early (rate-limited) when a new kid shows up. */
export class JwksCache {
  private keys: Map<string, KeyObject> | undefined;
  private expiresAt = 0;
  private lastFetchAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<string | undefined> | undefined;
  private lastError: string | undefined;
  private readonly url: string;
  private readonly fetchJwks: (url: string) => Promise<unknown>;
  private readonly now: () => number;

  constructor(url: string, fetchJwks: (url: string) => Promise<unknown>, now: () => number) {
    this.url = url;
    this.fetchJwks = fetchJwks;
    this.now = now;
  }

  async get(kid: string): Promise<KeyLookup> {
    if (this.keys === undefined ? this.now() - this.lastFetchAt >= FAILED_FETCH_RETRY_MS : this.now() >= this.expiresAt) {
      this.lastError = await this.refresh();
    }
    if (this.keys === undefined) return fail(`could not fetch JWKS: ${this.lastError ?? 'no keys'}`);
    let key = this.keys.get(kid);
    if (key === undefined && this.now() - this.lastFetchAt >= UNKNOWN_KID_REFETCH_MS) {
      await this.refresh();
      key = this.keys.get(kid);
    }
    return key === undefined ? fail('token signed with an unknown key (kid)') : { ok: true, key };
  }

  /** Returns an error text when the fetch failed; the previous keys stay in use then, rather than locking everyone out. */
  private refresh(): Promise<string | undefined> {
    this.inFlight ??= this.load().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async load(): Promise<string | undefined> {
    this.lastFetchAt = this.now();
    let document: unknown;
    let ttl = DEFAULT_JWKS_TTL_MS;
    try {
      const result = await this.fetchJwks(this.url);
      if (result instanceof Response) {
        if (!result.ok) return this.failed(`HTTP ${result.status}`);
        ttl = cacheLifetime(result.headers.get('cache-control')) ?? ttl;
        document = await result.json();
      } else {
        document = result;
      }
    } catch (error) {
      return this.failed(error instanceof Error ? error.message : String(error));
    }
    const keys = parseJwks(document);
    if (keys.size === 0) return this.failed('the JWKS has no usable RS256 keys');
    this.keys = keys;
    this.expiresAt = this.now() + ttl;
    return undefined;
  }

  /** Keeps serving the previous keys for a while instead of hammering a failing JWKS endpoint on every request. */
  private failed(reason: string): string {
    if (this.keys !== undefined) this.expiresAt = this.now() + UNKNOWN_KID_REFETCH_MS;
    return reason;
  }
}

function parseJwks(document: unknown): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  const list = typeof document === 'object' && document !== null ? (document as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) return keys;
  for (const jwk of list as unknown[]) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    const { kid, kty, alg, use } = jwk as Record<string, unknown>;
    if (typeof kid !== 'string' || kty !== 'RSA') continue;
    if ((alg !== undefined && alg !== 'RS256') || (use !== undefined && use !== 'sig')) continue;
    try {
      keys.set(kid, createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
    } catch {
      // One malformed key must not take the others down with it.
    }
  }
  return keys;
}

function cacheLifetime(cacheControl: string | null): number | undefined {
  if (cacheControl === null) return undefined;
  if (/\b(no-store|no-cache)\b/i.test(cacheControl)) return 0;
  const match = /\bmax-age=(\d+)/i.exec(cacheControl);
  if (match?.[1] === undefined) return undefined;
  return Math.min(Number(match[1]) * 1000, MAX_JWKS_TTL_MS);
}

export function defaultFetchJwks(url: string): Promise<unknown> {
  return fetch(url, { signal: AbortSignal.timeout(10_000), headers: { accept: 'application/json' } });
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}
