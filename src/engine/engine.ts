// Assembles the engine: one connector, one rate limiter and two work loops (record sync, event delivery) per
// configured destination. Ingest wakes the loops of the destinations it gave work to; stop() stops claiming,
// lets the batches in flight finish and gives back any lease still held.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { findDestinationDefinition } from '../destinations/registry.ts';
import { createDestinationFetch } from '../destinations/kit/fetch.ts';
import type { Connector } from '../destinations/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Sealer } from '../pii/sealed.ts';
import { EventQueue, purgeSettledEvents } from '../store/event-queue.ts';
import { RecordQueue } from '../store/record-queue.ts';
import type { Store } from '../store/store.ts';
import { createEventDelivery } from './event-delivery.ts';
import { PermanentError } from '../destinations/kit/errors.ts';
import type { EngineHooks } from './hooks.ts';
import { createRateLimiter } from './rate-limiter.ts';
import { createRecordSync, type ResourceFetcher } from './record-sync.ts';
import type { Routes } from './routes.ts';
import { WorkLoop } from './work-loop.ts';
import { Leases, tokenPattern } from './leases.ts';
import { createInboxRouter } from './inbox-router.ts';
import { IngestPressure } from './ingest-pressure.ts';
import { createReferenceExpander } from '../mapping/references.ts';
import { piiKeysLoader } from '../pii/keys.ts';
import { Identities } from '../identity/identities.ts';
import { carryOutErasures, claimErasures } from './erasure.ts';
import { purgeExpired } from './retention.ts';
import { createEventSeconds, purgeEventSeconds } from '../store/event-seconds.ts';
import { recordLateFailures } from './late-failures.ts';
import { connectorState } from '../store/connector-state.ts';
import { createPayloadRecorder } from '../observability/payload-log.ts';
import type { CommercetoolsWriter } from '../commercetools/writeback.ts';
import { createInboundPoller } from './inbound-poll.ts';
import { createInboundWork } from './inbound-work.ts';

const YIELD_TO_INGEST_MAX_MS = 50;
const RETENTION_INTERVAL_MS = 3600 * 1000;
/**
 * What one claim may carry (sealed resources or messages, as stored): parsing takes many times that on the heap,
 * and every destination's loops claim at once on the engine thread, whose heap is bounded (bin/ctbridge.js).
 * Ordinary rows are a few KB, so this only ever splits claims of very large ones.
 */
const CLAIM_MAX_BYTES = 1024 * 1024;
const ERASURE_POLL_MS = 30_000;

export interface EngineDeps {
  config: Pick<Config, 'destinations' | 'engine'> & Partial<Pick<Config, 'pii' | 'identity' | 'retention'>>;
  routes: Routes;
  store: Store;
  fetcher: ResourceFetcher;
  metrics: Metrics;
  logger: Logger;
  hooks?: EngineHooks;
  /** Connectors by destination name, replacing the configured ones (tests inject faulty ones). */
  connectors?: Record<string, Connector>;
  /** Writes to commercetools (two-way sync); without it, inbound webhooks are stored but not worked off. */
  writer?: CommercetoolsWriter | undefined;
}

export interface Engine {
  /** Runs the connectors' start-up checks; rejects naming the destination when one cannot work at all. */
  prepare(): Promise<void>;
  start(): void;
  /** The inbox writer committed rows holding `items` items: wake the router (see also IngestPressure). */
  inboxCommitted(items: number): void;
  /** Wakes the workers of these destinations (all when omitted). */
  notify(destinations?: Iterable<string>): void;
  stop(): Promise<void>;
}

