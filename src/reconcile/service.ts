// What a reconciliation needs, assembled from the configuration on a store the caller opened: the paged reader and
// the resource fetcher over one commercetools client (the backfill's reader and record sync's fetcher), the
// compiled routes, a reference cache, the identity table, the PII keys, and each destination's connector for
// reading back (built as the engine builds it, so its calls share the destination's rate limit in the store).
// `ctbridge reconcile` and the scheduled runs inside `ctbridge start` both go through here.
import type { Logger } from 'pino';
import type { Config, DestinationConfig } from '../config/schema.ts';
import type { Connector } from '../destinations/types.ts';
import { buildConnector } from '../engine/engine.ts';
import type { ResourceFetcher } from '../engine/record-sync.ts';
import { compileRoutes, type Routes } from '../engine/routes.ts';
import { Identities } from '../identity/identities.ts';
import { createReferenceExpander } from '../mapping/references.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { piiKeysLoader } from '../pii/keys.ts';
import type { Store } from '../store/store.ts';
import type { PageReader } from '../backfill/reader.ts';
import { reconcile, type ReconcileOptions, type ReconcileReport } from './reconcile.ts';
import { parseDuration } from '../config/schedule.ts';
import { createReconcileScheduler, type ReconcileScheduler, type ScheduledDestination } from './schedule.ts';

export interface ReconcilerOptions {
  config: Config;
  store: Store;
  reader: PageReader;
  fetcher: ResourceFetcher;
  logger: Logger;
  routes?: Routes;
  metrics?: Metrics;
  /** Connectors by destination name, replacing the configured ones (tests). */
  connectors?: Record<string, Connector> | undefined;
  now?: () => number;
}

export interface RunOptions {
  recordTypes?: readonly string[] | undefined;
  repair?: boolean;
  runId: string;
  onQueued?: () => void;
  onProgress?: ReconcileOptions['onProgress'];
}

export interface Reconciler {
  run(destination: string, options: RunOptions): Promise<ReconcileReport>;
  close(): Promise<void>;
}

export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { config, store, fetcher } = options;
  const routes = options.routes ?? compileRoutes(config);
  const references = createReferenceExpander((typeId, by, values) => fetcher.fetchReferenced(typeId, by, values), { ttlMs: config.engine.referenceCacheMs });
  const pii = piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity });
  const identities = new Identities(store.db);
  const metrics = options.metrics ?? createMetrics();
  const built = new Map<string, Connector>();
  const connectorOf = (destination: DestinationConfig): Connector => {
    const injected = options.connectors?.[destination.name];
    if (injected) return injected;
    let connector = built.get(destination.name);
    if (!connector) {
      connector = buildConnector(destination, store, metrics, options.logger.child({ destination: destination.name, part: 'reconcile' }), {}, async () => (await pii()).sealer);
      built.set(destination.name, connector);
    }
    return connector;
  };
  return {
    async run(name, run) {
      const destination = config.destinations.find((d) => d.name === name);
      if (!destination) throw new Error(`no destination "${name}"`);
      const recordTypes = run.recordTypes ?? Object.keys(destination.records);
      return reconcile(
        { db: store.db, dialect: store.dialect, routes, reader: options.reader, fetcher, references, identities, pii, connector: connectorOf(destination), ...(options.now && { now: options.now }) },
        { destination: name, recordTypes, repair: run.repair ?? false, runId: run.runId, ...(run.onQueued && { onQueued: run.onQueued }), ...(run.onProgress && { onProgress: run.onProgress }) },
      );
    },
    async close() {
      await Promise.all([...built.values()].map((connector) => (connector.close ? connector.close() : Promise.resolve())));
    },
  };
}

/** The record types a request names, checked against the destination: the types, or what is wrong (for a usage error). */
export function resolveRecordTypes(destinations: readonly DestinationConfig[], name: string, records: readonly string[] | undefined): { ok: true; recordTypes: string[] } | { ok: false; detail: string } {
  const destination = destinations.find((d) => d.name === name);
  if (!destination) return { ok: false, detail: `--destination: no destination "${name}" (configured: ${destinations.map((d) => d.name).join(', ') || 'none'})` };
  const mapped = Object.keys(destination.records);
  if (mapped.length === 0) return { ok: false, detail: `--destination: "${name}" maps no records, so there is nothing to reconcile` };
  if (records === undefined) return { ok: true, recordTypes: mapped };
  const unknown = records.filter((type) => !mapped.includes(type));
  if (unknown.length > 0) return { ok: false, detail: `--records: ${unknown.map((type) => `"${type}"`).join(', ')} ${unknown.length === 1 ? 'is not a record type' : 'are not record types'} of "${name}" (it maps ${mapped.join(', ')})` };
  if (records.length === 0) return { ok: false, detail: `--records: name at least one record type of "${name}" (it maps ${mapped.join(', ')})` };
  return { ok: true, recordTypes: [...new Set(records)] };
}

/** The destinations with `reconcile: { every }`, for the scheduler. */
export function scheduledDestinations(destinations: readonly DestinationConfig[]): ScheduledDestination[] {
  return destinations.flatMap((d) => {
    const schedule = d.reconcile;
    const everyMs = schedule ? parseDuration(schedule.every) : undefined;
    return schedule && everyMs !== undefined && Object.keys(d.records).length > 0 ? [{ name: d.name, everyMs, repair: schedule.repair }] : [];
  });
}

export interface ScheduledReconciliationOptions extends Omit<ReconcilerOptions, 'logger'> {
  logger: Logger;
  /** Wakes the destination's record workers once repairs are queued. */
  notify: (destination: string) => void;
}

/** The scheduler of the destinations with `reconcile: { every }` (none: a scheduler that does nothing). */
export function scheduledReconciliation(options: ScheduledReconciliationOptions): ReconcileScheduler {
  const logger = options.logger.child({ part: 'reconcile' });
  const reconciler = createReconciler({ ...options, logger });
  const scheduler = createReconcileScheduler({
    db: options.store.db,
    destinations: scheduledDestinations(options.config.destinations),
    run: (destination, run) => reconciler.run(destination, { ...run, onQueued: () => options.notify(destination) }),
    logger,
    leaseMs: options.config.engine.leaseMs,
    ...(options.now && { now: options.now }),
  });
  return {
    ...scheduler,
    async stop() {
      await scheduler.stop();
      await reconciler.close();
    },
  };
}
