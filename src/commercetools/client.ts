// The commercetools API client the engine reads the latest state of a resource with, when a notification does not
// carry it. Built on the official SDK (client-credentials OAuth, token cached and reused until it expires); the SDK's
// own retries are off because the engine owns retries, and every failure comes out as one of the kit's error
// classes (destinations/kit/errors.ts) with a message that never holds the client secret or a token.
import { createRequire } from 'node:module';
import type * as PlatformSdk from '@commercetools/platform-sdk';
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import type * as TsClient from '@commercetools/ts-client';
import type { ResourceFetcher } from '../engine/record-sync.ts';
import { groupOrdersByCustomer, paymentIdsOf, sortOldestFirst } from './orders.ts';
import type { ExpandableType } from '../mapping/references.ts';
import type { Middleware, TokenCache, TokenStore } from '@commercetools/ts-client';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, errorForStatus, parseRetryAfter } from '../destinations/kit/errors.ts';

// The SDK is loaded when the first client is made, not with this module: its code (about 1 MB of source, kept on
// the heap of every thread that loads it) stays out of the threads that only import the helpers below, such as
// `ctbridge start`'s HTTP thread when no support view or agent actions are configured.
const requireSdk = createRequire(import.meta.url);
const loadSdk = () => ({
  createApiBuilderFromCtpClient: (requireSdk('@commercetools/platform-sdk') as typeof PlatformSdk).createApiBuilderFromCtpClient,
  ClientBuilder: (requireSdk('@commercetools/ts-client') as typeof TsClient).ClientBuilder,
});

export type FetchableTypeId = 'customer' | 'order' | 'payment' | 'cart' | 'product' | 'business-unit' | 'key-value-document';

export interface CommercetoolsClientConfig {
  projectKey: string;
  region?: string | undefined;
  authUrl?: string | undefined;
  apiUrl?: string | undefined;
  clientId: string;
  clientSecret: string;
  scopes: string[];
}

export interface CommercetoolsClientOptions {
  /** Per HTTP exchange (token or API call), including reading the body. Default 10 s. */
  timeoutMs?: number;
  /** Ids per `id in (...)` query; commercetools caps `limit` at 500 and long URLs get rejected. Default 100. */
  maxIdsPerQuery?: number;
  /** Orders per page when reading customers' orders (`$orders`); at most 500, the default. */
  ordersPageSize?: number;
}

