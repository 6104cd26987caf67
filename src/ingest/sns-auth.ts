// Amazon SNS message signatures as an ingest authentication (auth type `sns`): SNS cannot send a bearer token, but
// signs every message it delivers to an HTTP(S) subscription with an AWS certificate. The check follows AWS's
// documented algorithm, https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html :
// the string to sign is "Name\nValue\n" for each signed field in byte order (Notification: Message, MessageId,
// Subject if present, Timestamp, TopicArn, Type; SubscriptionConfirmation and UnsubscribeConfirmation: Message,
// MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type), signed with SHA1withRSA (SignatureVersion 1) or
// SHA256withRSA (SignatureVersion 2) by the certificate at SigningCertURL. That URL is whatever the body says, so it
// is only trusted when it is https on an SNS host (sns.<region>.amazonaws.com[.cn]): anything else is refused
// before any fetch, and a certificate is only ever read from such a URL (over TLS, which vouches for the host).
import { createVerify, X509Certificate, type KeyObject } from 'node:crypto';
import type { IngestAuthConfig } from '../config/schema.ts';
import { fail, singleHeader, type IngestAuth, type IngestAuthResult } from './auth-check.ts';

/** Fetches a certificate: called only with a URL that passed `trustedCertificateUrl`. */
export type FetchCertificate = (url: string) => Promise<Response>;

type SnsConfig = Extract<IngestAuthConfig, { type: 'sns' }>;

const MESSAGE_TYPES = new Set(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']);
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$/;
/** A PEM certificate from SNS is about 2 KB; anything much bigger is not one. */
const MAX_CERTIFICATE_BYTES = 64 * 1024;
const FETCH_TIMEOUT_MS = 5_000;
/** SNS certificates are few (one per region, rotated rarely); an unbounded cache would let forged URLs fill memory. */
const MAX_CACHED = 16;
/** A URL whose fetch failed is not tried again for a while: forged messages must not become a stream of fetches. */
const FAILED_URL_RETRY_MS = 60_000;
/** New URLs fetched per minute at most, whatever the URLs: each forged message could name another one. */
const MAX_FETCHES_PER_MINUTE = 10;
const OK: IngestAuthResult = { ok: true };

export function createSnsAuth(config: SnsConfig, options: { now: () => number; fetchCertificate?: FetchCertificate }): IngestAuth {
  const certificates = new CertificateCache(options.fetchCertificate ?? defaultFetchCertificate, options.now);
  const topics = config.topicArns === undefined ? undefined : new Set(config.topicArns);
  return {
    coversBody: true,
    checkHeaders(headers) {
      // SNS names the message type in a header; a request without it is not from SNS, whatever its body.
      const type = singleHeader(headers, 'x-amz-sns-message-type');
      if (!type.ok) return Promise.resolve(type);
      return Promise.resolve(MESSAGE_TYPES.has(type.value) ? OK : fail('x-amz-sns-message-type is not an SNS message type'));
    },
    async checkBody({ headers, rawBody }) {
      const message = parseMessage(rawBody);
      if (!message.ok) return message;
      const { fields } = message;
      const headerType = singleHeader(headers, 'x-amz-sns-message-type');
      if (!headerType.ok || headerType.value !== fields.Type) return fail('the message Type differs from x-amz-sns-message-type');
      if (topics !== undefined && !topics.has(fields.TopicArn!)) return fail('the message is from a topic that is not configured (topicArns)');
      const algorithm = fields.SignatureVersion === '1' ? 'RSA-SHA1' : fields.SignatureVersion === '2' ? 'RSA-SHA256' : undefined;
      if (algorithm === undefined) return fail('unsupported SignatureVersion (expected 1 or 2)');
      const url = trustedCertificateUrl(fields.SigningCertURL!);
      if (!url.ok) return url;
      const key = await certificates.get(url.url);
      if (!key.ok) return key;
      let valid: boolean;
      try {
        valid = createVerify(algorithm).update(stringToSign(fields), 'utf8').verify(key.key, fields.Signature!, 'base64');
      } catch {
        valid = false;
      }
      return valid ? OK : fail('SNS signature is invalid');
    },
  };
}

type Fields = Partial<Record<string, string>>;

function parseMessage(rawBody: Buffer): { ok: true; fields: Fields } | { ok: false; reason: string } {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return fail('the body is not an SNS message (not JSON)');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('the body is not an SNS message');
  const fields = body as Record<string, unknown>;
  const type = fields.Type;
  if (typeof type !== 'string' || !MESSAGE_TYPES.has(type)) return fail('the body is not an SNS message (Type)');
  const required = type === 'Notification' ? NOTIFICATION_FIELDS : CONFIRMATION_FIELDS;
  for (const name of [...required.filter((n) => n !== 'Subject'), 'SignatureVersion', 'Signature', 'SigningCertURL']) {
    if (typeof fields[name] !== 'string') return fail(`the SNS message has no ${name}`);
  }
  if (fields.Subject !== undefined && typeof fields.Subject !== 'string') return fail('the SNS message Subject is not a string');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(fields.Signature as string)) return fail('the SNS Signature is not base64');
  return { ok: true, fields: fields as Fields };
}

