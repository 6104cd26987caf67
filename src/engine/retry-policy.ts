// What happens after a failed attempt: when to try again (exponential backoff with full jitter, never sooner than
// the destination's Retry-After) or whether the item has run out of attempts or age and becomes a dead letter.
import type { EngineConfig } from '../config/schema.ts';
import type { DeliveryError } from '../destinations/kit/errors.ts';

export interface AttemptRecord {
  at: number;
  error: string;
  status?: number;
}

export type FailureDecision =
  | { action: 'retry'; dueAt: number; attempts: number; attemptLog: AttemptRecord[] }
  | { action: 'dead-letter'; reason: string; attempts: number; attemptLog: AttemptRecord[] };

const KEPT_ATTEMPTS = 20;

export function decideAfterFailure(
  state: { attempts: number; firstFailedAt: number | null; attemptLog: string | null },
  error: DeliveryError,
  now: number,
  policy: Pick<EngineConfig, 'maxAttempts' | 'maxAgeMs' | 'backoffBaseMs' | 'backoffMaxMs'>,
  random = Math.random,
): FailureDecision {
  const attempts = state.attempts + 1;
  const previous = state.attemptLog ? (JSON.parse(state.attemptLog) as AttemptRecord[]) : [];
  const record: AttemptRecord = { at: now, error: error.message.slice(0, 500), ...(error.status !== undefined && { status: error.status }) };
  const attemptLog = [...previous, record].slice(-KEPT_ATTEMPTS);
  if (!error.retryable) return { action: 'dead-letter', reason: `permanent error: ${record.error}`, attempts, attemptLog };
  if (attempts >= policy.maxAttempts) return { action: 'dead-letter', reason: `gave up after ${attempts} attempts: ${record.error}`, attempts, attemptLog };
  const firstFailedAt = state.firstFailedAt ?? now;
  if (now - firstFailedAt >= policy.maxAgeMs) {
    return { action: 'dead-letter', reason: `still failing after ${Math.round((now - firstFailedAt) / 1000)} s: ${record.error}`, attempts, attemptLog };
  }
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempts - 1));
  const jittered = Math.floor(random() * ceiling);
  const retryAfter = 'retryAfterMs' in error && typeof error.retryAfterMs === 'number' ? error.retryAfterMs : 0;
  return { action: 'retry', dueAt: now + Math.max(jittered, retryAfter), attempts, attemptLog };
}
