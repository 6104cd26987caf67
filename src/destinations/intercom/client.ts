// The Intercom API client: the official intercom-client SDK (Intercom-Version 2.14, its retries off: the engine
// owns retries), making its calls through the destination's fetch from the kit (paced by the shared rate limiter,
// counted, the exchange timed), with Intercom's own X-RateLimit headers read on every answer; and every SDK failure
// as one of the kit's error classes, so operations only ever see those.
import { createRequire } from 'node:module';
import type * as IntercomSdk from 'intercom-client';
import type { Logger } from 'pino';
import { DeliveryError, PermanentError, RetryableError, errorForAnswer, type ConnectorDeps, type ConnectorState, type EventSeconds } from '../kit/index.ts';
import type { IntercomSettings } from './settings.ts';

export type IntercomApi = IntercomSdk.IntercomClient;

export interface IntercomClient {
  readonly settings: IntercomSettings;
  readonly logger: Logger;
  /** The seconds events claimed per name and contact, for Intercom's dedupe on created_at (events.ts). */
  readonly eventSeconds: EventSeconds;
  /** What the destination keeps in the store for every process sending to it (a guest's lead: contacts.ts). */
  readonly state: ConnectorState | undefined;
  readonly now: () => number;
  /** Runs one SDK call (`doing` says what, for the error message); its failure comes out as a kit error class. */
  call<T>(doing: string, request: (api: IntercomApi) => Promise<T>): Promise<T>;
  /**
   * Creates a contact, or finds the one Intercom already has with that external_id (archived by an admin or
   * not): Intercom's search lags behind creation, so its 409 "A contact matching those details already exists
   * with id=…" ("An archived contact …" when it is archived) is the reliable way to find it. With an external_id
   * in the body Intercom never matches by email, so the contact it names is the same customer's.
   */
  createContact(doing: string, body: Record<string, unknown>): Promise<{ id: string; created: boolean; archived: boolean }>;
  /** Says once (per name, up to a thousand) that a mapped value has no attribute declared, so is not sent. */
  undeclared: (name: string) => void;
}

// The SDK (a few MB of modules) is loaded when an Intercom destination is created, not by every thread that
// reads the configuration.
const requireModule = createRequire(import.meta.url);

export function createIntercomClient(settings: IntercomSettings, deps: ConnectorDeps): IntercomClient {
  const { logger } = deps;
  const { IntercomClient, IntercomEnvironment, IntercomError, IntercomTimeoutError } = requireModule('intercom-client') as typeof IntercomSdk;
  let allowanceChecked = false;
  const fetch = deps.fetch.with({
    timeoutMs: settings.timeoutMs,
    budgetResetAt(headers, status) {
      if (!allowanceChecked) allowanceChecked = checkAllowance(headers, settings.limitPerMinute, logger);
      return windowResetAt(headers, status);
    },
  });
  const api = new IntercomClient({
    token: settings.token,
    ...(settings.baseUrl ? { baseUrl: settings.baseUrl } : { environment: { us: IntercomEnvironment.UsProduction, eu: IntercomEnvironment.EuProduction, au: IntercomEnvironment.AuProduction }[settings.region] }),
    version: '2.14',
    maxRetries: 0,
    // The SDK's timer would also count the wait for the rate limiter; the kit's fetch times the exchange alone.
    timeoutInSeconds: 24 * 3600,
    fetch,
  });

  /** The SDK's failure as one of the kit's error classes. */
  function classify(error: unknown, doing: string): DeliveryError {
    if (error instanceof DeliveryError) return error;
    if (error instanceof IntercomTimeoutError) return new RetryableError(`${doing}: Intercom did not answer within ${settings.timeoutMs} ms`, { cause: error });
    if (!(error instanceof IntercomError)) return new RetryableError(`${doing}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    const status = error.statusCode ?? 0;
    // No answer: the fetch's failure (a timeout, a refused connection), as the SDK passes its message on.
    if (status === 0) return new RetryableError(`${doing}: ${error.message}`, { cause: error });
    const detail = errorMessages(error.body);
    if (status === 401 || status === 403) {
      logger.error({ status }, 'Intercom rejected the access token: nothing can be sent until it is replaced');
      return new PermanentError(`${doing}: Intercom rejected the access token (${status}${detail ? `: ${detail}` : ''}); replace the token and replay`, { status });
    }
    const message = status === 429 ? `${doing}: Intercom's rate limit was reached` : `${doing}: Intercom answered ${status}${detail ? `: ${detail}` : ''}`;
    return errorForAnswer(status, error.rawResponse?.headers, message, fetch.options) ?? new RetryableError(message, { status });
  }

  const call = async <T>(doing: string, request: (api: IntercomApi) => Promise<T>): Promise<T> => {
    try {
      return await request(api);
    } catch (error) {
      throw classify(error, doing);
    }
  };

  const warned = new Set<string>();

  return {
    settings,
    logger,
    eventSeconds: deps.eventSeconds,
    state: deps.state,
    now: deps.now ?? Date.now,
    call,
    async createContact(doing, body) {
      try {
        const contact = await api.contacts.create(body as never);
        return { id: contact.id, created: true, archived: false };
      } catch (error) {
        const message = error instanceof IntercomError && error.statusCode === 409 ? errorMessages(error.body) : '';
        const existing = /id=([\w-]+)/.exec(message)?.[1];
        if (existing) return { id: existing, created: false, archived: /\barchived contact\b/i.test(message) };
        throw classify(error, doing);
      }
    },
    undeclared: (name) => {
      if (warned.has(name) || warned.size >= 1_000) return;
      warned.add(name);
      logger.warn({ attribute: name }, 'a mapped value has no Intercom attribute declared under attributes: it is not sent');
    },
  };
}

/**
 * Intercom's budget, read from every answer: with the window's calls spent (someone else shares the workspace, or
 * clocks disagree), every process waits for the window to reset instead of collecting 429s. Pausing earlier than
 * that would only push the limiter's schedule back and waste the window.
 */
function windowResetAt(headers: Headers, status: number): number | undefined {
  const remaining = headers.get('x-ratelimit-remaining');
  const reset = Number(headers.get('x-ratelimit-reset') ?? Number.NaN) * 1000;
  if ((status === 429 || (remaining !== null && Number(remaining) === 0)) && Number.isFinite(reset) && reset > 0) return reset;
  return undefined;
}

/**
 * Says once when the workspace allows fewer calls than limitPerMinute paces at: X-RateLimit-Limit is the allowance
 * of a 10-second window (https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting), so
 * the pacing would collect a 429 every window. Returns whether the answer carried the header (checked once then).
 */
function checkAllowance(headers: Headers, limitPerMinute: number, logger: Logger): boolean {
  const perWindow = Number(headers.get('x-ratelimit-limit') ?? Number.NaN);
  if (!Number.isFinite(perWindow) || perWindow <= 0) return false;
  if (perWindow * 6 < limitPerMinute) {
    logger.warn({ perWindow, perMinute: perWindow * 6, limitPerMinute }, `Intercom allows ${perWindow} calls per 10 seconds (${perWindow * 6} a minute), fewer than limitPerMinute (${limitPerMinute}): set limitPerMinute to ${perWindow * 6} or less, or calls will be answered 429 and wait`);
  }
  return true;
}

/** Intercom's error list as one line. */
function errorMessages(body: unknown): string {
  const errors = (body as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors;
  return Array.isArray(errors) ? errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ') : '';
}
