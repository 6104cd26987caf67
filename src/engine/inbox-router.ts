// Moves accepted request bodies from the inbox into work: one transaction per batch normalises them, quarantines
// what is not understood, dedupes the notifications, dirties record keys and queues events (store/inbox.ts),
// then wakes the workers of the destinations that got work. Runs as a work loop of concurrency one, woken by
// every commit of the inbox writer; on PostgreSQL an advisory lock keeps it to one process at a time.
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { quarantineInboxHead, reconcileInbox, routeInbox, type RouteResult } from '../store/inbox.ts';
import type { Store } from '../store/store.ts';
import type { EngineHooks } from './hooks.ts';
import type { Routes } from './routes.ts';
import { WorkLoop } from './work-loop.ts';

/** Items (notifications, mostly) per routing transaction: big enough to amortise it, small enough not to hold up commits. */
const BATCH = 100;
const PURGE_EVERY_MS = 60_000;
const HEAD_FAILING_BEFORE_QUARANTINE_MS = 60_000;


export function createInboxRouter(deps: {
  store: Store;
  routes: Routes;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  pollIntervalMs: number;
  lingerMs: number;
  dedupeWindowMs: number;
  /** Resolves when the router may take the store: it gives way to ingest's commits, as the workers do. */
  yieldTo?: () => Promise<void>;
  /** After each batch: what it put in the destinations' queues, and how many inbox items it took. */
  onRouted: (queued: RouteResult['queued'], items: number, erasures: number) => void;
}): WorkLoop<RouteResult> {
  const { store, routes, metrics, logger, hooks, onRouted } = deps;
  let lastPurge = Date.now();
  let headFailingSince: number | undefined;
  let reconciled = false;

  function reportRouted(result: RouteResult): void {
    for (const [destination, counts] of result.queued) {
      metrics.queued.inc({ destination, kind: 'record' }, counts.records);
      metrics.queued.inc({ destination, kind: 'event' }, counts.events);
    }
    metrics.duplicates.inc(result.duplicates);
    for (const { deadLetterId, reason, correlationId } of result.quarantined) {
      logger.warn({ correlationId, deadLetterId, reason }, 'unrecognised payload quarantined');
    }
    metrics.quarantined.inc(result.quarantined.length);
    for (const notice of result.notices) {
      if (notice.kind === 'sns-subscription-confirmation') {
        logger.warn({ topicArn: notice.topicArn, subscribeUrl: notice.subscribeUrl }, 'AWS SNS asks to confirm the subscription: open the SubscribeURL once to start receiving notifications');
      }
    }
    for (const { correlationId, type, resource, version, duplicate } of result.detail ?? []) {
      logger.debug({ correlationId, type, resource, version, duplicate }, 'notification routed');
    }
    hooks.onRouted?.({ routed: result.notifications, duplicates: result.duplicates });
    onRouted(result.queued, result.items, result.erasures);
  }

  return new WorkLoop<RouteResult>({
    name: 'inbox-router',
    concurrency: 1,
    // A claim yields one routed batch; a non-empty one means more may wait, so the loop claims again at once.
    batchSize: 1,
    pollIntervalMs: deps.pollIntervalMs,
    lingerMs: deps.lingerMs,
    ...(deps.yieldTo && { yieldTo: deps.yieldTo }),
    logger,
    async claim() {
      if (!reconciled) {
        const warning = await reconcileInbox(store);
        if (warning) logger.error(warning);
        reconciled = true;
      }
      const now = Date.now();
      if (now - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now;
        await store.db.deleteFrom('seen').where('received_at', '<', now - deps.dedupeWindowMs).execute();
      }
      let result: RouteResult;
      try {
        result = await routeInbox(store, routes, BATCH, now, { detail: logger.isLevelEnabled('debug') });
      } catch (error) {
        // One row the store refuses must not hold back everything behind it: route the head alone, and if
        // that keeps failing for a minute (so not the store being briefly away or locked), quarantine it.
        try {
          result = await routeInbox(store, routes, 1, now);
          headFailingSince = undefined;
        } catch (headError) {
          headFailingSince ??= now;
          if (now - headFailingSince < HEAD_FAILING_BEFORE_QUARANTINE_MS) throw headError;
          headFailingSince = undefined;
          const id = await quarantineInboxHead(store, `could not be routed: ${(error as Error).message}`, now);
          metrics.quarantined.inc();
          logger.error({ err: error, deadLetterId: id }, 'an accepted request body could not be routed; quarantined');
          return [];
        }
      }
      return result.routed > 0 ? [result] : [];
    },
    process([result]) {
      reportRouted(result!);
      return Promise.resolve();
    },
  });
}
