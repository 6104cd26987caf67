// The error classes connectors throw (or return per item) so the engine knows what to do next — retry with
// backoff, wait for the destination's rate limit, or stop and dead-letter — and the one place an HTTP status
// becomes one of them. Connectors, the commercetools client and the payment-data guard use them; the engine
// decides on them.
import { redactText } from '../../observability/redact.ts';

export abstract class DeliveryError extends Error {
  abstract readonly retryable: boolean;
  /** HTTP status of the destination's answer, when there was one. */
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    // Messages quote destination responses and end up in logs, dead letters and text columns: personal data is
    // removed, and NUL too (PostgreSQL refuses it, and a failure that cannot be recorded would be retried at
    // lease expiry forever instead of backing off).
    super(redactText(message.replaceAll('\u0000', '\uFFFD')), { cause: options.cause });
    this.status = options.status;
  }
}

/** Network failures, timeouts, 408/423/425/5xx: try again later with backoff. */
export class RetryableError extends DeliveryError {
  readonly retryable = true;
  override readonly name: string = 'RetryableError';
  /** The destination asked for this wait (Retry-After), in milliseconds. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown; retryAfterMs?: number | undefined } = {}) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** 429 or an exhausted quota: the whole destination waits, not just this item. */
export class RateLimitedError extends RetryableError {
  override readonly name = 'RateLimitedError';
}

/** Validation failures and other 4xx: retrying cannot help; the item becomes a dead letter. */
export class PermanentError extends DeliveryError {
  readonly retryable = false;
  override readonly name = 'PermanentError';
}

/** Turns any thrown value into a DeliveryError: unknown failures count as retryable (a bug or a network blip). */
export function toDeliveryError(error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RetryableError(message, { cause: error });
}

/** What an HTTP status means for the item (the brief's list); 0 stands for no answer at all (a network failure). */
export type StatusClass = 'success' | 'retryable' | 'rate-limited' | 'permanent';

/**
 * Every connector's classification of a status: network failures, 408, 423 (locked), 425 (too early) and 5xx
 * are worth another try; 429 is the rate limit; every other 4xx is the item's own fault.
 */
export function classifyStatus(status: number): StatusClass {
  if (status === 0) return 'retryable';
  if (status < 400) return 'success';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status === 423 || status === 425 || status >= 500) return 'retryable';
  return 'permanent';
}

/** The error for a status (classifyStatus), with the wait the destination asked for; undefined means success. */
export function errorForStatus(status: number, message: string, retryAfterMs?: number): DeliveryError | undefined {
  switch (classifyStatus(status)) {
    case 'success':
      return undefined;
    case 'rate-limited':
      return new RateLimitedError(message, { status, retryAfterMs });
    case 'retryable':
      return new RetryableError(message, { ...(status !== 0 && { status }), retryAfterMs });
    case 'permanent':
      return new PermanentError(message, { status });
  }
}

/** Parses a Retry-After header (delta-seconds or HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