export interface CommercetoolsClient {
  readonly projectKey: string;
  /**
   * The SDK's request builder on the same authenticated connection, for writes (sandbox, actions). Its errors are
   * the SDK's; pass them through `toDeliveryErrorFromCommercetools` to classify them.
   */
  readonly api: ByProjectKeyRequestBuilder;
  /**
   * The current state of each id, one query per chunk of ids. Ids missing from the map do not exist (deleted).
   * Products come as the product resource (masterData with current and staged).
   */
  fetchByIds(typeId: FetchableTypeId, ids: string[]): Promise<Map<string, Record<string, unknown>>>;
  /** Resources whose top-level `field` (key, customerNumber…: a plain field name) is one of these values, keyed by it. */
  fetchByField(typeId: FetchableTypeId, field: string, values: string[]): Promise<Map<string, Record<string, unknown>>>;
  /**
   * Objects a resource references (customer groups, stores, channels, states, custom objects) by id or key, keyed
   * by that; custom objects by key are asked for as `<container>/<key>`.
   */
  fetchReferenced(typeId: ExpandableType, by: 'id' | 'key', values: string[]): Promise<Map<string, Record<string, unknown>>>;
  /**
   * Each customer's orders in every store, oldest first (createdAt, then id), paged; customers without orders are
   * missing. A customer with more orders than offset paging reaches (10,000) is a PermanentError.
   */
  fetchOrdersOf(customerIds: string[]): Promise<Map<string, Record<string, unknown>[]>>;
  /** The order each payment belongs to (paymentInfo), keyed by payment id; payments of no order are missing. */
  fetchOrdersOfPayments(paymentIds: string[]): Promise<Map<string, Record<string, unknown>>>;
  /** Guest orders (no customerId) placed with one of these emails (as written), oldest first, paged. */
  fetchGuestOrders(emails: string[]): Promise<Record<string, unknown>[]>;
  /** Aborts requests in flight; later calls fail with a RetryableError. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_IDS_PER_QUERY = 100;
/** commercetools refuses a query offset above 10,000. */
const MAX_QUERY_OFFSET = 10_000;
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export function resolveCommercetoolsUrls(config: Pick<CommercetoolsClientConfig, 'region' | 'authUrl' | 'apiUrl'>): { authUrl: string; apiUrl: string } {
  const authUrl = config.authUrl ?? (config.region ? `https://auth.${config.region}.commercetools.com` : undefined);
  const apiUrl = config.apiUrl ?? (config.region ? `https://api.${config.region}.commercetools.com` : undefined);
  if (!authUrl || !apiUrl) throw new Error('commercetools: set either region or both authUrl and apiUrl');
  return { authUrl: authUrl.replace(/\/+$/, ''), apiUrl: apiUrl.replace(/\/+$/, '') };
}

/** A commercetools query predicate string literal. */
export function quotePredicateString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function createCommercetoolsClient(config: CommercetoolsClientConfig, options: CommercetoolsClientOptions = {}): CommercetoolsClient {
  const { authUrl, apiUrl } = resolveCommercetoolsUrls(config);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxIdsPerQuery = Math.max(1, Math.min(500, options.maxIdsPerQuery ?? DEFAULT_MAX_IDS_PER_QUERY));
  const ordersPageSize = Math.max(1, Math.min(500, options.ordersPageSize ?? 500));
  const tokenUrl = `${authUrl}/oauth/token`;
  const closing = new AbortController();
  const tokens = new SingleFlightTokenCache();

  const redact = (text: string): string => {
    let out = text;
    for (const secret of [config.clientSecret, tokens.currentToken()]) {
      if (secret) out = out.split(secret).join('***');
    }
    return out;
  };

  const httpClient = async (url: string, init: RequestInit): Promise<Response> => {
    if (closing.signal.aborted) throw new RetryableError('commercetools client is closed');
    const isTokenRequest = url.startsWith(tokenUrl);
    const what = isTokenRequest ? 'the commercetools auth server' : 'the commercetools API';
    const signals = [AbortSignal.timeout(timeoutMs), closing.signal];
    if (init.signal) signals.push(init.signal);
    let status: number;
    let headers: Headers;
    let text: string;
    try {
      const response = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal: AbortSignal.any(signals) });
      status = response.status;
      headers = response.headers;
      // Read the body here so the timeout covers it, and so the SDK never sees a half-read stream.
      text = await response.text();
    } catch (error) {
      // Our own class (its name does not look like an abort) so the SDK passes it through untouched.
      throw new RetryableError(describeTransportFailure(error, what, timeoutMs, closing.signal.aborted), { cause: redactedCause(error, redact) });
    }
    if (isTokenRequest && (status < 200 || status >= 300)) {
      // The SDK drops the status and headers of a failed token request; classify it while they are at hand.
      throw tokenFailure(status, text, headers.get('retry-after'), redact);
    }
    if (status >= 400 && !isJson(text)) {
      // Gateways answer 502/503/429 with HTML; the SDK would fail to parse that and report a status-less error.
      text = JSON.stringify({ statusCode: status, message: `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}` });
    }
    return new Response(NULL_BODY_STATUSES.has(status) ? null : text, { status, headers: stripLengthHeaders(headers) });
  };

  const { ClientBuilder, createApiBuilderFromCtpClient } = loadSdk();
  const client = new ClientBuilder()
    .withProjectKey(config.projectKey)
    .withMiddleware(tokens.middleware)
    .withClientCredentialsFlow({
      host: authUrl,
      projectKey: config.projectKey,
      credentials: { clientId: config.clientId, clientSecret: config.clientSecret },
      ...(config.scopes.length > 0 ? { scopes: config.scopes } : {}),
      tokenCache: tokens.cache,
      httpClient,
    })
    .withHttpMiddleware({
      host: apiUrl,
      httpClient,
      enableRetry: false,
      includeResponseHeaders: true,
      // Keeps the request (and its bearer token) out of error objects.
      includeRequestInErrorResponse: false,
      maskSensitiveHeaderData: true,
    })
    .withUserAgentMiddleware({ libraryName: 'ctbridge' })
    .build();
  const api = createApiBuilderFromCtpClient(client).withProjectKey({ projectKey: config.projectKey });

  /** Chunks of at most maxIdsPerQuery distinct, non-empty values, for `in (...)` predicates. */
  const chunked = (values: string[]): string[][] => {
    const unique = [...new Set(values)].filter((value) => value.length > 0);
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += maxIdsPerQuery) chunks.push(unique.slice(i, i + maxIdsPerQuery));
    return chunks;
  };

  /** `field in (...)` queries in chunks, results keyed by that field. */
  const queryIn = async (typeId: QueryableType, field: string, values: string[]): Promise<Map<string, Record<string, unknown>>> => {
    const found = new Map<string, Record<string, unknown>>();
    const results = await Promise.all(chunked(values).map((chunk) => queryChunk(typeId, field, chunk)));
    for (const resource of results.flat()) {
      const value = resource[field];
      if (typeof value === 'string') found.set(value, resource);
    }
    return found;
  };

  const queryChunk = async (typeId: QueryableType, field: string, values: string[]): Promise<Record<string, unknown>[]> => {
    const queryArgs = { where: `${field} in (${values.map(quotePredicateString).join(', ')})`, limit: values.length, withTotal: false };
    try {
      const response = await requestFor(api, typeId, queryArgs).execute();
      return response.body.results as unknown as Record<string, unknown>[];
    } catch (error) {
      throw toDeliveryErrorFromCommercetools(error, `querying ${typeId}s by ${field}`, redact);
    }
  };

  /**
   * Custom objects asked for as `<container>/<key>`: one `key in (...)` query per container and chunk of keys
   * (GET /custom-objects/{container}), keyed as asked.
   */
  const customObjectsByKey = async (values: string[]): Promise<Map<string, Record<string, unknown>>> => {
    const byContainer = new Map<string, string[]>();
    for (const value of values) {
      const slash = value.indexOf('/');
      if (slash <= 0 || slash === value.length - 1) continue;
      const keys = byContainer.get(value.slice(0, slash)) ?? [];
      keys.push(value.slice(slash + 1));
      byContainer.set(value.slice(0, slash), keys);
    }
    const found = new Map<string, Record<string, unknown>>();
    const queries = [...byContainer].flatMap(([container, keys]) =>
      chunked(keys).map(async (chunk) => {
        try {
          const queryArgs = { where: `key in (${chunk.map(quotePredicateString).join(', ')})`, limit: chunk.length, withTotal: false };
          const response = await api.customObjects().withContainer({ container }).get({ queryArgs }).execute();
          for (const object of response.body.results as unknown as Record<string, unknown>[]) found.set(`${container}/${String(object.key)}`, object);
        } catch (error) {
          throw toDeliveryErrorFromCommercetools(error, `querying the custom objects of container ${container}`, redact);
        }
      }),
    );
    await Promise.all(queries);
    return found;
  };

  /**
   * The orders of some customers (or, `guests`, the guest orders of some emails), page by page; a chunk too big to
   * page through is split, down to one customer.
   */
  const ordersOfChunk = async (values: string[], guests = false): Promise<Record<string, unknown>[]> => {
    const list = values.map(quotePredicateString).join(', ');
    const where = guests ? `customerEmail in (${list}) and customerId is not defined` : `customerId in (${list})`;
    const orders: Record<string, unknown>[] = [];
    for (let offset = 0; ; offset += ordersPageSize) {
      if (offset > MAX_QUERY_OFFSET) {
        if (values.length === 1) throw new PermanentError(`${guests ? 'a guest' : `customer ${values[0]}`} has more than ${MAX_QUERY_OFFSET.toLocaleString('en')} orders: more than $orders can read`);
        const half = Math.ceil(values.length / 2);
        return (await Promise.all([ordersOfChunk(values.slice(0, half), guests), ordersOfChunk(values.slice(half), guests)])).flat();
      }
      let page: Record<string, unknown>[];
      try {
        const response = await api.orders().get({ queryArgs: { where, sort: ['createdAt asc', 'id asc'], limit: ordersPageSize, offset, withTotal: false } }).execute();
        page = response.body.results as unknown as Record<string, unknown>[];
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, 'querying the orders of customers', redact);
      }
      orders.push(...page);
      if (page.length < ordersPageSize) return orders;
    }
  };

  return {
    projectKey: config.projectKey,
    api,
    async fetchOrdersOf(customerIds) {
      return groupOrdersByCustomer((await Promise.all(chunked(customerIds).map((chunk) => ordersOfChunk(chunk)))).flat());
    },
    async fetchGuestOrders(emails) {
      return sortOldestFirst((await Promise.all(chunked(emails).map((chunk) => ordersOfChunk(chunk, true)))).flat());
    },
    async fetchOrdersOfPayments(paymentIds) {
      const byPayment = new Map<string, Record<string, unknown>>();
      await Promise.all(
        chunked(paymentIds).map(async (chunk) => {
          let orders: Record<string, unknown>[];
          try {
            // A payment belongs to one order: a chunk's orders fit one page. The payments come expanded: a message
            // about a payment's transaction (PaymentTransactionStateChanged) names only its id and new state.
            const queryArgs = { where: `paymentInfo(payments(id in (${chunk.map(quotePredicateString).join(', ')})))`, limit: chunk.length, withTotal: false, expand: ['paymentInfo.payments[*]'] };
            orders = (await api.orders().get({ queryArgs }).execute()).body.results as unknown as Record<string, unknown>[];
          } catch (error) {
            throw toDeliveryErrorFromCommercetools(error, 'querying the orders of payments', redact);
          }
          const wanted = new Set(chunk);
          for (const order of orders) for (const id of paymentIdsOf(order)) if (wanted.has(id)) byPayment.set(id, order);
        }),
      );
      return byPayment;
    },
    fetchByIds(typeId, ids) {
      return queryIn(typeId, 'id', ids);
    },
    fetchByField(typeId, field, values) {
      return queryIn(typeId, field, values);
    },
    fetchReferenced(typeId, by, values) {
      return typeId === 'key-value-document' && by === 'key' ? customObjectsByKey(values) : queryIn(typeId, by, values);
    },
    close() {
      closing.abort();
      return Promise.resolve();
    },
  };
}

