// The support view API against the commercetools emulator: a customer with orders in two stores and currencies
// (shipped, paid, returned, refunded, cancelled), read through /v1/support/… with API keys of several roles.
// Asserts what the HTTP answers say (views, masking per market, problems), what the audit log holds, how many
// requests reached commercetools, and that every answer matches the served OpenAPI document.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.ts';
import { generateApiKey } from '../src/server/api-clients.ts';
import { emulatorCredentials } from '../src/sandbox/emulator.ts';
import { seedShop } from '../src/sandbox/seed.ts';
import { seedServiceHistory, type ServiceHistory } from '../src/sandbox/service-history.ts';
import type { z } from 'zod';
import type { customerSearchSchema, CustomerView, orderPageSchema, OrderView } from '../src/support/views.ts';
import { mintJwt, oidcKey } from './support/auth-fixtures.ts';
import { useEmulator } from './support/emulator.ts';
import { FakeCommercetools, startTestRuntime, testConfig, type TestRuntime } from './support/harness.ts';
import { testStores } from './support/stores.ts';

type Search = z.infer<typeof customerSearchSchema>;
type OrderPage = z.infer<typeof orderPageSchema>;
interface Document {
  openapi: string;
  components: Record<string, unknown>;
  paths: Record<string, { get: { security?: unknown; responses: Record<string, { content?: Record<string, { schema: unknown }> }> } } | undefined>;
}

const jwtKey = oidcKey('support-key');
const JWT = { issuer: 'https://id.example.test/', audience: 'ctbridge-support' };

const keys = {
  agent: generateApiKey(),
  ukDesk: generateApiKey(),
  noPhones: generateApiKey(),
  ukOnly: generateApiKey(),
  reporting: generateApiKey(),
  burst: generateApiKey(),
};

function apiConfig() {
  return {
    clients: [
      { name: 'iagent', keyHash: keys.agent.keyHash, role: 'agent' },
      { name: 'uk-desk', keyHash: keys.ukDesk.keyHash, role: 'masked-uk' },
      { name: 'first-line', keyHash: keys.noPhones.keyHash, role: 'no-phones' },
      { name: 'uk-only', keyHash: keys.ukOnly.keyHash, role: 'uk-only' },
      { name: 'reporting', keyHash: keys.reporting.keyHash, role: 'reporting' },
      { name: 'bursty', keyHash: keys.burst.keyHash, role: 'agent' },
    ],
    roles: {
      agent: { support: { customFields: ['loyaltyTier', 'preferredChannel'] } },
      'masked-uk': { support: { markets: { 'uk-store': { phone: 'mask', address: 'mask' } } } },
      'no-phones': { support: { fields: ['email', 'name', 'addresses', 'orders', 'lineItems', 'payments', 'shipping', 'returns'] } },
      'uk-only': { support: { stores: ['uk-store'] } },
      reporting: { description: 'no support section' },
    },
    jwt: { jwksUrl: 'https://id.example.test/jwks', issuer: JWT.issuer, audience: JWT.audience, roleClaim: 'ctbridge_role' },
    support: { cacheMs: 10_000, rateLimit: { requestsPerSecond: 1, burst: 30 }, backOffice: { order: 'https://mc.example.com/{projectKey}/orders/{orderId}' } },
  };
}

let history: ServiceHistory;
/** A customer whose payment method name holds a card number, as a careless PSP integration writes it. */
let cardCase: ServiceHistory;
const CARD = '4111 1111 1111 1111';

const env = useEmulator({
  prepare: async (client) => {
    await seedShop(client, { customers: 4, ordersPerCustomer: 1 });
    history = await seedServiceHistory(client.api, { orders: 6, email: 'Ada.Brennan@Example.com' });
    cardCase = await seedServiceHistory(client.api, { orders: 1, seed: 99, email: 'card.case@example.com', customerNumber: 'CN-CARD' });
    const paymentId = cardCase.orders[0]!.paymentId;
    const payment = (await client.api.payments().withId({ ID: paymentId }).get().execute()).body;
    await client.api
      .payments()
      .withId({ ID: paymentId })
      .post({ body: { version: payment.version, actions: [{ action: 'setMethodInfoName', name: { 'en-GB': `Visa ${CARD}` } }] } })
      .execute();
  },
});

