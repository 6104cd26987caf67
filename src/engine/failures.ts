// Bookkeeping for failed items, shared by record sync and event delivery: decide retry or dead letter
// (retry-policy.ts), collect the outcome for the batch's finishing transaction, and log, count and report it.
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DeliveryError } from '../destinations/kit/errors.ts';
import type { EngineHooks } from './hooks.ts';
import { decideAfterFailure, type AttemptRecord } from './retry-policy.ts';

export interface FailingRow {
  attempts: number;
  first_failed_at: number | null;
  attempt_log: string | null;
  correlation_id: string;
}

export interface Retry<Row> {
  row: Row;
  dueAt: number;
  attempts: number;
  attemptLog: AttemptRecord[];
  lastError: string;
}

export interface DeadLetter<Row> {
  row: Row;
  reason: string;
  lastError: string;
  attempts: number;
  attemptLog: AttemptRecord[];
  redactedPayload: unknown;
}

export interface FailureRecorder<Row> {
  retries: Array<Retry<Row>>;
  deadLetters: Array<DeadLetter<Row>>;
  fail: (row: Row, error: DeliveryError, redactedPayload: unknown) => void;
}

export function createFailureRecorder<Row extends FailingRow>(options: {
  kind: 'record' | 'event';
  destination: string;
  engine: EngineConfig;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  now: () => number;
  /** The item's key in hooks, and the fields that identify it in log lines. */
  keyOf: (row: Row) => string;
  logFields: (row: Row) => Record<string, unknown>;
}): FailureRecorder<Row> {
  const { kind, destination, engine, metrics, logger, hooks, now, keyOf, logFields } = options;
  const what = kind === 'record' ? 'record sync' : 'event delivery';
  const recorder: FailureRecorder<Row> = {
    retries: [],
    deadLetters: [],
    fail(row, error, redactedPayload) {
      const decision = decideAfterFailure({ attempts: row.attempts, firstFailedAt: row.first_failed_at, attemptLog: row.attempt_log }, error, now(), engine);
      const log = logger.child({ correlationId: row.correlation_id, ...logFields(row) });
      if (decision.action === 'retry') {
        recorder.retries.push({ row, dueAt: decision.dueAt, attempts: decision.attempts, attemptLog: decision.attemptLog, lastError: error.message });
        log.warn({ attempt: decision.attempts, retryInMs: decision.dueAt - now(), error: error.message }, `${what} failed; will retry`);
        metrics.retried.inc({ destination, kind });
        hooks.onRetry?.({ destination, kind, key: keyOf(row), error: error.message, attempt: decision.attempts });
      } else {
        recorder.deadLetters.push({ row, reason: decision.reason, lastError: error.message, attempts: decision.attempts, attemptLog: decision.attemptLog, redactedPayload });
        log.error({ attempts: decision.attempts, reason: decision.reason }, `${what} dead-lettered`);
        metrics.deadLettered.inc({ destination, kind });
        hooks.onDeadLetter?.({ destination, kind, key: keyOf(row), reason: decision.reason });
      }
    },
  };
  return recorder;
}