type QueryArgs = { where: string; limit: number; withTotal: boolean };
type QueryableType = FetchableTypeId | ExpandableType;

function requestFor(api: ByProjectKeyRequestBuilder, typeId: QueryableType, queryArgs: QueryArgs) {
  switch (typeId) {
    case 'customer-group':
      return api.customerGroups().get({ queryArgs });
    case 'store':
      return api.stores().get({ queryArgs });
    case 'channel':
      return api.channels().get({ queryArgs });
    case 'state':
      return api.states().get({ queryArgs });
    case 'discount-code':
      return api.discountCodes().get({ queryArgs });
    case 'key-value-document':
      return api.customObjects().get({ queryArgs });
    case 'category':
      return api.categories().get({ queryArgs });
    case 'business-unit':
      return api.businessUnits().get({ queryArgs });
    case 'customer':
      return api.customers().get({ queryArgs });
    case 'order':
      return api.orders().get({ queryArgs });
    case 'payment':
      return api.payments().get({ queryArgs });
    case 'cart':
      return api.carts().get({ queryArgs });
    case 'product':
      return api.products().get({ queryArgs });
  }
}

/**
 * The SDK's token cache, plus a gate so that many requests starting together with no valid token make one token
 * request between them (the SDK alone would make one per request).
 */
