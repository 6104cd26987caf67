// `ctbridge sandbox` (what `npm start` runs): the whole data flow in one process with nothing to set up. A seeded
// commercetools emulator, a local sink standing for a destination, the connectors of `destinations.ts` with their
// simulators, ctbridge itself started through startRuntime, and a generator that changes commercetools and posts
// the matching subscription notifications over HTTP, in the envelopes real subscriptions use, with bursts,
// redeliveries, reordering and sink faults. It prints a readable feed of what the engine does and, at the end,
// checks that the sink and every simulator converged to commercetools' state.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import pino from 'pino';
import { stringify } from 'yaml';
import { createCommercetoolsClient, type CommercetoolsClient } from '../commercetools/client.ts';
import { configSchema } from '../config/schema.ts';
import type { EngineHooks } from '../engine/hooks.ts';
import { compileMapping } from '../mapping/record-mapping.ts';
import { createLogger } from '../observability/logger.ts';
import { startRuntime, type Runtime } from '../runtime.ts';
import { DeadLetters } from '../store/dead-letters.ts';
import { readStatus } from '../store/status.ts';
import { inboxPath } from '../store/store.ts';
import { createChangeGenerator, scrambleDeliveries, type AppliedChange, type ChangeGenerator, type PlatformNotification, type ResourceUpdatedNotification } from './changes.ts';
import { emulatorCredentials, startEmulator, type Emulator } from './emulator.ts';
import type { SandboxDestinationCheck, StartedSandboxDestination } from './destination-entry.ts';
import { sandboxDestinations } from './destinations.ts';
import { Random, seedShop, type SeededShop } from './seed.ts';
import { sandboxActions, startSupportDemo } from './support-demo.ts';
import { startSink, type Sink } from './sink.ts';
import { storefrontDedupeKey } from '../ingest/storefront-events.ts';
import { SANDBOX_STOREFRONT_NAME, SANDBOX_STOREFRONT_ORIGIN, SandboxStorefront } from './storefront.ts';

export interface SandboxOptions {
  /** Where the store, the log and the generated config go; wiped (those files only) at start. */
  dir: string;
  /** 0 picks a free port; a taken port falls back to a free one. */
  port: number;
  seed: number;
  /** Stop after this long (counted from when the generator starts); undefined runs until `signal`. */
  durationSeconds?: number | undefined;
  /** Only the summary. */
  quiet: boolean;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  write?: (line: string) => void;
  /** The log level of the sandbox's ctbridge log (sandbox.log in `dir`); default warn. */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | undefined;
  /** Called with what was seeded into the emulator, before anything is posted. */
  onSeeded?: ((shop: SeededShop) => void) | undefined;
}

export interface SandboxSummary {
  notificationsPosted: number;
  accepted: number;
  duplicates: number;
  destinationCalls: number;
  deadLetters: number;
  customers: { matching: number; total: number };
  orders: { matching: number; total: number };
  /** Per connector of the sandbox (destinations.ts): the resources matching commercetools there, of all. */
  destinations: Record<string, { matching: number; total: number }>;
  mismatches: string[];
}

const DESTINATION = 'sink';
const SINK_BATCH_SIZE = 20;
const TICK_MS = 600;
const BURST_SIZE = 20;
const BURST_EVERY_S = 10;
/** How often a shopper on the storefront sends a behaviour event. */
const STOREFRONT_EVERY_S = 2;
/** How often the connectors' shopper side acts (a reward redeemed at checkout). */
const CONNECTOR_ACT_EVERY_S = 2;
const FAULT_CYCLE_START_S = 3;
const FAULT_CYCLE_S = 15;
const DRAIN_LIMIT_MS = 15_000;

const CUSTOMER_FIELDS = {
  email: 'email',
  firstName: 'firstName',
  lastName: 'lastName',
  customerNumber: 'customerNumber',
  city: 'addresses[0].city',
  country: 'addresses[0].country',
  store: 'stores[0].key',
};

const ORDER_FIELDS = {
  orderNumber: 'orderNumber',
  orderState: 'orderState',
  totalCentAmount: 'totalPrice.centAmount',
  currency: 'totalPrice.currencyCode',
  customerId: 'customerId',
  store: 'store.key',
};

type EnvelopeKind = 'Platform' | 'CloudEvents' | 'Pub/Sub push' | 'EventBridge';
const ENVELOPES: readonly EnvelopeKind[] = ['Platform', 'CloudEvents', 'Pub/Sub push', 'EventBridge'];

