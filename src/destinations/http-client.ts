// The HTTP client handed to connectors: fetch with a timeout, mapping transport failures and statuses onto the
// engine's error classes so connectors stay thin and never decide retry policy themselves.
import { RateLimitedError, RetryableError, errorForStatus, parseRetryAfter } from '../engine/errors.ts';
import type { RateLimiter } from '../engine/rate-limiter.ts';
import { redactUrl } from '../observability/redact.ts';

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
/** How long the whole destination pauses after a 429 that did not say how long to wait. */
const DEFAULT_RATE_LIMIT_PAUSE_MS = 1_000;

export interface HttpClientOptions {
  /** Shared by every call to this destination: calls wait their turn, and a 429 pauses them all. */
  limiter?: RateLimiter;
  /** Called once per HTTP call made (for metrics). */
  onCall?: () => void;
}

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const { limiter, onCall } = options;
  return {
    async request(req) {
      try {
        await limiter?.acquire();
      } catch (error) {
        // The limiter keeps its state in the store; without it, no call may go out, and a retry will tell.
        throw new RetryableError(`the rate limiter is unavailable: ${(error as Error).message}`, { cause: error });
      }
      onCall?.();
      const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      // A timer of our own, cleared as soon as the call is over: AbortSignal.timeout() would keep the request,
      // body included, reachable until it fires, and calls that fail fast (a refused connection) would pile up.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      let response: Response;
      let text: string;
      try {
        response = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: controller.signal });
        text = await response.text().catch(() => '');
      } catch (error) {
        throw new RetryableError(controller.signal.aborted ? `timed out after ${timeoutMs} ms` : describeNetworkError(error), { cause: error });
      } finally {
        clearTimeout(timer);
      }
      let json: unknown;
      if ((response.headers.get('content-type') ?? '').includes('json')) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      // Destinations like to echo the values they refused; DeliveryError removes personal data from the message.
      const excerpt = text ? `: ${text.slice(0, 300)}` : '';
      const failure = errorForStatus(response.status, `${req.method} ${redactUrl(req.url)} answered ${response.status}${excerpt}`, parseRetryAfter(response.headers.get('retry-after')));
      if (failure instanceof RateLimitedError) limiter?.pauseUntil(Date.now() + (failure.retryAfterMs ?? DEFAULT_RATE_LIMIT_PAUSE_MS));
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
