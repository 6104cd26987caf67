// The REST destination's client: one call of a configured operation — the path rendered from the item, the
// destination's media type as Accept (and Content-Type of a body), its headers, the operation's, authentication,
// an Idempotency-Key and the correlation id — through the destination's fetch (rate limit, timeout, call count,
// payload log). An error answer becomes the kit's error class for its status, with the message found at
// `errorMessage` in the body (installations word errors differently), and a 401 drops the OAuth2 token so the
// engine's retry of the item gets a new one.
import type { Logger } from 'pino';
import { PermanentError, RetryableError, errorForAnswer, type ConnectorDeps, type ConnectorState, type LateFailure } from '../kit/index.ts';
import { redactUrl } from '../../observability/redact.ts';
import { createAuthenticator, type Authenticator } from './auth.ts';
import type { RestOperation, RestSettings } from './settings.ts';
import { atPointer, renderBody, renderPath, type TemplateContext } from './template.ts';

export interface RestAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body, undefined when there is none or it is not JSON. */
  json: unknown;
}

export interface RestClient {
  readonly settings: RestSettings;
  readonly logger: Logger;
  readonly name: string;
  readonly now: () => number;
  readonly state: ConnectorState | undefined;
  readonly reportLateFailures: ((failures: LateFailure[]) => Promise<void>) | undefined;
  /** Calls `operation` for an item; `defaultBody` is sent when the operation has no body template (not for GET/DELETE). */
  call(operation: RestOperation, context: TemplateContext, meta: { idempotencyKey: string; correlationId: string; defaultBody?: unknown }): Promise<RestAnswer>;
  /** Stops what runs in the background (a batching window's timer). */
  onClose(stop: () => void): void;
  close(): void;
}

export function createRestClient(settings: RestSettings, deps: ConnectorDeps): RestClient {
  const now = deps.now ?? Date.now;
  const fetch = deps.fetch.with({ timeoutMs: settings.timeoutMs });
  const base = settings.baseUrl.replace(/\/+$/, '');
  const auth: Authenticator = createAuthenticator(settings.auth, base, fetch, now);
  const closers: Array<() => void> = [];

  return {
    settings,
    logger: deps.logger,
    name: deps.name,
    now,
    state: deps.state,
    reportLateFailures: deps.reportLateFailures,
    onClose: (stop) => closers.push(stop),
    close: () => closers.splice(0).forEach((stop) => stop()),
    async call(operation, context, meta) {
      const path = renderPath(operation.path, context);
      const url = /^https?:\/\//.test(path) ? path : `${base}${path}`;
      const body = operation.method === 'GET' || operation.method === 'DELETE' ? (operation.body === undefined ? undefined : renderBody(operation.body, context)) : operation.body === undefined ? meta.defaultBody : renderBody(operation.body, context);
      const credentials = await auth.headers();
      const headers: Record<string, string> = {
        accept: settings.mediaType,
        'user-agent': 'ctbridge',
        ...lower(settings.headers),
        ...lower(operation.headers ?? {}),
        'idempotency-key': safeHeader(meta.idempotencyKey),
        'x-correlation-id': safeHeader(meta.correlationId),
        ...credentials,
      };
      if (body !== undefined) headers['content-type'] = settings.mediaType;
      const response = await fetch(url, { method: operation.method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
      const text = await response.text();
      let json: unknown;
      if (text !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      if (response.status < 400) return { status: response.status, headers: response.headers, json };
      const said = messageOf(json, text, settings.errorMessage);
      const what = `${operation.method} ${redactUrl(url)} answered ${response.status}${said ? `: ${said}` : ''}`;
      if (response.status === 401 && auth.renewable) {
        // Revoked, or expired before its time: the next attempt fetches a new token.
        auth.refused(credentials);
        throw new RetryableError(`${what} (the access token was refused; a new one is fetched for the retry)`, { status: 401, retryAfterMs: 0 });
      }
      if (response.status === 401 || response.status === 403) {
        if (response.status === 401) deps.logger.error({ status: response.status }, 'the destination rejected the credentials: nothing can be sent until they are replaced');
        throw new PermanentError(`${what}${response.status === 401 ? ' (the credentials were refused; replace them and replay)' : ''}`, { status: response.status });
      }
      throw errorForAnswer(response.status, response.headers, what, fetch.options, now())!;
    },
  };
}

/** The message of an error answer: at the configured pointer, else a short start of the body. */
function messageOf(json: unknown, text: string, pointer: string | undefined): string {
  if (pointer !== undefined && json !== undefined) {
    const value = atPointer(json, pointer);
    if (typeof value === 'string') return value.slice(0, 300);
    if (value !== undefined) return JSON.stringify(value).slice(0, 300);
  }
  return text.slice(0, 300);
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

/** Header values carry printable ASCII only: anything else (and %) percent-encoded. */
function safeHeader(value: string): string {
  return value.toWellFormed().replace(/[\ud800-\udbff][\udc00-\udfff]|[^\x20-\x7e]|%/g, (char) => encodeURIComponent(char));
}
