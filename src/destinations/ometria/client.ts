// The Ometria Push API client: POST /v2/push with an array of records of one @type, GET /v2/push/_errors, with the
// X-Ometria-Auth key, through the destination's fetch from the kit (the shared 4 requests/s limiter, the call
// count, the exchange timed). Ometria's own backlog headers are read on every answer: when X-QueueSize-Remaining
// says the 50,000-record backlog is nearly full, every process pauses before Ometria starts answering 429.
// Failures come out as the kit's error classes.
import type { Logger } from 'pino';
import { PermanentError, createHttpClient, type ConnectorDeps, type ConnectorState, type LateFailure } from '../kit/index.ts';
import type { OmetriaSettings } from './settings.ts';

export interface PushAnswer {
  accepted: number;
  rejected: number;
}

export interface OmetriaError {
  error_message: string;
  error_path: string;
}

export interface OmetriaClient {
  readonly settings: OmetriaSettings;
  readonly logger: Logger;
  readonly state: ConnectorState;
  readonly now: () => number;
  readonly reportLateFailures: (failures: LateFailure[]) => Promise<void>;
  /** One push: records of one type, at most 100; throws the kit's errors. */
  push(records: ReadonlyArray<Record<string, unknown>>): Promise<PushAnswer>;
  /** The 100 newest asynchronous validation errors. */
  listErrors(): Promise<OmetriaError[]>;
}

/** Below this share of the backlog left, calls pause (a full backlog answers 429 to everyone). */
const QUEUE_LOW_SHARE = 0.1;
/** How long a nearly full backlog pauses the calls: long enough for Ometria to work some of it off. */
const QUEUE_LOW_PAUSE_MS = 1_000;
const QUEUE_NEARLY_FULL_PAUSE_MS = 5_000;
/** Room for fewer than this many records: the longer pause. */
const QUEUE_NEARLY_FULL = 1_000;

export function createOmetriaClient(settings: OmetriaSettings, deps: ConnectorDeps & { state: ConnectorState; reportLateFailures: (failures: LateFailure[]) => Promise<void> }): OmetriaClient {
  const now = deps.now ?? Date.now;
  const http = createHttpClient(deps.fetch.with({ timeoutMs: settings.timeoutMs, budgetResetAt: (headers, status) => backlogResumeAt(headers, status, now()) }));
  const base = settings.baseUrl.replace(/\/+$/, '');
  const headers = { 'x-ometria-auth': settings.apiKey, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'ctbridge' };

  /** A refused key says so: nothing can be sent until it is replaced. */
  const call = async <T>(request: () => Promise<T>): Promise<T> => {
    try {
      return await request();
    } catch (error) {
      if (error instanceof PermanentError && (error.status === 401 || error.status === 403)) {
        deps.logger.error({ status: error.status }, 'Ometria rejected the API key: nothing can be sent until it is replaced');
        throw new PermanentError(`Ometria rejected the API key (${error.status}); replace it and replay`, { status: error.status });
      }
      throw error;
    }
  };

  return {
    settings,
    logger: deps.logger,
    state: deps.state,
    now,
    reportLateFailures: deps.reportLateFailures,
    push: (records) =>
      call(async () => {
        const answer = await http.request({ method: 'POST', url: `${base}/v2/push`, headers, body: JSON.stringify(records) });
        const json = (answer.json ?? {}) as Partial<PushAnswer>;
        return { accepted: typeof json.accepted === 'number' ? json.accepted : records.length, rejected: typeof json.rejected === 'number' ? json.rejected : 0 };
      }),
    listErrors: () =>
      call(async () => {
        const answer = await http.request({ method: 'GET', url: `${base}/v2/push/_errors`, headers });
        return Array.isArray(answer.json) ? (answer.json as unknown[]).filter((e): e is OmetriaError => typeof e === 'object' && e !== null && typeof (e as OmetriaError).error_path === 'string') : [];
      }),
  };
}

/**
 * When calls may start again after this answer: Ometria's backlog headers, read on every answer (a 429 without them
 * falls back to the kit's Retry-After handling). A nearly full backlog pauses everyone before it is full.
 */
export function backlogResumeAt(headers: Headers, status: number, now: number): number | undefined {
  const limit = Number(headers.get('x-queuesize-limit') ?? Number.NaN);
  const remaining = Number(headers.get('x-queuesize-remaining') ?? Number.NaN);
  if (!Number.isFinite(limit) || !Number.isFinite(remaining) || limit <= 0) return undefined;
  if (remaining < QUEUE_NEARLY_FULL || (status === 429 && remaining < limit)) return now + QUEUE_NEARLY_FULL_PAUSE_MS;
  if (remaining < limit * QUEUE_LOW_SHARE) return now + QUEUE_LOW_PAUSE_MS;
  return undefined;
}