export async function runSandbox(options: SandboxOptions): Promise<SandboxSummary> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dir = resolve(options.dir);
  // Relative when under the working directory, so the printed commands are short; absolute otherwise.
  const below = relative(process.cwd(), dir);
  const shownDir = below === '' ? '.' : below.startsWith('..') || isAbsolute(below) ? dir : below;
  const files = { db: resolve(dir, 'sandbox.db'), log: resolve(dir, 'sandbox.log'), config: resolve(dir, 'sandbox.yaml') };
  mkdirSync(dir, { recursive: true });
  // The store is two files (the inbox beside the database), each with its WAL and shared-memory index.
  const storeFiles = [files.db, inboxPath(files.db)].flatMap((db) => [db, `${db}-wal`, `${db}-shm`, `${db}-journal`]);
  for (const file of [...storeFiles, files.log, files.config]) rmSync(file, { force: true });

  const feed = new Feed(write, options.quiet);
  const random = new Random(options.seed * 7919 + 17);

  feed.note(`ctbridge sandbox: seeding a commercetools emulator (seed ${options.seed})…`);
  const emulator = await startEmulator();
  const commercetools = createCommercetoolsClient(emulatorCredentials(emulator));
  const cleanups: Array<() => Promise<unknown>> = [() => emulator.close(), () => commercetools.close()];
  try {
    const shop = await seedShop(commercetools, { seed: options.seed });
    options.onSeeded?.(shop);
    const support = await startSupportDemo(commercetools.api, options.seed);
    const signingSecret = randomBytes(24).toString('base64url');
    const sink = await startSink({ signingSecret });
    cleanups.unshift(() => sink.close());
    const connectors: Array<{ name: string; started: StartedSandboxDestination }> = [];
    for (const entry of sandboxDestinations) {
      const started = await entry.start();
      cleanups.unshift(() => started.stop());
      connectors.push({ name: entry.name, started });
    }

    const port = await choosePort(options.port);
    const ingestToken = randomBytes(24).toString('base64url');
    const adminToken = randomBytes(24).toString('base64url');
    // Publishable: its pages would carry it; a fresh one per run all the same.
    const storefrontKey = `pk_sandbox_${randomBytes(12).toString('hex')}`;
    const rawConfig = { ...sandboxConfig({ emulator, sinkUrl: sink.url, signingSecret, connectors: connectors.map((c) => c.started.destination), port: port.port, ingestToken, adminToken, storefrontKey, storePath: files.db }), api: support.api, actions: sandboxActions(emulator) };
    const config = configSchema.parse(rawConfig);

    const logStream = pino.destination({ dest: files.log, sync: true, mkdir: true });
    const logger = createLogger({ level: options.logLevel ?? 'warn', destination: logStream });
    const labels = new Labels(shop);
    const stats = new Stats();
    const runtime = await startRuntime({ config, logger, hooks: feedHooks(feed, labels, stats, sink.url) });
    let runtimeStopped = false;
    cleanups.unshift(async () => {
      if (!runtimeStopped) await runtime.stop();
    });
    const url = runtime.url ?? `http://127.0.0.1:${port.port}`;
    const actualPort = Number(new URL(url).port);
    writeFileSync(files.config, configFileText({ ...rawConfig, server: { ...rawConfig.server, port: actualPort } }, shownDir));

    printBanner(feed, { url, port, actualPort, sink, connectors, shop, emulator, adminToken, ingestToken, storefrontKey, shownDir, support: support.banner(url) });

    const poster = new Poster({ url, ingestToken, random, feed, labels, stats });
    const destinationNames = config.destinations.map((d) => d.name);
    await initialLoad({ runtime, destinations: destinationNames, commercetools, shop, poster, feed, stats, sink });
    for (const { started } of connectors) await started.connect?.({ url, commercetools, note: (line) => feed.note(line), label: (id, typeId) => labels.resource(id, typeId) });

    const generator = createChangeGenerator(commercetools, { seed: options.seed, shop });
    const created = { customers: [] as string[], orders: [] as string[] };
    const storefront = new SandboxStorefront({ url, key: storefrontKey, random, shop });
    const run = new GeneratorRun({ generator, poster, feed, random, sink, shop, created, storefront, runtimeUrl: url, adminToken, stats, labels, commercetools, connectors: connectors.map((c) => c.started), waitIdle: (limitMs) => waitUntilDrained(runtime, destinationNames, limitMs) });
    const stopReason = await run.loop(options);
    await run.act(true);
    feed.note('');
    feed.note(`stopping (${stopReason}): generator stopped; sink faults cleared; waiting for ctbridge to drain its queues (at most ${DRAIN_LIMIT_MS / 1000} s)…`);

    await poster.flushHeld();
    sink.faults.length = 0;
    sink.faultFor = undefined;
    const leftover = await new DeadLetters(runtime.store.db).list({ destination: DESTINATION, limit: 1000 });
    if (leftover.length > 0) await run.replayDeadLetters('still dead-lettered at shutdown, the sink is healthy again');
    const drainStarted = performance.now();
    const drained = await waitUntilDrained(runtime, destinationNames, DRAIN_LIMIT_MS);
    feed.note(
      drained
        ? `queues empty after ${((performance.now() - drainStarted) / 1000).toFixed(1)} s; stopping ctbridge, the sink and the emulator, then comparing the sink with commercetools`
        : `not drained after ${DRAIN_LIMIT_MS / 1000} s; what is left stays queued in ${shownDir}/sandbox.db`,
    );
    const unreplayed = await new DeadLetters(runtime.store.db).list({ destination: DESTINATION, limit: 1000 });
    runtimeStopped = true;
    await runtime.stop();
    logStream.flushSync();

    const convergence = await checkConvergence({ commercetools, sink, shop, created, labels, deadLettered: new Set(unreplayed.map((d) => d.resource_id ?? '')) });
    const storefrontEvents = checkStorefrontEvents(sink, storefront);
    convergence.mismatches.push(...storefrontEvents.mismatches);
    const checks = new Map<string, SandboxDestinationCheck>();
    const customerIds = [...shop.customerIds, ...created.customers];
    for (const { name, started } of connectors) {
      const checked = await started.check({ commercetools, shop, customerIds, label: (id, typeId) => labels.resource(id, typeId) });
      checks.set(name, checked);
      convergence.mismatches.push(...checked.mismatches);
    }
    const summary: SandboxSummary = {
      notificationsPosted: stats.posted,
      accepted: stats.accepted,
      duplicates: stats.duplicates,
      destinationCalls: sink.requests.length,
      deadLetters: stats.deadLettered,
      ...convergence,
      destinations: Object.fromEntries([...checks].map(([name, { matching, total }]) => [name, { matching, total }])),
    };
    printSummary(write, summary, {
      stats,
      elapsedS: feed.elapsedS(),
      shownDir,
      unreplayed: unreplayed.length,
      signatureFailures: sink.signatureFailures,
      connectorLines: [...checks].map(([name, checked]) => `${`${name}:`.padEnd(11)}${checked.summary}`),
      storefront: storefrontEvents,
    });
    return summary;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration

interface RawConfig {
  commercetools: Record<string, unknown>;
  server: { port: number; host: string; ingest: { auth: { type: 'bearer'; token: string } }; adminToken: string };
  store: string;
  engine: Record<string, number>;
  destinations: Array<Record<string, unknown>>;
  storefronts: Array<Record<string, unknown>>;
}

function sandboxConfig(input: { emulator: Emulator; sinkUrl: string; signingSecret: string; connectors: Array<Record<string, unknown>>; port: number; ingestToken: string; adminToken: string; storefrontKey: string; storePath: string }): RawConfig {
  const { emulator } = input;
  return {
    commercetools: {
      projectKey: emulator.projectKey,
      authUrl: emulator.authUrl,
      apiUrl: emulator.apiUrl,
      clientId: emulator.clientId,
      clientSecret: emulator.clientSecret,
      scopes: [`view_customers:${emulator.projectKey}`, `view_orders:${emulator.projectKey}`, `view_payments:${emulator.projectKey}`],
    },
    server: { port: input.port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: input.ingestToken } }, adminToken: input.adminToken },
    store: `sqlite:${input.storePath}`,
    // Shorter backoff ceilings than production so a retried item shows up again while you watch.
    engine: { backoffBaseMs: 300, backoffMaxMs: 5_000 },
    destinations: [
      {
        name: DESTINATION,
        type: 'http',
        url: `${input.sinkUrl}/records`,
        eventsUrl: `${input.sinkUrl}/events`,
        batchSize: SINK_BATCH_SIZE,
        timeoutMs: 5_000,
        signingSecret: input.signingSecret,
        // What the sink holds, for `ctbridge reconcile`.
        read: { url: `${input.sinkUrl}/records/{recordType}/{id}`, fieldsAt: '/fields' },
        records: {
          customer: { source: 'customer', fields: CUSTOMER_FIELDS },
          order: { source: 'order', fields: ORDER_FIELDS },
        },
        events: {
          orderPlaced: {
            on: ['OrderCreated'],
            fields: { orderId: 'order.id', orderNumber: 'order.orderNumber', customerId: 'order.customerId', totalCentAmount: 'order.totalPrice.centAmount', currency: 'order.totalPrice.currencyCode' },
          },
          orderStateChanged: {
            on: ['OrderStateChanged'],
            fields: { orderId: 'resource.id', orderNumber: 'resourceUserProvidedIdentifiers.orderNumber', orderState: 'orderState', oldOrderState: 'oldOrderState' },
          },
          paymentTransaction: {
            on: ['PaymentTransactionAdded'],
            fields: {
              paymentId: 'resource.id',
              paymentKey: 'resourceUserProvidedIdentifiers.key',
              transactionType: 'transaction.type',
              transactionState: 'transaction.state',
              centAmount: 'transaction.amount.centAmount',
              currency: 'transaction.amount.currencyCode',
            },
          },
          customerEmailChanged: { on: ['CustomerEmailChanged'], fields: { customerId: 'resource.id', email: 'email' } },
          // Storefront behaviour events (POST /v1/events/storefront), sent by the sandbox's shoppers.
          storefrontBehaviour: {
            on: ['storefront.ProductViewed', 'storefront.ProductAddedToCart', 'storefront.CheckoutStarted', 'storefront.ProductsSearched'],
            fields: { eventId: 'id', kind: 'type', storefront: 'storefront', store: '$store', customerId: 'shopper.customerId', anonymousId: 'shopper.anonymousId', productId: 'product.id', quantity: 'quantity', cartId: 'cart.id', query: 'search.query' },
          },
        },
      },
      ...input.connectors,
    ],
    storefronts: [{ name: SANDBOX_STOREFRONT_NAME, key: input.storefrontKey, allowedOrigins: [SANDBOX_STOREFRONT_ORIGIN] }],
  };
}

