// Starts ctbridge in-process for a test: a config built from the test's needs (its destinations and simulators, or
// a sink), and an in-memory stand-in for the commercetools API behind the engine's ResourceFetcher seam (or the
// emulator, through the real client: tested in commercetools-client.test.ts); the waits and admin calls tests share.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { z } from 'zod';
import { configSchema, type Config, type serverSchema } from '../../src/config/schema.ts';
import { groupOrdersByCustomer, paymentIdsOf, sortOldestFirst } from '../../src/commercetools/orders.ts';
import type { ResourceFetcher } from '../../src/engine/record-sync.ts';
import { startRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.ts';
import { startSink, type Sink } from '../../src/sandbox/sink.ts';

export const INGEST_TOKEN = 'test-ingest-token-0123456789';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
/** The server block of a test configuration: any free port on 127.0.0.1, ingest and admin with the test tokens. */
export const TEST_SERVER = { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer' as const, token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN };

/** commercetools as the engine sees it: resources by id with versions; tests change them and emit messages. */
export class FakeCommercetools implements ResourceFetcher {
  readonly resources = new Map<string, Record<string, unknown>>();
  /** Referenced objects (customer groups, stores…) by type, then by id or key. */
  readonly referenced = new Map<string, Map<string, Record<string, unknown>>>();
  /** Which of the resources are orders (what fetchOrdersOf looks through). */
  readonly orderIds = new Set<string>();
  fetchCalls = 0;
  referenceCalls = 0;
  ordersCalls = 0;
  failNext: Error[] = [];

  fetchByIds(_typeId: string, ids: string[]): Promise<Map<string, Record<string, unknown>>> {
    this.fetchCalls += 1;
    const failure = this.failNext.shift();
    if (failure) return Promise.reject(failure);
    const found = new Map<string, Record<string, unknown>>();
    for (const id of ids) {
      const resource = this.resources.get(id);
      if (resource) found.set(id, structuredClone(resource));
    }
    return Promise.resolve(found);
  }

  fetchByField(_typeId: string, field: string, values: string[]): Promise<Map<string, Record<string, unknown>>> {
    this.fetchCalls += 1;
    const wanted = new Set(values);
    const found = new Map<string, Record<string, unknown>>();
    for (const resource of this.resources.values()) {
      const value = resource[field];
      if (typeof value === 'string' && wanted.has(value)) found.set(value, structuredClone(resource));
    }
    return Promise.resolve(found);
  }

  fetchReferenced(typeId: string, _by: 'id' | 'key', values: string[]): Promise<Map<string, Record<string, unknown>>> {
    this.referenceCalls += 1;
    const objects = this.referenced.get(typeId);
    const found = new Map<string, Record<string, unknown>>();
    for (const value of values) {
      const object = objects?.get(value);
      if (object) found.set(value, structuredClone(object));
    }
    return Promise.resolve(found);
  }

  fetchOrdersOf(customerIds: string[]): Promise<Map<string, Record<string, unknown>[]>> {
    this.ordersCalls += 1;
    const failure = this.failNext.shift();
    if (failure) return Promise.reject(failure);
    const wanted = new Set(customerIds);
    const orders = [...this.orderIds].map((id) => this.resources.get(id)!).filter((order) => wanted.has(order.customerId as string));
    return Promise.resolve(groupOrdersByCustomer(structuredClone(orders)));
  }

  fetchGuestOrders(emails: string[]): Promise<Record<string, unknown>[]> {
    this.ordersCalls += 1;
    const wanted = new Set(emails);
    const orders = [...this.orderIds].map((id) => this.resources.get(id)!).filter((order) => order.customerId === undefined && wanted.has(order.customerEmail as string));
    return Promise.resolve(sortOldestFirst(structuredClone(orders)));
  }

  fetchOrdersOfPayments(paymentIds: string[]): Promise<Map<string, Record<string, unknown>>> {
    const wanted = new Set(paymentIds);
    const found = new Map<string, Record<string, unknown>>();
    for (const id of this.orderIds) {
      const order = this.resources.get(id)!;
      for (const paymentId of paymentIdsOf(order)) if (wanted.has(paymentId)) found.set(paymentId, structuredClone(order));
    }
    return Promise.resolve(found);
  }

  /**
   * Creates or updates an order and returns the Message commercetools would emit: OrderCreated carries the order,
   * the others (OrderStateChanged…) only name it, as in commercetools.
   */
  upsertOrder(id: string, fields: Record<string, unknown>, type = 'OrderStateChanged'): Record<string, unknown> {
    const existing = this.resources.get(id);
    const version = ((existing?.version as number | undefined) ?? 0) + 1;
    const order: Record<string, unknown> = { createdAt: new Date(Date.UTC(2026, 0, 1) + this.orderIds.size * 1000).toISOString(), ...existing, ...fields, id, version };
    this.resources.set(id, order);
    this.orderIds.add(id);
    const base = messageBase(id, version, 'order');
    return existing ? { ...base, type, orderState: order.orderState } : { ...base, type: 'OrderCreated', order };
  }

  /** Creates or updates a customer and returns the Message commercetools would emit for it. */
  upsertCustomer(id: string, fields: Record<string, unknown>, type = 'CustomerFirstNameSet'): Record<string, unknown> {
    const existing = this.resources.get(id);
    const version = ((existing?.version as number | undefined) ?? 0) + 1;
    const customer = { ...existing, ...fields, id, version };
    this.resources.set(id, customer);
    return customerMessage(customer, existing ? type : 'CustomerCreated');
  }

  deleteCustomer(id: string): Record<string, unknown> {
    const existing = this.resources.get(id)!;
    this.resources.delete(id);
    const version = (existing.version as number) + 1;
    return { ...messageBase(id, version), type: 'CustomerDeleted' };
  }
}

let sequence = 0;
/** The common fields of a commercetools Message about a resource at a version (add `type` and its fields). */
export function messageBase(customerId: string, version: number, typeId = 'customer'): Record<string, unknown> {
  sequence += 1;
  return {
    notificationType: 'Message',
    projectKey: 'test-project',
    id: randomUUID(),
    version: 1,
    sequenceNumber: version,
    resource: { typeId, id: customerId },
    resourceVersion: version,
    resourceUserProvidedIdentifiers: {},
    createdAt: new Date(Date.UTC(2026, 0, 1) + sequence).toISOString(),
    lastModifiedAt: new Date(Date.UTC(2026, 0, 1) + sequence).toISOString(),
  };
}

/** The Message for a customer at its current version: Created ones carry the customer. */
export function customerMessage(customer: Record<string, unknown>, type: string): Record<string, unknown> {
  const base = messageBase(customer.id as string, customer.version as number);
  return type === 'CustomerCreated' ? { ...base, type, customer } : { ...base, type, firstName: customer.firstName };
}

export interface TestRuntimeOptions extends Omit<RuntimeOptions, 'config' | 'logger'> {
  storeUrl: string;
  /** The destinations block, as written in the file. */
  destinations: Array<Record<string, unknown>>;
  /** The commercetools block (default: an address nothing answers at, for tests whose `fetcher` stands in). */
  commercetools?: Record<string, unknown>;
  /** Overrides of the engine block (short polls and backoffs by default). */
  engine?: Partial<Config['engine']>;
  /** Overrides of the server block (e.g. a small bodyLimit, another ingest auth), as written in the file. */
  server?: Partial<z.input<typeof serverSchema>>;
  /** The pii block (hash key, vault keys). */
  pii?: Record<string, unknown>;
  /** The identity block (email folding rules). */
  identity?: Record<string, unknown>;
  /** The storefronts block (publishable keys of storefront event intake). */
  storefronts?: Array<Record<string, unknown>>;
  /** Other top-level blocks (api, actions…), as written in the file. */
  blocks?: Record<string, unknown>;
  /** What to close after the runtime stops (its simulators or sink); what a test keeps across restarts stays out. */
  closeAfter?: Array<{ close(): Promise<void> }>;
}

/** A runtime started for a test, listening (unless told not to) on a free port with the test tokens. */
export interface TestRuntime {
  runtime: Runtime;
  config: Config;
  /** POSTs a body to the ingest endpoint with the right auth (a string as it is, anything else as JSON). */
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Stops the runtime, then closes what `closeAfter` named. */
  stop(): Promise<void>;
}

/** A test's config: its blocks, with the test server, short engine timings and (unless given) no commercetools. */
export function runtimeConfig(options: Pick<TestRuntimeOptions, 'storeUrl' | 'destinations' | 'commercetools' | 'engine' | 'server' | 'pii' | 'identity' | 'storefronts' | 'blocks'>): Config {
  return configSchema.parse({
    ...options.blocks,
    commercetools: options.commercetools ?? { projectKey: 'test-project', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
    server: { ...TEST_SERVER, ...options.server },
    store: options.storeUrl,
    ...(options.pii && { pii: options.pii }),
    ...(options.identity && { identity: options.identity }),
    ...(options.storefronts && { storefronts: options.storefronts }),
    engine: { pollIntervalMs: 50, backoffBaseMs: 20, backoffMaxMs: 200, leaseMs: 5_000, ...options.engine },
    destinations: options.destinations,
  });
}

/** Starts ctbridge in this process (engine and ingest in the main thread) on the test's config, logging nothing. */
export async function startTestRuntime(options: TestRuntimeOptions): Promise<TestRuntime> {
  const { storeUrl, destinations, commercetools, engine, server, pii, identity, storefronts, blocks, closeAfter = [], ...runtimeOptions } = options;
  const config = runtimeConfig({ storeUrl, destinations, commercetools, engine, server, pii, identity, storefronts, blocks });
  const runtime = await startRuntime({ ...runtimeOptions, config, logger: pino({ level: 'silent' }) });
  return {
    runtime,
    config,
    post: (body, headers = {}) =>
      fetch(`${runtime.url}/v1/ingest/commercetools`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}`, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    async stop() {
      await runtime.stop();
      for (const closing of closeAfter) await closing.close();
    },
  };
}

export interface HarnessOptions extends Omit<TestRuntimeOptions, 'destinations' | 'fetcher' | 'closeAfter'> {
  /** Overrides of the sink destination's block. */
  destination?: Record<string, unknown>;
}

/** A runtime whose one destination is a sink (sandbox/sink.ts), reading commercetools through a FakeCommercetools. */
export interface Harness extends TestRuntime {
  sink: Sink;
  commercetools: FakeCommercetools;
}

/** The sink destination of a test configuration: customers as records, their creation and deletion as events. */
function sinkDestination(sinkUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'sink',
    type: 'http',
    url: `${sinkUrl}/records`,
    eventsUrl: `${sinkUrl}/events`,
    timeoutMs: 1_000,
    records: { customer: { fields: { email: 'email', firstName: 'firstName', lastName: 'lastName', city: 'addresses[0].city' } } },
    events: { customerEvents: { on: ['CustomerCreated', 'CustomerDeleted'], fields: { customerId: 'resource.id', type: 'type' } } },
    ...overrides,
  };
}

export function testConfig(storeUrl: string, sinkUrl: string, options: Pick<HarnessOptions, 'engine' | 'destination' | 'server' | 'pii' | 'identity' | 'storefronts'> = {}): Config {
  return runtimeConfig({ ...options, storeUrl, destinations: [sinkDestination(sinkUrl, options.destination)] });
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const sink = await startSink();
  const commercetools = new FakeCommercetools();
  const { destination, ...rest } = options;
  const started = await startTestRuntime({ ...rest, destinations: [sinkDestination(sink.url, destination)], fetcher: commercetools, closeAfter: [sink] });
  return { ...started, sink, commercetools };
}

/** Polls until `check` returns true (bounded by the test timeout, no timing assertion). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/**
 * Polls until the work is done, failing only when it stops moving: `remaining` (what is left, however counted)
 * unchanged for `stallMs`. For waits whose length depends on how much CPU the machine leaves ctbridge (its engine
 * thread runs at the lowest priority); the test's own timeout bounds the whole.
 */
export async function untilDone(poll: () => Promise<{ done: boolean; remaining: number }>, what: string, stallMs = 30_000): Promise<void> {
  let last = Number.NaN;
  let movedAt = Date.now();
  for (;;) {
    const { done, remaining } = await poll();
    if (done) return;
    if (remaining !== last) {
      last = remaining;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      throw new Error(`no progress for ${stallMs / 1000} s (${remaining} left) waiting for: ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A request to the admin API (dead letters, status) with the admin token. */
export function adminFetch(h: Pick<TestRuntime, 'runtime'>, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${h.runtime.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers as Record<string, string> | undefined) } });
}

/** The value of one sample of /metrics (0 when absent), matched by metric name and label values. */
export async function metricValue(h: Pick<TestRuntime, 'runtime'>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${h.runtime.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const sampleLabels = new Map([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([key, value]) => sampleLabels.get(key) === value)) total += Number(match[3]);
  }
  return total;
}
