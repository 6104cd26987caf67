// Momentis end to end, on both stores: commercetools messages through ingest and the engine, with the connector's
// default mappings, to two Momentis simulators (two brands: one for the euro store over OAuth2, one for the pound
// store with an API key), whose signed webhooks come back to ctbridge and land on the commercetools customer in
// the commercetools emulator. A paid order accrues once (its payment message delivered twice), a refund reverses;
// the points, tier and rewards reach the customer's custom fields, the highest version winning; a duplicated and
// reordered stream of an order's messages is one interaction each on the member's timeline, in occurrence order,
// with market context and a back-office link; each brand sees only its own store's members, orders and currency;
// every request the connector made follows the contract; a webhook with a bad signature or an old timestamp is
// refused (401) and stores nothing; a reward becomes a discount code only its customer can use, once, and the
// order that used it is reported to Momentis as one redemption, after which the code is deactivated; a webhook
// whose reward codes fail is retried and makes them then.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../src/destinations/kit/errors.ts';
import { momentisInbound } from '../src/destinations/momentis/inbound.ts';
import { emulatorCredentials } from '../src/sandbox/emulator.ts';
import { momentisContract } from '../src/sandbox/momentis/contract.ts';
import { startMomentisSimulator, type MomentisSimulator } from '../src/sandbox/momentis/simulator.ts';
import { signMomentisBody } from '../src/server/inbound-auth.ts';
import { useEmulator } from './support/emulator.ts';
import { eventually, startTestRuntime, type TestRuntime } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const CLIENT = { clientId: 'ctbridge-alpine', clientSecret: 'momentis-client-secret-0123' };
const API_KEY = 'mk_thames_0123456789abcdef';
const EU_SECRET = 'whsec_alpine_0123456789abcdef';
const UK_SECRET = 'whsec_thames_0123456789abcdef';
const VAULT = { keys: { k1: randomBytes(32).toString('base64') }, activeKey: 'k1' };
const LOYALTY_TYPE = 'ctbridge-loyalty';

// What `ctbridge setup` does for a Momentis destination with inbound webhooks, and the two brands' stores.
const env = useEmulator({
  projectKey: 'test-project',
  types: momentisInbound.snapshotFields!({ loyaltyType: LOYALTY_TYPE } as never),
  prepare: async (ct) => {
    for (const key of ['eu-store', 'uk-store']) await ct.api.stores().post({ body: { key, name: { en: key } } }).execute();
  },
});

let sequence = 0;
/** A commercetools Message about a resource, at `minute` past ten (its order in time). */
function message(resourceId: string, typeId: string, type: string, fields: Record<string, unknown>, minute?: number): Record<string, unknown> {
  sequence += 1;
  const at = new Date(Date.UTC(2026, 11, 1, 10, minute ?? 0, 0, minute === undefined ? sequence : 0)).toISOString();
  return { notificationType: 'Message', projectKey: 'test-project', id: randomUUID(), version: 1, sequenceNumber: sequence, resource: { typeId, id: resourceId }, resourceVersion: sequence, resourceUserProvidedIdentifiers: {}, createdAt: at, lastModifiedAt: at, type, ...fields };
}

const money = (currencyCode: string, centAmount: number) => ({ type: 'centPrecision', currencyCode, centAmount, fractionDigits: 2 });

