// Ingest after the HTTP edge: hands recognised notifications, encoded as inbox rows, to the inbox writer (which
// group-commits them durably), quarantines what cannot be understood and records transport notices. A caller
// may acknowledge its sender once `ingest` resolves. Dedupe happens in the router.
import type { Logger } from 'pino';
import type { EngineHooks } from '../engine/hooks.ts';
import type { Metrics } from '../observability/metrics.ts';
import { redact } from '../observability/redact.ts';
import { DeadLetters } from '../store/dead-letters.ts';
import { inboxRow, type AcceptedNotification } from '../store/inbox.ts';
import type { Store } from '../store/store.ts';
import type { InboxWriter } from './inbox-writer.ts';
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

export function createIngestService(deps: { store: Store; writer: InboxWriter; metrics: Metrics; logger: Logger; hooks?: EngineHooks }): IngestService {
  const { store, writer, metrics, logger, hooks } = deps;
  const deadLetters = new DeadLetters(store.db);

  return {
    async ingest(items, options = {}) {
      const outcome: IngestOutcome = { accepted: 0, quarantined: 0, ignored: 0, controls: [] };
      const accepted: AcceptedNotification[] = [];
      const now = Date.now();
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
        await writer.append(accepted.map((item) => inboxRow(item, now)));
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
