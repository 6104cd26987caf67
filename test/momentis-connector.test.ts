// The Momentis connector against the simulator, item by item (milliseconds): a cart created and never ordered
// becomes one cart.abandoned interaction after the idle time by the injected clock, a cart an order came from —
// even one whose order arrived first — never does; a guest's event and a message meaning nothing are not sent;
// a 429 pauses with its Retry-After; the configuration refuses a mapping that would send the loyalty fields
// Momentis owns; `ctbridge setup` creates the loyalty Type when the destination takes webhooks.
import { afterEach, describe, expect, it } from 'vitest';
import { wantedTypeFields } from '../src/cli/setup-command.ts';
import { configSchema } from '../src/config/schema.ts';
import { memoryConnectorState } from '../src/destinations/kit/index.ts';
import { momentisDestination } from '../src/destinations/momentis/index.ts';
import { startMomentisSimulator, type MomentisSimulator } from '../src/sandbox/momentis/simulator.ts';
import { createTestConnector, eventItem } from './support/connector-test.ts';
import { eventually } from './support/harness.ts';

const API_KEY = 'mk_test_0123456789abcdef';
let simulator: MomentisSimulator | undefined;
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

const interaction = (customerId: string | undefined, type: string | null, cartId: string, minute: number) =>
  eventItem({
    eventType: 'interactions',
    resource: { typeId: 'cart', id: cartId },
    payload: { type, occurredAt: new Date(Date.UTC(2026, 11, 1, 10, minute)).toISOString(), context: { store: 'eu-store', currency: 'EUR' }, data: { cartId } },
    occurredAt: Date.UTC(2026, 11, 1, 10, minute),
    person: customerId === undefined ? { key: 'guest:eu-store:abc', destinationId: undefined } : { key: `customer:${customerId}`, destinationId: undefined },
  });

const BASE = {
  commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
  server: { port: 0, ingest: { auth: { type: 'none' } } },
  pii: { vault: { keys: { k1: Buffer.alloc(32, 7).toString('base64') }, activeKey: 'k1' } },
};

