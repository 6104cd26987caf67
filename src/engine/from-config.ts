// Builds the engine from a validated configuration: routes, the commercetools client it reads resources with
// (unless one is injected), its connectors and hooks, on a store the caller opened. The in-process runtime
// (runtime.ts) and the engine thread (threads/engine-thread.ts) both build it here, so they run the same engine.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Connector } from '../destinations/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/store.ts';
import { createEngine, type Engine } from './engine.ts';
import type { EngineHooks } from './hooks.ts';
import type { ResourceFetcher } from './record-sync.ts';
import { compileRoutes } from './routes.ts';
import { createBackfillRunner, registerBackfillMetrics } from '../backfill/runner.ts';
import { createPageReader } from '../backfill/reader.ts';
import { piiKeysLoader } from '../pii/keys.ts';
import type { CommercetoolsWriter } from '../commercetools/writeback.ts';
import { randomUUID } from 'node:crypto';
import { configuredScheduledSyncs, createScheduledSync, registerScheduledSyncMetrics, type ScheduledSyncRunner } from '../backfill/scheduled-sync.ts';
import { createDeletionReader } from '../backfill/deletions.ts';
import { scheduledReconciliation } from '../reconcile/service.ts';
import { registerReconcileMetrics } from '../reconcile/schedule.ts';

export interface EngineFromConfigOptions {
  config: Config;
  store: Store;
  metrics: Metrics;
  logger: Logger;
  hooks?: EngineHooks | undefined;
  /** Replaces the commercetools API client (tests). */
  fetcher?: ResourceFetcher | undefined;
  /** Connectors by destination name, replacing the configured ones (tests). */
  connectors?: Record<string, Connector> | undefined;
  /** Replaces the commercetools writer of two-way sync (tests). */
  writer?: CommercetoolsWriter | undefined;
  /** Wraps it (tests inject concurrent edits). */
  wrapWriter?: ((writer: CommercetoolsWriter) => CommercetoolsWriter) | undefined;
  /** The clock of scheduled syncs, and whether they poll only when ticked (tests drive the schedule). */
  scheduledSync?: { now?: () => number; manual?: boolean } | undefined;
}

export interface EngineFromConfig {
  engine: Engine;
  /** The scheduled syncs' poller (backfill/scheduled-sync.ts). */
  scheduledSync: ScheduledSyncRunner;
  /** Stops the engine, then closes the commercetools client opened for it (the store stays the caller's). */
  stop: () => Promise<void>;
}

export async function engineFromConfig(options: EngineFromConfigOptions): Promise<EngineFromConfig> {
  const { config, store, metrics, logger, hooks, connectors } = options;
  let fetcher = options.fetcher;
  // Loaded only where it is used: the HTTP thread of `ctbridge start` never reads commercetools.
  const client = await import('../commercetools/client.ts');
  const commercetools = client.createCommercetoolsClient(config.commercetools);
  // Two-way sync writes through the same authenticated client (a test injecting its own fetcher injects a writer).
  let writer = options.writer;
  if (!fetcher) writer ??= (await import('../commercetools/writeback.ts')).commercetoolsWriter(commercetools);
  fetcher ??= client.resourceFetcher(commercetools);
  const routes = compileRoutes(config);
  const engine = createEngine({ config, routes, store, fetcher, metrics, logger, ...(hooks && { hooks }), ...(connectors && { connectors }), writer: writer && options.wrapWriter ? options.wrapWriter(writer) : writer });
  // Backfills (backfill/) read commercetools page by page and feed the engine's record queues.
  const backfills = createBackfillRunner({
    db: store.db,
    reader: createPageReader(commercetools),
    routes,
    pii: piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity }),
    notify: (destination) => engine.notify([destination]),
    logger: logger.child({ part: 'backfill' }),
    leaseMs: config.engine.leaseMs,
  });
  registerBackfillMetrics(metrics.registry, store.db);
  // Scheduled syncs (backfill/scheduled-sync.ts) poll commercetools for what changed and feed the same queues.
  const syncs = configuredScheduledSyncs(config.destinations, routes);
  const scheduledSync = createScheduledSync({
    db: store.db,
    syncs,
    reader: createPageReader(commercetools),
    deletions: createDeletionReader(commercetools),
    routes,
    pii: piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity }),
    notify: (destination) => engine.notify([destination]),
    logger: logger.child({ part: 'scheduled-sync' }),
    leaseMs: config.engine.leaseMs,
    owner: `${process.pid}-${randomUUID()}`,
    ...options.scheduledSync,
  });
  registerScheduledSyncMetrics(metrics.registry, store.db, syncs);
  const startScheduled = () => void scheduledSync.start().catch((error: unknown) => logger.error({ err: error }, 'starting the scheduled syncs failed'));
  // Scheduled reconciliation (reconcile/): destinations with `reconcile: { every }`, one process at a time.
  const reconciliations = scheduledReconciliation({ config, store, reader: createPageReader(commercetools), fetcher, routes, metrics, logger, connectors, notify: (destination) => engine.notify([destination]) });
  registerReconcileMetrics(metrics.registry, store.db);
  return {
    scheduledSync,
    engine: {
      ...engine,
      start() {
        engine.start();
        backfills.start();
        startScheduled();
        reconciliations.start();
      },
      notify(destinations) {
        engine.notify(destinations);
        backfills.wake();
      },
      async stop() {
        await scheduledSync.stop();
        await reconciliations.stop();
        await backfills.stop();
        await engine.stop();
      },
    },
    stop: async () => {
      await scheduledSync.stop();
      await reconciliations.stop();
      await backfills.stop();
      await engine.stop();
      await commercetools.close();
    },
  };
}
