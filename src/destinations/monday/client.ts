// The monday API client: the official @mondaydotcomorg/api SDK (its ApiClient, with the token sent as it is and
// the API-Version pinned from the settings), making its calls through the destination's fetch from the kit (the
// SDK's requestConfig.fetch: paced by the shared rate limiter, counted, the exchange timed, and every process
// paused when monday answers with Retry-After). monday answers most errors with HTTP 200 and an `errors` array
// (or, in the older shape, `error_code`): those never count as success. An error about one root field (its
// `path`) is that mutation's own and is handed back with the data; an error about the whole request (no path:
// complexity budget, rate, daily or concurrency limit, an invalid query) is thrown as one of the kit's error
// classes. The complexity each answer reports (`complexity { after reset_in_x_seconds }`) paces the next
// requests: one that the budget left cannot pay for waits for the reset instead of being refused. A rate or
// concurrency limit (FIELD_LIMIT_EXCEEDED among them: too many requests running at once, not too many fields)
// holds this process's next requests for the wait monday gave, and its items are retried no sooner. What the body
// says of the limits holds for every process on the store too: a rate-limit error's wait (`retry_in_seconds`, the
// older message's "reset in N seconds", else the kit's second or midnight UTC for the daily limit), or the
// complexity window's reset once what is left pays for no mutation, pauses the destination's shared limiter
// (`fetch.pauseUntil`) — whether or not monday also sent Retry-After, which the fetch reads itself.
// Sources: developer.monday.com "Error handling" and "Rate limits", the changelog's "New descriptive field limit
// exceeded error", restated in spec/monday/README.md ("Errors", "Limits").
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { DEFAULT_RATE_LIMIT_PAUSE_MS, DeliveryError, PermanentError, RateLimitedError, RetryableError, errorForAnswer, parseRetryAfter, type ConnectorDeps } from '../kit/index.ts';
import type { MondaySettings } from './settings.ts';

/** One error of monday's `errors` array (2025 shape), or what an older-shape answer said. */
export interface MondayError {
  message: string;
  code: string | undefined;
  statusCode: number | undefined;
  /** The root field (alias) it is about; undefined for the whole request. */
  path: string | undefined;
  retryInSeconds: number | undefined;
  errorData: Record<string, unknown> | undefined;
  /** COMPLEXITY_BUDGET_EXHAUSTED (2025-01 to 2025-04): what the query would have cost, and the budget per minute. */
  queryCost?: number | undefined;
  budgetLimit?: number | undefined;
}

export interface GraphQLAnswer {
  data: Record<string, unknown>;
  /** Errors about one root field each: that field's mutation failed, the others did not. */
  fieldErrors: MondayError[];
  /** When monday answered, by its own clock (the answer's Date header, to the second), when it said. */
  answeredAt: number | undefined;
}

/** What the connector knows of a board after `prepare`: its columns' types, its groups, its subitems board. */
export interface BoardInfo {
  id: string;
  name: string;
  columns: Map<string, { type: string; title: string; settings: Record<string, unknown> }>;
  groups: Set<string>;
  subitemsBoardId: string | undefined;
}

/** Item ids by board and external id, remembered up to a bound (the oldest go first). */
export interface ItemIds {
  get(key: string): string | undefined;
  set(key: string, id: string): void;
  delete(key: string): void;
}

export interface MondayClient {
  readonly settings: MondaySettings;
  readonly logger: Logger;
  /** Filled by prepare: every configured board, by id. */
  readonly boards: Map<string, BoardInfo>;
  /** Item ids by `${boardId}:${externalId}`, from lookups and creates (bounded). */
  readonly knownItems: ItemIds;
  /** What one mutation has cost so far (the most seen), for sizing requests to the budget. */
  readonly costPerMutation: { value: number };
  /**
   * Sends one GraphQL operation (waiting first when the complexity budget left cannot pay `estimatedCost`);
   * resolves with the data and the per-field errors, throws a DeliveryError for a failure of the whole request.
   * `mutations`: how many it holds, to learn what one costs from what monday charged (or refused).
   */
  request(doing: string, query: string, variables: Record<string, unknown>, estimatedCost: number, mutations?: number): Promise<GraphQLAnswer>;
  /** How many mutations of `costEach` one request may hold: what the budget left pays for, or a whole window's worth. */
  mutationsThatFit(costEach: number): number;
}

