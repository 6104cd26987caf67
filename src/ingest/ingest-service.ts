// Ingest after the HTTP edge: appends recognised notifications to the inbox durably (group commit: concurrent
// requests share one transaction), quarantines what cannot be understood, records transport notices, and wakes
// the inbox router. A caller may acknowledge its sender once `ingest` resolves. Dedupe happens in the router.
import type { Logger } from 'pino';
import type { EngineHooks } from '../engine/hooks.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redact } from '../observability/redact.ts';
import { DeadLetters } from '../store/dead-letters.ts';
import { appendToInbox, type AcceptedNotification } from '../store/inbox.ts';
import type { Store } from '../store/store.ts';
import type { ControlMessage, NormalizedItem } from './message.ts';

export interface IngestOutcome {
  /** Notifications durably stored (duplicates among them are dropped when routed). */
  accepted: number;
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
  resolve(): void;
  reject(error: unknown): void;
}

export function createIngestService(deps: { store: Store; metrics: Metrics; logger: Logger; hooks?: EngineHooks; onAppended: () => void }): IngestService {
  const { store, metrics, logger, hooks, onAppended } = deps;
  const deadLetters = new DeadLetters(store.db);
  const queue: Waiting[] = [];
  let flushing = false;
  let scheduled = false;

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
        try {
          await appendToInbox(store.db, batch.flatMap((w) => w.items), Date.now());
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        for (const waiting of batch) waiting.resolve();
        onAppended();
      }
    } finally {
      flushing = false;
    }
  }

  function submit(items: AcceptedNotification[]): Promise<void> {
    return new Promise((resolve, reject) => {
      queue.push({ items, resolve, reject });
      // Requests arriving while a commit runs wait for the next one and share it; one flush loop at a time.
      if (!flushing && !scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          void flush();
        });
      }
    });
  }

  return {
    async ingest(items, options = {}) {
      const outcome: IngestOutcome = { accepted: 0, quarantined: 0, ignored: 0, controls: [] };
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
        await submit(accepted);
        outcome.accepted = accepted.length;
        if (logger.isLevelEnabled('debug')) {
          for (const { notification, correlationId } of accepted) {
            logger.debug({ correlationId, type: notification.type, resource: notification.resource, version: notification.resourceVersion }, 'notification accepted');
          }
        }
        metrics.ingested.inc({ source: options.source ?? 'http' }, outcome.accepted);
      }
      hooks?.onIngested?.({ accepted: outcome.accepted, quarantined: outcome.quarantined });
      return outcome;
    },
  };
}
