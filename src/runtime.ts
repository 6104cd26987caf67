// Wires one ctbridge process together from a validated configuration: store (migrated), routes, engine, ingest
// and HTTP server. `ctbridge start`, the sandbox, the tests and the benchmark all start ctbridge through here,
// so they run the same code.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { Connector } from './destinations/types.ts';
import type { Engine } from './engine/engine.ts';
import type { EngineHooks } from './engine/hooks.ts';
import type { ResourceFetcher } from './engine/record-sync.ts';
import type { CommercetoolsWriter } from './commercetools/writeback.ts';
import type { IngestAuthOptions } from './ingest/auth.ts';
import { createIngestService, withIngestMetrics, type IngestService } from './ingest/ingest-service.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { buildServer } from './server/app.ts';
import { openStore, type Store } from './store/store.ts';
import { startEngineThread, type EngineClient } from './threads/engine-client.ts';
import { createInboxWriter } from './ingest/inbox-writer.ts';
import { loadSealKey } from './pii/secrets.ts';
import { createSealer } from './pii/sealed.ts';
import { startIngestThread, type IngestClient } from './threads/ingest-client.ts';
import { MessageChannel } from 'node:worker_threads';
import { AggregatorRegistry } from 'prom-client';
import { createCommercetoolsClient } from './commercetools/client.ts';
import { ActionsService, type ActionsServiceOptions } from './actions/service.ts';
import { createActionsSweeper, type ActionsSweeper } from './actions/sweeper.ts';
import type { ApiClientsOptions } from './server/api-clients.ts';
import type { ScheduledSyncRunner } from './backfill/scheduled-sync.ts';

export interface RuntimeOptions {
  config: Config;
  logger: Logger;
  hooks?: EngineHooks;
  /** Replaces the commercetools API client (tests). */
  fetcher?: ResourceFetcher;
  connectors?: Record<string, Connector>;
  /** Wraps the commercetools writer of two-way sync (tests inject concurrent edits). */
  wrapWriter?: (writer: CommercetoolsWriter) => CommercetoolsWriter;
  /** Start the HTTP server (default true). */
  listen?: boolean;
  /** Start the engine's workers (default true). */
  work?: boolean;
  /** Replaces the fetchers (JWKS, SNS certificates) and the clock of ingest authentication (tests). */
  ingestAuth?: IngestAuthOptions;
  /**
   * Run the engine on its own thread (what `ctbridge start` does), so HTTP ingest keeps the main event loop.
   * Hooks, injected fetchers and connectors need the engine in this thread, so they rule this out.
   */
  engineThread?: boolean;
  /** The clock of the storefront rate limits (tests). */
  now?: () => number;
  /** Fault injection into agent actions (tests): see ActionsServiceOptions.afterWrite. */
  actionsAfterWrite?: ActionsServiceOptions['afterWrite'];
  /** Fault injection into agent actions (tests): see ActionsServiceOptions.beforeWrite. */
  actionsBeforeWrite?: ActionsServiceOptions['beforeWrite'];
  /** The JWKS fetcher of API bearer tokens (tests). */
  apiAuth?: ApiClientsOptions;
  /** The clock of scheduled syncs and whether they poll only when `runtime.scheduledSync.tick()` is called (tests). */
  scheduledSync?: { now?: () => number; manual?: boolean };
  /** Called when the engine or the ingest thread dies after it started; the process should exit (default: log and exit 1). */
  onEngineFailure?: (error: Error) => void;
}

