// The skeleton every claimed batch goes through, record sync and event delivery alike: count it in flight,
// resolve what to send (the kind's own steps; what fails goes to the failure recorder), find who each item is
// about at the destination, send in the connector's chunks and count what it accepted, then record the outcome
// (audit and finish, one transaction) and report the rows whose lease was lost meanwhile. record-sync.ts and
// event-delivery.ts hold only what differs.
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.ts';
import type { Connector, ItemOutcome } from '../destinations/types.ts';
import type { DeliveryError } from '../destinations/kit/errors.ts';
import type { Identities, ResolvedPerson } from '../identity/identities.ts';
import type { Person } from '../identity/person.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { EngineHooks } from './hooks.ts';
import { createFailureRecorder, type FailingRow, type FailureRecorder } from './failures.ts';
import { sendInChunks } from './send-in-chunks.ts';

export interface BatchDeps {
  destination: string;
  connector: Connector;
  identities: Identities;
  engine: EngineConfig;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  now: () => number;
}

/** A row to send: its item for the connector, and who it is about (resolved at the destination before sending). */
export interface BatchEntry<Row, Item extends { person?: ResolvedPerson | undefined }> {
  row: Row;
  item: Item;
  person: Person | undefined;
}

/** What one batch does of its own (a closure over the batch's state, made for each batch). */
export interface BatchSteps<Row, Entry> {
  /** The entries to send; rows settled without sending are kept by the steps, those that fail go to the recorder. */
  resolve(): Promise<Entry[]>;
  /** An entry the destination accepted (the batch has counted it and observed its lag). */
  sent(entry: Entry, outcome: Extract<ItemOutcome, { ok: true }>): void;
  /** An entry the destination refused or failed: handed to the recorder with what may be kept of it. */
  failed(entry: Entry, error: DeliveryError): void;
  /** Records the outcome (audit entries and the queue's finish); returns the rows whose lease was lost. */
  finish(): Promise<{ refused: Row[] }>;
}

/** What differs between the kinds, once for all their batches. */
export interface BatchKind<Row, Item> {
  kind: 'record' | 'event';
  /** The connector's operation (latency metric label) and the call that sends a chunk. */
  operation: 'records' | 'events';
  send(items: Item[]): Promise<ItemOutcome[]>;
  /** The item's key in hooks, and the fields that identify it in log lines. */
  keyOf(row: Row): string;
  logFields(row: Row): Record<string, unknown>;
  /** When the work on a row started to be owed (end-to-end lag). */
  since(row: Row): number;
  /** The warning logged when leases were lost. */
  lost(refused: readonly Row[]): [Record<string, unknown>, string];
}

export async function runBatch<Row extends FailingRow, Item extends { person?: ResolvedPerson | undefined }, Entry extends BatchEntry<Row, Item>>(
  deps: BatchDeps,
  kind: BatchKind<Row, Item>,
  rows: readonly Row[],
  start: (failures: FailureRecorder<Row>) => BatchSteps<Row, Entry>,
): Promise<void> {
  const { destination, connector, identities, metrics, logger, now } = deps;
  metrics.inFlight.inc({ destination, kind: kind.kind }, rows.length);
  try {
    const failures = createFailureRecorder<Row>({ ...deps, kind: kind.kind, keyOf: (row) => kind.keyOf(row), logFields: (row) => kind.logFields(row) });
    const steps = start(failures);
    const entries = await steps.resolve();
    // Who each item is about at this destination: its id for them, and a guest merged or matched to a customer.
    const resolved = await identities.resolve(destination, entries.flatMap((entry) => (entry.person ? [entry.person] : [])));
    for (const entry of entries) if (entry.person) entry.item.person = resolved.get(entry.person.key);
    await sendInChunks(
      entries,
      connector.limits.maxBatchSize,
      (entry) => entry.item,
      (items) => kind.send(items),
      (seconds) => metrics.destinationLatency.observe({ destination, operation: kind.operation }, seconds),
      (entry, outcome) => {
        if (!outcome.ok) return steps.failed(entry, outcome.error);
        metrics.succeeded.inc({ destination, kind: kind.kind });
        metrics.endToEndLag.observe({ destination, kind: kind.kind }, Math.max(0, now() - kind.since(entry.row)) / 1000);
        steps.sent(entry, outcome);
      },
    );
    const { refused } = await steps.finish();
    if (refused.length > 0) {
      metrics.leaseLost.inc({ destination, kind: kind.kind }, refused.length);
      logger.warn(...kind.lost(refused));
    }
  } finally {
    metrics.inFlight.dec({ destination, kind: kind.kind }, rows.length);
  }
}