describe.each(testStores)('Momentis on $name', (testStore) => {
  let started: TestRuntime;
  let eu: MomentisSimulator;
  let uk: MomentisSimulator;
  let rewardSyncFailures = 0;
  const post = async (...bodies: unknown[]) => {
    for (const body of bodies) expect((await started.post(body)).status).toBe(202);
  };
  const customerFields = async (id: string) => ((await env.api.customers().withId({ ID: id }).get().execute()).body.custom?.fields ?? {}) as Record<string, unknown>;

  async function customer(store: string, email: string, locale: string | null = store === 'uk-store' ? 'en-GB' : 'de-DE') {
    const created = (await env.api.customers().post({ body: { email, firstName: 'Ada', lastName: 'Lovelace', password: 'secret-password', stores: [{ typeId: 'store', key: store }], ...(locale && { locale }) } }).execute()).body.customer;
    await post({ ...message(created.id, 'customer', 'CustomerCreated', {}), resourceVersion: created.version, customer: created });
    return created;
  }

  async function order(customerId: string, store: string, currency: string, centAmount: number) {
    const imported = (await env.api.orders().importOrder().post({ body: { customerId, customerEmail: 'x@example.com', orderNumber: `N-${randomUUID().slice(0, 8)}`, store: { typeId: 'store', key: store }, totalPrice: { currencyCode: currency, centAmount }, lineItems: [], orderState: 'Open', paymentState: 'Pending' } }).execute()).body;
    const payment = (await env.api.payments().post({ body: { customer: { typeId: 'customer', id: customerId }, amountPlanned: { currencyCode: currency, centAmount } } }).execute()).body;
    await env.api.orders().withId({ ID: imported.id }).post({ body: { version: imported.version, actions: [{ action: 'addPayment', payment: { typeId: 'payment', id: payment.id } }] } }).execute();
    return { order: (await env.api.orders().withId({ ID: imported.id }).get().execute()).body, paymentId: payment.id };
  }

  beforeAll(async () => {
    eu = await startMomentisSimulator({ clients: [CLIENT], rules: { pointsPerUnit: { EUR: 1 }, tiers: [{ name: 'bronze', threshold: 0 }, { name: 'silver', threshold: 500 }], reward: { everyPoints: 500, name: '5 EUR off', value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 500 }] } } } });
    uk = await startMomentisSimulator({ apiKeys: [API_KEY], rules: { pointsPerUnit: { GBP: 2 }, tiers: [{ name: 'member', threshold: 0 }] } });
    started = await startTestRuntime({
      storeUrl: await testStore.create(),
      commercetools: { ...emulatorCredentials(env.emulator), scopes: [] },
      engine: { leaseMs: 60_000, maxAttempts: 5, lingerMs: 20 },
      pii: { hashKey: 'a-hash-key-of-16-chars-or-more', vault: VAULT },
      // No records: or events: the connector's default mappings.
      destinations: [
        // Alpine's stores are its markets' keys; Thames names its stores and the one market's currency.
        { name: 'momentis-alpine', type: 'momentis', baseUrl: eu.url, auth: { oauth2: CLIENT }, brand: 'Alpine', markets: { 'eu-store': { currency: 'EUR', locale: 'de-AT', priceChannel: 'alpine-eu-prices' } }, inbound: { auth: { type: 'momentis', secret: EU_SECRET } } },
        { name: 'momentis-thames', type: 'momentis', baseUrl: uk.url, auth: { apiKey: API_KEY }, brand: 'Thames', stores: ['uk-store'], markets: { 'uk-store': { currency: 'GBP' } }, inbound: { auth: { type: 'momentis', secret: UK_SECRET } } },
      ],
      // commercetools failing while reward codes are written, as many times as a test asks.
      wrapWriter: (writer) => ({
        ...writer,
        syncRewardCodes: (options) => {
          if (rewardSyncFailures > 0) {
            rewardSyncFailures -= 1;
            return Promise.reject(new RetryableError('commercetools: 503 while writing reward codes', { status: 503 }));
          }
          return writer.syncRewardCodes(options);
        },
      }),
      closeAfter: [eu, uk],
    });
    eu.setWebhook({ url: `${started.runtime.url}/v1/inbound/momentis-alpine`, secret: EU_SECRET, retryDelayMs: 50 });
    uk.setWebhook({ url: `${started.runtime.url}/v1/inbound/momentis-thames`, secret: UK_SECRET, retryDelayMs: 50 });
  });
  afterAll(async () => {
    await started.stop();
    await testStore.cleanup();
  });

  it('accrues a paid order once, reverses a refund, and puts points, tier and rewards on the commercetools customer', async () => {
    const ada = await customer('eu-store', `ada.${randomUUID().slice(0, 6)}@example.com`);
    await eventually(() => eu.members.get(ada.id)?.input.brand === 'Alpine', 'the member in Momentis');
    const member = eu.members.get(ada.id)!.input;
    expect(member).toMatchObject({ externalId: ada.id, store: 'eu-store', locale: ada.locale ?? null, brand: 'Alpine' });
    // Personal values leave as vault tokens.
    expect(member.email).toMatch(/^tok_/);
    expect(member.firstName).toMatch(/^tok_/);

    const { order: placed, paymentId } = await order(ada.id, 'eu-store', 'EUR', 60_000);
    const paid = message(placed.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid', oldPaymentState: 'Pending' });
    await post(paid, paid);
    await eventually(async () => (await customerFields(ada.id)).loyaltyPoints === 600, 'the balance on the commercetools customer');
    let fields = await customerFields(ada.id);
    expect(fields).toMatchObject({ loyaltyPoints: 600, loyaltyTier: 'silver', loyaltyVersion: 1 });
    const rewards = JSON.parse(String(fields.loyaltyRewards)) as Array<{ id: string; status: string; value: unknown }>;
    expect(rewards).toHaveLength(1);
    expect(rewards[0]).toMatchObject({ status: 'available', value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 500 }] } });
    const accruals = eu.ledger.filter((entry) => entry.externalId === ada.id);
    expect(accruals.map((entry) => [entry.type, entry.points, entry.idempotencyKey])).toEqual([['accrue', 600, paid.id]]);
    expect(accruals[0]!.body).toMatchObject({ orderId: placed.id, orderNumber: placed.orderNumber, store: 'eu-store', amount: { currencyCode: 'EUR', centAmount: 60_000, fractionDigits: 2 } });

    const refund = message(paymentId, 'payment', 'PaymentTransactionAdded', { transaction: { id: randomUUID(), type: 'Refund', amount: money('EUR', 15_000), state: 'Success' } });
    await post(refund);
    await eventually(async () => (await customerFields(ada.id)).loyaltyPoints === 450, 'the reversal on the commercetools customer');
    fields = await customerFields(ada.id);
    expect(fields).toMatchObject({ loyaltyPoints: 450, loyaltyTier: 'bronze', loyaltyVersion: 2 });
    expect(eu.ledger.filter((entry) => entry.externalId === ada.id).map((entry) => [entry.type, entry.points])).toEqual([['accrue', 600], ['reverse', -150]]);
    expect(eu.ledger.at(-1)!.body).toMatchObject({ reason: 'refund', orderId: placed.id });
  });

  it('books a capture and a refund a payment provider adds as Pending and moves to Success: interactions, and the reversal once', async () => {
    const ivy = await customer('eu-store', `ivy.${randomUUID().slice(0, 6)}@example.com`);
    const { order: placed, paymentId } = await order(ivy.id, 'eu-store', 'EUR', 40_000);
    const paid = message(placed.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid', oldPaymentState: 'Pending' });
    // The transactions as commercetools holds them: added Pending, then moved to Success (or Failure).
    const transact = async (type: 'Charge' | 'Refund', centAmount: number, state: 'Success' | 'Failure') => {
      let payment = (await env.api.payments().withId({ ID: paymentId }).get().execute()).body;
      payment = (await env.api.payments().withId({ ID: paymentId }).post({ body: { version: payment.version, actions: [{ action: 'addTransaction', transaction: { type, amount: { currencyCode: 'EUR', centAmount }, state: 'Pending' } }] } }).execute()).body;
      const transaction = payment.transactions.at(-1)!;
      await env.api.payments().withId({ ID: paymentId }).post({ body: { version: payment.version, actions: [{ action: 'changeTransactionState', transactionId: transaction.id, state }] } }).execute();
      return [
        message(paymentId, 'payment', 'PaymentTransactionAdded', { transaction: { id: transaction.id, type, amount: money('EUR', centAmount), state: 'Pending' } }),
        message(paymentId, 'payment', 'PaymentTransactionStateChanged', { transactionId: transaction.id, state }),
      ];
    };
    const charge = await transact('Charge', 40_000, 'Success');
    const failedRefund = await transact('Refund', 5_000, 'Failure');
    const refund = await transact('Refund', 10_000, 'Success');
    await post(paid, ...charge, ...failedRefund, ...refund, refund[1]);
    await eventually(async () => (await customerFields(ivy.id)).loyaltyPoints === 300, 'the reversal on the commercetools customer');
    expect(eu.ledger.filter((entry) => entry.externalId === ivy.id).map((entry) => [entry.type, entry.points, entry.idempotencyKey])).toEqual([
      ['accrue', 400, paid.id],
      ['reverse', -100, refund[1]!.id],
    ]);
    expect(eu.ledger.at(-1)!.body).toMatchObject({ reason: 'refund', amount: { currencyCode: 'EUR', centAmount: 10_000, fractionDigits: 2 } });
    // A Pending transaction is no interaction yet (but a refund asked for is); its move to Success or Failure is.
    await eventually(() => eu.timeline(ivy.id).length === 5, 'the interactions');
    expect(eu.timeline(ivy.id).map((interaction) => [interaction.type, interaction.data.transactionType, interaction.data.transactionState])).toEqual([
      ['payment.captured', 'Charge', 'Success'],
      ['refund.created', 'Refund', 'Pending'],
      ['payment.failed', 'Refund', 'Failure'],
      ['refund.created', 'Refund', 'Pending'],
      ['payment.refunded', 'Refund', 'Success'],
    ]);
    expect(eu.timeline(ivy.id)[4]!.data).toMatchObject({ amount: { currencyCode: 'EUR', centAmount: 10_000, fractionDigits: 2 }, orderId: placed.id });
  });

  it('gives each interaction of a duplicated and reordered stream once, in occurrence order, with its market and a link', async () => {
    const grace = await customer('eu-store', `grace.${randomUUID().slice(0, 6)}@example.com`);
    const { order: placed, paymentId } = await order(grace.id, 'eu-store', 'EUR', 4_990);
    const stream = [
      { ...message(placed.id, 'order', 'OrderCreated', {}, 1), order: placed },
      message(paymentId, 'payment', 'PaymentTransactionAdded', { transaction: { id: randomUUID(), type: 'Authorization', amount: money('EUR', 4_990), state: 'Success' } }, 2),
      message(paymentId, 'payment', 'PaymentTransactionAdded', { transaction: { id: randomUUID(), type: 'Charge', amount: money('EUR', 4_990), state: 'Success' } }, 3),
      message(placed.id, 'order', 'OrderShipmentStateChanged', { shipmentState: 'Shipped', oldShipmentState: 'Pending' }, 4),
      message(placed.id, 'order', 'OrderShipmentStateChanged', { shipmentState: 'Delivered', oldShipmentState: 'Shipped' }, 5),
      message(placed.id, 'order', 'ReturnInfoAdded', { returnInfo: { items: [{ id: 'r1', quantity: 1, lineItemId: 'l1', shipmentState: 'Returned', paymentState: 'Initial' }], returnTrackingId: 'RT-1' } }, 6),
      message(placed.id, 'order', 'OrderStateChanged', { orderState: 'Complete', oldOrderState: 'Open' }, 7),
    ];
    // Reordered, with duplicates, as a push subscription may deliver them.
    await post(stream[4], stream[1], stream[6], stream[0], stream[4], stream[3], stream[2], stream[5], stream[0], stream[1]);
    await eventually(() => eu.timeline(grace.id).length === stream.length, 'every interaction on the timeline');
    const timeline = eu.timeline(grace.id);
    expect(timeline.map((interaction) => interaction.id)).toEqual(stream.map((m) => m.id));
    expect(timeline.map((interaction) => interaction.type)).toEqual(['order.placed', 'payment.authorized', 'payment.captured', 'shipment.shipped', 'shipment.delivered', 'return.created', 'order.state_changed']);
    for (const interaction of timeline) {
      expect(interaction.context).toMatchObject({ store: 'eu-store', currency: 'EUR' });
      expect(interaction.link).toBe(`https://mc.europe-west1.gcp.commercetools.com/test-project/orders/${placed.id}`);
    }
    expect(timeline[6]!.data).toMatchObject({ orderState: 'Complete', previousOrderState: 'Open', orderNumber: placed.orderNumber });
    // Nothing reached Momentis twice.
    const appended = eu.requests.filter((r) => r.path === `/v1/members/${grace.id}/interactions` && r.method === 'POST');
    expect(appended).toHaveLength(stream.length);
    // The OrderCreated used no reward code, so it redeems nothing: done once, audited as skipped, not as delivered.
    const redemptions = () => started.runtime.store.db.selectFrom('audit_log').select('outcome').where('destination', '=', 'momentis-alpine').where('action', '=', 'event.deliver').where('item_type', '=', 'redemptions').where('resource_id', '=', placed.id).execute();
    await eventually(async () => (await redemptions()).length > 0, 'the redemption event decided');
    expect((await redemptions()).map((entry) => entry.outcome)).toEqual(['skipped']);
    expect(eu.ledger.filter((entry) => entry.externalId === grace.id && entry.type === 'redeem')).toEqual([]);
  });

  it('keeps two brands apart: each Momentis sees only its own stores, in its market\'s currency, language and price book', async () => {
    const alice = await customer('uk-store', `alice.${randomUUID().slice(0, 6)}@example.com`);
    const bruno = await customer('eu-store', `bruno.${randomUUID().slice(0, 6)}@example.com`, null);
    const { order: ukOrder } = await order(alice.id, 'uk-store', 'GBP', 2_000);
    const { order: euOrder } = await order(bruno.id, 'eu-store', 'EUR', 2_000);
    await post(message(ukOrder.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid' }), message(euOrder.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid' }));
    await eventually(async () => (await customerFields(alice.id)).loyaltyPoints === 40 && (await customerFields(bruno.id)).loyaltyPoints === 20, 'both balances on their customers');
    // The customers' upserts are record sync's, apart from the payments' events: they may land after the balances.
    await eventually(() => uk.members.get(alice.id)?.input.brand !== undefined && eu.members.get(bruno.id)?.input.brand !== undefined, 'both members upserted');
    expect(uk.members.get(alice.id)?.input).toMatchObject({ brand: 'Thames', store: 'uk-store', currency: 'GBP', locale: 'en-GB' });
    // Bruno has no locale of his own: his market's.
    expect(eu.members.get(bruno.id)?.input).toMatchObject({ brand: 'Alpine', store: 'eu-store', currency: 'EUR', locale: 'de-AT' });
    expect(uk.members.has(bruno.id)).toBe(false);
    expect(eu.members.has(alice.id)).toBe(false);
    expect(uk.ledger.map((entry) => (entry.body.amount as { currencyCode: string }).currencyCode)).toEqual(['GBP']);
    expect(eu.ledger.some((entry) => entry.externalId === alice.id)).toBe(false);
    // An interaction names the market's price book where the brand's market has one.
    await post({ ...message(euOrder.id, 'order', 'OrderCreated', {}), order: euOrder }, { ...message(ukOrder.id, 'order', 'OrderCreated', {}), order: ukOrder });
    await eventually(() => eu.timeline(bruno.id).length === 1 && uk.timeline(alice.id).length === 1, 'both orders on their timelines');
    expect(eu.timeline(bruno.id)[0]!.context).toEqual({ store: 'eu-store', currency: 'EUR', priceChannel: 'alpine-eu-prices' });
    expect(uk.timeline(alice.id)[0]!.context).toEqual({ store: 'uk-store', currency: 'GBP' });
  });

  it('turns a reward into a discount code only its customer can use once, and reports the order that used it once', async () => {
    const kim = await customer('eu-store', `kim.${randomUUID().slice(0, 6)}@example.com`);
    const bob = await customer('eu-store', `bob.${randomUUID().slice(0, 6)}@example.com`);
    await eventually(() => eu.members.has(kim.id) && eu.members.has(bob.id), 'both members in Momentis');
    // 600 points: the simulator issues a reward at every 500 earned, and sends reward_issued.
    const { order: earning } = await order(kim.id, 'eu-store', 'EUR', 60_000);
    await post(message(earning.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid', oldPaymentState: 'Pending' }));
    await eventually(() => (eu.members.get(kim.id)?.loyalty.rewards.length ?? 0) === 1, 'the reward issued by Momentis');
    const rewardId = eu.members.get(kim.id)!.loyalty.rewards[0]!.id;
    const codeOf = async () => (await env.api.discountCodes().get({ queryArgs: { where: `key = "momentis-reward-${rewardId}"` } }).execute()).body.results[0];
    await eventually(async () => (await codeOf()) !== undefined, 'the discount code in commercetools');
    expect(await codeOf()).toMatchObject({ code: `MOM-${rewardId}`, isActive: true, maxApplications: 1, cartPredicate: `customer.id = "${kim.id}"` });
    const discount = (await env.api.cartDiscounts().withKey({ key: `momentis-reward-${rewardId}` }).get().execute()).body;
    expect(discount.stores).toEqual([{ typeId: 'store', key: 'eu-store' }]);

    const cart = async (customerId: string) => {
      const created = (await env.api.carts().post({ body: { currency: 'EUR', customerId, store: { typeId: 'store', key: 'eu-store' }, customLineItems: [{ name: { en: 'Gift box' }, slug: 'gift-box', quantity: 1, money: { currencyCode: 'EUR', centAmount: 4_000 } }] } }).execute()).body;
      return (await env.api.carts().withId({ ID: created.id }).post({ body: { version: created.version, actions: [{ action: 'addDiscountCode', code: `MOM-${rewardId}` }] } }).execute()).body;
    };
    const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: { statusCode?: number; body?: { errors?: { code: string }[] } }) => ({ status: error.statusCode, code: error.body?.errors?.[0]?.code }));
    // Another customer's cart: the code does not match, and no order comes of it.
    const foreign = await cart(bob.id);
    expect(foreign.discountCodes[0]!.state).toBe('DoesNotMatchCart');
    expect(await refusal(env.api.orders().post({ body: { cart: { typeId: 'cart', id: foreign.id }, version: foreign.version } }).execute())).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });
    // Its customer's cart: the order is placed with it.
    const own = await cart(kim.id);
    expect(own.discountCodes[0]!.state).toBe('MatchesCart');
    const placed = (await env.api.orders().post({ body: { cart: { typeId: 'cart', id: own.id }, version: own.version } }).execute()).body;

    // OrderCreated reports the redemption, once however often it is delivered.
    const created = message(placed.id, 'order', 'OrderCreated', { order: placed });
    await post(created, created);
    await eventually(() => eu.members.get(kim.id)!.loyalty.rewards[0]!.status === 'redeemed', 'the reward redeemed in Momentis');
    const redeemed = eu.ledger.filter((entry) => entry.externalId === kim.id && entry.type === 'redeem');
    expect(redeemed.map((entry) => [entry.rewardId, entry.sourceId, entry.idempotencyKey])).toEqual([[rewardId, created.id, `${placed.id}:${rewardId}`]]);
    expect(redeemed[0]!.body).toMatchObject({ type: 'redeem', orderId: placed.id, occurredAt: new Date(placed.createdAt).toISOString() });
    // reward_redeemed comes back: the code is deactivated, the reward gone from the customer's available ones.
    await eventually(async () => (await codeOf())?.isActive === false, 'the code deactivated');
    await eventually(async () => (JSON.parse(String((await customerFields(kim.id)).loyaltyRewards)) as unknown[]).length === 0, 'no available reward on the customer');
    expect(eu.ledger.filter((entry) => entry.type === 'redeem')).toHaveLength(1);
    // Another brand's Momentis heard nothing of it.
    expect(uk.ledger.some((entry) => entry.type === 'redeem')).toBe(false);
  });

  it('retries a webhook whose reward codes failed: the snapshot stays written once, and the code comes on the next attempt', async () => {
    const lea = await customer('eu-store', `lea.${randomUUID().slice(0, 6)}@example.com`);
    await eventually(() => eu.members.has(lea.id), 'the member in Momentis');
    rewardSyncFailures = 1;
    const { order: earning } = await order(lea.id, 'eu-store', 'EUR', 50_000);
    await post(message(earning.id, 'order', 'OrderPaymentStateChanged', { paymentState: 'Paid', oldPaymentState: 'Pending' }));
    await eventually(() => (eu.members.get(lea.id)?.loyalty.rewards.length ?? 0) === 1, 'the reward issued by Momentis');
    const rewardId = eu.members.get(lea.id)!.loyalty.rewards[0]!.id;
    await eventually(async () => (await env.api.discountCodes().get({ queryArgs: { where: `key = "momentis-reward-${rewardId}"` } }).execute()).body.results[0]?.isActive === true, 'the code after the retry');
    expect(rewardSyncFailures).toBe(0);
    // The webhook that met the failure was tried again and finished.
    const retried = () => started.runtime.store.db.selectFrom('inbound').select(['state', 'attempts']).where('destination', '=', 'momentis-alpine').where('attempt_log', 'like', '%503 while writing reward codes%').execute();
    await eventually(async () => (await retried()).some((row) => row.state === 'done'), 'the failed webhook done on its retry');
    expect(await retried()).toEqual([{ state: 'done', attempts: 1 }]);
    expect(await customerFields(lea.id)).toMatchObject({ loyaltyPoints: 500, loyaltyVersion: 1 });
    // The webhook whose codes failed wrote no audit of its write; its retry (and the other webhooks of the same
    // change, which carry the same version) found version 1 written and synced the codes: one of them created it.
    const audit = await started.runtime.store.db.selectFrom('audit_log').select(['outcome', 'detail']).where('destination', '=', 'momentis-alpine').where('resource_id', '=', lea.id).where('action', '=', 'writeback').execute();
    expect(new Set(audit.map((entry) => entry.outcome))).toEqual(new Set(['skipped']));
    expect(audit.filter((entry) => entry.detail?.includes('holds version 1 of these fields, this snapshot is version 1; reward codes 1 created'))).toHaveLength(1);
  });

  it('sends only what the contract allows', () => {
    const contract = momentisContract();
    const requests = [...eu.requests, ...uk.requests].filter((r) => r.path.startsWith('/v1/'));
    expect(requests.length).toBeGreaterThan(10);
    for (const request of requests) {
      const route = contract.route(request.path)!;
      expect(contract.request(request.method, route.template, request.body), `${request.method} ${request.path}`).toEqual({ ok: true });
      expect(request.status, `${request.method} ${request.path}: ${JSON.stringify(request.answer)}`).toBeLessThan(300);
    }
  });

  it('refuses a webhook with a bad signature or an old timestamp (401, nothing stored), and ignores an older snapshot', async () => {
    const eve = await customer('eu-store', `eve.${randomUUID().slice(0, 6)}@example.com`);
    await eventually(() => eu.members.has(eve.id), 'the member in Momentis');
    const event = (version: number, balance: number) => JSON.stringify({ id: `evt_${randomUUID()}`, type: 'member.balance_changed', occurredAt: new Date().toISOString(), member: { externalId: eve.id }, loyalty: { version, balance, tier: 'bronze', rewards: [] } });
    const send = (body: string, signature: string | undefined) => fetch(`${started.runtime.url}/v1/inbound/momentis-alpine`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature && { 'momentis-signature': signature }) }, body });
    const stored = async () => (await started.runtime.store.db.selectFrom('inbound').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
    const before = Number(await stored());
    const forged = event(9, 9_999);
    expect((await send(forged, signMomentisBody(forged, 'whsec_not_the_secret_0123', Date.now()))).status).toBe(401);
    expect((await send(forged, undefined)).status).toBe(401);
    expect((await send(forged, signMomentisBody(forged, EU_SECRET, Date.now() - 301_000))).status).toBe(401);
    expect((await send(forged, signMomentisBody(forged, EU_SECRET, Date.now() + 301_000))).status).toBe(401);
    expect(Number(await stored())).toBe(before);

    const newer = event(7, 70);
    const older = event(6, 60);
    expect((await send(newer, signMomentisBody(newer, EU_SECRET, Date.now()))).status).toBe(200);
    await eventually(async () => (await customerFields(eve.id)).loyaltyVersion === 7, 'the newer snapshot on the customer');
    expect((await send(older, signMomentisBody(older, EU_SECRET, Date.now()))).status).toBe(200);
    await eventually(async () => (await started.runtime.store.db.selectFrom('audit_log').select('detail').where('destination', '=', 'momentis-alpine').where('resource_id', '=', eve.id).where('outcome', '=', 'skipped').execute()).length === 1, 'the older snapshot seen and skipped');
    expect(await customerFields(eve.id)).toMatchObject({ loyaltyPoints: 70, loyaltyVersion: 7 });
  });
});