class SingleFlightTokenCache {
  private stored: TokenStore | undefined;
  private fetching: Promise<void> | undefined;
  private tokenArrived: (() => void) | undefined;

  readonly cache: TokenCache = {
    get: () => Promise.resolve(this.stored),
    set: (token) => {
      this.stored = token;
      this.tokenArrived?.();
      return Promise.resolve();
    },
  };

  readonly middleware: Middleware = (next) => async (request) => {
    while (!this.hasValidToken() && this.fetching) await this.fetching;
    if (this.hasValidToken()) return next(request);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.fetching = promise;
    this.tokenArrived = resolve;
    try {
      return await next(request);
    } finally {
      if (this.fetching === promise) {
        this.fetching = undefined;
        this.tokenArrived = undefined;
      }
      resolve();
    }
  };

  hasValidToken(): boolean {
    return Boolean(this.stored?.token) && Date.now() < (this.stored?.expirationTime ?? 0);
  }

  currentToken(): string | undefined {
    return this.stored?.token || undefined;
  }
}

/** Classifies anything the SDK (or the client above) throws as one of the error classes (destinations/kit/errors.ts). */
export function toDeliveryErrorFromCommercetools(error: unknown, doing: string, redact: (text: string) => string = (t) => t): DeliveryError {
  const own = findOwnError(error);
  if (own) return own;
  const sdk = sdkErrorFields(error);
  const status = sdk.status ?? 0;
  const detail = redact(sdk.message ?? (error instanceof Error ? error.message : 'unknown error'));
  if (status === 0) return new RetryableError(`commercetools could not be reached while ${doing}: ${detail}`);
  if (status === 401 || status === 403) {
    return new PermanentError(`commercetools rejected the credentials/scopes (HTTP ${status} while ${doing}): ${detail}`, { status });
  }
  const retryAfterMs = parseRetryAfter(sdk.retryAfter);
  if (status === 429) return new RateLimitedError(`commercetools rate limit hit while ${doing}: ${detail}`, { status, retryAfterMs });
  return errorForStatus(status, `commercetools answered HTTP ${status} while ${doing}: ${detail}`, retryAfterMs) ?? new RetryableError(`commercetools answered HTTP ${status} while ${doing}: ${detail}`, { status });
}

