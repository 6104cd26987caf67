// Moves accepted notifications from the inbox into work: one transaction per batch dedupes them, dirties record
// keys and queues events (store/inbox.ts), then wakes the workers of the destinations that got work. Runs as a
// work loop of concurrency one; on PostgreSQL an advisory lock keeps it to one process at a time. Most rows
// never wait here: the inbox writer routes them as it commits them and reports that through `reportRouted`.
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { quarantineInboxHead, routeInbox, type RouteResult } from '../store/inbox.ts';
import type { Store } from '../store/store.ts';
import type { EngineHooks } from './hooks.ts';
import type { Routes } from './routes.ts';
import { WorkLoop } from './work-loop.ts';

const BATCH = 1_000;
const PURGE_EVERY_MS = 60_000;
const HEAD_FAILING_BEFORE_QUARANTINE_MS = 60_000;

export interface InboxRouter {
  loop: WorkLoop<RouteResult>;
  /** Counts and wakes for work routed elsewhere (by the inbox writer). */
  reportRouted: (result: RouteResult) => void;
}

export function createInboxRouter(deps: {
  store: Store;
  routes: Routes;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  pollIntervalMs: number;
  lingerMs: number;
  dedupeWindowMs: number;
  onQueued: (queued: RouteResult['queued']) => void;
}): InboxRouter {
  const { store, routes, metrics, logger, hooks, onQueued } = deps;
  let lastPurge = Date.now();
  let headFailingSince: number | undefined;

  function reportRouted(result: RouteResult): void {
    for (const [destination, counts] of result.queued) {
      metrics.queued.inc({ destination, kind: 'record' }, counts.records);
      metrics.queued.inc({ destination, kind: 'event' }, counts.events);
    }
    metrics.duplicates.inc(result.duplicates);
    hooks.onRouted?.({ routed: result.routed, duplicates: result.duplicates });
    onQueued(result.queued);
  }

  const loop = new WorkLoop<RouteResult>({
    name: 'inbox-router',
    concurrency: 1,
    batchSize: BATCH,
    pollIntervalMs: deps.pollIntervalMs,
    lingerMs: deps.lingerMs,
    logger,
    async claim(limit) {
      const now = Date.now();
      if (now - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now;
        await store.db.deleteFrom('seen').where('received_at', '<', now - deps.dedupeWindowMs).execute();
      }
      let result: RouteResult;
      try {
        result = await routeInbox(store.db, store.dialect, routes, limit, now);
      } catch (error) {
        // One row the store refuses must not hold back everything behind it: route the head alone, and if
        // that keeps failing for a minute (so not the store being briefly away or locked), quarantine it.
        try {
          result = await routeInbox(store.db, store.dialect, routes, 1, now);
          headFailingSince = undefined;
        } catch (headError) {
          headFailingSince ??= now;
          if (now - headFailingSince < HEAD_FAILING_BEFORE_QUARANTINE_MS) throw headError;
          headFailingSince = undefined;
          const id = await quarantineInboxHead(store.db, `could not be routed: ${(error as Error).message}`, now);
          metrics.quarantined.inc();
          logger.error({ err: error, deadLetterId: id }, 'an accepted notification could not be routed; quarantined');
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
  return { loop, reportRouted };
}
