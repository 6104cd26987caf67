// The HTTP client handed to connectors: fetch with a timeout, mapping transport failures and statuses onto the
// engine's error classes so connectors stay thin and never decide retry policy themselves.
import { RetryableError, errorForStatus, parseRetryAfter } from '../engine/errors.ts';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body when the response was JSON, else undefined. */
  json: unknown;
}

export interface HttpClient {
  /** Sends the request; resolves for 2xx/3xx, throws a DeliveryError for everything else. */
  request(request: HttpRequest): Promise<HttpResponse>;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export function createHttpClient(): HttpClient {
  return {
    async request(req) {
      let response: Response;
      try {
        response = await fetch(req.url, {
          method: req.method,
          headers: req.headers,
          body: req.body,
          signal: AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS),
        });
      } catch (error) {
        const timedOut = error instanceof Error && error.name === 'TimeoutError';
        throw new RetryableError(timedOut ? `timed out after ${req.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : describeNetworkError(error), { cause: error });
      }
      const text = await response.text().catch(() => '');
      let json: unknown;
      if ((response.headers.get('content-type') ?? '').includes('json')) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      const failure = errorForStatus(response.status, `${req.method} ${redactUrl(req.url)} answered ${response.status}${text ? `: ${text.slice(0, 300)}` : ''}`, parseRetryAfter(response.headers.get('retry-after')));
      if (failure) throw failure;
      return { status: response.status, headers: response.headers, text, json };
    },
  };
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause as { code?: string; message?: string } | undefined;
    return cause?.code ? `network error: ${cause.code}` : `network error: ${cause?.message ?? error.message}`;
  }
  return `network error: ${String(error)}`;
}

/** URLs may carry credentials or tokens in the query; error messages keep only origin and path. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}
