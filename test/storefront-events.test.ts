// Storefront behaviour events over real HTTP (issue 14, "Storefront behaviour events"), on both stores: accepted
// events reach a destination through an `events:` mapping (the HTTP sink) with the shopper tied to the same person
// as their orders; an event id sent twice is delivered once; a body that breaks the published schema is refused
// 400 naming the field (and nothing of it stored); a missing or wrong key is 401, a foreign or missing Origin 403;
// preflights are answered for allowed origins only; over the rate, 429 with Retry-After under an injected clock.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeStorefrontSlice, readStorefrontBody, storefrontEventsJsonSchema } from '../src/ingest/storefront-events.ts';
import { pendingInbox, pendingInboxItems } from '../src/store/inbox.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, metricValue, startHarness, untilDone, type Harness } from './support/harness.ts';

const SHOP = 'https://shop.example.com';
const OTHER = 'https://evil.example.net';
const KEY = 'pk_test_storefront_web_0123456789';
const SERVER_KEY = 'pk_test_storefront_server_0123456789';
const LIMITED_KEY = 'pk_test_storefront_limited_0123456789';

const STOREFRONTS = [
  { name: 'web', key: KEY, allowedOrigins: [SHOP, 'http://localhost:3000'] },
  { name: 'backend', key: SERVER_KEY, allowedOrigins: ['https://backend.example.com'], allowMissingOrigin: true },
  { name: 'limited', key: LIMITED_KEY, allowedOrigins: [SHOP], rateLimit: { requestsPerSecond: 1, burst: 2 } },
];

/** Every storefront event type to the sink, with the fields a marketing tool wants; orders too (for the person). */
const EVENTS = {
  behaviour: {
    on: ['storefront.ProductViewed', 'storefront.ProductAddedToCart', 'storefront.CheckoutStarted', 'storefront.ProductsSearched'],
    fields: {
      eventId: 'id',
      kind: 'type',
      storefront: 'storefront',
      store: '$store',
      currency: '$currency',
      productId: 'product.id',
      sku: 'product.sku',
      quantity: 'quantity',
      cartId: 'cart.id',
      query: 'search.query',
      anonymousId: 'shopper.anonymousId',
    },
  },
  orders: { on: ['OrderCreated'], fields: { orderId: 'order.id' } },
};

function productViewed(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: randomUUID(),
    type: 'ProductViewed',
    occurredAt: '2026-12-05T01:00:00.000Z',
    store: 'uk',
    locale: 'en-GB',
    currency: 'GBP',
    shopper: { anonymousId: 'anon-1' },
    product: { id: 'prod-1', sku: 'SKU-1', variantId: 1, price: { centAmount: 1999, currencyCode: 'GBP' } },
    ...overrides,
  };
}