// The SDK (and its own zod and graphql-request) is loaded when a monday destination is created, not by every
// thread that reads the configuration. Its types are declared here, as much as ctbridge uses: its own declarations
// pull in graphql-request's, which add the DOM library to the whole program's types.
const requireModule = createRequire(import.meta.url);

/** The part of @mondaydotcomorg/api ctbridge uses: ApiClient.rawRequest, and the ClientError it throws. */
interface MondaySdk {
  ApiClient: new (config: { token: string; apiVersion?: string; endpoint?: string; requestConfig?: { fetch?: typeof fetch; errorPolicy?: 'none' | 'ignore' | 'all' } }) => {
    rawRequest<T>(query: string, variables?: Record<string, unknown>): Promise<{ data: T; errors?: unknown[]; extensions?: unknown; headers: Headers; status: number }>;
  };
  ClientError: new (...args: never[]) => Error & { response: Record<string, unknown> & { status: number; headers?: Headers } };
}

/**
 * Codes that mean "wait and try again" for the whole destination. FIELD_LIMIT_EXCEEDED is one: monday's changelog
 * ("New descriptive field limit exceeded error") says it comes when too many requests run concurrently, and is
 * resolved by waiting the `retry_in_seconds` its `error_data` gives — a smaller request would not help.
 */
const RATE_CODES = new Set(['COMPLEXITY_BUDGET_EXHAUSTED', 'ComplexityException', 'RATE_LIMIT_EXCEEDED', 'Rate Limit Exceeded', 'maxConcurrencyExceeded', 'FIELD_LIMIT_EXCEEDED', 'DAILY_LIMIT_EXCEEDED', 'IP_RATE_LIMIT_EXCEEDED']);
const KNOWN_ITEMS = 50_000;
/** The longest a request waits for monday's budget to reset (a minute's window and a little). */
const LONGEST_WAIT_MS = 65_000;