function configFileText(config: RawConfig, shownDir: string): string {
  return [
    '# Written by `ctbridge sandbox` for this run only: the same configuration the sandbox started ctbridge with,',
    '# so that operator commands can look at its store while it runs (and after), e.g.',
    `#   npx ctbridge status --config ${shownDir}/sandbox.yaml`,
    `#   npx ctbridge dlq list --config ${shownDir}/sandbox.yaml`,
    '# The secrets below are random values of this local sandbox (a real ctbridge.yaml uses ${ENV_VARS}).',
    '# The emulator and the sink stop with the sandbox, so `ctbridge start` with this file has nothing to talk to.',
    stringify(config, { lineWidth: 0 }),
  ].join('\n');
}

/** The requested port if it is free on loopback, else any free one (the sandbox must start regardless). */
async function choosePort(requested: number): Promise<{ port: number; requested: number; fellBack: boolean }> {
  if (requested === 0) return { port: 0, requested, fellBack: false };
  const free = await new Promise<boolean>((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen({ host: '127.0.0.1', port: requested }, () => probe.close(() => done(true)));
  });
  return free ? { port: requested, requested, fellBack: false } : { port: 0, requested, fellBack: true };
}

// ---------------------------------------------------------------------------------------------------------------
// The live feed

class Feed {
  readonly #write: (line: string) => void;
  readonly #quiet: boolean;
  readonly #start = performance.now();
  /** While the initial load runs, per-record lines would drown the screen; they are counted instead. */
  initialLoad = false;
  /** A burst prints its own totals. */
  inBurst = false;

  constructor(write: (line: string) => void, quiet: boolean) {
    this.#write = write;
    this.#quiet = quiet;
  }