describe('Momentis connector', () => {
  it('sends cart.abandoned once for a cart no order came from, after the idle time by the injected clock', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    let clock = Date.UTC(2026, 11, 1, 10, 0);
    const state = memoryConnectorState();
    const { connector } = createTestConnector(momentisDestination, { baseUrl: simulator.url, auth: { apiKey: API_KEY }, cartAbandonment: { idleMinutes: 30, checkMs: 20 } } as never, { state, now: () => clock });
    const outcomes = await connector.sendEvents([interaction('c-1', 'cart.created', 'cart-a', 0), interaction('c-2', 'cart.created', 'cart-b', 1), interaction('c-3', 'order.placed', 'cart-c', 2)]);
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    // cart-b's order; cart-c's order arrived before its creation.
    await connector.sendEvents([interaction('c-2', 'order.placed', 'cart-b', 5), interaction('c-3', 'cart.created', 'cart-c', 1)]);
    clock += 29 * 60_000;
    expect(state.entries.size).toBe(3);
    clock += 2 * 60_000;
    await eventually(() => simulator!.timeline('c-1').some((i) => i.type === 'cart.abandoned'), 'the abandoned cart on the timeline');
    const abandoned = simulator.timeline('c-1').find((i) => i.type === 'cart.abandoned')!;
    expect(abandoned).toMatchObject({ id: 'cart-abandoned:cart-a', occurredAt: '2026-12-01T10:30:00.000Z', context: { store: 'eu-store', currency: 'EUR' }, data: { cartId: 'cart-a' } });
    // The ordered carts are kept as ordered until their time passes, and are never sent.
    clock += 60 * 60_000;
    await eventually(() => state.entries.size === 0, 'the ordered carts dropped');
    expect(simulator.timeline('c-2').map((i) => i.type)).toEqual(['cart.created', 'order.placed']);
    expect(simulator.timeline('c-3').map((i) => i.type)).toEqual(['cart.created', 'order.placed']);
    expect(simulator.timeline('c-1').filter((i) => i.type === 'cart.abandoned')).toHaveLength(1);
    await connector.close?.();
  });

  it('sends nothing for a guest or for a message that means no interaction', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    const { connector } = createTestConnector(momentisDestination, { baseUrl: simulator.url, auth: { apiKey: API_KEY }, cartAbandonment: { enabled: false } } as never);
    const outcomes = await connector.sendEvents([interaction(undefined, 'cart.created', 'cart-g', 0), interaction('c-1', null, 'cart-x', 1)]);
    expect(outcomes).toEqual([{ ok: true, skipped: true }, { ok: true, skipped: true }]);
    expect(simulator.requests).toHaveLength(0);
  });

  it('pauses for Retry-After when Momentis answers 429', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    simulator.faults = [{ kind: 'status', status: 429, retryAfter: 7 }];
    const clock = Date.UTC(2026, 11, 1, 10, 0);
    const { connector, limiter } = createTestConnector(momentisDestination, { baseUrl: simulator.url, auth: { apiKey: API_KEY }, cartAbandonment: { enabled: false } } as never, { now: () => clock });
    const [outcome] = await connector.sendEvents([interaction('c-1', 'cart.created', 'cart-r', 0)]);
    expect(outcome!.ok).toBe(false);
    expect(outcome!.ok === false && outcome!.error.retryable).toBe(true);
    expect(limiter.pausedUntil).toBe(clock + 7_000);
  });

  it('refuses an outbound mapping of the loyalty fields Momentis owns', () => {
    const result = configSchema.safeParse({
      ...BASE,
      destinations: [{ name: 'momentis', type: 'momentis', baseUrl: 'http://127.0.0.1:9/', auth: { apiKey: API_KEY }, records: { member: { source: 'customer', fields: { externalId: 'id', loyaltyPoints: 'custom.fields.loyaltyPoints' } } }, events: {} }],
    });
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find((i) => i.path.join('.') === 'destinations.0.records.member.fields.loyaltyPoints');
    expect(issue?.message).toContain("Momentis' own");
  });

  it("refuses a market outside the brand's stores, naming it", () => {
    const result = configSchema.safeParse({
      ...BASE,
      destinations: [{ name: 'momentis', type: 'momentis', baseUrl: 'http://127.0.0.1:9/', auth: { apiKey: API_KEY }, stores: ['eu-store'], markets: { 'eu-store': { currency: 'EUR' }, 'uk-stor': { currency: 'GBP' } } }],
    });
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find((i) => i.path.join('.') === 'destinations.0.markets.uk-stor');
    expect(issue?.message).toBe('"uk-stor" is not one of this brand\'s stores (eu-store)');
    const badCurrency = configSchema.safeParse({ ...BASE, destinations: [{ name: 'momentis', type: 'momentis', baseUrl: 'http://127.0.0.1:9/', auth: { apiKey: API_KEY }, markets: { 'eu-store': { currency: 'euro' } } }] });
    expect(badCurrency.error?.issues.find((i) => i.path.join('.') === 'destinations.0.markets.eu-store.currency')?.message).toBe('an ISO 4217 currency code');
  });

  it('has ctbridge setup create the loyalty Type when the destination takes webhooks, and needs no written-back field for them', () => {
    const config = configSchema.parse({ ...BASE, destinations: [{ name: 'momentis', type: 'momentis', baseUrl: 'http://127.0.0.1:9/', auth: { apiKey: API_KEY }, inbound: { auth: { type: 'momentis', secret: 'whsec_0123456789abcdef' } } }] });
    expect(wantedTypeFields(config).map((f) => `${f.type}.${f.field}:${f.fieldType}`).sort()).toEqual(['ctbridge-loyalty.loyaltyPoints:Number', 'ctbridge-loyalty.loyaltyRewards:String', 'ctbridge-loyalty.loyaltyTier:String', 'ctbridge-loyalty.loyaltyVersion:Number']);
  });
});