function findOwnError(error: unknown, depth = 0): DeliveryError | undefined {
  if (error instanceof DeliveryError) return error;
  if (depth > 4 || typeof error !== 'object' || error === null) return undefined;
  const record = error as Record<string, unknown>;
  for (const key of ['error', 'body', 'cause']) {
    const found = findOwnError(record[key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

function sdkErrorFields(error: unknown): { status: number | undefined; message: string | undefined; retryAfter: string | undefined } {
  const outer = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  // Network failures come wrapped as { body: null, error }; HTTP errors come as the error object itself.
  const inner = typeof outer.statusCode === 'number' || !isRecord(outer.error) ? outer : outer.error;
  const statusCode = typeof inner.statusCode === 'number' ? inner.statusCode : undefined;
  const headers = isRecord(inner.headers) ? inner.headers : {};
  const retryAfterValue = headers['retry-after'] ?? headers['Retry-After'];
  const retryAfter = Array.isArray(retryAfterValue) ? String(retryAfterValue[0]) : typeof retryAfterValue === 'string' ? retryAfterValue : undefined;
  return { status: statusCode, message: typeof inner.message === 'string' ? inner.message : undefined, retryAfter };
}

function tokenFailure(status: number, text: string, retryAfterHeader: string | null, redact: (text: string) => string): DeliveryError {
  const body = parseJson(text);
  const code = typeof body?.error === 'string' ? body.error : undefined;
  const description = typeof body?.error_description === 'string' ? body.error_description : typeof body?.message === 'string' ? body.message : undefined;
  const detail = redact([code, description].filter(Boolean).join(': ') || `HTTP ${status}`);
  // invalid_client / invalid_scope / unauthorized_client: nothing a retry can fix.
  if (status === 401 || status === 403 || (status === 400 && code !== undefined && code !== 'invalid_request')) {
    return new PermanentError(`commercetools rejected the credentials/scopes (auth server answered HTTP ${status}): ${detail}`, { status });
  }
  const retryAfterMs = parseRetryAfter(retryAfterHeader);
  if (status === 429) return new RateLimitedError(`commercetools auth server rate limit hit: ${detail}`, { status, retryAfterMs });
  const message = `commercetools auth server answered HTTP ${status}: ${detail}`;
  return errorForStatus(status, message, retryAfterMs) ?? new RetryableError(message, { status });
}

function describeTransportFailure(error: unknown, what: string, timeoutMs: number, closed: boolean): string {
  if (closed) return `request to ${what} aborted: the commercetools client is closed`;
  const name = error instanceof Error ? error.name : '';
  if (name === 'TimeoutError') return `${what} did not answer within ${timeoutMs} ms`;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = cause && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return `could not reach ${what}${code ? ` (${code})` : ''}: ${cause?.message ?? (error instanceof Error ? error.message : String(error))}`;
}

/** A plain Error copy of a transport failure, so a cause chain never carries request headers along. */
function redactedCause(error: unknown, redact: (text: string) => string): Error {
  const message = error instanceof Error ? error.message : String(error);
  const copy = new Error(redact(message));
  copy.name = error instanceof Error ? error.name : 'Error';
  return copy;
}

function stripLengthHeaders(headers: Headers): Headers {
  const copy = new Headers(headers);
  // The body was decoded and re-wrapped: its original length and encoding no longer apply.
  copy.delete('content-length');
  copy.delete('content-encoding');
  copy.delete('transfer-encoding');
  return copy;
}

function isJson(text: string): boolean {
  return parseJson(text) !== undefined;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const FETCHABLE = new Set<string>(['customer', 'order', 'payment', 'cart', 'product', 'business-unit', 'key-value-document']);
/** A top-level field a query predicate may name; anything else would be written into the predicate. */
const PREDICATE_FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The engine's view of this client: resource types commercetools cannot be asked for are permanent errors. */
export function resourceFetcher(client: CommercetoolsClient): ResourceFetcher {
  return {
    fetchByIds(typeId, ids) {
      if (!FETCHABLE.has(typeId)) return Promise.reject(new PermanentError(`resources of type "${typeId}" cannot be fetched from commercetools`));
      return client.fetchByIds(typeId as FetchableTypeId, ids);
    },
    fetchReferenced: (typeId, by, values) => client.fetchReferenced(typeId, by, values),
    fetchOrdersOf: (customerIds) => client.fetchOrdersOf(customerIds),
    fetchOrdersOfPayments: (paymentIds) => client.fetchOrdersOfPayments(paymentIds),
    fetchGuestOrders: (emails) => client.fetchGuestOrders(emails),
    fetchByField(typeId, field, values) {
      if (!FETCHABLE.has(typeId)) return Promise.reject(new PermanentError(`resources of type "${typeId}" cannot be fetched from commercetools`));
      if (!PREDICATE_FIELD.test(field)) return Promise.reject(new PermanentError(`"${field}" is not a field commercetools can be queried by`));
      return client.fetchByField(typeId as FetchableTypeId, field, values);
    },
  };
}
