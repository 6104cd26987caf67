// Reads what the support view shows live from commercetools with the official SDK, in as few requests as it can:
// a customer with its group expanded; a customer's orders in one query with their payments and shipping method
// expanded (sorted newest first, scoped to the stores a role may see); an order by number the same way; the stores'
// languages once in a while. Answers are kept for a short time (`api.support.cacheMs`, injected clock), so an agent
// paging through a ticket does not cost a request each time; concurrent identical lookups share one request.
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import { quotePredicateString, toDeliveryErrorFromCommercetools } from '../commercetools/client.ts';
import { RetryableError } from '../destinations/kit/errors.ts';

type Json = Record<string, unknown>;

export const ORDER_EXPANSIONS = ['paymentInfo.payments[*]', 'shippingInfo.shippingMethod', 'lineItems[*].state[*].state'];
const CUSTOMER_EXPANSIONS = ['customerGroup'];
/** Store languages change rarely; they are read at most this often. */
const STORES_TTL_MS = 60_000;
const MAX_ENTRIES = 2_000;

export interface OrdersQuery {
  customerId: string;
  /** Only orders in these stores; undefined: every store. */
  stores: readonly string[] | undefined;
  limit: number;
  offset: number;
}

export interface OrdersPage {
  results: Json[];
  total: number | undefined;
}

export interface SupportReader {
  customersByEmail(email: string): Promise<Json[]>;
  customersByNumber(customerNumber: string): Promise<Json[]>;
  customerById(id: string): Promise<Json | undefined>;
  ordersOf(query: OrdersQuery): Promise<OrdersPage>;
  orderByNumber(orderNumber: string): Promise<Json | undefined>;
  storeLanguages(keys: readonly string[]): Promise<Map<string, string[]>>;
}

export interface ReaderOptions {
  api: ByProjectKeyRequestBuilder;
  cacheMs: number;
  now: () => number;
}

export function createSupportReader(options: ReaderOptions): SupportReader {
  const { api, cacheMs, now } = options;
  const cache = new Map<string, { until: number; value: Promise<unknown> }>();

  function cached<T>(key: string, ttl: number, load: () => Promise<T>): Promise<T> {
    const at = now();
    const hit = cache.get(key);
    if (hit && hit.until > at) return hit.value as Promise<T>;
    if (ttl <= 0) return load();
    const value = load();
    cache.set(key, { until: at + ttl, value });
    // A failure is not kept: the next lookup asks again.
    value.catch(() => {
      if (cache.get(key)?.value === value) cache.delete(key);
    });
    if (cache.size > MAX_ENTRIES) {
      for (const [k, entry] of cache) if (entry.until <= at || cache.size > MAX_ENTRIES) cache.delete(k);
    }
    return value;
  }

  async function read<T>(doing: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (statusOf(error) === 404) throw new NotFound();
      throw toDeliveryErrorFromCommercetools(error, doing);
    }
  }

  const queryCustomers = (where: string) =>
    read('querying customers', async () => (await api.customers().get({ queryArgs: { where, expand: CUSTOMER_EXPANSIONS, limit: 20, withTotal: false } }).execute()).body.results as unknown as Json[]);

  return {
    customersByEmail(email) {
      // commercetools keeps every address lower-cased in lowercaseEmail: the lookup ignores case as logins do.
      const lower = email.trim().toLowerCase();
      return cached(`email:${lower}`, cacheMs, () => queryCustomers(`lowercaseEmail = ${quotePredicateString(lower)}`));
    },
    customersByNumber(customerNumber) {
      return cached(`number:${customerNumber}`, cacheMs, () => queryCustomers(`customerNumber = ${quotePredicateString(customerNumber)}`));
    },
    customerById(id) {
      return cached(`customer:${id}`, cacheMs, async () => {
        try {
          return await read('reading a customer', async () => (await api.customers().withId({ ID: id }).get({ queryArgs: { expand: CUSTOMER_EXPANSIONS } }).execute()).body as unknown as Json);
        } catch (error) {
          if (error instanceof NotFound) return undefined;
          throw error;
        }
      });
    },
    ordersOf(query) {
      const where = [`customerId = ${quotePredicateString(query.customerId)}`, ...(query.stores ? [storePredicate(query.stores)] : [])];
      return cached(`orders:${JSON.stringify(query)}`, cacheMs, () =>
        read('querying the orders of a customer', async () => {
          const body = (
            await api
              .orders()
              .get({ queryArgs: { where, expand: ORDER_EXPANSIONS, sort: ['createdAt desc', 'id desc'], limit: query.limit, offset: query.offset, withTotal: true } })
              .execute()
          ).body;
          // Newest first here too: a commercetools emulator may ignore `sort`; commercetools itself honours it.
          const results = (body.results as unknown as Json[]).toSorted(newestFirst);
          return { results, total: body.total };
        }),
      );
    },
    orderByNumber(orderNumber) {
      return cached(`order:${orderNumber}`, cacheMs, () =>
        read('querying an order by number', async () => {
          const queryArgs = { where: `orderNumber = ${quotePredicateString(orderNumber)}`, expand: ORDER_EXPANSIONS, limit: 1, withTotal: false };
          return (await api.orders().get({ queryArgs }).execute()).body.results[0] as unknown as Json | undefined;
        }),
      );
    },
    async storeLanguages(keys) {
      const wanted = [...new Set(keys)].sort();
      const out = new Map<string, string[]>();
      if (wanted.length === 0) return out;
      const stores = await cached(`stores:${wanted.join(',')}`, Math.max(cacheMs, STORES_TTL_MS), () =>
        read('reading stores', async () => (await api.stores().get({ queryArgs: { where: `key in (${wanted.map(quotePredicateString).join(', ')})`, limit: wanted.length, withTotal: false } }).execute()).body.results),
      );
      for (const store of stores) out.set(store.key, store.languages ?? []);
      return out;
    },
  };
}

export function storePredicate(stores: readonly string[]): string {
  return `store(key in (${stores.map(quotePredicateString).join(', ')}))`;
}

class NotFound extends Error {}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const record = error as { statusCode?: unknown; body?: { statusCode?: unknown } };
  if (typeof record.statusCode === 'number') return record.statusCode;
  return typeof record.body?.statusCode === 'number' ? record.body.statusCode : undefined;
}

function newestFirst(a: Json, b: Json): number {
  const byTime = String(b.createdAt).localeCompare(String(a.createdAt));
  return byTime !== 0 ? byTime : String(b.id).localeCompare(String(a.id));
}

/** The reader of a configured commercetools client; without one, every lookup fails as commercetools unreachable. */
export function supportReaderOf(client: { api: ByProjectKeyRequestBuilder } | undefined, cacheMs: number, now: () => number): SupportReader {
  if (client) return createSupportReader({ api: client.api, cacheMs, now });
  const missing = () => Promise.reject(new RetryableError('no commercetools client is configured for the support view'));
  return { customersByEmail: missing, customersByNumber: missing, customerById: missing, ordersOf: missing, orderByNumber: missing, storeLanguages: missing };
}
