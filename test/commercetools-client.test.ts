// The commercetools client against a real HTTP peer: the emulator (seeded through the API) for reads, token reuse
// and rejected credentials, and a small fake commercetools on node:http for the failures the emulator cannot
// produce (503, 429 with Retry-After, HTML error pages, hangs). Also checks that the change generator's
// notifications match what the API reports and the official payload shapes.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommercetoolsClient, resolveCommercetoolsUrls } from '../src/commercetools/client.ts';
import type { CommercetoolsClient } from '../src/commercetools/client.ts';
import { PermanentError, RateLimitedError, RetryableError } from '../src/destinations/kit/errors.ts';
import { createChangeGenerator, scrambleDeliveries } from '../src/sandbox/changes.ts';
import { startEmulator } from '../src/sandbox/emulator.ts';
import type { Emulator } from '../src/sandbox/emulator.ts';
import { useEmulator } from './support/emulator.ts';
import { seedShop } from '../src/sandbox/seed.ts';
import type { SeededShop } from '../src/sandbox/seed.ts';

const reference = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../spec/commercetools/${path}`, import.meta.url), 'utf8')) as Record<string, unknown>;

function clientFor(emulator: Emulator, overrides: { clientSecret?: string; maxIdsPerQuery?: number } = {}): CommercetoolsClient {
  return createCommercetoolsClient(
    {
      projectKey: emulator.projectKey,
      authUrl: emulator.authUrl,
      apiUrl: emulator.apiUrl,
      clientId: emulator.clientId,
      clientSecret: overrides.clientSecret ?? emulator.clientSecret,
      scopes: [`manage_project:${emulator.projectKey}`],
    },
    overrides.maxIdsPerQuery ? { maxIdsPerQuery: overrides.maxIdsPerQuery } : {},
  );
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('commercetools client against the emulator', () => {
  let shop: SeededShop;
  const env = useEmulator({
    prepare: async (ct) => {
      shop = await seedShop(ct, { customers: 40, ordersPerCustomer: 2, seed: 11 });
    },
  });

  it('seeds two stores, customers across DE/AT/CH/GB (some store-scoped), orders and payments', () => {
    expect(shop.stores.map((s) => s.key)).toEqual(['dach-store', 'uk-store']);
    expect(shop.customerIds).toHaveLength(40);
    expect(shop.orderIds).toHaveLength(80);
    expect(shop.paymentIds).toHaveLength(80);
    expect(new Set(shop.customers.map((c) => c.email)).size).toBe(40);
    expect(shop.customers.some((c) => c.storeScoped)).toBe(true);
    expect(shop.customers.some((c) => !c.storeScoped)).toBe(true);
    expect(new Set(shop.customers.map((c) => c.storeKey))).toEqual(new Set(['dach-store', 'uk-store']));
  });

  it('fetches all seeded customers in one query, and orders with their store, money and payment', async () => {
    const before = env.emulator.apiRequests;
    const customers = await env.ct.fetchByIds('customer', shop.customerIds);
    expect(env.emulator.apiRequests - before).toBe(1);
    expect([...customers.keys()].sort()).toEqual([...shop.customerIds].sort());
    const first = shop.customers[0];
    expect(first).toBeDefined();
    expect(customers.get(first?.id ?? '')).toMatchObject({ email: first?.email, firstName: first?.firstName, lastName: first?.lastName });

    const orders = await env.ct.fetchByIds('order', shop.orderIds);
    expect(orders.size).toBe(80);
    const seededOrder = shop.orders[0];
    const order = orders.get(seededOrder?.id ?? '');
    expect(order).toMatchObject({
      orderNumber: seededOrder?.orderNumber,
      customerId: seededOrder?.customerId,
      store: { typeId: 'store', key: seededOrder?.storeKey },
      paymentInfo: { payments: [{ typeId: 'payment', id: seededOrder?.paymentId }] },
    });
    expect(order?.totalPrice).toMatchObject({ currencyCode: seededOrder?.storeKey === 'uk-store' ? 'GBP' : 'EUR' });
    expect((order?.lineItems as unknown[]).length).toBeGreaterThan(0);

    const payments = await env.ct.fetchByIds('payment', shop.paymentIds.slice(0, 5));
    expect(payments.size).toBe(5);
    const products = await env.ct.fetchByIds('product', shop.productIds);
    expect(products.size).toBe(shop.productIds.length);
    expect([...products.values()][0]).toMatchObject({ masterData: { current: expect.any(Object) as unknown, staged: expect.any(Object) as unknown } });
  });

  it('splits long id lists into chunks, one query per chunk', async () => {
    const chunked = clientFor(env.emulator, { maxIdsPerQuery: 15 });
    const before = env.emulator.apiRequests;
    const customers = await chunked.fetchByIds('customer', [...shop.customerIds, ...shop.customerIds.slice(0, 5)]);
    expect(customers.size).toBe(40);
    expect(env.emulator.apiRequests - before).toBe(3);
    await chunked.close();
  });

  it('reads customers\' orders in every store, page by page, each customer\'s oldest first', async () => {
    const paged = createCommercetoolsClient(
      { projectKey: env.emulator.projectKey, authUrl: env.emulator.authUrl, apiUrl: env.emulator.apiUrl, clientId: env.emulator.clientId, clientSecret: env.emulator.clientSecret, scopes: [`manage_project:${env.emulator.projectKey}`] },
      { ordersPageSize: 7 },
    );
    const customers = shop.customerIds.slice(0, 10);
    const before = env.emulator.apiRequests;
    const orders = await paged.fetchOrdersOf([...customers, customers[0]!, 'no-such-customer']);
    // 10 customers × 2 orders, 7 a page: 3 pages (the last one short), plus the token.
    expect(env.emulator.apiRequests - before).toBeLessThanOrEqual(4);
    expect([...orders.keys()].sort()).toEqual(shop.orders.filter((o) => customers.includes(o.customerId)).map((o) => o.customerId).filter((id, i, all) => all.indexOf(id) === i).sort());
    for (const [customerId, list] of orders) {
      expect(list.map((o) => o.id).sort()).toEqual(shop.orders.filter((o) => o.customerId === customerId).map((o) => o.id).sort());
      const created = list.map((o) => String(o.createdAt));
      expect(created).toEqual([...created].sort());
    }
    expect((await paged.fetchOrdersOf([])).size).toBe(0);
    await paged.close();
  });

  it('finds guest orders (no customer) by the email they were placed with', async () => {
    const guest = async (email: string, customerId?: string) =>
      (
        await env.ct.api
          .orders()
          .importOrder()
          .post({ body: { customerEmail: email, ...(customerId && { customerId }), store: { typeId: 'store', key: 'uk-store' }, totalPrice: { currencyCode: 'GBP', centAmount: 500 }, lineItems: [], orderState: 'Open' } })
          .execute()
      ).body.id;
    const first = await guest('guest.one@example.org');
    const second = await guest('guest.one@example.org');
    await guest('someone.else@example.org');
    // An order of a registered customer with that email is not a guest order.
    await guest('guest.one@example.org', shop.customerIds[0]);
    const found = await env.ct.fetchGuestOrders(['guest.one@example.org', 'nobody@example.org']);
    expect(found.map((order) => order.id).sort()).toEqual([first, second].sort());
    expect(found.every((order) => order.customerId === undefined)).toBe(true);
    expect(await env.ct.fetchGuestOrders([])).toEqual([]);
  });

  it('finds the order each payment belongs to', async () => {
    const payments = shop.paymentIds.slice(0, 5);
    const orders = await env.ct.fetchOrdersOfPayments([...payments, 'no-such-payment']);
    expect([...orders.keys()].sort()).toEqual([...payments].sort());
    for (const [paymentId, order] of orders) {
      expect((order.paymentInfo as { payments: Array<{ id: string }> }).payments.map((p) => p.id)).toContain(paymentId);
      expect(shop.orders.find((o) => o.id === order.id)?.paymentId).toBe(paymentId);
    }
  });

  it('reads referenced objects by id or by key, for mappings that expand them', async () => {
    const group = (await env.ct.api.customerGroups().post({ body: { key: 'gold', groupName: 'Gold' } }).execute()).body;
    const byId = await env.ct.fetchReferenced('customer-group', 'id', [group.id, 'no-such-id']);
    expect([...byId.keys()]).toEqual([group.id]);
    expect(byId.get(group.id)).toMatchObject({ key: 'gold', name: 'Gold' });
    const stores = await env.ct.fetchReferenced('store', 'key', ['uk-store', 'dach-store', 'nowhere']);
    expect([...stores.keys()].sort()).toEqual(['dach-store', 'uk-store']);
  });

  it('keeps the customer group a seeded customer was created in (by key), read back through the SDK', async () => {
    const grouped = shop.customers.filter((c) => c.customerGroupKey !== undefined);
    expect(new Set(grouped.map((c) => c.customerGroupKey))).toEqual(new Set(['trade', 'vip']));
    const read = await env.ct.fetchByIds('customer', shop.customerIds);
    for (const customer of shop.customers) {
      const expected = customer.customerGroupKey === undefined ? undefined : { typeId: 'customer-group', id: shop.customerGroups[customer.customerGroupKey]!.id };
      expect(read.get(customer.id)!.customerGroup).toEqual(expected);
    }
  });

  it('creates a customer with its customerGroup and customerGroupAssignments, by id or key, as commercetools does', async () => {
    const vip = shop.customerGroups.vip!;
    const trade = shop.customerGroups.trade!;
    const created = (
      await env.ct.api
        .customers()
        .post({ body: { email: 'grouped@example.org', customerGroup: { typeId: 'customer-group', id: vip.id }, customerGroupAssignments: [{ customerGroup: { typeId: 'customer-group', key: 'trade' } }] } })
        .execute()
    ).body.customer;
    // The answer to the create, at version 1, and the customer read back, both hold the groups as References by id.
    expect(created.version).toBe(1);
    expect(created.customerGroup).toEqual({ typeId: 'customer-group', id: vip.id });
    expect(created.customerGroupAssignments).toEqual([{ customerGroup: { typeId: 'customer-group', id: trade.id } }]);
    const read = (await env.ct.fetchByIds('customer', [created.id])).get(created.id)!;
    expect(read).toMatchObject({ version: 1, customerGroup: { typeId: 'customer-group', id: vip.id }, customerGroupAssignments: [{ customerGroup: { typeId: 'customer-group', id: trade.id } }] });
    // The group expands like any Reference a mapping reads through (customerGroup.obj.name).
    expect((await env.ct.fetchReferenced('customer-group', 'id', [vip.id])).get(vip.id)).toMatchObject({ key: 'vip', name: 'VIP' });

    // A group that does not exist is refused, and no customer is created.
    const refused = await rejection(env.ct.api.customers().post({ body: { email: 'nogroup@example.org', customerGroup: { typeId: 'customer-group', key: 'no-such-group' } } }).execute());
    expect(refused).toMatchObject({ statusCode: 400, body: { errors: [{ code: 'ReferencedResourceNotFound' }] } });
    const left = await env.ct.api.customers().get({ queryArgs: { where: 'email = "nogroup@example.org"' } }).execute();
    expect(left.body.results).toEqual([]);
  });

  it('leaves deleted and unknown ids out of the result, and quotes odd ids safely', async () => {
    const gone = await env.ct.api.customers().post({ body: { email: 'to.be.deleted@example.org', firstName: 'Weg' } }).execute();
    const created = gone.body.customer;
    await env.ct.api.customers().withId({ ID: created.id }).delete({ queryArgs: { version: created.version } }).execute();
    const kept = shop.customerIds[1] ?? '';
    const result = await env.ct.fetchByIds('customer', [created.id, '00000000-0000-4000-8000-000000000000', 'x") or (id is defined', kept]);
    expect([...result.keys()]).toEqual([kept]);
    expect((await env.ct.fetchByIds('order', [])).size).toBe(0);
  });

  it('obtains one token and reuses it for every later request, concurrent or not', async () => {
    const fresh = clientFor(env.emulator);
    const before = env.emulator.tokenRequests;
    await Promise.all([
      fresh.fetchByIds('customer', shop.customerIds.slice(0, 3)),
      fresh.fetchByIds('order', shop.orderIds.slice(0, 3)),
      fresh.fetchByIds('payment', shop.paymentIds.slice(0, 3)),
      fresh.fetchByIds('cart', ['00000000-0000-4000-8000-000000000001']),
    ]);
    for (let i = 0; i < 5; i += 1) await fresh.fetchByIds('customer', shop.customerIds.slice(i, i + 2));
    expect(env.emulator.tokenRequests - before).toBe(1);
    await fresh.close();
  });

  it('turns a wrong client secret into a PermanentError naming credentials, without the secret', async () => {
    const secret = 'wrong-secret-value-0123456789';
    const bad = clientFor(env.emulator, { clientSecret: secret });
    const error = await rejection(bad.fetchByIds('customer', shop.customerIds.slice(0, 1)));
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).status).toBe(401);
    expect((error as Error).message).toMatch(/commercetools rejected the credentials\/scopes/);
    expect((error as Error).message).not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
    await bad.close();
  });

  it('generates changes whose messages carry the version the API now reports, in the official shapes', async () => {
    const generator = createChangeGenerator(env.ct, { shop, seed: 4 });
    const customerId = shop.customerIds[2] ?? '';
    const orderId = shop.orders.find((o) => o.orderState === 'Open' || o.orderState === 'Confirmed')?.id ?? '';
    const paymentId = shop.paymentIds[3] ?? '';

    // Each change is checked right after it is made: a later change to the same resource moves the version on.
    const steps = [
      () => generator.changeCustomerName(customerId, { firstName: 'Jürgen', lastName: "O'Neill-Groß" }),
      () => generator.changeCustomerEmail(customerId),
      () => generator.changeOrderState(orderId),
      () => generator.addPaymentTransaction(paymentId),
      () => generator.createCustomer('AT'),
      () => generator.createOrder(customerId),
    ];
    const applied = [];
    for (const step of steps) {
      const change = await step();
      const now = (await env.ct.fetchByIds(change.resource.typeId, [change.resource.id])).get(change.resource.id);
      expect(now?.version).toBe(change.version);
      expect(change.messages.at(-1)?.resourceVersion).toBe(change.version);
      expect(change.changes.at(-1)?.version).toBe(change.version);
      applied.push(change);
    }
    expect(applied.flatMap((a) => a.messages.map((m) => m.type))).toEqual([
      'CustomerFirstNameSet',
      'CustomerLastNameSet',
      'CustomerEmailChanged',
      'OrderStateChanged',
      'PaymentTransactionAdded',
      'CustomerCreated',
      'OrderCreated',
    ]);

    // Field for field the official examples, whatever the message type adds.
    const messageKeys = Object.keys(reference('subscription/message-payload.example.json')).filter((k) => !['lastName', 'type'].includes(k));
    const updatedKeys = Object.keys(reference('subscription/resource-updated-payload.example.json'));
    const createdKeys = Object.keys(reference('subscription/resource-created-payload.example.json'));
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const change of applied) {
      for (const message of change.messages) {
        for (const key of messageKeys) expect(message).toHaveProperty(key);
        expect(message.id).toMatch(uuid);
        expect(message.version).toBe(1);
        expect(message.projectKey).toBe(env.emulator.projectKey);
        expect(Number.isNaN(Date.parse(message.createdAt))).toBe(false);
      }
      for (const notification of change.changes) {
        const keys = notification.notificationType === 'ResourceUpdated' ? updatedKeys : createdKeys;
        expect(Object.keys(notification).sort()).toEqual([...keys].sort());
      }
    }

    const [nameChange, emailChange, stateChange, paymentChange, customerCreated, orderCreated] = applied;
    expect(nameChange?.messages.map((m) => m.sequenceNumber)).toEqual([2, 3]);
    expect(nameChange?.messages[1]).toMatchObject({ type: 'CustomerLastNameSet', lastName: "O'Neill-Groß", resourceUserProvidedIdentifiers: { key: 'customer-0003' } });
    expect(emailChange?.messages[0]).toMatchObject({ oldEmail: shop.customers[2]?.email, sequenceNumber: 4 });
    expect(stateChange?.messages[0]).toMatchObject({ resource: { typeId: 'order', id: orderId }, oldOrderState: expect.any(String) as unknown });
    expect(paymentChange?.messages[0]).toMatchObject({ transaction: { id: expect.any(String) as unknown, amount: expect.any(Object) as unknown } });
    expect(customerCreated?.messages[0]).toMatchObject({ sequenceNumber: 1, resourceVersion: 1, customer: { id: customerCreated?.resource.id } });
    expect(customerCreated?.changes[0]).toMatchObject({ notificationType: 'ResourceCreated', version: 1 });
    expect(orderCreated?.messages[0]).toMatchObject({ order: { id: orderCreated?.resource.id, customerId, orderState: 'Open' } });
  });

  it('runs concurrent changes to one resource one after the other, with consecutive versions', async () => {
    const generator = createChangeGenerator(env.ct, { shop, seed: 9 });
    const customerId = shop.customerIds[5] ?? '';
    const results = await Promise.all([generator.changeCustomerEmail(customerId), generator.changeCustomerEmail(customerId), generator.changeCustomerEmail(customerId)]);
    const versions = results.map((r) => r.version).sort((a, b) => a - b);
    expect(versions[1]).toBe((versions[0] ?? 0) + 1);
    expect(versions[2]).toBe((versions[0] ?? 0) + 2);
  });

  it('scrambles a delivery stream without losing anything', () => {
    const input = Array.from({ length: 200 }, (_, i) => i);
    const out = scrambleDeliveries(input, { seed: 5, duplicateRate: 0.2, reorderRate: 0.3 });
    expect(new Set(out)).toEqual(new Set(input));
    expect(out.length).toBeGreaterThan(input.length);
    expect(out).not.toEqual([...out].sort((a, b) => a - b));
  });
});

describe('seed', () => {
  it('gives the same shop for the same seed', async () => {
    const shops: SeededShop[] = [];
    for (let i = 0; i < 2; i += 1) {
      const emulator = await startEmulator();
      const client = clientFor(emulator);
      shops.push(await seedShop(client, { customers: 8, ordersPerCustomer: 1, seed: 99 }));
      await client.close();
      await emulator.close();
    }
    const shape = (shop: SeededShop | undefined) => shop?.customers.map((c) => [c.key, c.email, c.country, c.storeScoped]);
    expect(shape(shops[0])).toEqual(shape(shops[1]));
    expect(shops[0]?.orders.map((o) => [o.orderNumber, o.orderState])).toEqual(shops[1]?.orders.map((o) => [o.orderNumber, o.orderState]));
  });
});

describe('commercetools client failure handling (fake commercetools)', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  const TOKEN = 'fake-access-token-abcdef123456';
  const SECRET = 'fake-client-secret-987654321';
  let server: Server;
  let baseUrl = '';
  let api: Handler = (_req, res) => res.end();
  let tokenEndpoint: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 172800, scope: 'view_customers:shop' }));
  };
  const tokenRequests: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/oauth/token')) {
        tokenRequests.push(req.headers.authorization ?? '');
        tokenEndpoint(req, res);
      } else {
        api(req, res);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const fakeClient = (timeoutMs?: number) =>
    createCommercetoolsClient(
      { projectKey: 'shop', authUrl: baseUrl, apiUrl: baseUrl, clientId: 'client-1', clientSecret: SECRET, scopes: ['view_customers:shop'] },
      timeoutMs ? { timeoutMs } : {},
    );
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  it('maps 503 to a RetryableError and 429 with Retry-After to a RateLimitedError with retryAfterMs', async () => {
    const client = fakeClient();
    api = json(503, { statusCode: 503, message: 'Service Unavailable', errors: [{ code: 'ServiceUnavailable', message: 'Service Unavailable' }] });
    const unavailable = await rejection(client.fetchByIds('customer', ['a']));
    expect(unavailable).toBeInstanceOf(RetryableError);
    expect(unavailable).not.toBeInstanceOf(RateLimitedError);
    expect((unavailable as RetryableError).status).toBe(503);

    api = json(429, { statusCode: 429, message: 'Too Many Requests', errors: [{ code: 'TooManyRequests', message: 'Too Many Requests' }] }, { 'retry-after': '7' });
    const limited = await rejection(client.fetchByIds('customer', ['a']));
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(7000);
    expect((limited as RateLimitedError).status).toBe(429);

    for (const error of [unavailable, limited]) {
      expect(String((error as Error).message)).not.toContain(SECRET);
      expect(String((error as Error).message)).not.toContain(TOKEN);
    }
    await client.close();
  });

  it('keeps the status of error pages that are not JSON (gateways answer in HTML)', async () => {
    const client = fakeClient();
    api = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    };
    const badGateway = await rejection(client.fetchByIds('order', ['a']));
    expect(badGateway).toBeInstanceOf(RetryableError);
    expect((badGateway as RetryableError).status).toBe(502);

    api = (_req, res) => {
      res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '2' });
      res.end('slow down');
    };
    const limited = await rejection(client.fetchByIds('order', ['a']));
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(2000);
    await client.close();
  });

  it('maps 400/404 to PermanentError and 403 to a credentials/scopes PermanentError', async () => {
    const client = fakeClient();
    api = json(400, { statusCode: 400, message: "Malformed parameter: where: Syntax error", errors: [{ code: 'InvalidInput', message: 'Malformed parameter' }] });
    const invalid = await rejection(client.fetchByIds('payment', ['a']));
    expect(invalid).toBeInstanceOf(PermanentError);
    expect((invalid as PermanentError).status).toBe(400);

    api = json(403, { statusCode: 403, message: 'Insufficient scope. One of the following scopes is missing: view_orders', errors: [{ code: 'insufficient_scope', message: 'Insufficient scope' }] });
    const forbidden = await rejection(client.fetchByIds('order', ['a']));
    expect(forbidden).toBeInstanceOf(PermanentError);
    expect((forbidden as Error).message).toMatch(/rejected the credentials\/scopes.*view_orders/);
    await client.close();
  });

  it('classifies token endpoint failures: 401 permanent, 503 and 429 retryable, secret never in the message', async () => {
    const client = fakeClient();
    api = json(200, { limit: 1, offset: 0, count: 0, results: [] });
    tokenEndpoint = json(401, { statusCode: 401, message: 'Please provide valid client credentials using HTTP Basic Authentication.', errors: [{ code: 'invalid_client' }], error: 'invalid_client', error_description: 'Please provide valid client credentials using HTTP Basic Authentication.' });
    const rejected = await rejection(client.fetchByIds('customer', ['a']));
    expect(rejected).toBeInstanceOf(PermanentError);
    expect((rejected as Error).message).toMatch(/rejected the credentials\/scopes/);

    tokenEndpoint = json(400, { statusCode: 400, message: 'Invalid scope: manage_everything', error: 'invalid_scope', error_description: 'Invalid scope: manage_everything' });
    const badScope = await rejection(client.fetchByIds('customer', ['a']));
    expect(badScope).toBeInstanceOf(PermanentError);
    expect((badScope as Error).message).toMatch(/invalid_scope/);

    tokenEndpoint = (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<h1>down for maintenance</h1>');
    };
    expect(await rejection(client.fetchByIds('customer', ['a']))).toBeInstanceOf(RetryableError);

    tokenEndpoint = json(429, { statusCode: 429, message: 'Too many token requests' }, { 'retry-after': '3' });
    const limited = await rejection(client.fetchByIds('customer', ['a']));
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(3000);

    for (const error of [rejected, badScope, limited]) expect(JSON.stringify({ message: (error as Error).message, error })).not.toContain(SECRET);
    // The SDK sent the secret only where it belongs: HTTP Basic on the token request.
    expect(tokenRequests.at(-1)).toBe(`Basic ${Buffer.from(`client-1:${SECRET}`).toString('base64')}`);

    tokenEndpoint = json(200, { access_token: TOKEN, token_type: 'Bearer', expires_in: 172800, scope: 'view_customers:shop' });
    expect((await client.fetchByIds('customer', ['a'])).size).toBe(0);
    await client.close();
  });

  it('maps a hung server and a refused connection to RetryableError', async () => {
    const client = fakeClient(300);
    api = () => {
      // Never answers.
    };
    const hung = await rejection(client.fetchByIds('customer', ['a']));
    expect(hung).toBeInstanceOf(RetryableError);
    expect((hung as Error).message).toMatch(/did not answer within 300 ms/);
    await client.close();

    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const unreachable = createCommercetoolsClient({ projectKey: 'shop', authUrl: `http://127.0.0.1:${closedPort}`, apiUrl: `http://127.0.0.1:${closedPort}`, clientId: 'c', clientSecret: SECRET, scopes: [] });
    const refused = await rejection(unreachable.fetchByIds('customer', ['a']));
    expect(refused).toBeInstanceOf(RetryableError);
    expect((refused as Error).message).toMatch(/could not reach/);
    await unreachable.close();
  });

  it('fetches a new token once when the API says the token is no longer valid', async () => {
    const client = fakeClient();
    tokenEndpoint = json(200, { access_token: TOKEN, token_type: 'Bearer', expires_in: 172800, scope: 'view_customers:shop' });
    let calls = 0;
    api = (req, res) => {
      calls += 1;
      if (calls === 2) {
        json(401, { statusCode: 401, message: 'invalid_token', errors: [{ code: 'invalid_token', message: 'invalid_token' }] })(req, res);
        return;
      }
      json(200, { limit: 1, offset: 0, count: 1, results: [{ id: 'a', version: 3 }] })(req, res);
    };
    const before = tokenRequests.length;
    expect((await client.fetchByIds('customer', ['a'])).get('a')).toEqual({ id: 'a', version: 3 });
    expect((await client.fetchByIds('customer', ['a'])).get('a')).toEqual({ id: 'a', version: 3 });
    expect(tokenRequests.length - before).toBe(2);
    await client.close();
    expect(await rejection(client.fetchByIds('customer', ['a']))).toBeInstanceOf(RetryableError);
  });

  it('derives the URLs from a region', () => {
    expect(resolveCommercetoolsUrls({ region: 'europe-west1.gcp' })).toEqual({
      authUrl: 'https://auth.europe-west1.gcp.commercetools.com',
      apiUrl: 'https://api.europe-west1.gcp.commercetools.com',
    });
    expect(resolveCommercetoolsUrls({ authUrl: 'http://127.0.0.1:1/', apiUrl: 'http://127.0.0.1:2' })).toEqual({ authUrl: 'http://127.0.0.1:1', apiUrl: 'http://127.0.0.1:2' });
  });
});
