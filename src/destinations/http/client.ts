// The generic HTTP destination's client: one call carries one JSON body (an item, or an array of them) with the
// configured method, headers and authentication, an Idempotency-Key and the correlation ids, and an HMAC-SHA256
// signature of the body when a signing secret is set, so the receiver can verify it came from ctbridge. Calls go
// through the kit's http client (the destination's fetch: rate limit, timeout, error classes).
import { createHmac } from 'node:crypto';
import { createHttpClient, PermanentError, type ConnectorDeps } from '../kit/index.ts';
import type { HttpSettings } from './settings.ts';

export interface HttpDestinationClient {
  readonly settings: HttpSettings;
  /** One call: the bodies (one, or an array when batchSize > 1) with the items' keys; throws the kit's errors. */
  send(url: string, method: string, bodies: Array<Record<string, unknown>>, keys: string[], correlationIds: string[]): Promise<void>;
  /** GETs a record's URL: its JSON answer, or undefined when the receiver answers 404 or 410; throws the kit's errors otherwise. */
  read(url: string): Promise<unknown>;
}

export function createHttpDestinationClient(settings: HttpSettings, deps: ConnectorDeps): HttpDestinationClient {
  const http = createHttpClient(deps.fetch.with({ timeoutMs: settings.timeoutMs }));
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'ctbridge', ...settings.headers, ...authHeaders(settings) };
  return {
    settings,
    async send(url, method, bodies, keys, correlationIds) {
      const body = JSON.stringify(settings.batchSize > 1 ? bodies : bodies[0]);
      const headers: Record<string, string> = {
        ...baseHeaders,
        // One key per call: for a batch, the keys of its items joined, so a retried batch is recognisable too.
        'idempotency-key': headerList(keys),
        'x-correlation-id': headerList(correlationIds),
      };
      if (settings.signingSecret) headers['x-ctbridge-signature'] = `sha256=${createHmac('sha256', settings.signingSecret).update(body).digest('hex')}`;
      await http.request({ method, url, headers, body });
    },
    async read(url) {
      try {
        const answer = await http.request({ method: 'GET', url, headers: { ...baseHeaders, accept: 'application/json' } });
        return answer.json;
      } catch (error) {
        if (error instanceof PermanentError && (error.status === 404 || error.status === 410)) return undefined;
        throw error;
      }
    },
  };
}

function authHeaders(settings: HttpSettings): Record<string, string> {
  const auth = settings.auth;
  if (!auth) return {};
  if ('bearer' in auth) return { authorization: `Bearer ${auth.bearer}` };
  if ('basic' in auth) return { authorization: `Basic ${Buffer.from(`${auth.basic.username}:${auth.basic.password}`).toString('base64')}` };
  return { [auth.header.name.toLowerCase()]: auth.header.value };
}

/**
 * Values for a header, comma-joined. An id may hold characters a header cannot carry (beyond printable ASCII, a
 * lone surrogate), which would fail every send of it, or a comma that would split it: those (and `%`) are
 * percent-encoded, so a receiver decodes with decodeURIComponent. Anything else (UUIDs, `sink:customer:id:3`)
 * is sent as it is; the envelope carries each key exactly.
 */
function headerList(values: readonly string[]): string {
  return values.map((value) => value.toWellFormed().replace(UNSAFE_IN_HEADER, (char) => encodeURIComponent(char))).join(',');
}

// Outside printable ASCII, or a comma or a percent sign; a surrogate pair is one match (encodeURIComponent needs both).
const UNSAFE_IN_HEADER = /[\ud800-\udbff][\udc00-\udfff]|[^\x21-\x7e]|[,%]/g;