export interface Runtime {
  store: Store;
  engine: Engine;
  ingest: IngestService;
  metrics: Metrics;
  app: FastifyInstance;
  /** The scheduled syncs' poller, when the engine runs in this thread (backfill/scheduled-sync.ts). */
  scheduledSync: ScheduledSyncRunner | undefined;
  /** Settles agent actions whose process died (actions/sweeper.ts), when actions are configured; it runs with the engine's workers. */
  actionsSweeper: ActionsSweeper | undefined;
  /** Base URL of the HTTP server when listening. */
  url: string | undefined;
  stop(): Promise<void>;
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, logger, hooks } = options;
  // With the engine on its thread, that thread checkpoints, and this store only serves the admin API's reads (two
  // PostgreSQL connections are plenty: every process's connections count against the server's limit).
  const store = openStore(config.store, options.engineThread ? { checkpoints: 'off', poolSize: 2 } : { checkpoints: 'auto' });
  await store.migrate();
  // Bodies are sealed where they are committed (pii/sealed.ts), under the key the engine opens them with.
  const sealKey = await loadSealKey(store.db, config.pii.hashKey);
  const ingestLimits = { maxItemsPerBody: config.server.maxItemsPerBody };
  const metrics = createMetrics({ defaultMetrics: true });
  const onEngineFailure =
    options.onEngineFailure ??
    ((error: Error) => {
      logger.fatal({ err: error }, 'a ctbridge thread died; exiting so that a supervisor restarts ctbridge (acknowledged messages are stored)');
      process.exit(1);
    });
  let thread: EngineClient | undefined;
  let ingestThread: IngestClient | undefined;
  let ingest: IngestService;
  let engine: Engine;
  let stopEngine: () => Promise<void>;
  let scheduledSync: ScheduledSyncRunner | undefined;
  if (options.engineThread) {
    // Two threads besides this one: ingest (read and commit request bodies, nothing else) and the engine
    // (routing and sync, at a lower CPU priority); the ingest thread tells the engine about commits directly.
    const commits = new MessageChannel();
    const engineThread = await startEngineThread(config, commits.port2, onEngineFailure);
    const started = await startIngestThread({ storeUrl: config.store, sealKey, ...ingestLimits }, commits.port1, onEngineFailure).catch(async (error: unknown) => {
      await engineThread.stop();
      throw error;
    });
    metrics.watchThreadHeap('ingest', () => started.heapStatistics());
    thread = engineThread;
    ingestThread = started;
    engine = engineThread;
    stopEngine = () => engineThread.stop();
    ingest = withIngestMetrics(started, metrics, hooks);
  } else {
    // Loaded here, not at the top: with the engine on its thread, this thread never runs it.
    const { engineFromConfig } = await import('./engine/from-config.ts');
    const built = await engineFromConfig({ config, store, metrics, logger, hooks, fetcher: options.fetcher, connectors: options.connectors, wrapWriter: options.wrapWriter, scheduledSync: options.scheduledSync });
    engine = built.engine;
    scheduledSync = built.scheduledSync;
    stopEngine = built.stop;
    const writer = createInboxWriter(store.inbox, (items) => engine.inboxCommitted(items));
    ingest = withIngestMetrics(createIngestService({ writer, sealer: createSealer(sealKey), ...ingestLimits }), metrics, hooks);
  }
  // The support view reads commercetools from this thread; only when some API client may ask for it.
  const supportClient = config.api.clients.length > 0 ? createCommercetoolsClient(config.commercetools) : undefined;
  // Agent actions write through a commercetools client of their own, with only the scopes actions need.
  const actionsClient = config.actions ? createCommercetoolsClient({ ...config.commercetools, ...config.actions.commercetools }) : undefined;
  const actions =
    config.actions && actionsClient
      ? new ActionsService({ db: store.db, commercetools: actionsClient, config: config.actions, logger, ...(options.now && { now: options.now }), ...(options.actionsAfterWrite && { afterWrite: options.actionsAfterWrite }), ...(options.actionsBeforeWrite && { beforeWrite: options.actionsBeforeWrite }) })
      : undefined;
  const actionsSweeper = actions && config.actions ? createActionsSweeper({ service: actions, logger, leaseSeconds: config.actions.leaseSeconds }) : undefined;
  const app = buildServer({
    config,
    ...(supportClient && { commercetools: supportClient }),
    ...(actions && { actions }),
    ...(options.apiAuth && { apiAuth: options.apiAuth }),
    store,
    ingest,
    metrics,
    logger,
    onReplay: (destination) => engine.notify(destination ? [destination] : undefined),
    // With the engine on its thread, its counters live there: merge them into one exposition.
    ...(thread && {
      metricsText: async () => AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), await thread.metrics()]).metrics(),
    }),
    ...(options.ingestAuth && { ingestAuth: options.ingestAuth }),
    ...(options.now && { now: options.now }),
    inbound: { sealer: createSealer(sealKey), onStored: (destination) => engine.notify([destination]) },
  });

  let url: string | undefined;
  if (options.listen !== false) {
    await app.listen({ port: config.server.port, host: config.server.host });
    const address = app.server.address();
    if (address && typeof address === 'object') url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  } else {
    await app.ready();
  }
  let stopping: Promise<void> | undefined;
  const runtime: Runtime = {
    store,
    engine,
    ingest,
    metrics,
    app,
    scheduledSync,
    actionsSweeper,
    url,
    stop() {
      stopping ??= (async () => {
        await app.close();
        await actionsSweeper?.stop();
        actions?.close();
        await supportClient?.close();
        await actionsClient?.close();
        await ingestThread?.stop();
        await stopEngine();
        await store.close();
      })();
      return stopping;
    },
  };
  if (options.work !== false) {
    // A destination that cannot work at all (an attribute Intercom has with another type) fails the start.
    try {
      await engine.prepare();
    } catch (error) {
      await runtime.stop();
      throw error;
    }
    engine.start();
    actionsSweeper?.start();
  }
  return runtime;
}
