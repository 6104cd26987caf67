// Momentis rewards as commercetools discount codes (src/commercetools/reward-codes.ts) against the emulator, through
// the official SDK: a reward becomes a code only its customer can use, once (cart → order); redeemed, expired and
// gone rewards deactivate their codes; a resync changes nothing; an order tells which rewards it redeemed. Also the
// discount rules the emulator layer adds (src/sandbox/emulator-discounts.ts). No ctbridge store is involved.
import { randomUUID } from 'node:crypto';
import type { Cart } from '@commercetools/platform-sdk';
import { describe, expect, it } from 'vitest';
import { redeemTransaction, redeemedRewards, syncRewardCodes, type LoyaltyReward, type SyncRewardCodesOptions } from '../src/commercetools/reward-codes.ts';
import { useEmulator } from './support/emulator.ts';

const NOW = Date.parse('2026-12-05T10:00:00Z');
const PREFIX = 'MOM-';

describe('reward codes in commercetools', () => {
  const env = useEmulator({
    prepare: async (ct) => {
      await ct.api.stores().post({ body: { key: 'uk', name: { en: 'UK' } } }).execute();
      await ct.api.stores().post({ body: { key: 'de', name: { de: 'DE' } } }).execute();
    },
  });

  const customer = async () => (await env.api.customers().post({ body: { email: `${randomUUID()}@example.com`, password: 'secret-123' } }).execute()).body.customer.id;
  const rewardId = () => `rw_${randomUUID().slice(0, 8)}`;
  const fiveOff = (id: string, overrides: Partial<LoyaltyReward> = {}): LoyaltyReward => ({ id, name: '5 EUR voucher', status: 'available', value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 500 }] }, ...overrides });
  const sync = (customerId: string, rewards: LoyaltyReward[], overrides: Partial<SyncRewardCodesOptions> = {}) => syncRewardCodes(env.ct, { customerId, rewards, prefix: PREFIX, now: () => NOW, ...overrides });
  const codeOf = async (id: string) => (await env.api.discountCodes().withKey({ key: `momentis-reward-${id}` }).get().execute()).body;
  const discountOf = async (id: string) => (await env.api.cartDiscounts().withKey({ key: `momentis-reward-${id}` }).get().execute()).body;
  const cart = async (owner: { customerId?: string; store?: string; currency?: string }) =>
    (
      await env.api
        .carts()
        .post({
          body: {
            currency: owner.currency ?? 'EUR',
            ...(owner.customerId ? { customerId: owner.customerId } : { anonymousId: randomUUID() }),
            ...(owner.store && { store: { typeId: 'store' as const, key: owner.store } }),
            customLineItems: [{ name: { en: 'Gift box' }, slug: 'gift-box', quantity: 1, money: { currencyCode: owner.currency ?? 'EUR', centAmount: 4000 } }],
          },
        })
        .execute()
    ).body;
  const addCode = async (target: Cart, code: string) => (await env.api.carts().withId({ ID: target.id }).post({ body: { version: target.version, actions: [{ action: 'addDiscountCode', code }] } }).execute()).body;
  const order = (from: Cart) => env.api.orders().post({ body: { cart: { typeId: 'cart', id: from.id }, version: from.version } }).execute();
  const failure = async (promise: Promise<unknown>) => {
    const error = (await promise.then(() => undefined, (e: unknown) => e)) as { statusCode?: number; body?: { errors?: { code: string; message: string }[] } } | undefined;
    return { status: error?.statusCode, code: error?.body?.errors?.[0]?.code };
  };
  const ordersOf = async (customerId: string) => (await env.api.orders().get({ queryArgs: { where: `customerId="${customerId}"` } }).execute()).body.results;

  it('turns a reward into a customer-bound single-use code: its customer applies it once (cart → order), a second use is refused', async () => {
    const alice = await customer();
    const id = rewardId();
    const report = await sync(alice, [fiveOff(id, { expiresAt: '2027-01-31T23:59:59.000Z' })]);
    expect(report).toEqual({ created: [id], updated: [], unchanged: [], deactivated: [], refused: [] });

    const code = await codeOf(id);
    expect(code).toMatchObject({ code: `${PREFIX}${id}`, isActive: true, maxApplications: 1, cartPredicate: `customer.id = "${alice}"`, validUntil: '2027-01-31T23:59:59.000Z' });
    const discount = await discountOf(id);
    expect(code.cartDiscounts).toEqual([{ typeId: 'cart-discount', id: discount.id }]);
    expect(discount).toMatchObject({ isActive: true, requiresDiscountCode: true, stackingMode: 'Stacking', target: { type: 'totalPrice' }, cartPredicate: `customer.id = "${alice}" and currency in ("EUR")` });
    expect(discount.value).toMatchObject({ type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 500 }] });
    expect(Number(discount.sortOrder)).toBeGreaterThan(0);
    expect(Number(discount.sortOrder)).toBeLessThan(0.001);

    // A cart in a currency the reward has no amount in would take nothing off and use the reward up: refused.
    const pounds = await addCode(await cart({ customerId: alice, currency: 'GBP' }), `${PREFIX}${id}`);
    expect(pounds.discountCodes[0]!.state).toBe('DoesNotMatchCart');
    expect(await failure(order(pounds))).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });

    const first = await addCode(await cart({ customerId: alice }), `${PREFIX}${id}`);
    expect(first.discountCodes).toEqual([{ discountCode: { typeId: 'discount-code', id: code.id }, state: 'MatchesCart' }]);
    const placed = (await order(first)).body;
    expect((placed.discountCodes ?? []).map((info) => info.discountCode.id)).toEqual([code.id]);

    const second = await addCode(await cart({ customerId: alice }), `${PREFIX}${id}`);
    expect(second.discountCodes[0]!.state).toBe('MaxApplicationReached');
    expect(await failure(order(second))).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });
    expect((await ordersOf(alice)).map((o) => o.id)).toEqual([placed.id]);
  });

  it('refuses the code to another customer and to an anonymous cart', async () => {
    const alice = await customer();
    const bob = await customer();
    const id = rewardId();
    await sync(alice, [fiveOff(id)]);
    for (const owner of [{ customerId: bob }, {}]) {
      const foreign = await addCode(await cart(owner), `${PREFIX}${id}`);
      expect(foreign.discountCodes[0]!.state).toBe('DoesNotMatchCart');
      expect(await failure(order(foreign))).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });
    }
    // A cart created with the code in its draft is refused outright, and not stored.
    expect(await failure(env.api.carts().post({ body: { currency: 'EUR', customerId: bob, discountCodes: [`${PREFIX}${id}`] } }).execute())).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });
    expect((await env.api.carts().get({ queryArgs: { where: `customerId="${bob}"` } }).execute()).body.results).toHaveLength(1);
    expect(await ordersOf(bob)).toEqual([]);
    // Bob's attempts used nothing up: Alice still has her one use.
    const own = await addCode(await cart({ customerId: alice }), `${PREFIX}${id}`);
    expect(own.discountCodes[0]!.state).toBe('MatchesCart');
    expect((await order(own)).statusCode).toBe(201);
  });

  it('changes nothing when synced again with the same rewards', async () => {
    const alice = await customer();
    const [a, b] = [rewardId(), rewardId()];
    const rewards = [fiveOff(a), fiveOff(b, { value: { type: 'relative', permyriad: 1000 }, name: '10% off' })];
    await sync(alice, rewards);
    const before = await Promise.all([codeOf(a), codeOf(b), discountOf(a), discountOf(b)]);
    const calls = env.emulator.apiRequests;
    const again = await sync(alice, rewards);
    expect(again).toEqual({ created: [], updated: [], unchanged: [a, b], deactivated: [], refused: [] });
    // One read (the customer's codes, their discounts expanded), no write.
    expect(env.emulator.apiRequests - calls).toBe(1);
    const after = await Promise.all([codeOf(a), codeOf(b), discountOf(a), discountOf(b)]);
    expect(after.map((r) => r.version)).toEqual(before.map((r) => r.version));
    const codes = (await env.api.discountCodes().get({ queryArgs: { where: `key in ("momentis-reward-${a}", "momentis-reward-${b}")` } }).execute()).body.results;
    expect(codes).toHaveLength(2);
  });

  it('deactivates the codes of rewards redeemed, expired (by status or expiresAt) or gone, once', async () => {
    const alice = await customer();
    const [kept, redeemed, expired, lapsed, gone] = [rewardId(), rewardId(), rewardId(), rewardId(), rewardId()];
    await sync(alice, [kept, redeemed, expired, lapsed, gone].map((id) => fiveOff(id)));
    const report = await sync(alice, [fiveOff(kept), fiveOff(redeemed, { status: 'redeemed' }), fiveOff(expired, { status: 'expired' }), fiveOff(lapsed, { expiresAt: new Date(NOW - 1000).toISOString() })]);
    expect(report.unchanged).toEqual([kept]);
    expect(report.deactivated.sort()).toEqual([redeemed, expired, lapsed, gone].sort());
    for (const id of [redeemed, expired, lapsed, gone]) {
      expect((await codeOf(id)).isActive).toBe(false);
      expect((await discountOf(id)).isActive).toBe(false);
      const tried = await addCode(await cart({ customerId: alice }), `${PREFIX}${id}`);
      expect(tried.discountCodes[0]!.state).toBe('NotActive');
      expect(await failure(order(tried))).toEqual({ status: 400, code: 'DiscountCodeNonApplicable' });
    }
    expect((await codeOf(kept)).isActive).toBe(true);
    const again = await sync(alice, [fiveOff(kept), fiveOff(redeemed, { status: 'redeemed' })]);
    expect(again).toEqual({ created: [], updated: [], unchanged: [kept, redeemed, expired, lapsed, gone], deactivated: [], refused: [] });
  });

  it('reactivates and corrects a code whose reward is available again with a new expiry', async () => {
    const alice = await customer();
    const id = rewardId();
    await sync(alice, [fiveOff(id)]);
    await sync(alice, [fiveOff(id, { status: 'redeemed' })]);
    const report = await sync(alice, [fiveOff(id, { expiresAt: '2027-03-01T00:00:00.000Z' })]);
    expect(report.updated).toEqual([id]);
    expect(await codeOf(id)).toMatchObject({ isActive: true, validUntil: '2027-03-01T00:00:00.000Z' });
    expect((await discountOf(id)).isActive).toBe(true);
  });

  it('scopes the discount to the store given: a cart of another store cannot use it', async () => {
    const alice = await customer();
    const id = rewardId();
    await sync(alice, [fiveOff(id, { value: { type: 'relative', permyriad: 1500 } })], { storeKey: 'uk' });
    expect((await discountOf(id)).stores).toEqual([{ typeId: 'store', key: 'uk' }]);
    expect((await addCode(await cart({ customerId: alice, store: 'de' }), `${PREFIX}${id}`)).discountCodes[0]!.state).toBe('DoesNotMatchCart');
    const inStore = await addCode(await cart({ customerId: alice, store: 'uk' }), `${PREFIX}${id}`);
    expect(inStore.discountCodes[0]!.state).toBe('MatchesCart');
    expect((await order(inStore)).statusCode).toBe(201);
  });

  it('refuses rewards that cannot be codes, naming the rule, and still makes the others', async () => {
    const alice = await customer();
    const good = rewardId();
    const report = await sync(alice, [
      fiveOff('bad id!'),
      fiveOff(rewardId(), { value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: -5 }] } }),
      fiveOff(rewardId(), { value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 5 }, { currencyCode: 'EUR', centAmount: 6 }] } }),
      fiveOff(rewardId(), { value: { type: 'relative', permyriad: 10_001 } }),
      fiveOff(rewardId(), { expiresAt: 'next tuesday' }),
      fiveOff(good),
    ]);
    expect(report.created).toEqual([good]);
    expect(report.refused.map((r) => r.reason)).toEqual([
      'the reward id must be letters, digits, "-" or "_"',
      'an absolute value needs ISO currency codes and whole positive cent amounts',
      'an absolute value has two amounts in one currency',
      'a relative value needs a whole permyriad from 1 to 10000',
      'expiresAt is not a date-time',
    ]);
    await expect(syncRewardCodes(env.ct, { customerId: 'x" or 1 = 1', rewards: [], prefix: PREFIX, now: () => NOW })).rejects.toThrow(/customer id/);
  });

  it('leaves a code bound to another customer alone and says so', async () => {
    const [alice, bob] = [await customer(), await customer()];
    const id = rewardId();
    await sync(alice, [fiveOff(id)]);
    const report = await sync(bob, [fiveOff(id)]);
    expect(report.refused).toEqual([{ rewardId: id, reason: 'the code of this reward is bound to another customer' }]);
    expect((await codeOf(id)).cartPredicate).toBe(`customer.id = "${alice}"`);
  });

  it('makes one code per reward when two syncs race', async () => {
    const alice = await customer();
    const id = rewardId();
    const reports = await Promise.all([sync(alice, [fiveOff(id)]), sync(alice, [fiveOff(id)])]);
    expect(reports.flatMap((r) => r.refused)).toEqual([]);
    expect(reports.flatMap((r) => r.created)).toEqual([id]);
    const codes = (await env.api.discountCodes().get({ queryArgs: { where: `code="${PREFIX}${id}"` } }).execute()).body.results;
    const discounts = (await env.api.cartDiscounts().get({ queryArgs: { where: `key="momentis-reward-${id}"` } }).execute()).body.results;
    expect([codes.length, discounts.length]).toEqual([1, 1]);
  });

  it("finds the rewards an order redeemed, each once, and builds the contract's redeem transaction", async () => {
    const alice = await customer();
    const [used, unused] = [rewardId(), rewardId()];
    await sync(alice, [fiveOff(used), fiveOff(unused)]);
    const shopCode = (await env.api.cartDiscounts().post({ body: { key: `shop-${randomUUID().slice(0, 8)}`, name: { en: 'Shop promo' }, value: { type: 'relative', permyriad: 500 }, cartPredicate: '1 = 1', target: { type: 'totalPrice' }, sortOrder: `0.${Date.now()}7`, requiresDiscountCode: true } }).execute()).body;
    await env.api.discountCodes().post({ body: { code: `SHOP-${used}`, cartDiscounts: [{ typeId: 'cart-discount', id: shopCode.id }] } }).execute();
    const withCodes = await addCode(await addCode(await cart({ customerId: alice }), `${PREFIX}${used}`), `SHOP-${used}`);
    const placed = (await env.api.orders().post({ body: { cart: { typeId: 'cart', id: withCodes.id }, version: withCodes.version, orderNumber: `N-${used}` } }).execute()).body;

    const found = await redeemedRewards(env.ct, placed as unknown as Record<string, unknown>, PREFIX);
    expect(found).toEqual([{ rewardId: used, discountCodeId: (await codeOf(used)).id }]);
    // With the codes expanded nothing is read; the same code listed twice is one redemption.
    const expanded = (await env.api.orders().withId({ ID: placed.id }).get({ queryArgs: { expand: ['discountCodes[*].discountCode'] } }).execute()).body;
    const codes = expanded.discountCodes ?? [];
    expect(codes[0]?.discountCode.obj?.key).toBe(`momentis-reward-${used}`);
    const twice = { ...expanded, discountCodes: [...codes, codes[0]!] } as unknown as Record<string, unknown>;
    const calls = env.emulator.apiRequests;
    expect(await redeemedRewards(env.ct, twice, PREFIX)).toEqual(found);
    expect(env.emulator.apiRequests).toBe(calls);

    const transaction = redeemTransaction(placed as unknown as Record<string, unknown>, found[0]!, 'msg-order-created-1');
    expect(transaction).toEqual({
      memberId: alice,
      idempotencyKey: `${placed.id}:${used}`,
      body: { type: 'redeem', sourceId: 'msg-order-created-1', rewardId: used, orderId: placed.id, orderNumber: `N-${used}`, occurredAt: new Date(Date.parse(placed.createdAt)).toISOString() },
    });
    expect(redeemTransaction(placed as unknown as Record<string, unknown>, found[0]!, 'msg-order-created-1')).toEqual(transaction);
    expect(() => redeemTransaction({ ...placed, customerId: undefined }, found[0]!, 'm')).toThrow(/no customer/);
  });

  it('finds no reward in an order without reward codes', async () => {
    const plain = (await order(await cart({ customerId: await customer() }))).body;
    expect(await redeemedRewards(env.ct, plain as unknown as Record<string, unknown>, PREFIX)).toEqual([]);
  });
});