export function createMondayClient(settings: MondaySettings, deps: ConnectorDeps): MondayClient {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const { ApiClient, ClientError } = requireModule('@mondaydotcomorg/api') as MondaySdk;
  // monday sends Retry-After with its errors (HTTP 200 ones too): every process waits that long.
  const fetch = deps.fetch.with({ timeoutMs: settings.timeoutMs, budgetResetAt: (headers) => retryAfterReset(headers, now()) });
  const api = new ApiClient({
    token: settings.token,
    apiVersion: settings.apiVersion,
    ...(settings.endpoint && { endpoint: settings.endpoint }),
    // errorPolicy all: an answer with data and errors (one alias failed) comes back as data, not as a throw.
    requestConfig: { fetch, errorPolicy: 'all' },
  });
  const budget = new ComplexityBudget(now);
  const knownItems = new Map<string, string>();

  const costPerMutation = { value: 30_000 };
  const request: MondayClient['request'] = async (doing, query, variables, estimatedCost, mutations = 0) => {
    await budget.reserve(estimatedCost);
    let body: Record<string, unknown>;
    let status: number;
    let headers: Headers | undefined;
    try {
      const answer = await api.rawRequest<Record<string, unknown>>(query, variables);
      body = { data: answer.data, errors: answer.errors, extensions: answer.extensions };
      status = answer.status;
      headers = answer.headers;
    } catch (error) {
      if (error instanceof DeliveryError) throw error;
      if (!(error instanceof ClientError)) throw new RetryableError(`${doing}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      // No data at all (a request-level error), or a status other than 2xx.
      const response = error.response;
      body = response;
      status = response.status;
      headers = response.headers;
    }
    const errors = errorsOf(body);
    const complexity = (body.data as { complexity?: ReportedComplexity } | null | undefined)?.complexity;
    if (complexity && typeof complexity.after === 'number') budget.observe(complexity.after, complexity.reset_in_x_seconds ?? 60, complexity.before);
    const whole = errors.filter((e) => e.path === undefined);
    const refused = whole.find((e) => e.budgetLimit !== undefined || e.queryCost !== undefined);
    if (refused?.budgetLimit !== undefined) budget.learnLimit(refused.budgetLimit);
    if (refused?.queryCost !== undefined && mutations > 0) costPerMutation.value = Math.ceil(refused.queryCost / mutations);
    const failed = status < 200 || status >= 300 || whole.length > 0 || body.data === null || body.data === undefined;
    const failure = failed ? classify(doing, status, headers, whole[0] ?? errors[0], fetch.options, now()) : undefined;
    if (failure instanceof RateLimitedError && failure.retryAfterMs !== undefined) budget.exhausted(failure.retryAfterMs);
    // The budget above paces this process; the other processes on the store learn of it from the shared limiter.
    // What one mutation costs: what monday charged for this request's, else the figure known so far.
    const costEach = mutations > 0 && typeof complexity?.query === 'number' ? Math.ceil(complexity.query / mutations) : costPerMutation.value;
    const resumeAt = limitsSpentUntil(errors, failure, complexity, costEach, now());
    if (resumeAt !== undefined) fetch.pauseUntil(resumeAt);
    if (failure) throw failure;
    const date = Date.parse(headers?.get('date') ?? '');
    return { data: body.data as Record<string, unknown>, fieldErrors: errors, answeredAt: Number.isFinite(date) ? date : undefined };
  };

  return {
    settings,
    logger,
    boards: new Map(),
    knownItems: {
      get: (key) => knownItems.get(key),
      set(key, id) {
        if (knownItems.size >= KNOWN_ITEMS) knownItems.delete(knownItems.keys().next().value!);
        knownItems.set(key, id);
      },
      delete: (key) => void knownItems.delete(key),
    },
    costPerMutation,
    request,
    mutationsThatFit: (costEach) => budget.fit(costEach),
  };
}

/**
 * The failure of a whole request as a kit error class, with monday's code in the message. A rate or concurrency
 * limit waits what monday said (`retry_in_seconds`, else Retry-After, else the older message's "reset in N
 * seconds"), or when it said nothing the kit's pause after a 429 (the daily limit: until midnight UTC).
 */
export function classify(doing: string, status: number, headers: Headers | undefined, error: MondayError | undefined, options = {}, now = Date.now()): DeliveryError {
  const code = error?.code;
  const detail = error ? `${code ? `${code}: ` : ''}${error.message}` : `HTTP ${status}`;
  const message = `${doing}: monday answered ${detail}`;
  const retryAfterMs = error?.retryInSeconds !== undefined ? error.retryInSeconds * 1000 : (parseRetryAfter(headers?.get('retry-after'), now) ?? retryFromMessage(error?.message));
  if (code && RATE_CODES.has(code)) return new RateLimitedError(message, { status: error?.statusCode ?? 429, retryAfterMs: retryAfterMs ?? (code === 'DAILY_LIMIT_EXCEEDED' ? untilMidnightUtc(now) : DEFAULT_RATE_LIMIT_PAUSE_MS) });
  if (status === 401 || status === 403 || code === 'UserUnauthorizedException' || code === 'UNAUTHORIZED') {
    return new PermanentError(`${message}: monday refused the token; replace it and replay`, { status: status === 200 ? (error?.statusCode ?? 401) : status });
  }
  if (status >= 300) return errorForAnswer(status, headers, message, options) ?? new RetryableError(message, { status });
  return errorOfField(message, error);
}

/** A failure of one mutation (or of a request with HTTP 200 and no path): by its code and status_code. */
export function errorOfField(message: string, error: MondayError | undefined): DeliveryError {
  const code = error?.code;
  const statusCode = error?.statusCode;
  if (code && RATE_CODES.has(code)) return new RateLimitedError(message, { status: 429, retryAfterMs: error?.retryInSeconds !== undefined ? error.retryInSeconds * 1000 : undefined });
  if (statusCode !== undefined && statusCode >= 500) return new RetryableError(message, { status: statusCode });
  if (statusCode === 429) return new RateLimitedError(message, { status: 429 });
  if (code === 'INTERNAL_SERVER_ERROR') return new RetryableError(message);
  // Invalid column values, unknown columns or boards, an invalid query: trying the same again cannot help.
  return new PermanentError(message, statusCode !== undefined && statusCode !== 200 ? { status: statusCode } : {});
}

/** What an operation selecting `complexity { before after query reset_in_x_seconds }` is told. */
interface ReportedComplexity {
  before?: number;
  after?: number;
  query?: number;
  reset_in_x_seconds?: number;
}

/**
 * Until when (ms since epoch) monday's body says its limits are spent, for every process: the longest wait of its
 * rate-limit errors — the whole request's failure with the wait it was given, and any rate-limit error of one field
 * that names a wait — or, when the complexity left cannot pay for one mutation (`costEach`), the window's reset.
 * Undefined when the body says nothing of the kind.
 */
function limitsSpentUntil(errors: MondayError[], failure: DeliveryError | undefined, complexity: ReportedComplexity | undefined, costEach: number, now: number): number | undefined {
  const waits: number[] = [];
  if (failure instanceof RateLimitedError && failure.retryAfterMs !== undefined) waits.push(failure.retryAfterMs);
  for (const error of errors) {
    if (!error.code || !RATE_CODES.has(error.code)) continue;
    const wait = error.retryInSeconds !== undefined ? error.retryInSeconds * 1000 : retryFromMessage(error.message);
    if (wait !== undefined) waits.push(wait);
  }
  if (typeof complexity?.after === 'number' && complexity.after < costEach) waits.push((complexity.reset_in_x_seconds ?? 60) * 1000);
  return waits.length > 0 ? now + Math.max(...waits) : undefined;
}

/** monday's error list (2025 shape, or the older error_code shape) as MondayErrors. */
function errorsOf(body: Record<string, unknown>): MondayError[] {
  const out: MondayError[] = [];
  if (typeof body.error_code === 'string' || typeof body.error_message === 'string') {
    const errorData = body.error_data as Record<string, unknown> | undefined;
    out.push({ message: String(body.error_message ?? body.error_code), code: typeof body.error_code === 'string' ? body.error_code : undefined, statusCode: typeof body.status_code === 'number' ? body.status_code : undefined, path: undefined, retryInSeconds: retryInSecondsOf(undefined, errorData), errorData });
    return out;
  }
  const errors = Array.isArray(body.errors) ? (body.errors as unknown[]) : [];
  for (const error of errors) {
    if (typeof error === 'string') {
      out.push({ message: error, code: undefined, statusCode: undefined, path: undefined, retryInSeconds: undefined, errorData: undefined });
      continue;
    }
    const e = error as { message?: unknown; path?: unknown[]; extensions?: Record<string, unknown> };
    const extensions = e.extensions ?? {};
    const errorData = extensions.error_data as Record<string, unknown> | undefined;
    out.push({
      message: typeof e.message === 'string' ? e.message : 'unknown error',
      code: typeof extensions.code === 'string' ? extensions.code : undefined,
      statusCode: typeof extensions.status_code === 'number' ? extensions.status_code : undefined,
      path: Array.isArray(e.path) && e.path.length > 0 ? String(e.path[0]) : undefined,
      retryInSeconds: retryInSecondsOf(extensions, errorData),
      errorData,
      queryCost: typeof extensions.complexity === 'number' ? extensions.complexity : undefined,
      budgetLimit: typeof extensions.complexity_budget_limit === 'number' ? extensions.complexity_budget_limit : undefined,
    });
  }
  return out;
}

/**
 * The wait an error gives: `retry_in_seconds` in its extensions (the complexity and IP limits) or in its
 * `error_data` (FIELD_LIMIT_EXCEEDED, in both shapes).
 */
function retryInSecondsOf(extensions: Record<string, unknown> | undefined, errorData: Record<string, unknown> | undefined): number | undefined {
  const seconds = extensions?.retry_in_seconds ?? errorData?.retry_in_seconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** The older complexity message says "reset in N seconds". */
function retryFromMessage(message: string | undefined): number | undefined {
  const match = message ? /reset in (\d+) seconds?/i.exec(message) : null;
  return match ? Number(match[1]) * 1000 : undefined;
}

function untilMidnightUtc(now: number): number {
  const midnight = new Date(now);
  midnight.setUTCHours(24, 0, 0, 0);
  return midnight.getTime() - now;
}

/** Retry-After on any answer (monday sends it with its errors, HTTP 200 included): when calls may start again. */
function retryAfterReset(headers: Headers, now: number): number | undefined {
  const wait = parseRetryAfter(headers.get('retry-after'), now);
  return wait === undefined ? undefined : now + wait;
}

/**
 * The complexity budget as the last answers reported it: what is left and when the window resets. A request that
 * the budget left cannot pay for waits for the reset (at most a minute): sent anyway, monday would refuse it.
 * What requests in flight will cost is reserved, so concurrent batches do not all count on the same points.
 */
class ComplexityBudget {
  private left: number | undefined;
  private resetAt = 0;
  /** The budget of a whole window, as far as known (the largest `before` seen, or what an error said). */
  private limit: number | undefined;

  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  learnLimit(limit: number): void {
    this.limit = limit;
  }

  fit(costEach: number): number {
    const whole = this.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(this.limit / costEach));
    if (this.left === undefined || this.now() >= this.resetAt) return whole;
    const now = Math.floor(this.left / costEach);
    // Nothing fits now: the request waits for the reset, and may then be a whole window's worth.
    return now >= 1 ? Math.min(now, whole) : whole;
  }

  async reserve(cost: number): Promise<void> {
    for (;;) {
      const now = this.now();
      // A new window: its whole budget, when known, so that concurrent requests share it until an answer says
      // what is left and when it resets (monday's windows are a minute).
      if (now >= this.resetAt) {
        this.left = this.limit;
        this.resetAt = this.limit === undefined ? 0 : now + 60_000;
      }
      if (this.left === undefined || cost <= this.left) break;
      // Longer than a minute (the daily limit): the batch fails now and is retried then, holding nothing meanwhile.
      if (this.resetAt - now > LONGEST_WAIT_MS) throw new RateLimitedError(`monday's limits are spent until ${new Date(this.resetAt).toISOString()}`, { status: 429, retryAfterMs: this.resetAt - now });
      // A little past the reset, so that monday's window has turned when the request arrives.
      await new Promise((resolve) => setTimeout(resolve, this.resetAt - now + 50));
    }
    if (this.left !== undefined) this.left -= cost;
  }

  observe(after: number, resetInSeconds: number, before?: number): void {
    if (before !== undefined) this.limit = Math.max(this.limit ?? 0, before);
    const resetAt = this.now() + resetInSeconds * 1000;
    // A new window (a later reset) replaces what was known; in the same window, the lowest figure is the latest.
    if (this.left === undefined || resetAt > this.resetAt + 1_500) this.left = after;
    else this.left = Math.min(this.left, after);
    this.resetAt = resetAt;
  }

  exhausted(retryAfterMs: number): void {
    this.left = 0;
    this.resetAt = this.now() + retryAfterMs;
  }
}
