// The one way a connector calls its destination: a fetch with the platform's signature, handed to connectors in
// their deps (and by them to SDKs that accept a fetch), that
// - waits for the destination's shared rate limiter (every worker of every process: engine/rate-limiter.ts),
// - counts the call (ctbridge_destination_calls_total),
// - times the exchange alone — sending, the answer and its body — never the wait for the limiter: with a backlog
//   the wait is long, and a timer that counted it would abort calls that had already taken their slot,
// - pauses the limiter for everyone when the destination says its budget is spent (a 429 with Retry-After, or the
//   destination's own headers), so the other calls wait instead of collecting 429s too. A destination that says
//   it in the answer's body instead (monday's `retry_in_seconds`) is read by its connector, which hands the time
//   to `fetch.pauseUntil(until)`: the same pause, for every worker of every process.
// Failures without an answer (timeout, refused connection, the limiter's store away) are RetryableErrors, and a
// pause longer than a call waits out a RateLimitedError until its end (engine/rate-limiter.ts); an answer,
// whatever its status, is returned as it is: `errorForAnswer` (or the kit's http client) classifies it.
// With a payload log (per destination, `payloadLog:`), each exchange — bodies, status, the items it was made
// for — is handed to it once over; it decides what is kept (store/payload-log.ts).
import { DeliveryError, RetryableError, errorForStatus, parseRetryAfter } from './errors.ts';
import { currentPayloadSubjects, type PayloadExchange } from './payload-context.ts';

/** What the fetch needs of the destination's rate limiter (engine/rate-limiter.ts implements it). */
export interface CallLimiter {
  /** Resolves when one more call may be made; rejects with a DeliveryError when not soon enough to wait for. */
  acquire(): Promise<void>;
  /** No call may start before `until` (ms since epoch). */
  pauseUntil(until: number): void;
}

export interface CallOptions {
  /** How long one exchange may take once sent, body included; the wait for the limiter does not count. */
  timeoutMs?: number | undefined;
  /**
   * The destination's own rate-limit headers: when an answer (any status) says the budget is spent, the time
   * (ms since epoch) calls may start again; undefined when it does not say. Without it, or when it does not say,
   * a 429 waits for its Retry-After (or a second).
   */
  budgetResetAt?: ((headers: Headers, status: number) => number | undefined) | undefined;
}

/** fetch for one destination's calls; `with` gives the same calls with a connector's own options. */
export interface DestinationFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  readonly options: Readonly<CallOptions>;
  with(options: CallOptions): DestinationFetch;
  /**
   * The destination's budget is spent until `until` (ms since epoch), as an answer's body said: no call of this
   * destination, from any worker of any process, starts before then. A time already past is ignored.
   */
  pauseUntil(until: number): void;
}

