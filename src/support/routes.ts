// The support view API (pull): service desks (novomind iAGENT, Intercom, Momentis) look a customer or an order
// up by e-mail, customer number, id or order number and get one normalised, masked view of it. Each request: the
// API key (401), the role's `support` section (403), the client's rate (429), the query (400), then a live read
// from commercetools (reader.ts), normalised (normalize.ts), masked for the role and market (masking.ts), parsed
// through its schema (views.ts, the same objects the OpenAPI document is made of) and audit-logged: who asked,
// what kind of query, which ids came back — an e-mail only as a digest.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DeliveryError } from '../destinations/kit/errors.ts';
import type { ApiCaller, ApiClients } from '../server/api-clients.ts';
import { CORRELATION_ID } from '../server/ingest-routes.ts';
import { fastifyPath, type ApiDescription, type ParameterSpec } from '../server/openapi.ts';
import { sendProblem } from '../server/problem.ts';
import { RequestBucket } from '../server/storefront-routes.ts';
import { insertAudit } from '../store/audit-log.ts';
import type { Database } from '../store/schema.ts';
import { RoleView } from './masking.ts';
import { customerProfile, orderView, type LinkContext, type LocaleContext } from './normalize.ts';
import type { SupportReader } from './reader.ts';
import { supportRoleSchema, type SupportSettings } from './settings.ts';
import { customerSearchSchema, customerViewSchema, orderPageSchema, orderSchema, type CustomerView, type OrderView } from './views.ts';

export interface SupportRoutesOptions {
  api: ApiDescription;
  clients: ApiClients;
  reader: SupportReader;
  settings: SupportSettings;
  projectKey: string;
  db: Kysely<Database>;
  logger: Logger;
  now: () => number;
}

type Json = Record<string, unknown>;

const locale = z
  .string()
  .regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'a BCP 47 language tag such as de-DE')
  .optional()
  .describe("names and amounts in this locale (default: the store's first language)");
const email = z.string().trim().min(3).max(256).regex(/^[^\s@]+@[^\s@]+$/, 'an e-mail address');
const identifier = z.string().trim().min(1).max(256);
const paging = {
  limit: z.coerce.number().int().min(1).max(100).optional().describe('orders per page (default api.support.ordersPerView, at most 100)'),
  offset: z.coerce.number().int().min(0).max(10_000).optional().describe('orders to skip (commercetools pages up to 10,000)'),
};

const customerSearchQuery = z.strictObject({ email: email.optional(), customerNumber: identifier.optional(), locale, ...paging }).refine((q) => (q.email === undefined) !== (q.customerNumber === undefined), {
  message: 'give exactly one of email and customerNumber',
});
const customerQuery = z.strictObject({ locale, ...paging });
const orderQuery = z.strictObject({ locale });
const ordersQuery = z.strictObject({ customerId: identifier, locale, ...paging });

const ERRORS = {
  400: { description: 'a parameter is missing or not valid' },
  401: { description: 'no API key or bearer token (api.jwt), or not a valid one' },
  403: { description: "the client's role has no support section, or may not see this store" },
  429: { description: 'the client sent more requests than its rate allows; see Retry-After', headers: { 'Retry-After': { description: 'seconds', schema: z.string() } } },
  503: { description: 'commercetools could not be read; retry' },
} as const;

const SECURITY = ['apiKey', 'bearerJwt'] as const;
const TAGS = ['support view'];

function queryParameters(schema: { shape: Record<string, z.ZodType> }, required: readonly string[] = []): ParameterSpec[] {
  return Object.entries(schema.shape).map(([name, parameter]) => ({ name, in: 'query' as const, required: required.includes(name), schema: parameter }));
}