describe('emulator: discount codes as commercetools applies them', () => {
  const env = useEmulator();

  const failure = async (promise: Promise<unknown>) => {
    const error = (await promise.then(() => undefined, (e: unknown) => e)) as { statusCode?: number; body?: { errors?: { code: string; field?: string; message: string }[] } } | undefined;
    return { status: error?.statusCode, code: error?.body?.errors?.[0]?.code, field: error?.body?.errors?.[0]?.field, message: error?.body?.errors?.[0]?.message ?? '' };
  };
  const discount = (overrides: Record<string, unknown> = {}) =>
    env.api
      .cartDiscounts()
      .post({ body: { name: { en: 'd' }, value: { type: 'relative', permyriad: 100 }, cartPredicate: '1 = 1', target: { type: 'totalPrice' }, sortOrder: `0.${randomUUID().replace(/\D/g, '')}1`, requiresDiscountCode: true, ...overrides } as never })
      .execute();

  it('keeps a code by key, keeps isActive false, and refuses a duplicate key, code or sort order', async () => {
    const d = (await discount({ key: 'd-1', sortOrder: '0.25' })).body;
    expect(d.isActive).toBe(true);
    const code = (await env.api.discountCodes().post({ body: { key: 'c-1', code: 'CODE-1', isActive: false, cartDiscounts: [{ typeId: 'cart-discount', key: 'd-1' }] } }).execute()).body;
    expect(code).toMatchObject({ key: 'c-1', isActive: false, cartDiscounts: [{ typeId: 'cart-discount', id: d.id }] });
    expect((await env.api.discountCodes().withKey({ key: 'c-1' }).get().execute()).body.id).toBe(code.id);
    expect(await failure(env.api.discountCodes().post({ body: { key: 'c-1', code: 'CODE-2', cartDiscounts: [{ typeId: 'cart-discount', id: d.id }] } }).execute())).toMatchObject({ status: 400, code: 'DuplicateField', field: 'key' });
    expect(await failure(env.api.discountCodes().post({ body: { key: 'c-2', code: 'CODE-1', cartDiscounts: [{ typeId: 'cart-discount', id: d.id }] } }).execute())).toMatchObject({ status: 400, code: 'DuplicateField', field: 'code' });
    expect(await failure(discount({ sortOrder: '0.25' }))).toMatchObject({ status: 400, code: 'DuplicateField', field: 'sortOrder' });
  });

  it('makes one resource of two racing creates with one key; the other is refused', async () => {
    const d = (await discount()).body;
    const create = () => env.api.discountCodes().post({ body: { key: 'race-1', code: `RACE-${randomUUID()}`, cartDiscounts: [{ typeId: 'cart-discount', id: d.id }] } }).execute();
    const results = await Promise.allSettled([create(), create(), create()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { statusCode?: number; body?: { errors?: { code: string; field?: string }[] } }] : []));
    expect(refusals.map((e) => [e.statusCode, e.body?.errors?.[0]?.code, e.body?.errors?.[0]?.field])).toEqual([
      [400, 'DuplicateField', 'key'],
      [400, 'DuplicateField', 'key'],
    ]);
  });

  it('refuses a cart predicate it cannot evaluate instead of guessing', async () => {
    const refused = await failure(discount({ cartPredicate: 'lineItemTotal(1 = 1) > "10.00 EUR"' }));
    expect(refused).toMatchObject({ status: 400, code: 'InvalidInput' });
    expect(refused.message).toContain('the emulator evaluates only customer.id, currency, country');
  });

  it('evaluates and, or, not, in and currency in cart predicates', async () => {
    const d = (await discount({ cartPredicate: 'currency in ("EUR", "GBP") and not (country = "FR" or customer.id = "nobody")' })).body;
    await env.api.discountCodes().post({ body: { code: 'PRED-1', cartDiscounts: [{ typeId: 'cart-discount', id: d.id }] } }).execute();
    const stateIn = async (currency: string, country: string) => {
      const created = (await env.api.carts().post({ body: { currency, country, anonymousId: randomUUID() } }).execute()).body;
      const added = (await env.api.carts().withId({ ID: created.id }).post({ body: { version: created.version, actions: [{ action: 'addDiscountCode', code: 'PRED-1' }] } }).execute()).body;
      return added.discountCodes[0]!.state;
    };
    expect(await stateIn('EUR', 'DE')).toBe('MatchesCart');
    expect(await stateIn('EUR', 'FR')).toBe('DoesNotMatchCart');
    expect(await stateIn('USD', 'DE')).toBe('DoesNotMatchCart');
  });

  it('answers an unknown code with DiscountCodeNonApplicable', async () => {
    const created = (await env.api.carts().post({ body: { currency: 'EUR' } }).execute()).body;
    expect(await failure(env.api.carts().withId({ ID: created.id }).post({ body: { version: created.version, actions: [{ action: 'addDiscountCode', code: 'NO-SUCH-CODE' }] } }).execute())).toMatchObject({ status: 400, code: 'DiscountCodeNonApplicable' });
  });
});
