// Ingest after the HTTP edge: commits recognised notifications durably (group commit: concurrent requests share
// one transaction), quarantines what cannot be understood, records transport notices, and wakes the workers of
// every destination that received work. A caller may acknowledge its sender once `ingest` resolves.
import type { Logger } from 'pino';
import type { Routes } from '../engine/routes.ts';
import type { EngineHooks } from '../engine/hooks.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redact } from '../observability/redact.ts';
import { DeadLetters } from '../store/dead-letters.ts';
import { commitNotifications, type AcceptedNotification, type CommitResult } from '../store/ingest-commit.ts';
import type { Store } from '../store/store.ts';
import type { ControlMessage, NormalizedItem } from './message.ts';

export interface IngestOutcome {
  accepted: number;
  duplicates: number;
  quarantined: number;
  /** Subscription test notifications: acknowledged and otherwise ignored. */
  ignored: number;
  controls: ControlMessage[];
}

export interface IngestService {
  ingest(items: NormalizedItem[], options?: { correlationId?: string | undefined; source?: 'http' | 'cli' }): Promise<IngestOutcome>;
}

// Bounds one group commit so a flood of requests cannot build a single enormous transaction.
const MAX_ITEMS_PER_COMMIT = 5_000;

interface Waiting {
  items: AcceptedNotification[];
  resolve(fresh: boolean[]): void;
  reject(error: unknown): void;
}

export function createIngestService(deps: { store: Store; routes: Routes; metrics: Metrics; logger: Logger; hooks?: EngineHooks; onWork: (destinations: Set<string>) => void }): IngestService {
  const { store, routes, metrics, logger, hooks, onWork } = deps;
  const deadLetters = new DeadLetters(store.db);
  const queue: Waiting[] = [];
  let flushing = false;

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch: Waiting[] = [];
        let count = 0;
        while (queue.length > 0 && (count === 0 || count + queue[0]!.items.length <= MAX_ITEMS_PER_COMMIT)) {
          const next = queue.shift()!;
          batch.push(next);
          count += next.items.length;
        }
        let result: CommitResult;
        try {
          result = await commitNotifications(store.db, routes, batch.flatMap((w) => w.items), Date.now());
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        let offset = 0;
        for (const waiting of batch) {
          waiting.resolve(result.fresh.slice(offset, offset + waiting.items.length));
          offset += waiting.items.length;
        }
        for (const [destination, counts] of result.queued) {
          metrics.queued.inc({ destination, kind: 'record' }, counts.records);
          metrics.queued.inc({ destination, kind: 'event' }, counts.events);
        }
        if (result.touchedDestinations.size > 0) onWork(result.touchedDestinations);
      }
    } finally {
      flushing = false;
    }
  }

  function submit(items: AcceptedNotification[]): Promise<boolean[]> {
    return new Promise((resolve, reject) => {
      queue.push({ items, resolve, reject });
      // Requests arriving while a commit runs wait for the next one and share it.
      if (!flushing) setImmediate(() => void flush());
    });
  }

  return {
    async ingest(items, options = {}) {
      const outcome: IngestOutcome = { accepted: 0, duplicates: 0, quarantined: 0, ignored: 0, controls: [] };
      const accepted: AcceptedNotification[] = [];
      for (const item of items) {
        if (item.kind === 'notification') {
          accepted.push({ notification: item.notification, correlationId: options.correlationId ?? item.notification.dedupeKey });
        } else if (item.kind === 'control') {
          if (item.control.kind === 'subscription-test') outcome.ignored += 1;
          else outcome.controls.push(item.control);
        } else {
          const correlationId = options.correlationId ?? `quarantine-${Date.now()}`;
          const id = await deadLetters.quarantine({ reason: item.unrecognised.reason, correlationId, redactedBody: redact(item.unrecognised.body) });
          logger.warn({ correlationId, deadLetterId: id, reason: item.unrecognised.reason }, 'unrecognised payload quarantined');
          metrics.quarantined.inc();
          outcome.quarantined += 1;
        }
      }
      for (const control of outcome.controls) {
        if (control.kind === 'sns-subscription-confirmation') {
          await store.db.insertInto('transport_notices').values({ kind: control.kind, detail: JSON.stringify(control), received_at: Date.now() }).execute();
          logger.warn({ topicArn: control.topicArn, subscribeUrl: control.subscribeUrl }, 'AWS SNS asks to confirm the subscription: open the SubscribeURL once to start receiving notifications');
        }
      }
      if (accepted.length > 0) {
        const fresh = await submit(accepted);
        fresh.forEach((isFresh, index) => {
          const { notification, correlationId } = accepted[index]!;
          if (isFresh) outcome.accepted += 1;
          else outcome.duplicates += 1;
          logger.debug({ correlationId, type: notification.type, resource: notification.resource, version: notification.resourceVersion, duplicate: !isFresh }, 'notification ingested');
        });
        metrics.ingested.inc({ source: options.source ?? 'http' }, outcome.accepted);
        metrics.duplicates.inc(outcome.duplicates);
      }
      hooks?.onIngested?.({ accepted: outcome.accepted, duplicates: outcome.duplicates, quarantined: outcome.quarantined });
      return outcome;
    },
  };
}
