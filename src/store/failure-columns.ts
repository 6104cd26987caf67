// What both work queues (records, events) write when an item fails: for a retry, its backoff, its attempt
// history and its lease given back; for a dead letter, the row that keeps it.
import type { DeadLetter, Retry } from '../engine/failures.ts';

export function retryColumns(retry: Retry<{ first_failed_at: number | null }>, now: number) {
  return {
    due_at: retry.dueAt,
    attempts: retry.attempts,
    first_failed_at: retry.row.first_failed_at ?? now,
    last_error: retry.lastError,
    attempt_log: JSON.stringify(retry.attemptLog),
    lease_owner: null,
    lease_until: null,
  };
}

/** The dead_letters columns every kind shares (the queue adds what identifies the item). */
export function deadLetterColumns(letter: DeadLetter<{ correlation_id: string }>, now: number) {
  return {
    correlation_id: letter.row.correlation_id,
    reason: letter.reason,
    last_error: letter.lastError,
    attempts: letter.attempts,
    attempt_log: JSON.stringify(letter.attemptLog),
    payload: JSON.stringify(letter.redactedPayload),
    created_at: now,
  };
}