const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const CONFIRMATION_FIELDS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];

/** The text SNS signed: each signed field present, as "Name\nValue\n", in this order. */
export function stringToSign(fields: Fields): string {
  const names = fields.Type === 'Notification' ? NOTIFICATION_FIELDS : CONFIRMATION_FIELDS;
  let text = '';
  for (const name of names) {
    const value = fields[name];
    if (value !== undefined) text += `${name}\n${value}\n`;
  }
  return text;
}

/** The certificate URL, when it is https on an SNS host (and nothing else: no credentials, no other port). */
export function trustedCertificateUrl(text: string): { ok: true; url: string } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('SigningCertURL is not a URL');
  }
  if (url.protocol !== 'https:') return fail('SigningCertURL is not https');
  if (!SNS_HOST.test(url.hostname) || url.port !== '' || url.username !== '' || url.password !== '') return fail('SigningCertURL is not on an Amazon SNS host');
  return { ok: true, url: url.href };
}

type KeyLookup = { ok: true; key: KeyObject } | { ok: false; reason: string; retryable?: true };

/** Signing certificates' public keys by URL, fetched once each; failed and excessive fetches are refused for a while. */
class CertificateCache {
  private readonly keys = new Map<string, { key: KeyObject; validUntil: number }>();
  private readonly failedAt = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<KeyLookup>>();
  private readonly fetchTimes: number[] = [];
  private readonly fetchCertificate: FetchCertificate;
  private readonly now: () => number;

  constructor(fetchCertificate: FetchCertificate, now: () => number) {
    this.fetchCertificate = fetchCertificate;
    this.now = now;
  }

  get(url: string): Promise<KeyLookup> {
    const now = this.now();
    const cached = this.keys.get(url);
    if (cached !== undefined) {
      if (now <= cached.validUntil) return Promise.resolve({ ok: true, key: cached.key });
      this.keys.delete(url);
    }
    const failed = this.failedAt.get(url);
    if (failed !== undefined && now - failed < FAILED_URL_RETRY_MS) return Promise.resolve(unavailable('the SNS signing certificate could not be fetched recently; not retried yet'));
    let pending = this.inFlight.get(url);
    if (pending === undefined) {
      while (this.fetchTimes.length > 0 && now - this.fetchTimes[0]! >= 60_000) this.fetchTimes.shift();
      if (this.fetchTimes.length >= MAX_FETCHES_PER_MINUTE) return Promise.resolve(unavailable('too many SNS signing certificates fetched in the last minute'));
      this.fetchTimes.push(now);
      pending = this.load(url).finally(() => this.inFlight.delete(url));
      this.inFlight.set(url, pending);
    }
    return pending;
  }

  private async load(url: string): Promise<KeyLookup> {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(await readCapped(await this.fetchCertificate(url)));
    } catch (error) {
      this.failedAt.set(url, this.now());
      if (this.failedAt.size > MAX_CACHED * 4) this.failedAt.delete(this.failedAt.keys().next().value!);
      return unavailable(`the SNS signing certificate could not be fetched: ${error instanceof Error ? error.message : String(error)}`);
    }
    const now = this.now();
    if (now < certificate.validFromDate.getTime() || now > certificate.validToDate.getTime()) return fail('the SNS signing certificate is not valid now');
    this.failedAt.delete(url);
    if (this.keys.size >= MAX_CACHED) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(url, { key: certificate.publicKey, validUntil: certificate.validToDate.getTime() });
    return { ok: true, key: certificate.publicKey };
  }
}

/** The response body, refusing an error status or a body over MAX_CERTIFICATE_BYTES without reading all of it. */
async function readCapped(response: Response): Promise<Buffer> {
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_CERTIFICATE_BYTES) {
    await response.body?.cancel();
    throw new Error('the certificate is too large');
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body === null) throw new Error('empty response');
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_CERTIFICATE_BYTES) throw new Error('the certificate is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function defaultFetchCertificate(url: string): Promise<Response> {
  // No redirects: a redirect could lead away from the SNS host the URL was checked against.
  return fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
}

function unavailable(reason: string): { ok: false; reason: string; retryable: true } {
  return { ok: false, reason, retryable: true };
}