describe.each(testStores)('storefront events on $name', (testStore) => {
  let h: Harness;
  let clock = Date.UTC(2026, 11, 5);

  const send = (body: unknown, headers: Record<string, string> = { origin: SHOP, 'x-storefront-key': KEY }, query = '') =>
    fetch(`${h.runtime.url}/v1/events/storefront${query}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  /** Waits until everything accepted was routed and every queued event delivered (or dead). */
  const settled = () =>
    untilDone(async () => {
      const inbox = await pendingInboxItems(h.runtime.store);
      const queued = await h.runtime.store.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('dead', '=', 0).executeTakeFirstOrThrow();
      const remaining = inbox + Number(queued.n);
      return { done: remaining === 0, remaining };
    }, 'storefront events routed and delivered');

  const sinkEvents = () => h.sink.applied.filter((item) => item.kind === 'event');

  beforeAll(async () => {
    h = await startHarness({ storeUrl: await testStore.create(), storefronts: STOREFRONTS, now: () => clock, destination: { events: EVENTS } });
  });

  afterAll(async () => {
    await h.stop();
    await testStore.cleanup();
  });

  it('delivers accepted events through an events mapping, each kind, the shopper tied to their person', async () => {
    const viewed = productViewed();
    const added: Record<string, unknown> = { ...productViewed({ type: 'ProductAddedToCart', shopper: { customerId: 'cust-7' } }), quantity: 2, cart: { id: 'cart-1' } };
    const checkout = { id: randomUUID(), type: 'CheckoutStarted', occurredAt: '2026-12-05T01:01:00+01:00', store: 'uk', shopper: { email: 'Lin@Example.com' }, cart: { id: 'cart-1', total: { centAmount: 3998, currencyCode: 'GBP' } } };
    const searched = { id: randomUUID(), type: 'ProductsSearched', occurredAt: '2026-12-05T01:02:00Z', shopper: { anonymousId: 'anon-1' }, search: { query: 'red shoes', results: 12 } };
    const single = await send(viewed);
    expect(single.status).toBe(202);
    expect(await single.json()).toEqual({ accepted: 1 });
    const batch = await send([added, checkout, searched]);
    expect(batch.status).toBe(202);
    expect(await batch.json()).toEqual({ accepted: 3 });
    expect(batch.headers.get('access-control-allow-origin')).toBe(SHOP);
    // A guest order with the shopper's e-mail in the same store: the same person as the checkout's shopper.
    const order = h.commercetools.upsertOrder('order-guest', { customerEmail: 'lin@example.com', store: { typeId: 'store', key: 'uk' } });
    expect((await h.post(order)).status).toBe(202);
    await settled();

    const byId = new Map(sinkEvents().map((item) => [item.idempotencyKey, item.body]));
    expect(byId.get(`ctbridge:storefront:web:${viewed.id as string}`)).toMatchObject({
      kind: 'event',
      eventType: 'behaviour',
      sourceType: 'storefront.ProductViewed',
      payload: { eventId: viewed.id, kind: 'ProductViewed', storefront: 'web', store: 'uk', currency: 'GBP', productId: 'prod-1', sku: 'SKU-1', anonymousId: 'anon-1' },
    });
    // An anonymous shopper is nobody (the mapping still sends the anonymous id).
    expect(byId.get(`ctbridge:storefront:web:${viewed.id as string}`)).not.toHaveProperty('person');
    expect(byId.get(`ctbridge:storefront:web:${added.id as string}`)).toMatchObject({ sourceType: 'storefront.ProductAddedToCart', person: 'customer:cust-7', payload: { quantity: 2, cartId: 'cart-1' } });
    expect(byId.get(`ctbridge:storefront:web:${searched.id}`)).toMatchObject({ sourceType: 'storefront.ProductsSearched', payload: { query: 'red shoes' } });
    const checkoutEvent = byId.get(`ctbridge:storefront:web:${checkout.id}`);
    const orderEvent = byId.get(order.id as string);
    expect(checkoutEvent).toMatchObject({ sourceType: 'storefront.CheckoutStarted', payload: { cartId: 'cart-1', store: 'uk' } });
    expect(checkoutEvent?.person).toMatch(/^guest:uk:/);
    expect(checkoutEvent?.person).toBe(orderEvent?.person);
    // The e-mail was never mapped, so it never left (only its keyed digest, inside the person key).
    expect(JSON.stringify(checkoutEvent)).not.toMatch(/lin@example\.com/i);
  });

  it('delivers an event id sent twice (in two requests and within one) once', async () => {
    const event = productViewed();
    const deliveredBefore = sinkEvents().length;
    const duplicatesBefore = await metricValue(h, 'ctbridge_duplicates_total');
    expect((await send(event)).status).toBe(202);
    expect((await send([event, { ...event }])).status).toBe(202);
    // A retry of the browser after a lost answer: same id, the rest changed, still the same event.
    expect((await send({ ...event, occurredAt: '2026-12-05T02:00:00Z' })).status).toBe(202);
    await settled();
    const key = `ctbridge:storefront:web:${event.id as string}`;
    expect(sinkEvents().filter((item) => item.idempotencyKey === key)).toHaveLength(1);
    expect(h.sink.deliveries.get(key)).toBe(1);
    expect(sinkEvents().length - deliveredBefore).toBe(1);
    expect((await metricValue(h, 'ctbridge_duplicates_total')) - duplicatesBefore).toBe(3);
    // The same id from another storefront is another event.
    expect((await send(event, { 'x-storefront-key': SERVER_KEY })).status).toBe(202);
    await settled();
    expect(sinkEvents().filter((item) => item.idempotencyKey === `ctbridge:storefront:backend:${event.id as string}`)).toHaveLength(1);
  });

  it('refuses a body that breaks the schema with 400 naming the field, and stores nothing of it', async () => {
    await settled();
    const missing = await send(productViewed({ product: { sku: 'SKU-1' } }));
    expect(missing.status).toBe(400);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(missing.headers.get('access-control-allow-origin')).toBe(SHOP);
    const problem = (await missing.json()) as { type: string; pointer: string; invalidParams: Array<{ name: string; reason: string }>; detail: string };
    expect(problem.type).toBe('urn:ctbridge:problem:invalid-event');
    expect(problem.pointer).toBe('/product/id');
    expect(problem.invalidParams).toEqual([{ name: '/product/id', reason: expect.any(String) as string }]);

    // In an array, the pointer starts with the event's index; one bad event refuses the whole body.
    const inArray = await send([productViewed(), productViewed({ shopper: {} }), productViewed({ colour: 'red' })]);
    expect(inArray.status).toBe(400);
    const arrayProblem = (await inArray.json()) as { invalidParams: Array<{ name: string }> };
    expect(arrayProblem.invalidParams.map((p) => p.name)).toEqual(['/1/shopper', '/2/colour']);

    const cases: Array<[unknown, string]> = [
      [productViewed({ type: 'PageViewed' }), '/type'],
      [productViewed({ occurredAt: 'yesterday' }), '/occurredAt'],
      [productViewed({ currency: 'pounds' }), '/currency'],
      [{ ...productViewed({ type: 'ProductAddedToCart' }), quantity: 0 }, '/quantity'],
      [productViewed({ id: 'has spaces' }), '/id'],
      [productViewed({ product: { id: 'p', price: { centAmount: 1.5, currencyCode: 'GBP' } } }), '/product/price/centAmount'],
      [{ id: randomUUID(), type: 'ProductsSearched', occurredAt: '2026-12-05T01:02:00Z', shopper: { anonymousId: 'a' }, search: { query: '' } }, '/search/query'],
      [[], ''],
      ['"just text"', ''],
    ];
    for (const [body, pointer] of cases) {
      const answer = await send(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(((await answer.json()) as { pointer: string }).pointer, JSON.stringify(body)).toBe(pointer);
    }

    // The reason names the rule, never the value: an e-mail typed wrong is personal data all the same.
    const badEmail = await send(productViewed({ shopper: { email: 'lin at example.com' } }));
    expect(badEmail.status).toBe(400);
    const badEmailText = await badEmail.text();
    expect(badEmailText).toContain('/shopper/email');
    expect(badEmailText).not.toContain('lin at example.com');

    const malformed = await send('{"id": ');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { type: string }).type).toBe('urn:ctbridge:problem:malformed-json');
    expect((await send('')).status).toBe(400);
    expect(await pendingInbox(h.runtime.store)).toEqual([]);
  });

  it('refuses a missing or wrong key with 401, and takes the key from ?key= too', async () => {
    const refusals = () => metricValue(h, 'ctbridge_http_refusals_total', { route: '/v1/events/storefront', status: '401' });
    const before = await refusals();
    const none = await send(productViewed(), { origin: SHOP });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { type: string }).type).toBe('urn:ctbridge:problem:unauthorized');
    const wrong = await send(productViewed(), { origin: SHOP, 'x-storefront-key': `${KEY}x` });
    expect(wrong.status).toBe(401);
    const wrongText = await wrong.text();
    expect(wrongText).not.toContain(KEY);
    // The page may read why (its origin is allowed), so a developer sees the problem.
    expect(wrong.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect((await send(productViewed(), { origin: SHOP }, `?key=${encodeURIComponent(KEY)}`)).status).toBe(202);
    // Counted on /metrics by route and status.
    expect((await refusals()) - before).toBe(2);
  });

  it('takes a sendBeacon body (text/plain, key in the query) and refuses one over 64 KiB with 413', async () => {
    const beacon = await fetch(`${h.runtime.url}/v1/events/storefront?key=${encodeURIComponent(KEY)}`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', origin: SHOP }, body: JSON.stringify(productViewed()) });
    expect(beacon.status).toBe(202);
    const big = await send(productViewed({ properties: { note: 'x'.repeat(1000) }, page: { url: `${SHOP}/?q=${'y'.repeat(70_000)}` } }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { type: string; detail: string }).detail).toContain('65536');
  });

  it('refuses a foreign or missing Origin with 403, unless the storefront accepts requests without one', async () => {
    const before = await metricValue(h, 'ctbridge_http_refusals_total', { route: '/v1/events/storefront', status: '403' });
    const foreign = await send(productViewed(), { origin: OTHER, 'x-storefront-key': KEY });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { type: string }).type).toBe('urn:ctbridge:problem:forbidden');
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    // Another storefront's origin is not this one's.
    expect((await send(productViewed(), { origin: 'https://backend.example.com', 'x-storefront-key': KEY })).status).toBe(403);
    expect((await send(productViewed(), { 'x-storefront-key': KEY })).status).toBe(403);
    expect((await send(productViewed(), { 'x-storefront-key': SERVER_KEY })).status).toBe(202);
    expect((await metricValue(h, 'ctbridge_http_refusals_total', { route: '/v1/events/storefront', status: '403' })) - before).toBe(3);
  });

  it('answers CORS preflights for allowed origins, and only for them', async () => {
    const preflight = (origin: string) =>
      fetch(`${h.runtime.url}/v1/events/storefront`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-storefront-key' } });
    const allowed = await preflight('http://localhost:3000');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('x-storefront-key');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('content-type');
    expect(Number(allowed.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(allowed.headers.get('vary')).toContain('Origin');
    const refused = await preflight(OTHER);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers 429 with Retry-After past a key\'s rate, and accepts again once the bucket refills', async () => {
    const before = await metricValue(h, 'ctbridge_http_refusals_total', { route: '/v1/events/storefront', status: '429' });
    const limited = { origin: SHOP, 'x-storefront-key': LIMITED_KEY };
    expect((await send(productViewed(), limited)).status).toBe(202);
    expect((await send(productViewed(), limited)).status).toBe(202);
    const over = await send(productViewed(), limited);
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('1');
    expect(over.headers.get('access-control-expose-headers')).toContain('Retry-After');
    expect(((await over.json()) as { type: string }).type).toBe('urn:ctbridge:problem:rate-limited');
    // Another key has a bucket of its own.
    expect((await send(productViewed())).status).toBe(202);
    clock += 1_000;
    expect((await send(productViewed(), limited)).status).toBe(202);
    expect((await send(productViewed(), limited)).status).toBe(429);
    expect((await metricValue(h, 'ctbridge_http_refusals_total', { route: '/v1/events/storefront', status: '429' })) - before).toBe(2);
  });

  it('dead-letters an event the destination refuses without the shopper\'s e-mail, and delivers it once on replay', async () => {
    await settled();
    h.sink.faultFor = (request) => (JSON.stringify(request.body).includes('dlq-marker') ? { kind: 'status', status: 400, body: '{"error":"refused"}' } : undefined);
    const event = { id: randomUUID(), type: 'ProductsSearched', occurredAt: '2026-12-05T01:02:00Z', store: 'uk', shopper: { email: 'grace.hopper@example.com' }, search: { query: 'dlq-marker' } };
    expect((await send(event, { origin: SHOP, 'x-storefront-key': KEY, 'x-correlation-id': 'corr-storefront-dlq' })).status).toBe(202);
    await settled();
    const listed = (await (await adminFetch(h, '/v1/dead-letters?limit=1000')).json()) as { items: Array<{ id: number; correlationId: string; kind: string }> };
    const letter = listed.items.find((l) => l.correlationId === 'corr-storefront-dlq');
    expect(letter).toMatchObject({ kind: 'event' });
    const shown = (await (await adminFetch(h, `/v1/dead-letters/${letter!.id}`)).json()) as { payload: unknown };
    expect(shown.payload).not.toBeNull();
    expect(JSON.stringify(shown)).not.toContain('grace.hopper@example.com');

    h.sink.faultFor = undefined;
    expect((await adminFetch(h, `/v1/dead-letters/${letter!.id}/replay`, { method: 'POST' })).status).toBe(202);
    await settled();
    expect(sinkEvents().filter((item) => item.idempotencyKey === `ctbridge:storefront:web:${event.id}`)).toHaveLength(1);
  });

  it('publishes its JSON Schema, the same as the one in the repository', async () => {
    const answer = await fetch(`${h.runtime.url}/v1/events/storefront/schema.json`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/schema\+json/);
    const published = await answer.json();
    expect(published).toEqual(storefrontEventsJsonSchema());
    const vendored = JSON.parse(readFileSync(new URL('../schemas/storefront-events.schema.json', import.meta.url), 'utf8')) as unknown;
    // On a difference: write JSON.stringify(storefrontEventsJsonSchema(), null, 2) to schemas/storefront-events.schema.json.
    expect(vendored).toEqual(published);
  });
});

describe('storefront bodies of any shape', () => {
  it('are read without throwing: refused with pointers into the body, or accepted and read again the same way', () => {
    const eventLike = fc.record(
      { id: fc.oneof(fc.uuid(), fc.string()), type: fc.constantFrom('ProductViewed', 'ProductsSearched', 'CheckoutStarted', 'Nope'), occurredAt: fc.constantFrom('2026-12-05T01:00:00Z', 'later'), shopper: fc.anything(), product: fc.anything(), search: fc.anything(), cart: fc.anything() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), eventLike, fc.array(eventLike, { maxLength: 5 }), fc.jsonValue()), (body) => {
        const read = readStorefrontBody(body);
        const stored = normalizeStorefrontSlice(body, 'web', 0, 1_000);
        if (read.ok) {
          expect(stored.items.map((item) => item.kind)).toEqual(read.events.map(() => 'notification'));
        } else {
          expect(read.invalid.length).toBeGreaterThan(0);
          for (const { pointer } of read.invalid) expect(pointer === '' || pointer.startsWith('/')).toBe(true);
          expect(stored.items.map((item) => item.kind)).toEqual(['unrecognised']);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never take a key such as __proto__ for anything but an unknown field', () => {
    const read = readStorefrontBody(JSON.parse('{"__proto__": {"polluted": true}, "id": "e1", "type": "ProductViewed", "occurredAt": "2026-12-05T01:00:00Z", "shopper": {"anonymousId": "a"}, "product": {"id": "p"}}'));
    expect(read).toEqual({ ok: false, invalid: [{ pointer: '/__proto__', reason: 'not a field of this event' }] });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

