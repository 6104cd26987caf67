// What the destination benchmarks (intercom.ts, ometria.ts, monday.ts) share: a tiny commercetools of customers —
// the Messages commercetools would send as a customer is created and renamed, and each customer at the latest
// version a message announced, served to the engine as its fetcher — and the naive handlers' worker pool.
import type { ResourceFetcher } from '../src/engine/record-sync.ts';

export class BenchCustomers {
  private sequence = 0;
  private readonly latest = new Map<string, Record<string, unknown>>();

  /** Goes on every customer (e.g. the stores a destination's mapping reads). */
  private readonly extra: Record<string, unknown>;

  constructor(extra: Record<string, unknown> = {}) {
    this.extra = extra;
  }

  /** CustomerCreated at version 1, CustomerFirstNameSet after it; the customer becomes the latest state. */
  message(id: string, version: number, email: string): Record<string, unknown> {
    this.sequence += 1;
    const customer = { id, version, email, firstName: `F${version}`, lastName: 'Bench', ...this.extra };
    this.latest.set(id, customer);
    return {
      notificationType: 'Message',
      projectKey: 'bench',
      id: `msg-${this.sequence}`,
      version: 1,
      sequenceNumber: version,
      resource: { typeId: 'customer', id },
      resourceVersion: version,
      type: version === 1 ? 'CustomerCreated' : 'CustomerFirstNameSet',
      ...(version === 1 ? { customer } : { firstName: customer.firstName, customer }),
      createdAt: new Date().toISOString(),
      lastModifiedAt: new Date().toISOString(),
    };
  }

  /** The engine's view of this commercetools: customers by id at their latest version, nothing else. */
  readonly fetcher: ResourceFetcher = {
    fetchByIds: (_typeId: string, ids: string[]) => Promise.resolve(new Map(ids.flatMap((id) => (this.latest.has(id) ? [[id, structuredClone(this.latest.get(id)!)] as const] : [])))),
    fetchReferenced: () => Promise.resolve(new Map<string, Record<string, unknown>>()),
    fetchOrdersOf: () => Promise.resolve(new Map<string, Record<string, unknown>[]>()),
    fetchOrdersOfPayments: () => Promise.resolve(new Map<string, Record<string, unknown>>()),
    fetchGuestOrders: () => Promise.resolve([]),
    fetchByField: () => Promise.resolve(new Map<string, Record<string, unknown>>()),
  };
}

/** Handles the messages with `concurrency` workers, each taking the next one, until all are done or `stop()`. */
export async function inParallel(messages: ReadonlyArray<Record<string, unknown>>, concurrency: number, handle: (message: Record<string, unknown>) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages.length && !stop()) await handle(messages[next++]!);
    }),
  );
}