export interface DestinationFetchDeps {
  limiter: CallLimiter;
  /** Called once per call that goes out (for metrics). */
  onCall?: (() => void) | undefined;
  now?: (() => number) | undefined;
  /** The fetch underneath; the platform's by default. */
  fetch?: typeof fetch | undefined;
  /** Keeps each exchange (the destination's payload log); its failures never fail the call. */
  payloadLog?: ((exchange: PayloadExchange) => Promise<void>) | undefined;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** How long the whole destination pauses after a 429 that did not say how long to wait. */
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 1_000;
/** Statuses whose responses cannot carry a body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export function createDestinationFetch(deps: DestinationFetchDeps, options: CallOptions = {}): DestinationFetch {
  const now = deps.now ?? Date.now;
  const platformFetch = deps.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  const call = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    try {
      await deps.limiter.acquire();
    } catch (error) {
      // The destination's limit is spent for longer than a call waits: retried once it is not.
      if (error instanceof DeliveryError) throw error;
      // The limiter keeps its state in the store; without it, no call may go out, and a retry will tell.
      throw new RetryableError(`the rate limiter is unavailable: ${(error as Error).message}`, { cause: error });
    }
    deps.onCall?.();
    // A timer of our own, cleared as soon as the exchange is over: AbortSignal.timeout() would keep the request,
    // body included, reachable until it fires, and calls that fail fast (a refused connection) would pile up.
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timer.signal]) : timer.signal;
    let response: Response;
    let body: ArrayBuffer;
    const started = now();
    try {
      response = await platformFetch(input, { ...init, signal });
      // The body is read under the same timer: an answer whose body never ends is a timeout too.
      body = await response.arrayBuffer();
    } catch (error) {
      if (init?.signal?.aborted) throw error;
      const failure = new RetryableError(timer.signal.aborted ? `timed out after ${timeoutMs} ms` : describeNetworkError(error), { cause: error });
      if (deps.payloadLog) await logExchange(deps.payloadLog, input, init, undefined, undefined, failure.message, started, now());
      throw failure;
    } finally {
      clearTimeout(timeout);
    }
    const at = now();
    if (deps.payloadLog) await logExchange(deps.payloadLog, input, init, response, body, undefined, started, at);
    const resumeAt = budgetSpentUntil(response.headers, response.status, options, at);
    if (resumeAt !== undefined && resumeAt > at) deps.limiter.pauseUntil(resumeAt);
    return new Response(NULL_BODY_STATUSES.has(response.status) ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };

  return Object.assign(call, {
    options,
    with: (more: CallOptions) => createDestinationFetch(deps, { ...options, ...more }),
    pauseUntil(until: number) {
      if (Number.isFinite(until) && until > now()) deps.limiter.pauseUntil(until);
    },
  });
}

/** When calls may start again after this answer, if it says the budget is spent (see CallOptions). */
function budgetSpentUntil(headers: Headers, status: number, options: CallOptions, now: number): number | undefined {
  const reset = options.budgetResetAt?.(headers, status);
  if (reset !== undefined) return reset;
  if (status !== 429) return undefined;
  return now + (parseRetryAfter(headers.get('retry-after'), now) ?? DEFAULT_RATE_LIMIT_PAUSE_MS);
}

/**
 * The error an answer stands for (classifyStatus), undefined for success. A 429 carries the wait its fetch paused
 * the destination for (so the engine retries no sooner); other statuses carry their Retry-After, if any.
 */
export function errorForAnswer(status: number, headers: Headers | undefined, message: string, options: CallOptions = {}, now = Date.now()): DeliveryError | undefined {
  let retryAfterMs = parseRetryAfter(headers?.get('retry-after'), now);
  if (status === 429 && headers) {
    const reset = options.budgetResetAt?.(headers, status);
    if (reset !== undefined) retryAfterMs = Math.max(0, reset - now);
  }
  return errorForStatus(status, message, retryAfterMs);
}

async function logExchange(
  log: (exchange: PayloadExchange) => Promise<void>,
  input: string | URL | Request,
  init: RequestInit | undefined,
  response: Response | undefined,
  body: ArrayBuffer | undefined,
  error: string | undefined,
  started: number,
  at: number,
): Promise<void> {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  try {
    await log({
      subjects: currentPayloadSubjects(),
      method: (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(),
      url: input instanceof Request ? input.url : String(input),
      requestType: headers.get('content-type') ?? undefined,
      requestBody: bodyText(init?.body),
      status: response?.status,
      responseType: response?.headers.get('content-type') ?? undefined,
      responseBody: body === undefined ? undefined : new TextDecoder().decode(body),
      error,
      at,
      durationMs: at - started,
    });
  } catch {
    // The log is for tracing; a call is never failed by it (the recorder reports its own failures).
  }
}

/** A request body as text, when it is text (an SDK's stream or form data is described, not read). */
function bodyText(body: RequestInit['body']): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return new TextDecoder().decode(body);
  return `[a ${body.constructor.name} body]`;
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause as { code?: string; message?: string } | undefined;
    return cause?.code ? `network error: ${cause.code}` : `network error: ${cause?.message ?? error.message}`;
  }
  return `network error: ${String(error)}`;
}