export function createEngine(deps: EngineDeps): Engine {
  const { config, routes, store, fetcher, metrics, logger, hooks = {} } = deps;
  // This process; every claim's lease token starts with it (engine/leases.ts).
  const owner = `${process.pid}-${randomUUID()}`;
  const queues: Array<RecordQueue | EventQueue> = [];
  const loops = new Map<string, { records: WorkLoop<never>; events: WorkLoop<never> }>();
  const connectors: Connector[] = [];

  // One cache of referenced objects (customer groups, stores…) for every destination's mappings.
  const references = createReferenceExpander((typeId, by, values) => fetcher.fetchReferenced(typeId, by, values), { ttlMs: config.engine.referenceCacheMs });
  const pii = piiKeysLoader(store.db, { ...config.pii, emailRules: config.identity });
  const identities = new Identities(store.db);
  const pressure = new IngestPressure();
  const yieldTo = () => pressure.idle(YIELD_TO_INGEST_MAX_MS);

  for (const destination of config.destinations) {
    const log = logger.child({ destination: destination.name });
    const connector = deps.connectors?.[destination.name] ?? buildConnector(destination, store, metrics, log, hooks, async () => (await pii()).sealer);
    connectors.push(connector);
    const common = { destination: destination.name, connector, routes, references, pii, identities, engine: config.engine, metrics, logger: log, hooks };
    const loopOptions = { concurrency: config.engine.concurrency, batchSize: connector.limits.maxBatchSize, pollIntervalMs: config.engine.pollIntervalMs, lingerMs: config.engine.lingerMs, logger: log, yieldTo };
    const leaseOptions = { prefix: owner, leaseMs: config.engine.leaseMs, maxBytes: CLAIM_MAX_BYTES, logger: log };
    const recordQueue = new RecordQueue(store.db, store.dialect, destination.name);
    const eventQueue = new EventQueue(store.db, store.dialect, destination.name);
    queues.push(recordQueue, eventQueue);
    const syncRecords = createRecordSync({ ...common, queue: recordQueue, fetcher, db: store.db });
    const deliverEvents = createEventDelivery({ ...common, queue: eventQueue, fetcher });
    const recordLeases = new Leases({ ...leaseOptions, queue: recordQueue });
    const eventLeases = new Leases({ ...leaseOptions, queue: eventQueue });
    const claimed = (kind: 'record' | 'event') => <Row>(rows: Row[]) => {
      hooks.onClaim?.({ destination: destination.name, kind, claimed: rows.length });
      return rows;
    };
    loops.set(destination.name, {
      records: new WorkLoop({ ...loopOptions, name: 'records', claim: (limit) => recordLeases.claim(limit).then(claimed('record')), process: (rows) => recordLeases.hold(rows, rows[0]?.lease_owner ?? null, () => syncRecords(rows)) }) as WorkLoop<never>,
      events: new WorkLoop({ ...loopOptions, name: 'events', claim: (limit) => eventLeases.claim(limit).then(claimed('event')), process: (rows) => eventLeases.hold(rows, rows[0]?.lease_owner ?? null, () => deliverEvents(rows)) }) as WorkLoop<never>,
    });
  }

  // Erasure requests: ctbridge's copies of the person go, and their records are deleted at every destination.
  // The router wakes this loop when it queues one and `ctbridge erase` carries its own out, so the poll only
  // picks up what a crash left behind: it need not query every pollIntervalMs.
  let scrubPending = false;
  const erasures = new WorkLoop({
    name: 'erasures',
    concurrency: 1,
    batchSize: 10,
    pollIntervalMs: ERASURE_POLL_MS,
    logger,
    claim: async (limit) => {
      if (scrubPending) scrubPending = !(await store.scrub());
      return claimErasures(store.db, limit);
    },
    process: async (requests) => {
      await carryOutErasures(store.db, requests, await pii(), Date.now());
      for (const request of requests) logger.info({ correlationId: request.correlation_id, source: request.source, resourceType: request.resource_type }, 'erasure carried out');
      // The erased rows are zeroed in the store's files; older copies in the write-ahead log go now, or at the
      // next poll when a reader holds the log.
      scrubPending = !(await store.scrub());
      notify();
    },
  }) as WorkLoop<never>;
  // Inbound work (two-way sync): the destination's stored webhooks, written back to commercetools.
  const inbound = new Map<string, WorkLoop<never>>();
  const pollers: Array<WorkLoop<never>> = [];
  for (const destination of config.destinations) {
    const definition = findDestinationDefinition(destination.type);
    if (!destination.inbound || !definition?.inbound || !deps.writer) continue;
    const log = logger.child({ destination: destination.name, work: 'inbound' });
    inbound.set(destination.name, createInboundWork({ destination, definition, db: store.db, routes, writer: deps.writer, pii, engine: config.engine, logger: log, owner, onDirty: () => loops.get(destination.name)?.records.notify() }) as WorkLoop<never>);
    // A destination that cannot push is polled for its changes, which become the same inbound work.
    const connector = connectors[config.destinations.indexOf(destination)];
    if (destination.inbound.poll !== undefined && connector?.pollInbound) {
      const poll = { destination: destination.name, connector, db: store.db, intervalMs: destination.inbound.poll, leaseMs: config.engine.leaseMs, owner, sealer: async () => (await pii()).sealer, logger: log.child({ work: 'inbound-poll' }), onStored: () => inbound.get(destination.name)?.notify() };
      pollers.push(createInboundPoller(poll) as WorkLoop<never>);
    }
  }
  const allLoops = () => [...[...loops.values()].flatMap((pair) => [pair.records, pair.events]), ...inbound.values(), ...pollers, erasures];
  const notify = (destinations?: Iterable<string>) => {
    for (const name of destinations ?? loops.keys()) {
      loops.get(name)?.records.notify();
      loops.get(name)?.events.notify();
      inbound.get(name)?.notify();
    }
  };
  const router = createInboxRouter({
    store,
    routes,
    metrics,
    logger,
    hooks,
    pii,
    pollIntervalMs: config.engine.pollIntervalMs,
    lingerMs: config.engine.lingerMs,
    dedupeWindowMs: config.engine.dedupeWindowMs,
    yieldTo,
    // Wake only the loops that got work: an idle loop's claim is a wasted query on the shared connection.
    onRouted: (queued, items, erasureCount) => {
      pressure.routed(items);
      if (erasureCount > 0) erasures.notify();
      for (const [name, counts] of queued) {
        if (counts.records > 0) loops.get(name)?.records.notify();
        if (counts.events > 0) loops.get(name)?.events.notify();
      }
    },
  });

  // Retention, when configured: at start-up and then hourly. A failure is logged and tried again an hour later.
  const payloadLogDays = Object.fromEntries(config.destinations.flatMap((d) => (d.payloadLog ? [[d.name, d.payloadLog.retentionDays]] : [])));
  const retention = config.retention || Object.keys(payloadLogDays).length > 0 ? { stores: {}, ...config.retention, payloadLogDays } : undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  const purge = () => {
    // The seconds events claimed (store/event-seconds.ts) are forgotten after a fixed time, retention or not.
    purgeEventSeconds(store.db, Date.now()).then(
      (purged) => {
        if (purged > 0) logger.debug({ eventSeconds: purged }, 'forgot the seconds of events sent long ago');
      },
      (error: unknown) => logger.warn({ err: error }, 'forgetting old event seconds failed; tried again in an hour'),
    );
    // Deliveries kept until the destination could no longer refuse them (store/event-queue.ts): those of a
    // destination that has gone quiet, or is no longer configured, go here.
    purgeSettledEvents(store.db, Date.now()).then(
      (purged) => {
        if (purged > 0) logger.debug({ events: purged }, 'deleted delivered events the destination can no longer refuse');
      },
      (error: unknown) => logger.warn({ err: error }, 'deleting settled event deliveries failed; tried again in an hour'),
    );
    if (!retention || (retention.days === undefined && retention.auditDays === undefined && Object.keys(retention.stores).length === 0 && Object.keys(retention.payloadLogDays).length === 0)) return;
    purgeExpired(store.db, retention, Date.now()).then(
      (purged) => {
        if (purged.snapshots + purged.deadLetterPayloads + purged.auditEntries + purged.payloadEntries > 0) logger.info(purged, 'retention: purged expired snapshots, dead-letter payloads, audit entries and payload log entries');
      },
      (error: unknown) => logger.warn({ err: error }, 'retention purge failed; tried again in an hour'),
    );
  };

  return {
    async prepare() {
      const names = config.destinations.map((d) => d.name);
      await Promise.all(
        connectors.map(async (connector, i) => {
          try {
            await connector.prepare?.();
          } catch (error) {
            if (error instanceof PermanentError) throw new Error(`destination "${names[i]}": ${error.message}`, { cause: error });
            logger.warn({ destination: names[i], err: error }, 'the destination could not be checked at start-up; it is checked again before the first send');
          }
        }),
      );
    },
    start() {
      router.start();
      for (const loop of allLoops()) loop.start();
      purge();
      retentionTimer = setInterval(purge, RETENTION_INTERVAL_MS).unref();
    },
    inboxCommitted(items) {
      pressure.committed(items);
      router.notify();
    },
    notify,
    async stop() {
      clearInterval(retentionTimer);
      await Promise.all([router, ...allLoops()].map((loop) => loop.stop()));
      await Promise.all(queues.map((queue) => queue.release(tokenPattern(owner))));
      await Promise.all(connectors.map((c) => (c.close ? c.close() : Promise.resolve())));
    },
  };
}