  elapsedS(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** A line without a timestamp (banner, notes). */
  note(text: string): void {
    if (!this.#quiet) this.#write(text);
  }

  line(kind: string, text: string): void {
    if (this.#quiet) return;
    this.#write(`${this.elapsedS().toFixed(1).padStart(6)}s  ${kind.padEnd(11)} ${text}`);
  }
}

/** Readable names for ids: customer keys, order numbers, payment keys, and what a message was about. */
class Labels {
  readonly #resources = new Map<string, string>();
  readonly #messages = new Map<string, string>();

  constructor(shop: SeededShop) {
    for (const c of shop.customers) this.#resources.set(c.id, `customer ${c.key}`);
    for (const o of shop.orders) {
      this.#resources.set(o.id, `order ${o.orderNumber}`);
      this.#resources.set(o.paymentId, `payment payment-${o.orderNumber}`);
    }
  }

  learn(n: PlatformNotification): void {
    const ids = n.resourceUserProvidedIdentifiers as { key?: string; orderNumber?: string };
    const name = ids.orderNumber ?? ids.key;
    if (name && !this.#resources.has(n.resource.id)) this.#resources.set(n.resource.id, `${n.resource.typeId} ${name}`);
    if (n.notificationType === 'Message') {
      const detail = describeMessage(n);
      this.#messages.set(n.id, `${this.resource(n.resource.id, n.resource.typeId)}${detail ? ` (${detail})` : ''}`);
    }
  }

  resource(id: string, typeId = 'resource'): string {
    return this.#resources.get(id) ?? `${typeId} ${id.slice(0, 8)}`;
  }

  message(id: string): string {
    const storefrontEvent = /^ctbridge:storefront:([^:]+):(.+)$/.exec(id);
    if (storefrontEvent) return `${storefrontEvent[1]} storefront event ${storefrontEvent[2]!.slice(0, 8)}`;
    return this.#messages.get(id) ?? `message ${id.slice(0, 8)}`;
  }
}

/** What an event was about beyond its type, e.g. `Open → Confirmed`; undefined when the type says it all. */
function describeMessage(n: PlatformNotification & { notificationType: 'Message' }): string | undefined {
  const m = n as unknown as Record<string, unknown>;
  if (n.type === 'OrderStateChanged') return `${String(m.oldOrderState)} → ${String(m.orderState)}`;
  if (n.type === 'PaymentTransactionAdded') {
    const t = m.transaction as { type?: string; state?: string } | undefined;
    return `${t?.type ?? '?'} ${t?.state ?? '?'}`;
  }
  if (n.type === 'OrderCreated') {
    const total = (m.order as { totalPrice?: { centAmount?: number; currencyCode?: string } } | undefined)?.totalPrice;
    return total ? `${((total.centAmount ?? 0) / 100).toFixed(2)} ${total.currencyCode ?? ''}` : undefined;
  }
  return undefined;
}

class Stats {
  posted = 0;
  requests = 0;
  accepted = 0;
  duplicates = 0;
  quarantined = 0;
  ingestFailures = 0;
  redelivered = 0;
  outOfOrder = 0;
  synced = 0;
  /** Records synced per destination. */
  readonly syncedBy = new Map<string, number>();
  delivered = 0;
  retried = 0;
  initialRetries = 0;
  deadLettered = 0;
  replayed = 0;
  bursts = 0;
  readonly byEnvelope = new Map<EnvelopeKind, number>();
  /** Sends per resource id and the last version sent, for the burst line. */
  readonly sends = new Map<string, { count: number; version: number }>();
}

function feedHooks(feed: Feed, labels: Labels, stats: Stats, sinkUrl: string): EngineHooks {
  // A failing batch fails all its items at once: group what happens within a moment into one line.
  const pending = new Map<string, { kind: string; text: string; keys: string[] }>();
  let timer: NodeJS.Timeout | undefined;
  const group = (kind: string, text: string, key: string) => {
    const id = `${kind}\u0000${text}`;
    const entry = pending.get(id) ?? { kind, text, keys: [] };
    entry.keys.push(key);
    pending.set(id, entry);
    timer ??= setTimeout(() => {
      timer = undefined;
      for (const { kind: k, text: t, keys } of pending.values()) {
        const counted = new Map<string, number>();
        for (const key of keys) counted.set(key, (counted.get(key) ?? 0) + 1);
        const names = [...counted].map(([key, n]) => (n > 1 ? `${key} (×${n})` : key));
        const shown = names.slice(0, 4).join(', ') + (names.length > 4 ? ` and ${names.length - 4} more` : '');
        feed.line(k, `${shown}: ${t}`);
      }
      pending.clear();
    }, 50);
  };
  const shorten = (error: string) => error.split(sinkUrl).join('sink').slice(0, 160);

  return {
    onIngested(event) {
      stats.accepted += event.accepted;
      stats.quarantined += event.quarantined;
    },
    onRouted(event) {
      stats.duplicates += event.duplicates;
      if (event.duplicates > 0 && !feed.initialLoad && !feed.inBurst) {
        // The router can finish before the poster has printed the ingest line of the redelivery; come after it.
        setTimeout(() => feed.line('dedupe', `${event.duplicates} duplicate${event.duplicates === 1 ? '' : 's'} dropped (dedupe key seen before), ${event.routed} notification${event.routed === 1 ? '' : 's'} routed into work`), 30);
      }
    },
    onSynced(event) {
      stats.synced += 1;
      stats.syncedBy.set(event.destination, (stats.syncedBy.get(event.destination) ?? 0) + 1);
      const sends = stats.sends.get(event.resourceId) ?? { count: 0, version: 0 };
      stats.sends.set(event.resourceId, { count: sends.count + 1, version: Math.max(sends.version, event.version) });
      if (feed.initialLoad) return;
      const verb = event.operation === 'delete' ? 'deleted' : `changed ${event.changed.join(', ')}`;
      const coalesced = event.coalesced > 1 ? `  (${event.coalesced} updates coalesced into this one)` : '';
      const where = event.destination === DESTINATION ? '' : ` → ${event.destination}`;
      feed.line('synced', `${labels.resource(event.resourceId, event.recordType)} v${event.version}${where}: ${verb}${coalesced}`);
    },
    onDelivered(event) {
      stats.delivered += 1;
      if (feed.initialLoad) return;
      feed.line('delivered', `${event.eventType} event for ${labels.message(event.dedupeKey)}${event.destination === DESTINATION ? '' : ` → ${event.destination}`}`);
    },
    onRetry(event) {
      stats.retried += 1;
      // The initial load's retries (an order before its customer on a board that links them) are counted in its line.
      if (feed.initialLoad) {
        stats.initialRetries += 1;
        return;
      }
      const what = event.kind === 'record' ? labels.resource(event.key) : `event for ${labels.message(event.key)}`;
      group('retried', `attempt ${event.attempt} failed, will retry with backoff: ${shorten(event.error)}`, what);
    },
    onDeadLetter(event) {
      stats.deadLettered += 1;
      const what = event.kind === 'record' ? labels.resource(event.key) : `event for ${labels.message(event.key)}`;
      group('dead-letter', shorten(event.reason), what);
    },
  };
}

function printBanner(
  feed: Feed,
  info: { url: string; port: { requested: number; fellBack: boolean }; actualPort: number; sink: Sink; connectors: Array<{ name: string; started: StartedSandboxDestination }>; shop: SeededShop; emulator: Emulator; adminToken: string; ingestToken: string; storefrontKey: string; shownDir: string; support: string[] },
): void {
  const { url, shop, shownDir } = info;
  const configFile = `${shownDir}/sandbox.yaml`;
  feed.note('');
  if (info.port.fellBack) feed.note(`(port ${info.port.requested} is taken, so ctbridge listens on ${info.actualPort} instead)`);
  feed.note('ctbridge sandbox is running. Everything lives in this process, on 127.0.0.1:');
  feed.note(`  commercetools emulator  ${info.emulator.apiUrl}  project "${info.emulator.projectKey}": ${shop.stores.length} stores, ${shop.customers.length} customers, ${shop.orders.length} orders and payments`);
  feed.note(`  ctbridge ingest         POST ${url}/v1/ingest/commercetools   (Authorization: Bearer ${info.ingestToken})`);
  feed.note(`  storefront events       POST ${url}/v1/events/storefront   (X-Storefront-Key: ${info.storefrontKey}, Origin: ${SANDBOX_STOREFRONT_ORIGIN}; schema: ${url}/v1/events/storefront/schema.json)`);
  feed.note(`  health and metrics      ${url}/readyz   ${url}/metrics`);
  feed.note(`  admin API               curl -H 'Authorization: Bearer ${info.adminToken}' ${url}/v1/dead-letters   (also /v1/status)`);
  feed.note(`  destination "${DESTINATION}"      ${info.sink.url}/records and /events  (generic HTTP, signed, batches of up to ${SINK_BATCH_SIZE})`);
  for (const { name, started } of info.connectors) feed.note(`  destination "${name}"${' '.repeat(Math.max(1, 7 - name.length))}${started.banner}`);
  for (const line of info.support) feed.note(line);
  feed.note(`  from another shell      npx ctbridge status --config ${configFile}`);
  feed.note(`                          npx ctbridge dlq list --config ${configFile}`);
  feed.note(`  ctbridge's own logs     ${shownDir}/sandbox.log  (JSON, warnings and errors only)`);
  feed.note('A generator changes commercetools a few times a second and posts what a subscription with both messages');
  feed.note('and changes would deliver: a Message (CustomerLastNameSet, OrderStateChanged, …) and a ResourceUpdated');
  feed.note('notification per change, wrapped as Platform, CloudEvents, Pub/Sub push or EventBridge, with bursts,');
  feed.note('redeliveries and reordering. Customers and orders are synced as records (only changed fields are sent);');
  feed.note('OrderCreated, OrderStateChanged, PaymentTransactionAdded and CustomerEmailChanged also become events.');
  feed.note('Shoppers on the storefront send behaviour events (product views, adds to cart, checkouts, searches), some twice;');
  feed.note('they reach the sink as storefrontBehaviour events, each once.');
  feed.note('The sink fails now and then. Ctrl-C stops everything and prints a summary.');
  feed.note('');
}

// ---------------------------------------------------------------------------------------------------------------
// Posting notifications to ctbridge, as a subscription's push delivery would

interface DeliveryTotals {
  posted: number;
  accepted: number;
  redelivered: number;
  outOfOrder: number;
}

interface DeliverOptions {
  /** No line per notification (bursts print their own). */
  quiet?: boolean;
  concurrency?: number;
  /** Called once the delivery order is decided, before anything is sent. */
  onPlanned?: (planned: DeliveryTotals) => void;
}

class Poster {
  readonly #url: string;
  readonly #token: string;
  readonly #random: Random;
  readonly #feed: Feed;
  readonly #labels: Labels;
  readonly #stats: Stats;
  /** Highest version posted per resource, to point out deliveries that arrive out of order. */
  readonly #maxVersion = new Map<string, number>();
  readonly #posted = new Set<string>();
  /** Held back for the next round, so they arrive after notifications about later versions. */
  #held: PlatformNotification[] = [];

  constructor(deps: { url: string; ingestToken: string; random: Random; feed: Feed; labels: Labels; stats: Stats }) {
    this.#url = `${deps.url}/v1/ingest/commercetools`;
    this.#token = deps.ingestToken;
    this.#random = deps.random;
    this.#feed = deps.feed;
    this.#labels = deps.labels;
    this.#stats = deps.stats;
  }

  /** An array of notifications in one request (the initial load). */
  async postArray(notifications: PlatformNotification[]): Promise<{ accepted: number }> {
    for (const n of notifications) this.#labels.learn(n);
    this.#stats.posted += notifications.length;
    return this.#send(notifications, 'Platform');
  }

  /** Delivers one change's notifications as an at-least-once queue would: duplicated, reordered, some late. */
  async deliver(notifications: PlatformNotification[], options: DeliverOptions = {}): Promise<DeliveryTotals> {
    const batch = [...this.#held, ...notifications];
    this.#held = [];
    const order = scrambleDeliveries(batch, { seed: this.#random.int(1, 2 ** 30), duplicateRate: 0.1, reorderRate: 0.25 });
    if (!options.quiet && order.length > 1 && this.#random.chance(0.15)) this.#held.push(order.shift()!);
    return this.#postAll(order, options);
  }

  async flushHeld(): Promise<void> {
    const held = this.#held;
    this.#held = [];
    if (held.length > 0) await this.#postAll(held, {});
  }

  async #postAll(order: PlatformNotification[], options: DeliverOptions): Promise<DeliveryTotals> {
    const totals = { accepted: 0, redelivered: 0, outOfOrder: 0, posted: order.length };
    // Decide the flags in delivery order, before any concurrency, so they describe what was sent.
    const planned = order.map((n) => {
      const key = dedupeKey(n);
      const redelivery = this.#posted.has(key);
      this.#posted.add(key);
      const version = versionOf(n);
      const max = this.#maxVersion.get(n.resource.id) ?? 0;
      const late = version < max;
      if (version > max) this.#maxVersion.set(n.resource.id, version);
      this.#labels.learn(n);
      if (redelivery) totals.redelivered += 1;
      if (late) totals.outOfOrder += 1;
      return { n, redelivery, late, max, envelope: this.#random.pick(ENVELOPES) };
    });
    options.onPlanned?.(totals);
    const concurrency = options.concurrency ?? 1;
    let next = 0;
    const worker = async () => {
      while (next < planned.length) {
        const { n, redelivery, late, max, envelope } = planned[next]!;
        next += 1;
        this.#stats.posted += 1;
        const result = await this.#send(wrap(envelope, n), envelope);
        totals.accepted += result.accepted;
        if (options.quiet) continue;
        const what = `${n.notificationType === 'Message' ? n.type : n.notificationType} ${this.#labels.resource(n.resource.id, n.resource.typeId)} v${versionOf(n)}`;
        const outcome = result.failed ?? 'accepted';
        const notes = [redelivery ? 'a redelivery' : '', late ? `out of order: v${max} arrived first` : ''].filter(Boolean).join('; ');
        this.#feed.line('ingested', `${what} via ${envelope} → ${outcome}${notes ? `  (${notes})` : ''}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(planned.length, 1)) }, worker));
    this.#stats.redelivered += totals.redelivered;
    this.#stats.outOfOrder += totals.outOfOrder;
    return totals;
  }

  async #send(body: unknown, envelope: EnvelopeKind): Promise<{ accepted: number; failed?: string }> {
    this.#stats.requests += 1;
    this.#stats.byEnvelope.set(envelope, (this.#stats.byEnvelope.get(envelope) ?? 0) + 1);
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#token}` },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (response.status !== 202) {
        this.#stats.ingestFailures += 1;
        return { accepted: 0, failed: `ctbridge answered ${response.status}: ${text.slice(0, 200)}` };
      }
      const answer = JSON.parse(text) as { accepted: number };
      return { accepted: answer.accepted };
    } catch (error) {
      this.#stats.ingestFailures += 1;
      return { accepted: 0, failed: `ingest request failed: ${(error as Error).message}` };
    }
  }
}

function versionOf(n: PlatformNotification): number {
  return n.notificationType === 'Message' ? n.resourceVersion : n.version;
}

function dedupeKey(n: PlatformNotification): string {
  return n.notificationType === 'Message' ? n.id : `${n.resource.id}:${n.version}:${n.notificationType}`;
}

/** Wraps a Platform-format notification the way each subscription destination type delivers it over HTTP. */
function wrap(kind: EnvelopeKind, n: PlatformNotification): unknown {
  const { typeId, id } = n.resource;
  const time = n.notificationType === 'Message' ? n.createdAt : n.modifiedAt;
  const isMessage = n.notificationType === 'Message';
  switch (kind) {
    case 'Platform':
      return n;
    case 'CloudEvents':
      return {
        specversion: '1.0',
        id: isMessage ? n.id : randomUUID(),
        source: `/${n.projectKey}/${typeId}s`,
        type: isMessage ? `com.commercetools.${typeId}.message.${n.type}` : `com.commercetools.${typeId}.change.${n.notificationType}`,
        subject: id,
        time,
        ...(isMessage && { dataref: `/${n.projectKey}/messages/${n.id}`, sequence: String(n.sequenceNumber), sequencetype: 'Integer' }),
        datacontenttype: 'application/json',
        data: n,
      };
    case 'Pub/Sub push': {
      const messageId = String(10_000_000_000 + Math.floor(Math.random() * 1_000_000_000));
      return {
        message: {
          attributes: { 'content-type': 'application/json' },
          data: Buffer.from(JSON.stringify(n)).toString('base64'),
          messageId,
          message_id: messageId,
          publishTime: new Date().toISOString(),
          publish_time: new Date().toISOString(),
        },
        subscription: `projects/${n.projectKey}/subscriptions/ctbridge-push`,
      };
    }
    case 'EventBridge':
      return {
        version: '0',
        id: randomUUID(),
        'detail-type': isMessage ? n.type : n.notificationType,
        source: `aws.partner/commercetools.com/${n.projectKey}/ctbridge`,
        account: '000000000000',
        time,
        region: 'eu-central-1',
        resources: [],
        detail: n,
      };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Initial load: the seeded shop predates the subscription

async function initialLoad(deps: { runtime: Runtime; destinations: string[]; commercetools: CommercetoolsClient; shop: SeededShop; poster: Poster; feed: Feed; stats: Stats; sink: Sink }): Promise<void> {
  const { runtime, destinations, commercetools, shop, poster, feed, stats, sink } = deps;
  const started = performance.now();
  const [customers, orders] = await Promise.all([commercetools.fetchByIds('customer', shop.customerIds), commercetools.fetchByIds('order', shop.orderIds)]);
  const announce = (typeId: 'customer' | 'order', resource: Record<string, unknown>): ResourceUpdatedNotification => {
    const version = resource.version as number;
    const identifiers = typeId === 'customer' ? { key: resource.key as string } : { orderNumber: resource.orderNumber as string };
    return {
      notificationType: 'ResourceUpdated',
      projectKey: commercetools.projectKey,
      resource: { typeId, id: resource.id as string },
      resourceUserProvidedIdentifiers: identifiers,
      version,
      oldVersion: version - 1,
      modifiedAt: resource.lastModifiedAt as string,
    };
  };
  const notifications = [...[...customers.values()].map((c) => announce('customer', c)), ...[...orders.values()].map((o) => announce('order', o))];
  feed.line('initial', `the seeded shop predates the subscription, so it is announced once (a backfill's job in production): ${customers.size} customers and ${orders.size} orders as ResourceUpdated notifications, in JSON arrays of 60`);
  feed.initialLoad = true;
  const callsBefore = sink.requests.length;
  let accepted = 0;
  for (let i = 0; i < notifications.length; i += 60) accepted += (await poster.postArray(notifications.slice(i, i + 60))).accepted;
  await waitUntilDrained(runtime, destinations, 30_000);
  feed.initialLoad = false;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const synced = [...stats.syncedBy].map(([destination, n]) => `${n} to ${destination === 'sink' ? `the sink in ${sink.requests.length - callsBefore} calls` : destination}`).join(', ');
  const retried = stats.initialRetries > 0 ? `; ${stats.initialRetries} sends retried (an order can reach a destination before its customer, and waits for it)` : '';
  feed.line('initial', `${accepted} accepted; records synced: ${synced}${retried} (${seconds} s). Now the live feed:`);
  feed.note('');
}

// ---------------------------------------------------------------------------------------------------------------
// The generator: changes, bursts, faults, replays

interface GeneratorDeps {
  generator: ChangeGenerator;
  poster: Poster;
  feed: Feed;
  random: Random;
  sink: Sink;
  shop: SeededShop;
  created: { customers: string[]; orders: string[] };
  storefront: SandboxStorefront;
  runtimeUrl: string;
  adminToken: string;
  stats: Stats;
  labels: Labels;
  commercetools: CommercetoolsClient;
  connectors: StartedSandboxDestination[];
  /** Resolves once ctbridge's queues are empty (true) or the limit passed (false). */
  waitIdle(limitMs: number): Promise<boolean>;
}

class GeneratorRun {
  readonly #d: GeneratorDeps;
  /** The customer the sink currently rejects with a 400, until the fault is "fixed". */
  #rejected: { id: string; fixAt: number | undefined; deadlineAt: number } | undefined;

  constructor(deps: GeneratorDeps) {
    this.#d = deps;
  }

  /** Runs until the duration is over or the signal fires; returns why it stopped. */
  async loop(options: Pick<SandboxOptions, 'durationSeconds' | 'signal'>): Promise<string> {
    const { feed } = this.#d;
    const started = feed.elapsedS();
    let nextBurst = 2;
    let nextStorefront = 1;
    let nextAct = CONNECTOR_ACT_EVERY_S;
    let nextCycle = FAULT_CYCLE_START_S;
    const cycleSteps: Array<{ at: number; run: () => Promise<void> }> = [];
    while (!options.signal.aborted) {
      const now = feed.elapsedS() - started;
      if (options.durationSeconds !== undefined && now >= options.durationSeconds) return `${options.durationSeconds} s are over`;
      if (now >= nextCycle) {
        const start = nextCycle;
        cycleSteps.push(
          { at: start, run: () => this.#outage() },
          { at: start + 3, run: () => this.#rateLimit() },
          { at: start + 5, run: () => this.#rejectOne() },
        );
        nextCycle += FAULT_CYCLE_S;
      }
      for (let i = 0; i < cycleSteps.length; ) {
        if (cycleSteps[i]!.at <= now) {
          const [step] = cycleSteps.splice(i, 1);
          await step!.run();
        } else i += 1;
      }
      await this.#maybeFix(now);
      if (now >= nextStorefront) {
        nextStorefront += STOREFRONT_EVERY_S;
        await this.#shop();
      }
      if (now >= nextAct) {
        nextAct += CONNECTOR_ACT_EVERY_S;
        await this.act(false);
      }
      if (now >= nextBurst) {
        nextBurst += BURST_EVERY_S;
        await this.#burst();
      } else {
        await this.#tick();
      }
      await sleep(TICK_MS, undefined, { signal: options.signal }).catch(() => undefined);
    }
    return 'Ctrl-C';
  }

  async #tick(): Promise<void> {
    const { generator, poster, feed } = this.#d;
    let change: AppliedChange;
    try {
      change = await generator.randomChange();
    } catch (error) {
      feed.line('generator', `a change could not be applied in the emulator and is skipped: ${(error as Error).message}`);
      return;
    }
    this.#remember(change);
    await poster.deliver([...change.messages, ...change.changes]);
  }

  async #burst(): Promise<void> {
    const { generator, poster, feed, random, stats, labels } = this.#d;
    const customerId = random.pick(this.#customers());
    let changes: AppliedChange[];
    try {
      changes = await generator.burst(customerId, BURST_SIZE);
    } catch (error) {
      feed.line('generator', `a burst could not be applied in the emulator: ${(error as Error).message}`);
      return;
    }
    stats.bursts += 1;
    const label = labels.resource(customerId, 'customer');
    const sendsBefore = stats.sends.get(customerId)?.count ?? 0;
    const duplicatesBefore = stats.duplicates;
    feed.inBurst = true;
    const notifications = changes.flatMap((c) => [...c.messages, ...c.changes]);
    const result = await poster.deliver(notifications, {
      quiet: true,
      concurrency: 8,
      onPlanned: (planned) =>
        feed.line('burst', `${BURST_SIZE} name changes of ${label} in a row (v${changes[0]?.oldVersion ?? '?'} → v${changes.at(-1)?.version ?? '?'}): posting their ${planned.posted} notifications at once, ${planned.redelivered} redelivered and ${planned.outOfOrder} out of order`),
    });
    await this.#d.waitIdle(5_000);
    feed.inBurst = false;
    const duplicates = stats.duplicates - duplicatesBefore;
    const sends = stats.sends.get(customerId);
    const sent = (sends?.count ?? 0) - sendsBefore;
    feed.line(
      'burst',
      `${label}: ${result.accepted} accepted, ${duplicates} dropped as duplicates → ${sent} update${sent === 1 ? '' : 's'} sent to the sink${sends ? ` (now at v${sends.version})` : ''}; the others found nothing new to send`,
    );
  }

  async #shop(): Promise<void> {
    const { storefront, feed, labels } = this.#d;
    const sent = await storefront.browse();
    const who = sent.shopper === 'anonymous' ? 'an anonymous shopper' : labels.resource(sent.shopper, 'customer');
    const outcome = sent.status === 202 ? 'accepted' : `answered ${sent.status}`;
    feed.line('storefront', `${sent.kind} by ${who} in ${sent.store}${sent.repeated ? ', sent twice (a browser retrying)' : ''} → ${outcome}`);
  }

  async #outage(): Promise<void> {
    this.#d.sink.faults.push(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    this.#d.feed.line('fault', 'the sink will answer 503 Service Unavailable to its next 3 requests (a short outage)');
    await this.#tick();
  }

  async #rateLimit(): Promise<void> {
    this.#d.sink.faults.push({ kind: 'status', status: 429, retryAfterSeconds: 2 });
    this.#d.feed.line('fault', 'the sink will answer 429 Too Many Requests with Retry-After: 2 to its next request (ctbridge then holds every call to it for 2 s)');
    await this.#tick();
  }

  async #rejectOne(): Promise<void> {
    const { sink, feed, random, generator, poster, labels } = this.#d;
    if (this.#rejected) return;
    const id = random.pick(this.#customers());
    const now = feed.elapsedS();
    this.#rejected = { id, fixAt: undefined, deadlineAt: now + 8 };
    sink.faultFor = (request) => (request.path.endsWith('/records') && carriesRecord(request.body, 'customer', id) ? rejection(id) : undefined);
    feed.line('fault', `the sink rejects ${labels.resource(id, 'customer')} with 400 (a validation rule on its side) until someone fixes it; now changing that customer`);
    try {
      const change = await generator.changeCustomerName(id);
      this.#remember(change);
      await poster.deliver([...change.messages, ...change.changes]);
    } catch (error) {
      feed.line('generator', `could not change ${labels.resource(id, 'customer')}: ${(error as Error).message}`);
    }
  }

  /** Once the rejected record is dead-lettered (or after a while anyway), "fix" the sink and replay. */
  async #maybeFix(now: number): Promise<void> {
    const rejected = this.#rejected;
    if (!rejected) return;
    if (rejected.fixAt === undefined && this.#d.stats.deadLettered > 0) rejected.fixAt = now + 2;
    if ((rejected.fixAt !== undefined && now >= rejected.fixAt) || now >= rejected.deadlineAt) {
      this.#rejected = undefined;
      this.#d.sink.faultFor = undefined;
      this.#d.feed.line('fixed', `the sink accepts ${this.#d.labels.resource(rejected.id, 'customer')} again`);
      await this.replayDeadLetters('the fault is fixed');
    }
  }

  /** Replays every dead letter through the admin API, as an operator would after fixing the cause. */
  async replayDeadLetters(why: string): Promise<void> {
    const { runtimeUrl, adminToken, feed, stats } = this.#d;
    try {
      const response = await fetch(`${runtimeUrl}/v1/dead-letters/replay`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
      const body = (await response.json()) as { replayed?: number; skipped?: unknown[] };
      if (response.status !== 202) {
        feed.line('replay', `POST /v1/dead-letters/replay answered ${response.status}: ${JSON.stringify(body)}`);
        return;
      }
      stats.replayed += body.replayed ?? 0;
      feed.line('replayed', `${body.replayed ?? 0} dead letter(s) via POST /v1/dead-letters/replay (${why})${body.skipped?.length ? `; ${body.skipped.length} skipped` : ''}`);
    } catch (error) {
      feed.line('replay', `POST /v1/dead-letters/replay failed: ${(error as Error).message}`);
    }
  }

  /** The connectors' shopper side (SandboxDestinationEntry.act); its orders are posted as the generator's own. */
  async act(final: boolean): Promise<void> {
    const { generator, poster, feed, labels, commercetools, connectors } = this.#d;
    const placeOrder = async (customerId: string, options: { discountCodes?: readonly string[] }) => {
      const change = await generator.createOrder(customerId, options);
      this.#remember(change);
      await poster.deliver([...change.messages, ...change.changes]);
      const orderNumber = change.messages[0]?.resourceUserProvidedIdentifiers?.orderNumber ?? change.resource.id;
      return { id: change.resource.id, orderNumber };
    };
    for (const connector of connectors) {
      await connector
        .act?.({ commercetools, placeOrder, final, line: (kind, text) => feed.line(kind, text), label: (id, typeId) => labels.resource(id, typeId) })
        .catch((error: unknown) => feed.line('generator', `a connector's shopper step failed and is skipped: ${(error as Error).message}`));
    }
  }

  #customers(): string[] {
    return [...this.#d.shop.customerIds, ...this.#d.created.customers];
  }

  #remember(change: AppliedChange): void {
    if (change.kind === 'customer-created') this.#d.created.customers.push(change.resource.id);
    if (change.kind === 'order-created') this.#d.created.orders.push(change.resource.id);
  }
}

function carriesRecord(body: unknown, recordType: string, id: string): boolean {
  const items = Array.isArray(body) ? (body as unknown[]) : [body];
  return items.some((item) => typeof item === 'object' && item !== null && (item as Record<string, unknown>).recordType === recordType && (item as Record<string, unknown>).id === id);
}

function rejection(id: string) {
  return { kind: 'status' as const, status: 400, body: JSON.stringify({ error: 'validation_failed', field: 'lastName', record: `customer/${id.slice(0, 8)}…` }) };
}

// ---------------------------------------------------------------------------------------------------------------
// Shutdown: drain, compare, summarise

async function waitUntilDrained(runtime: Runtime, destinations: string[], limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const status = await readStatus(runtime.store, destinations);
    // Destination edits flowing back (two-way sync) count too.
    const inbound = await runtime.store.db.selectFrom('inbound').select('id').where('state', '=', 'pending').limit(1).execute();
    if (status.inbox === 0 && inbound.length === 0 && status.destinations.every((d) => d.pendingRecords === 0 && d.pendingEvents === 0 && d.inFlight === 0)) return true;
    await sleep(100);
  }
  return false;
}

async function checkConvergence(deps: {
  commercetools: CommercetoolsClient;
  sink: Sink;
  shop: SeededShop;
  created: { customers: string[]; orders: string[] };
  labels: Labels;
  deadLettered: Set<string>;
}): Promise<Pick<SandboxSummary, 'customers' | 'orders' | 'mismatches'>> {
  const { commercetools, sink, shop, created, labels, deadLettered } = deps;
  const mismatches: string[] = [];
  const compare = async (typeId: 'customer' | 'order', ids: string[], fields: Record<string, string>) => {
    const mapping = compileMapping({ fields });
    const current = await commercetools.fetchByIds(typeId, ids);
    let matching = 0;
    for (const id of ids) {
      const resource = current.get(id);
      const held = sink.records.get(`${typeId}/${id}`);
      const label = labels.resource(id, typeId);
      const why = deadLettered.has(id) ? ' (dead-lettered, not replayed)' : '';
      if (!resource) {
        if (held) mismatches.push(`${label}: deleted in commercetools but still at the sink${why}`);
        else matching += 1;
        continue;
      }
      if (!held) {
        mismatches.push(`${label}: missing at the sink${why}`);
        continue;
      }
      const mapped = await mapping.apply(resource);
      const expected = mapped.skip ? {} : mapped.payload;
      const differing = Object.keys(expected).filter((field) => !isDeepStrictEqual(held[field] ?? null, expected[field]));
      if (differing.length === 0) matching += 1;
      else mismatches.push(`${label}: ${differing.map((f) => `${f} is ${JSON.stringify(held[f] ?? null)} at the sink, ${JSON.stringify(expected[f])} in commercetools`).join('; ')}${why}`);
    }
    return { matching, total: ids.length };
  };
  const customers = await compare('customer', [...shop.customerIds, ...created.customers], CUSTOMER_FIELDS);
  const orders = await compare('order', [...shop.orderIds, ...created.orders], ORDER_FIELDS);
  return { customers, orders, mismatches };
}

/** Every storefront event ctbridge accepted reached the sink, once. */
function checkStorefrontEvents(sink: Sink, storefront: SandboxStorefront): { accepted: number; delivered: number; mismatches: string[] } {
  const prefix = storefrontDedupeKey(SANDBOX_STOREFRONT_NAME, '');
  const deliveries = new Map<string, number>();
  for (const item of sink.applied) {
    if (item.kind === 'event' && item.idempotencyKey.startsWith(prefix)) deliveries.set(item.idempotencyKey.slice(prefix.length), (deliveries.get(item.idempotencyKey.slice(prefix.length)) ?? 0) + 1);
  }
  const mismatches: string[] = [];
  for (const id of storefront.accepted) if (!deliveries.has(id)) mismatches.push(`storefront event ${id} was accepted and never reached the sink`);
  for (const [id, count] of deliveries) if (count > 1) mismatches.push(`storefront event ${id} reached the sink ${count} times`);
  return { accepted: storefront.accepted.size, delivered: deliveries.size, mismatches };
}

function printSummary(
  write: (line: string) => void,
  s: SandboxSummary,
  extra: { stats: Stats; elapsedS: number; shownDir: string; unreplayed: number; signatureFailures: number; connectorLines: string[]; storefront: { accepted: number; delivered: number } },
): void {
  const { stats } = extra;
  const perNotification = s.notificationsPosted > 0 ? (s.destinationCalls / s.notificationsPosted).toFixed(2) : '-';
  const envelopes = [...stats.byEnvelope].map(([kind, count]) => `${count} ${kind}`).join(', ');
  const rows: Array<[string, string]> = [
    ['notifications posted', `${s.notificationsPosted}  (${stats.requests} HTTP requests: ${envelopes}; ${stats.bursts} burst${stats.bursts === 1 ? '' : 's'}, ${stats.redelivered} redelivered, ${stats.outOfOrder} out of order)`],
    ['accepted', String(s.accepted)],
    ['duplicates', `${s.duplicates}  (accepted, then dropped by dedupe: not processed again)`],
    ['records synced', `${stats.synced}  (only changed fields sent)`],
    ['events delivered', String(stats.delivered)],
    ['storefront events', `${extra.storefront.accepted} accepted (some sent twice), ${extra.storefront.delivered} delivered to the sink, each once`],
    ['destination calls', `${s.destinationCalls}  (requests the sink received, the ones it failed on purpose included; the simulators' below)`],
    ['calls per notification', `${perNotification}  (a handler that forwards each notification makes at least 1)`],
    ['retries', String(stats.retried)],
    ['dead letters', `${s.deadLetters}  (${stats.replayed} replayed through the admin API${extra.unreplayed > 0 ? `, ${extra.unreplayed} left` : ''})`],
  ];
  if (stats.ingestFailures > 0) rows.push(['ingest failures', `${stats.ingestFailures}  (posts ctbridge did not acknowledge)`]);
  if (stats.quarantined > 0) rows.push(['quarantined', String(stats.quarantined)]);
  if (extra.signatureFailures > 0) rows.push(['bad signatures', `${extra.signatureFailures}  (requests the sink refused because X-Ctbridge-Signature did not verify)`]);
  write('');
  write(`summary after ${extra.elapsedS.toFixed(1)} s`);
  for (const [name, value] of rows) write(`  ${name.padEnd(24)}${value}`);
  write(`converged: ${s.customers.matching}/${s.customers.total} customers, ${s.orders.matching}/${s.orders.total} orders match commercetools`);
  for (const line of extra.connectorLines) write(line);
  for (const mismatch of s.mismatches.slice(0, 20)) write(`  differs: ${mismatch}`);
  if (s.mismatches.length > 20) write(`  … and ${s.mismatches.length - 20} more`);
  write(`The store stays in ${extra.shownDir}/sandbox.db (and sandbox.inbox.db) until the next run: npx ctbridge dlq list --all --config ${extra.shownDir}/sandbox.yaml`);
}
