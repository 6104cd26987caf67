// Connector tests without a runtime: builds a connector from its definition and settings, as the engine does but
// with the kit's fetch over an in-memory limiter that never makes a call wait (and remembers the pauses asked of
// it), so a test calls sendRecords / sendEvents / mergePeople directly against the destination's simulator and
// asserts on what the simulator holds. The item builders make the connector's input types with the defaults the
// engine would give them.
import pino, { type Logger } from 'pino';
import type { z } from 'zod';
import { createDestinationFetch, type CallLimiter } from '../../src/destinations/kit/index.ts';
import type { Connector, ConnectorDeps, DestinationDefinition, EventItem, EventSeconds, PersonMergeItem, RecordItem } from '../../src/destinations/types.ts';
import { createEventSeconds } from '../../src/store/event-seconds.ts';
import { openStore } from '../../src/store/store.ts';

/** A limiter that lets every call through at once and records what it was asked. */
export interface TestLimiter extends CallLimiter {
  /** Calls that took a slot. */
  readonly acquired: number;
  /** The latest pause asked for (ms since epoch), 0 when none. */
  readonly pausedUntil: number;
}

export function unlimitedLimiter(): TestLimiter {
  const state = { acquired: 0, pausedUntil: 0 };
  return {
    get acquired() {
      return state.acquired;
    },
    get pausedUntil() {
      return state.pausedUntil;
    },
    acquire() {
      state.acquired += 1;
      return Promise.resolve();
    },
    pauseUntil(until) {
      state.pausedUntil = Math.max(state.pausedUntil, until);
    },
  };
}

export interface TestConnector {
  connector: Connector;
  limiter: TestLimiter;
  /** Calls the connector made (what ctbridge_destination_calls_total counts). */
  readonly calls: number;
}

/** The connector the engine would build for a destination of this type with these settings (defaults applied). */
export function createTestConnector<Settings extends z.ZodObject>(
  definition: DestinationDefinition<Settings>,
  settings: z.input<Settings>,
  options: { limiter?: TestLimiter; name?: string; logger?: Logger; eventSeconds?: EventSeconds } & Pick<ConnectorDeps, 'state' | 'reportLateFailures' | 'now'> = {},
): TestConnector {
  const limiter = options.limiter ?? unlimitedLimiter();
  let calls = 0;
  const fetch = createDestinationFetch({ limiter, onCall: () => (calls += 1), ...(options.now && { now: options.now }) });
  const name = options.name ?? definition.type;
  const connector = definition.create(definition.settings.parse(settings), {
    fetch,
    logger: options.logger ?? pino({ level: 'silent' }),
    name,
    eventSeconds: options.eventSeconds ?? inMemoryStoreEventSeconds(name),
    state: options.state,
    reportLateFailures: options.reportLateFailures,
    now: options.now,
  });
  return {
    connector,
    limiter,
    get calls() {
      return calls;
    },
  };
}

/** The store's event seconds (store/event-seconds.ts) over an SQLite database in memory, opened on first use. */
export function inMemoryStoreEventSeconds(destination: string): EventSeconds {
  let ready: Promise<EventSeconds> | undefined;
  const open = () =>
    (ready ??= (async () => {
      const store = openStore('sqlite::memory:');
      await store.migrate();
      return createEventSeconds(store.db, destination);
    })());
  return { claim: async (claim) => (await open()).claim(claim) };
}

let sequence = 0;

/**
 * A record to send: a customer upsert by default, its `fields` changed (all of them unless `changed` says), the
 * whole record the fields unless `record` says, about the customer it names.
 */
export function recordItem(overrides: Partial<RecordItem> & { resourceId: string }): RecordItem {
  sequence += 1;
  const fields = overrides.fields ?? {};
  const resourceType = overrides.resourceType ?? 'customer';
  return {
    recordType: resourceType,
    resourceType,
    operation: 'upsert',
    version: 1,
    fields,
    record: fields,
    changed: Object.keys(fields),
    previous: undefined,
    destinationId: undefined,
    idempotencyKey: `test:${resourceType}:${overrides.resourceId}:${sequence}`,
    sequence,
    correlationId: `corr-${sequence}`,
    target: undefined,
    person: resourceType === 'customer' ? { key: `customer:${overrides.resourceId}`, destinationId: overrides.destinationId } : undefined,
    ...overrides,
  };
}

/** An event to deliver: named after its mapping, about the person given (none: a guest without a customer). */
export function eventItem(overrides: Partial<EventItem> & { eventType: string }): EventItem {
  sequence += 1;
  return {
    sourceType: 'OrderCreated',
    resource: { typeId: 'order', id: `order-${sequence}` },
    payload: {},
    idempotencyKey: `test:event:${sequence}`,
    correlationId: `corr-${sequence}`,
    occurredAt: Date.UTC(2026, 0, 1, 12, 0, sequence),
    target: undefined,
    person: undefined,
    ...overrides,
  };
}

/** A guest (by destination id) found to be a registered customer (by destination id). */
export function mergeItem(from: string | undefined, into: string | undefined): PersonMergeItem {
  sequence += 1;
  return {
    from: { person: `guest:store:digest-${sequence}`, destinationId: from },
    into: { person: `customer:c-${sequence}`, destinationId: into },
    idempotencyKey: `test:merge:${sequence}`,
    correlationId: `corr-${sequence}`,
  };
}
