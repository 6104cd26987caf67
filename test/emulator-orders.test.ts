// The order actions the project's emulator layer adds to @labdigital/commercetools-mock (src/sandbox/emulator-orders.ts),
// through the official SDK as ctbridge calls them, a correction of its money (carts' totals in their currency's
// fraction digits) and the configuration rules of agent actions.
import type { Order } from '@commercetools/platform-sdk';
import { describe, expect, it } from 'vitest';
import { actionsSchema } from '../src/actions/config.ts';
import { createOrder, prepareShop, type ActionShop } from './support/actions-fixtures.ts';
import { useEmulator } from './support/emulator.ts';

describe('emulator: order actions and totals', () => {
  let shop: ActionShop;
  const env = useEmulator({
    prepare: async (ct) => {
      shop = await prepareShop(ct.api);
    },
  });

  const update = (order: Order, actions: unknown[]) => env.api.orders().withId({ ID: order.id }).post({ body: { version: order.version, actions } as never }).execute();
  const failure = async (promise: Promise<unknown>) => {
    const error = (await promise.then(() => undefined, (e: unknown) => e)) as { statusCode?: number; body?: { errors?: { code: string; message: string }[] } } | undefined;
    return { status: error?.statusCode, code: error?.body?.errors?.[0]?.code, message: error?.body?.errors?.[0]?.message ?? '' };
  };

  it('transitionLineItemState moves quantities between states by id or key', async () => {
    const { order } = await createOrder(env.api, shop, { lines: [{ sku: 'SHIRT-1', quantity: 3, unitCents: 1000 }] });
    const line = order.lineItems[0]!;
    const after = (await update(order, [{ action: 'transitionLineItemState', lineItemId: line.id, quantity: 2, fromState: { typeId: 'state', key: 'ordered' }, toState: { typeId: 'state', id: shop.states.shipped.id } }])).body;
    expect(after.version).toBe(order.version + 1);
    expect(after.lineItems[0]!.state).toEqual([
      { quantity: 1, state: { typeId: 'state', id: shop.states.ordered.id } },
      { quantity: 2, state: { typeId: 'state', id: shop.states.shipped.id } },
    ]);
    const emptied = (await update(after, [{ action: 'transitionLineItemState', lineItemId: line.id, quantity: 1, fromState: { typeId: 'state', id: shop.states.ordered.id }, toState: { typeId: 'state', id: shop.states.shipped.id } }])).body;
    // A state whose quantity reaches zero is no longer listed.
    expect(emptied.lineItems[0]!.state).toEqual([{ quantity: 3, state: { typeId: 'state', id: shop.states.shipped.id } }]);
  });

  it('refuses more than the state holds, unknown states and line items, and states of another type, changing nothing', async () => {
    const { order } = await createOrder(env.api, shop, { lines: [{ sku: 'SHIRT-1', quantity: 2, unitCents: 1000 }] });
    const line = order.lineItems[0]!;
    const move = (overrides: Record<string, unknown>) => update(order, [{ action: 'transitionLineItemState', lineItemId: line.id, quantity: 1, fromState: { typeId: 'state', key: 'ordered' }, toState: { typeId: 'state', key: 'cancelled' }, ...overrides }]);
    const tooMany = await failure(move({ quantity: 3 }));
    expect(tooMany).toMatchObject({ status: 400, code: 'InvalidOperation' });
    expect(tooMany.message).toContain('fewer than the 3');
    expect(await failure(move({ toState: { typeId: 'state', key: 'nowhere' } }))).toMatchObject({ status: 400, code: 'ReferencedResourceNotFound' });
    expect(await failure(move({ lineItemId: 'no-such-line' }))).toMatchObject({ status: 400, code: 'InvalidOperation' });
    const otherType = await failure(move({ toState: { typeId: 'state', key: 'packed' } }));
    expect(otherType).toMatchObject({ status: 400, code: 'InvalidOperation' });
    expect(otherType.message).toContain('not of type LineItemState');
    const unchanged = (await env.api.orders().withId({ ID: order.id }).get().execute()).body;
    expect(unchanged.version).toBe(order.version);
    expect(unchanged.lineItems[0]!.state).toEqual(line.state);
  });

  it('keeps a State created without transitions open to any transition, and enforces the transitions a State sets', async () => {
    expect(shop.states.ordered.transitions).toBeUndefined();
    const { order } = await createOrder(env.api, shop, { workflowState: 'picking' });
    expect(await failure(update(order, [{ action: 'transitionState', state: { typeId: 'state', key: 'closed' } }]))).toMatchObject({ status: 400, code: 'InvalidOperation' });
    const forced = (await update(order, [{ action: 'transitionState', state: { typeId: 'state', key: 'closed' }, force: true }])).body;
    expect(forced.state?.id).toBe(shop.states.closed.id);
  });

  it('applies concurrent updates of one payment against its version: one wins, the other gets 409', async () => {
    const { payment } = await createOrder(env.api, shop);
    const refund = (cents: number) =>
      env.api.payments().withId({ ID: payment.id }).post({ body: { version: payment.version, actions: [{ action: 'addTransaction', transaction: { type: 'Refund', amount: { currencyCode: 'EUR', centAmount: cents }, state: 'Initial' } }] } }).execute();
    const results = await Promise.allSettled([refund(100), refund(200), refund(300)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const rejected of results.filter((r) => r.status === 'rejected')) expect((rejected.reason as { statusCode: number }).statusCode).toBe(409);
    const after = (await env.api.payments().withId({ ID: payment.id }).get().execute()).body;
    expect(after.transactions.filter((t) => t.type === 'Refund')).toHaveLength(1);
    expect(after.version).toBe(payment.version + 1);
  });

  it("gives a cart's total, after every update, and its order's, the fraction digits of the currency", async () => {
    await env.api.productTypes().post({ body: { key: 'plain', name: 'plain', description: 'plain' } }).execute();
    await env.api
      .products()
      .post({ body: { productType: { typeId: 'product-type', key: 'plain' }, name: { en: 'Jumper' }, slug: { en: 'jumper' }, masterVariant: { sku: 'JMP-1', prices: [{ value: { currencyCode: 'GBP', centAmount: 7900 } }] }, publish: true } })
      .execute();
    const cart = (await env.api.carts().post({ body: { currency: 'GBP', lineItems: [{ sku: 'JMP-1', quantity: 1 }] } }).execute()).body;
    expect(cart.totalPrice).toEqual({ type: 'centPrecision', currencyCode: 'GBP', centAmount: 7900, fractionDigits: 2 });
    const more = (await env.api.carts().withId({ ID: cart.id }).post({ body: { version: cart.version, actions: [{ action: 'changeLineItemQuantity', lineItemId: cart.lineItems[0]!.id, quantity: 3 }] } }).execute()).body;
    expect(more.totalPrice).toEqual({ type: 'centPrecision', currencyCode: 'GBP', centAmount: 23700, fractionDigits: 2 });
    const order = (await env.api.orders().post({ body: { cart: { typeId: 'cart', id: more.id }, version: more.version } }).execute()).body;
    expect(order.totalPrice).toEqual({ type: 'centPrecision', currencyCode: 'GBP', centAmount: 23700, fractionDigits: 2 });
    expect((await env.api.orders().withId({ ID: order.id }).get().execute()).body.totalPrice.fractionDigits).toBe(2);
    // Without line items, the currency's own minor units (ISO 4217).
    expect((await env.api.carts().post({ body: { currency: 'JPY' } }).execute()).body.totalPrice.fractionDigits).toBe(0);
    expect((await env.api.carts().post({ body: { currency: 'EUR' } }).execute()).body.totalPrice.fractionDigits).toBe(2);
  });
});

describe('actions configuration', () => {
  const base = { commercetools: { clientId: 'actions', clientSecret: 'secret', scopes: ['manage_orders:shop', 'manage_payments:shop'] } };

  it('takes defaults for the states and the order-state graph', () => {
    const parsed = actionsSchema.parse(base);
    expect(parsed.lineItemStates).toEqual({ cancelled: 'cancelled', shipped: ['shipped'] });
    expect(parsed.orderStates.Complete).toEqual([]);
    expect(parsed.refundTransactionState).toBe('Initial');
  });

  it('refuses scopes actions do not need (least privilege)', () => {
    const result = actionsSchema.safeParse({ ...base, commercetools: { ...base.commercetools, scopes: ['manage_project:shop', 'manage_customers:shop'] } });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => issue.path.join('.'))).toEqual(['commercetools.scopes.0', 'commercetools.scopes.1']);
    expect(result.error!.issues[0]!.message).toContain('least privilege');
  });
});