export function supportRoutes(app: FastifyInstance, options: SupportRoutesOptions): void {
  const { api, clients, reader, settings, db, now } = options;
  const logger = options.logger.child({ component: 'support' });
  const links: LinkContext = { projectKey: options.projectKey, backOffice: settings.backOffice };
  const buckets = new Map<string, RequestBucket>();
  const roles = new Map<string, RoleView>();

  interface Caller extends ApiCaller {
    view: RoleView;
    correlationId: string;
  }

  /** Authenticates (API key, or a bearer JWT when api.jwt is set) and admits a request; undefined when it was answered (401, 403, 429). */
  async function admit(request: FastifyRequest, reply: FastifyReply): Promise<Caller | undefined> {
    const header = request.headers['x-correlation-id'];
    const correlationId = typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
    reply.header('x-correlation-id', correlationId);
    const auth = await clients.identify(request.headers);
    if (!auth.ok) {
      void sendProblem(reply.header('www-authenticate', clients.acceptsJwt ? 'ApiKey header="X-Api-Key", Bearer' : 'ApiKey header="X-Api-Key"'), 401, 'unauthorized', auth.detail);
      return undefined;
    }
    const section = (auth.caller.grants as { support?: unknown }).support;
    if (section === undefined) {
      void sendProblem(reply, 403, 'forbidden', `role "${auth.caller.role}" has no support section: it may not read the support view`);
      return undefined;
    }
    let bucket = buckets.get(auth.caller.client);
    if (!bucket) {
      bucket = new RequestBucket(settings.rateLimit.requestsPerSecond, settings.rateLimit.burst, now());
      buckets.set(auth.caller.client, bucket);
    }
    const wait = bucket.take(now());
    if (wait > 0) {
      void sendProblem(reply.header('retry-after', String(wait)), 429, 'rate-limited', `client ${auth.caller.client} sent more than ${settings.rateLimit.requestsPerSecond} requests a second (burst ${settings.rateLimit.burst}); retry after ${wait} s`);
      return undefined;
    }
    let view = roles.get(auth.caller.role);
    if (!view) {
      view = new RoleView(supportRoleSchema.parse(section));
      roles.set(auth.caller.role, view);
    }
    return { ...auth.caller, view, correlationId };
  }

  function parse<T extends z.ZodType>(schema: T, value: unknown, reply: FastifyReply): z.output<T> | undefined {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issues = result.error.issues.map((issue) => ({ name: issue.path.join('.') || '(query)', reason: issue.message }));
    void sendProblem(reply, 400, 'invalid-parameter', issues.map((i) => `${i.name}: ${i.reason}`).join('; '), { invalidParams: issues });
    return undefined;
  }

  async function audit(caller: Caller, kind: string, query: string, ids: readonly string[], outcome: 'ok' | 'skipped'): Promise<void> {
    const at = now();
    const detail = `client ${caller.client} (role ${caller.role}); query ${query}`;
    const rows = (ids.length === 0 ? [null] : ids).map((resourceId) => ({
      at,
      action: 'support.lookup',
      destination: null,
      itemType: kind,
      resourceId,
      version: null,
      fields: null,
      correlationId: caller.correlationId,
      outcome,
      detail,
    }));
    await insertAudit(db, rows);
  }

  /** Sends a view through its schema: what leaves matches the published description, or the request fails. */
  function send<T extends z.ZodType>(reply: FastifyReply, schema: T, value: z.input<T>): FastifyReply {
    return reply.type('application/json').send(schema.parse(value));
  }

  async function localeContext(requested: string | undefined, storeKeys: Array<string | undefined>): Promise<LocaleContext> {
    return { requested, storeLanguages: await reader.storeLanguages(storeKeys.filter((k): k is string => k !== undefined)) };
  }

  async function customerView(caller: Caller, customer: Json, query: { locale?: string | undefined; limit?: number | undefined; offset?: number | undefined }, ordersPage?: Promise<{ results: Json[]; total: number | undefined }>): Promise<CustomerView> {
    const limit = query.limit ?? settings.ordersPerView;
    const offset = query.offset ?? 0;
    const page = caller.view.has('orders') ? await (ordersPage ?? reader.ordersOf({ customerId: String(customer.id), stores: caller.view.stores, limit, offset })) : { results: [], total: 0 };
    const storeKeys = page.results.map(storeOf);
    const locales = await localeContext(query.locale, [...storeKeys, ...customerStores(customer)]);
    const orders = page.results.map((order) => orderView(order, locales, links));
    const view: CustomerView = {
      customer: customerProfile(customer, caller.view.customFields, links),
      orders,
      ordersPage: { limit, offset, count: orders.length, ...(page.total !== undefined && { total: page.total }) },
    };
    return caller.view.customer(view);
  }

  /** A customer the role may see: a store-scoped account belongs to one of its stores, or the role sees every store. */
  function visible(caller: Caller, customer: Json): boolean {
    const stores = customerStores(customer);
    return stores.length === 0 || caller.view.stores === undefined || stores.some((key) => caller.view.allowsStore(key));
  }

  async function guarded(reply: FastifyReply, work: () => Promise<FastifyReply>): Promise<FastifyReply> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof DeliveryError) {
        logger.warn({ err: { message: error.message } }, 'support view: commercetools could not be read');
        return sendProblem(reply.header('retry-after', '1'), 503, 'unavailable', 'commercetools could not be read; retry shortly');
      }
      throw error;
    }
  }

  api.add({
    method: 'get',
    path: '/v1/support/customers',
    operationId: 'findSupportCustomers',
    summary: 'Customers by e-mail or customer number, each with their latest orders',
    description: 'Exactly one of email (case-insensitive) and customerNumber. Store-scoped accounts of stores the role may not see are left out; 404 when none is left.',
    tags: TAGS,
    security: [...SECURITY],
    parameters: queryParameters({ shape: { email: email.optional().describe('the e-mail address, any case'), customerNumber: identifier.optional(), locale, ...paging } }),
    responses: { 200: { description: 'the matching customers', schema: customerSearchSchema }, ...ERRORS, 404: { description: 'no customer matches' } },
  });
  app.get('/v1/support/customers', async (request, reply) => {
    const caller = await admit(request, reply);
    if (!caller) return reply;
    const query = parse(customerSearchQuery, request.query, reply);
    if (!query) return reply;
    return guarded(reply, async () => {
      const [kind, queried, found] =
        query.email !== undefined
          ? (['customer.email', `email sha256:${createHash('sha256').update(query.email.toLowerCase(), 'utf8').digest('hex')}`, await reader.customersByEmail(query.email)] as const)
          : (['customer.number', `customerNumber ${query.customerNumber}`, await reader.customersByNumber(query.customerNumber!)] as const);
      const customers = found.filter((customer) => visible(caller, customer));
      await audit(caller, kind, queried, customers.map((c) => String(c.id)), customers.length > 0 ? 'ok' : 'skipped');
      if (customers.length === 0) return sendProblem(reply, 404, 'not-found', query.email !== undefined ? 'no customer has this e-mail address' : 'no customer has this customer number');
      const results = await Promise.all(customers.map((customer) => customerView(caller, customer, query)));
      return send(reply, customerSearchSchema, { results });
    });
  });

  api.add({
    method: 'get',
    path: '/v1/support/customers/{id}',
    operationId: 'getSupportCustomer',
    summary: 'One customer by commercetools id, with their latest orders',
    tags: TAGS,
    security: [...SECURITY],
    parameters: [{ name: 'id', in: 'path', schema: identifier, description: 'the commercetools customer id' }, ...queryParameters(customerQuery)],
    responses: { 200: { description: 'the customer view', schema: customerViewSchema }, ...ERRORS, 404: { description: 'no such customer, or not in a store the role may see' } },
  });
  app.get(fastifyPath('/v1/support/customers/{id}'), async (request, reply) => {
    const caller = await admit(request, reply);
    if (!caller) return reply;
    const query = parse(customerQuery, request.query, reply);
    const id = parse(identifier, (request.params as { id?: string }).id, reply);
    if (!query || id === undefined) return reply;
    return guarded(reply, async () => {
      const limit = query.limit ?? settings.ordersPerView;
      const offset = query.offset ?? 0;
      // Customer and orders in parallel: the orders query needs only the id.
      const ordersPage = caller.view.has('orders') ? reader.ordersOf({ customerId: id, stores: caller.view.stores, limit, offset }) : undefined;
      ordersPage?.catch(() => undefined);
      const customer = await reader.customerById(id);
      const shown = customer !== undefined && visible(caller, customer) ? customer : undefined;
      await audit(caller, 'customer.id', `id ${id}`, shown ? [id] : [], shown ? 'ok' : 'skipped');
      if (!shown) return sendProblem(reply, 404, 'not-found', `no customer ${id}`);
      return send(reply, customerViewSchema, await customerView(caller, shown, query, ordersPage));
    });
  });

  api.add({
    method: 'get',
    path: '/v1/support/orders/{orderNumber}',
    operationId: 'getSupportOrder',
    summary: 'One order by order number',
    tags: TAGS,
    security: [...SECURITY],
    parameters: [{ name: 'orderNumber', in: 'path', schema: identifier }, ...queryParameters(orderQuery)],
    responses: { 200: { description: 'the order view', schema: orderSchema }, ...ERRORS, 404: { description: 'no such order, or not in a store the role may see' } },
  });
  app.get(fastifyPath('/v1/support/orders/{orderNumber}'), async (request, reply) => {
    const caller = await admit(request, reply);
    if (!caller) return reply;
    const query = parse(orderQuery, request.query, reply);
    const orderNumber = parse(identifier, (request.params as { orderNumber?: string }).orderNumber, reply);
    if (!query || orderNumber === undefined) return reply;
    return guarded(reply, async () => {
      const order = await reader.orderByNumber(orderNumber);
      const shown = order !== undefined && caller.view.allowsStore(storeOf(order)) ? order : undefined;
      await audit(caller, 'order.number', `orderNumber ${orderNumber}`, shown ? [String(shown.id)] : [], shown ? 'ok' : 'skipped');
      if (!shown) return sendProblem(reply, 404, 'not-found', `no order ${orderNumber}`);
      const locales = await localeContext(query.locale, [storeOf(shown)]);
      return send(reply, orderSchema, caller.view.order(orderView(shown, locales, links)) satisfies OrderView);
    });
  });

  api.add({
    method: 'get',
    path: '/v1/support/orders',
    operationId: 'listSupportOrders',
    summary: "A customer's orders, newest first, page by page",
    tags: TAGS,
    security: [...SECURITY],
    parameters: queryParameters(ordersQuery, ['customerId']),
    responses: { 200: { description: 'a page of orders', schema: orderPageSchema }, ...ERRORS },
  });
  app.get('/v1/support/orders', async (request, reply) => {
    const caller = await admit(request, reply);
    if (!caller) return reply;
    const query = parse(ordersQuery, request.query, reply);
    if (!query) return reply;
    if (!caller.view.has('orders')) return sendProblem(reply, 403, 'forbidden', `role "${caller.role}" may not see orders`);
    return guarded(reply, async () => {
      const limit = query.limit ?? settings.ordersPerView;
      const offset = query.offset ?? 0;
      const page = await reader.ordersOf({ customerId: query.customerId, stores: caller.view.stores, limit, offset });
      await audit(caller, 'orders.customer', `customerId ${query.customerId}`, page.results.map((o) => String(o.id)), page.results.length > 0 ? 'ok' : 'skipped');
      const locales = await localeContext(query.locale, page.results.map(storeOf));
      const results = page.results.map((order) => caller.view.order(orderView(order, locales, links)));
      return send(reply, orderPageSchema, { results, page: { limit, offset, count: results.length, ...(page.total !== undefined && { total: page.total }) } });
    });
  });
}

function storeOf(order: Json): string | undefined {
  return typeof order.store === 'object' && order.store !== null && typeof (order.store as Json).key === 'string' ? ((order.store as Json).key as string) : undefined;
}

function customerStores(customer: Json): string[] {
  return (Array.isArray(customer.stores) ? customer.stores : []).map((s) => (typeof s === 'object' && s !== null && typeof (s as Json).key === 'string' ? ((s as Json).key as string) : undefined)).filter((k): k is string => k !== undefined);
}