describe.each(testStores)('support view ($name)', (testStore) => {
  let started: TestRuntime;
  let clock = 1_000_000;
  /** `key` null: no X-Api-Key header at all. */
  const get = (path: string, key: string | null = keys.agent.key, headers: Record<string, string> = {}) =>
    fetch(`${started.runtime.url}${path}`, { headers: { ...(key !== null && { 'x-api-key': key }), ...headers } });
  const json = async <T = CustomerView>(path: string, key?: string): Promise<T> => {
    const response = await get(path, key);
    expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    started = await startTestRuntime({
      storeUrl: await testStore.create(),
      commercetools: emulatorCredentials(env.emulator),
      blocks: { api: apiConfig() },
      destinations: [],
      fetcher: new FakeCommercetools(),
      work: false,
      now: () => clock,
      apiAuth: { fetchJwks: () => Promise.resolve({ keys: [jwtKey.jwk] }), now: () => clock },
    });
  });
  afterAll(async () => {
    await started?.stop();
    await testStore.cleanup();
  });

  it('finds a customer by e-mail in any case, with orders in both stores in their own locale and currency', async () => {
    const body = await json<Search>(`/v1/support/customers?email=${encodeURIComponent('ada.BRENNAN@example.com')}`);
    expect(body.results).toHaveLength(1);
    const { customer, orders, ordersPage } = body.results[0]!;
    expect(customer.references).toMatchObject({ customerId: history.customer.id, customerNumber: history.customer.customerNumber });
    // commercetools matches e-mails case-insensitively (lowercaseEmail); the emulator also stores them lower-cased.
    expect(customer.email?.toLowerCase()).toBe('ada.brennan@example.com');
    expect(customer).toMatchObject({ firstName: 'Ada', lastName: "Brennan-O'Neill", phone: history.customer.phone, storeKeys: [] });
    expect(customer.customFields).toEqual({ loyaltyTier: 'gold', preferredChannel: 'chat' });
    expect(customer.customerGroup).toMatchObject({ key: 'vip', name: 'VIP' });
    expect(ordersPage).toMatchObject({ limit: 20, offset: 0, count: 6, total: 6 });
    expect(orders.map((o) => o.orderNumber).sort()).toEqual(history.orders.map((o) => o.orderNumber).sort());
    // Newest first.
    const created = orders.map((o) => o.createdAt);
    expect(created).toEqual([...created].sort().reverse());

    for (const seeded of history.orders) {
      const order = orders.find((o) => o.id === seeded.id)!;
      expect(order.references).toMatchObject({ orderId: seeded.id, orderNumber: seeded.orderNumber, customerId: history.customer.id, storeKey: seeded.storeKey, backOffice: `https://mc.example.com/${env.emulator.projectKey}/orders/${seeded.id}` });
      expect(order.totals.total).toMatchObject({ centAmount: seeded.totalCentAmount, currencyCode: seeded.currencyCode });
      if (seeded.storeKey === 'uk-store') {
        expect(order.locale).toBe('en-GB');
        expect(order.totals.total.formatted).toMatch(/^£/);
        expect(order.lineItems.map((l) => l.name).join()).toMatch(/jumper|jacket|socks|flask/i);
        expect(order.totals.taxPortions[0]).toMatchObject({ name: 'VAT 20%', rate: 0.2 });
      } else {
        expect(order.locale).toBe('de-DE');
        expect(order.totals.total.formatted).toMatch(/€$/);
        expect(order.lineItems.map((l) => l.name).join()).toMatch(/Pullover|Regenjacke|Wollsocken|Thermosflasche/);
      }
      expect(order.shipping?.method).toBe(seeded.storeKey === 'uk-store' ? 'Standard delivery' : 'Standardversand');
      expect(order.shipping?.deliveries.flatMap((d) => d.parcels.map((p) => p.trackingId))).toEqual(seeded.trackingIds);
      const kinds = order.payments[0]!.transactions.map((t) => t.type);
      if (seeded.cancelled) {
        expect(order.orderState).toBe('Cancelled');
        expect(kinds).toEqual(['Authorization', 'CancelAuthorization']);
      } else {
        expect(kinds.slice(0, 2)).toEqual(['Authorization', 'Charge']);
      }
      if (seeded.returned) {
        expect(order.returns[0]?.items[0]).toMatchObject({ shipmentState: 'Returned', comment: 'too small' });
        expect(order.refunded?.centAmount).toBeGreaterThan(0);
        expect(kinds).toContain('Refund');
      } else {
        expect(order.returns).toEqual([]);
        expect(order.refunded).toBeUndefined();
      }
    }
    // Payment references, card data and secrets never reach a view.
    const text = JSON.stringify(body);
    expect(text).not.toContain('psp_');
    expect(text).not.toContain('interactionId');
    expect(text).not.toContain('password');
    expect(text).not.toContain('internalNote');
  });

  it('never shows a card number, even where commercetools holds one', async () => {
    const order = await json<OrderView>(`/v1/support/orders/${cardCase.orders[0]!.orderNumber}?locale=en-GB`);
    expect(order.payments[0]?.method).toBe('Visa [card number]');
    expect(JSON.stringify(order)).not.toContain(CARD.slice(5));
  });

  it('answers in a requested locale', async () => {
    const ukOrder = history.orders.find((o) => o.storeKey === 'uk-store')!;
    const order = await json<OrderView>(`/v1/support/orders/${ukOrder.orderNumber}?locale=de-DE`);
    expect(order.locale).toBe('de-DE');
    expect(order.totals.total.formatted).toMatch(/£$/);
    expect(order.shipping?.method).toBe('Standardversand');
    expect(order.payments[0]?.method).toBe('Kreditkarte');
  });

  it('finds a customer by customer number and by id, and pages through orders', async () => {
    const byNumber = await json<Search>(`/v1/support/customers?customerNumber=${history.customer.customerNumber}&limit=2`);
    expect(byNumber.results[0]?.customer.id).toBe(history.customer.id);
    expect(byNumber.results[0]?.ordersPage).toMatchObject({ limit: 2, count: 2, total: 6 });

    const byId = await json(`/v1/support/customers/${history.customer.id}`);
    expect(byId.customer.customerNumber).toBe(history.customer.customerNumber);

    const first = await json<OrderPage>(`/v1/support/orders?customerId=${history.customer.id}&limit=4`);
    const second = await json<OrderPage>(`/v1/support/orders?customerId=${history.customer.id}&limit=4&offset=4`);
    expect(first.page).toMatchObject({ limit: 4, offset: 0, count: 4, total: 6 });
    expect(second.page).toMatchObject({ limit: 4, offset: 4, count: 2, total: 6 });
    const ids = [...first.results, ...second.results].map((o) => o.id);
    expect(new Set(ids)).toEqual(new Set(history.orders.map((o) => o.id)));
  });

  it('masks per market: UK orders show a masked phone and the city only, DACH orders the full address', async () => {
    const body = await json(`/v1/support/customers/${history.customer.id}`, keys.ukDesk.key);
    const uk = body.orders.find((o) => o.storeKey === 'uk-store')!;
    const dach = body.orders.find((o) => o.storeKey === 'dach-store')!;
    expect(Object.keys(uk.shippingAddress!).sort()).toEqual(['city', 'country', 'id', 'key']);
    expect(uk.shippingAddress).toMatchObject({ city: 'London', country: 'GB' });
    expect(dach.shippingAddress).toMatchObject({ streetName: 'Kastanienallee', postalCode: '10435', firstName: 'Ada' });
    expect(dach.shippingAddress?.phone).toMatch(/^\+49 30 \d{8}$/);
    // The profile belongs to both markets: the stricter policy (UK's) applies.
    expect(body.customer.phone).toMatch(/^\+\*\* \*{4} \*{4}\d{2}$/);
    expect(body.customer.phone?.slice(-2)).toBe(history.customer.phone.slice(-2));
    expect(body.customer.addresses.every((a) => Object.keys(a).every((k) => ['id', 'key', 'city', 'country'].includes(k)))).toBe(true);
    expect(JSON.stringify(body)).not.toContain(history.customer.phone);
    expect(JSON.stringify(body)).not.toContain('Church Lane');
  });

  it('never gives a phone number to a role that may not see phones', async () => {
    const texts = [
      JSON.stringify(await json(`/v1/support/customers?email=${encodeURIComponent(history.customer.email)}`, keys.noPhones.key)),
      JSON.stringify(await json(`/v1/support/orders?customerId=${history.customer.id}`, keys.noPhones.key)),
      JSON.stringify(await json(`/v1/support/orders/${history.orders[1]!.orderNumber}`, keys.noPhones.key)),
    ];
    for (const text of texts) {
      expect(text).not.toMatch(/"(phone|mobile)"/);
      expect(text).not.toContain(history.customer.phone);
      expect(text).not.toMatch(/\+49 30 \d/);
      expect(text).toContain('Kastanienallee');
    }
  });

  it('keeps a store-scoped role to its stores', async () => {
    const body = await json(`/v1/support/customers/${history.customer.id}`, keys.ukOnly.key);
    expect(body.orders.length).toBe(history.orders.filter((o) => o.storeKey === 'uk-store').length);
    expect(body.orders.every((o) => o.storeKey === 'uk-store')).toBe(true);
    const dach = history.orders.find((o) => o.storeKey === 'dach-store')!;
    const response = await get(`/v1/support/orders/${dach.orderNumber}`, keys.ukOnly.key);
    expect(response.status).toBe(404);
  });

  it('answers an unknown e-mail with 404 problem+json and audits it by digest only', async () => {
    const email = 'nobody.here@example.org';
    const response = await get(`/v1/support/customers?email=${encodeURIComponent(email)}`, keys.agent.key, { 'x-correlation-id': 'ticket-4711' });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({ type: 'urn:ctbridge:problem:not-found', status: 404 });
    const rows = await started.runtime.store.db.selectFrom('audit_log').selectAll().where('correlation_id', '=', 'ticket-4711').execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'support.lookup', item_type: 'customer.email', resource_id: null, outcome: 'skipped' });
    expect(rows[0]!.detail).toMatch(/^client iagent \(role agent\); query email sha256:[0-9a-f]{64}$/);
    const all = JSON.stringify(await started.runtime.store.db.selectFrom('audit_log').selectAll().execute());
    expect(all).not.toContain('nobody.here');
    expect(all.toLowerCase()).not.toContain(history.customer.email.toLowerCase());
  });

  it('audits every lookup with the client and the ids it returned', async () => {
    await json(`/v1/support/customers?email=${encodeURIComponent(history.customer.email)}`, keys.agent.key);
    const order = history.orders[2]!;
    const response = await get(`/v1/support/orders/${order.orderNumber}`, keys.ukDesk.key, { 'x-correlation-id': 'ticket-4712' });
    expect(response.status).toBe(200);
    const rows = await started.runtime.store.db.selectFrom('audit_log').selectAll().where('correlation_id', '=', 'ticket-4712').execute();
    expect(rows).toEqual([expect.objectContaining({ action: 'support.lookup', item_type: 'order.number', resource_id: order.id, outcome: 'ok', detail: `client uk-desk (role masked-uk); query orderNumber ${order.orderNumber}` })]);
    const byCustomer = await started.runtime.store.db.selectFrom('audit_log').selectAll().where('resource_id', '=', history.customer.id).where('item_type', '=', 'customer.email').execute();
    expect(byCustomer.length).toBeGreaterThan(0);
  });

  it('refuses a missing or wrong key with 401, a role without a support section with 403, bad parameters with 400', async () => {
    const path = `/v1/support/customers/${history.customer.id}`;
    for (const key of [null, 'ctb_not-a-key', keys.agent.keyHash]) {
      const response = await get(path, key);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ type: 'urn:ctbridge:problem:unauthorized' });
    }
    const forbidden = await get(path, keys.reporting.key);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ type: 'urn:ctbridge:problem:forbidden' });
    for (const query of ['', '?email=a@b.c&customerNumber=1', '?email=not-an-email', '?customerNumber=1&limit=1000', '?customerNumber=1&colour=red']) {
      const response = await get(`/v1/support/customers${query}`);
      expect(response.status, query).toBe(400);
      expect(await response.json()).toMatchObject({ type: 'urn:ctbridge:problem:invalid-parameter' });
    }
  });

  it("accepts an identity provider's bearer token with a role that has a support section, and refuses a bad one", async () => {
    const path = `/v1/support/customers/${history.customer.id}`;
    const claims = (overrides: Record<string, unknown> = {}) => ({ iss: JWT.issuer, aud: JWT.audience, sub: 'agent-jo', ctbridge_role: 'masked-uk', exp: Math.floor(clock / 1000) + 300, iat: Math.floor(clock / 1000), ...overrides });
    const asBearer = (token: string) => get(path, null, { authorization: `Bearer ${token}` });

    const answer = await asBearer(mintJwt(jwtKey, claims()));
    expect(answer.status, await answer.clone().text()).toBe(200);
    const view = (await answer.json()) as CustomerView;
    expect(view.customer.references.customerId).toBe(history.customer.id);
    // The token's role applies: masked-uk masks the phone on UK orders, as it does for that role's API key.
    const byKey = await json(path, keys.ukDesk.key);
    expect(view.orders).toEqual(byKey.orders);
    const audited = await started.runtime.store.db.selectFrom('audit_log').select('detail').where('resource_id', '=', history.customer.id).execute();
    expect(audited.some((row) => JSON.stringify(row.detail).includes('jwt:agent-jo'))).toBe(true);

    for (const token of [mintJwt(jwtKey, claims({ aud: 'someone-else' })), mintJwt(jwtKey, claims({ exp: Math.floor(clock / 1000) - 3600 })), mintJwt({ kid: jwtKey.kid, privateKey: oidcKey().privateKey }, claims())]) {
      const refused = await asBearer(token);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/Bearer/);
    }
    const noSection = await asBearer(mintJwt(jwtKey, claims({ ctbridge_role: 'reporting' })));
    expect(noSection.status).toBe(403);
  });

  it('reads a customer view in three commercetools requests, then from the cache until it expires', async () => {
    // A fresh client in the cache's eyes: other lookups of this file may have read the stores.
    clock += 120_000;
    const before = env.emulator.apiRequests;
    await json(`/v1/support/customers/${history.customer.id}?locale=en-GB`);
    // Customer, orders (payments and shipping methods expanded), stores.
    expect(env.emulator.apiRequests - before).toBeLessThanOrEqual(3);
    const cached = env.emulator.apiRequests;
    await json(`/v1/support/customers/${history.customer.id}?locale=en-GB`);
    expect(env.emulator.apiRequests).toBe(cached);
    clock += 10_001;
    await json(`/v1/support/customers/${history.customer.id}?locale=en-GB`);
    expect(env.emulator.apiRequests).toBeGreaterThan(cached);
  });

  it('rate-limits per client', async () => {
    clock += 60_000;
    const path = `/v1/support/orders/${history.orders[0]!.orderNumber}`;
    const statuses: number[] = [];
    for (let i = 0; i < 31; i += 1) statuses.push((await get(path, keys.burst.key)).status);
    expect(statuses.slice(0, 30).every((s) => s === 200)).toBe(true);
    const limited = await get(path, keys.burst.key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(await limited.json()).toMatchObject({ type: 'urn:ctbridge:problem:rate-limited' });
    // Another client is not affected; the same one may go again once its bucket refilled.
    expect((await get(path, keys.agent.key)).status).toBe(200);
    clock += 1_000;
    expect((await get(path, keys.burst.key)).status).toBe(200);
  });

  it('answers as its OpenAPI 3.1 document says', async () => {
    const document = (await (await fetch(`${started.runtime.url}/v1/openapi.json`)).json()) as Document;
    expect(document.openapi).toBe('3.1.0');
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema({ $id: 'doc', components: document.components });
    const checker = (path: string, status: number, contentType: string) => {
      const schema = document.paths[path]?.get?.responses?.[String(status)]?.content?.[contentType]?.schema;
      expect(schema, `${path} ${status} ${contentType} is described`).toBeDefined();
      return ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')));
    };
    const validate = (path: string, status: number, contentType: string, body: unknown) => {
      const check = checker(path, status, contentType);
      expect(check(body), `${path} ${status}: ${ajv.errorsText(check.errors)}`).toBe(true);
    };
    const cases: Array<[string, string, string | null]> = [
      ['/v1/support/customers', `/v1/support/customers?email=${encodeURIComponent(history.customer.email)}`, keys.agent.key],
      ['/v1/support/customers', `/v1/support/customers?customerNumber=${history.customer.customerNumber}`, keys.ukDesk.key],
      ['/v1/support/customers/{id}', `/v1/support/customers/${history.customer.id}`, keys.noPhones.key],
      ['/v1/support/orders/{orderNumber}', `/v1/support/orders/${history.orders[2]!.orderNumber}`, keys.agent.key],
      ['/v1/support/orders', `/v1/support/orders?customerId=${history.customer.id}&limit=3`, keys.ukOnly.key],
      ['/v1/support/customers', '/v1/support/customers?email=nobody@example.org', keys.agent.key],
      ['/v1/support/customers/{id}', `/v1/support/customers/${history.customer.id}`, null],
      ['/v1/support/customers', '/v1/support/customers?limit=0', keys.agent.key],
    ];
    for (const [template, path, key] of cases) {
      const response = await get(path, key);
      const contentType = response.headers.get('content-type')!.split(';')[0]!;
      validate(template, response.status, contentType, await response.json());
    }
    // The document is not vacuous: a view missing its order ids, or with a member it does not describe, fails it.
    const order = await json<OrderView>(`/v1/support/orders/${history.orders[2]!.orderNumber}`);
    const check = checker('/v1/support/orders/{orderNumber}', 200, 'application/json');
    expect(check({ ...order, id: undefined })).toBe(false);
    expect(check({ ...order, cardNumber: '4111111111111111' })).toBe(false);
    const payment = order.payments[0]!;
    expect(check({ ...order, payments: [{ ...payment, transactions: [{ ...payment.transactions[0], interactionId: 'x' }] }] })).toBe(false);
    // Every support operation needs an API key or a bearer JWT and is in the document.
    for (const path of ['/v1/support/customers', '/v1/support/customers/{id}', '/v1/support/orders/{orderNumber}', '/v1/support/orders']) {
      expect(document.paths[path]?.get.security).toEqual([{ apiKey: [] }, { bearerJwt: [] }]);
    }
  });
});

describe('support configuration', () => {
  it('refuses a hash or tokenize treatment, an empty store list and an unknown field, naming where', () => {
    const base = testConfig('sqlite::memory:', 'http://127.0.0.1:1');
    const result = configSchema.safeParse({
      ...base,
      api: {
        clients: [],
        roles: { agent: { support: { pii: { email: 'hash' }, markets: { 'uk-store': { phone: 'tokenize' } }, stores: [], fields: ['creditCard'] } } },
      },
    });
    expect(result.success).toBe(false);
    const problems = result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'api.roles.agent.support.pii.email: "hash" means nothing to an agent reading the view: use pass, mask or drop',
        'api.roles.agent.support.markets.uk-store.phone: "tokenize" means nothing to an agent reading the view: use pass, mask or drop',
        expect.stringMatching(/^api\.roles\.agent\.support\.stores: /),
        expect.stringMatching(/^api\.roles\.agent\.support\.fields\.0: /),
      ]),
    );
  });
});