export function buildConnector(destination: Config['destinations'][number], store: Store, metrics: Metrics, logger: Logger, hooks: EngineHooks, sealer: () => Promise<Sealer>): Connector {
  const definition = findDestinationDefinition(destination.type);
  if (!definition) throw new Error(`destination "${destination.name}": unknown type "${destination.type}"`);
  // Shared through the store, so that every process sending to this destination stays under one limit.
  const limiter = createRateLimiter(store.db, destination.name);
  // Every call the connector makes goes through this fetch: paced by the limiter, counted, timed.
  const settings = definition.settings.parse(destination);
  // The destination's payload log, when enabled: every exchange through its fetch, treated before it is kept.
  const payloadLog = destination.payloadLog?.enabled ? createPayloadRecorder({ db: store.db, destination: destination.name, policy: destination.pii, settings, logger }) : undefined;
  const fetch = createDestinationFetch({ limiter, onCall: () => metrics.destinationCalls.inc({ destination: destination.name, operation: 'http' }), payloadLog });
  const connector = definition.create(settings, {
    fetch,
    logger,
    name: destination.name,
    eventSeconds: createEventSeconds(store.db, destination.name),
    state: connectorState(store.db, destination.name, { sealer }),
    reportLateFailures: (failures) => recordLateFailures(store.db, destination.name, failures, { now: Date.now, metrics, logger, hooks }),
  });
  limiter.setRate(connector.limits.rateLimit);
  return connector;
}
