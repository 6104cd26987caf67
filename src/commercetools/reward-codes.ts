// Momentis rewards as commercetools discount codes: each reward Momentis says is available becomes a single-use code
// bound to its customer (a cart discount plus a discount code, both keyed `momentis-reward-<reward id>`), a reward
// redeemed, expired or gone has its code deactivated, and an order placed with such a code tells which rewards it
// redeemed, for the `redeem` transaction sent back to Momentis. Momentis owns the rewards; commercetools holds only
// what checkout needs to apply them. Writes go through the official SDK on the engine's client, at the version
// read (409 → read and decide again, as commercetools/writeback.ts does), so running a sync twice, or from two
// processes at once, leaves one code per reward and changes nothing the second time. One cart discount per reward
// is within commercetools' limits: the limit of 100 active cart discounts applies only to those that need no code
// (release note "Limit discount codes on carts", 2017-09-11; CartDiscount: "isActive=true and
// requiresDiscountCode=false"); a code names up to 10 cart discounts (ours one) and a cart holds up to 10 codes.
import { createHash } from 'node:crypto';
import type { CartDiscount, CartDiscountDraft, CartDiscountUpdateAction, CartDiscountValueDraft, DiscountCode, DiscountCodeDraft, DiscountCodeUpdateAction } from '@commercetools/platform-sdk';
import { DeliveryError, PermanentError, RetryableError } from '../destinations/kit/errors.ts';
import { quotePredicateString, toDeliveryErrorFromCommercetools, type CommercetoolsClient } from './client.ts';

/** Key of a reward's cart discount and discount code (keys are unique per resource type, so both share it). */
export const REWARD_KEY_PREFIX = 'momentis-reward-';
export const DEFAULT_REWARD_CODE_PREFIX = 'MOM-';
/** The discount-code group every reward code is in, and the one naming its customer (how codes of rewards gone from Momentis are found). */
export const REWARD_CODE_GROUP = 'momentis-rewards';
const customerGroupTag = (customerId: string) => `momentis-customer-${customerId}`;

export interface LoyaltyReward {
  id: string;
  name: string;
  status: 'available' | 'redeemed' | 'expired';
  value: { type: 'absolute'; money: { currencyCode: string; centAmount: number }[] } | { type: 'relative'; permyriad: number };
  expiresAt?: string | undefined;
}

export interface SyncRewardCodesOptions {
  /** The commercetools customer id (Momentis' member externalId). */
  customerId: string;
  /** The member's full reward list from Momentis' latest loyalty snapshot. */
  rewards: readonly LoyaltyReward[];
  /** Put before the reward id to make the code shoppers type (`MOM-` by default in configuration). */
  prefix: string;
  /** Limits the cart discount to carts of this Store. */
  storeKey?: string | undefined;
  now: () => number;
}

/** What a sync did, by reward id; no personal data (not even the customer id). */
export interface RewardCodeSyncReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  deactivated: string[];
  /** Rewards that cannot become a code as they are (bad id or value, a code of another customer): the reason, never a value. */
  refused: { rewardId: string; reason: string }[];
}

type Api = CommercetoolsClient['api'];
const MAX_WRITE_ATTEMPTS = 3;
const PAGE_SIZE = 500;
const KEYS_PER_QUERY = 100;
const SAFE_ID = /^[A-Za-z0-9_-]+$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * Makes commercetools hold one active, customer-bound, single-use code for each available reward and no active code
 * for a reward redeemed, expired (also by `expiresAt` passed) or no longer listed. Failures that a retry may fix
 * (network, 5xx, 429, repeated 409) are thrown after what was done so far; a retry of the whole sync is safe.
 */
export async function syncRewardCodes(client: Pick<CommercetoolsClient, 'api'>, options: SyncRewardCodesOptions): Promise<RewardCodeSyncReport> {
  const { customerId, prefix } = options;
  if (!SAFE_ID.test(customerId)) throw new PermanentError('reward codes: the customer id must be letters, digits, "-" or "_"');
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) throw new PermanentError('reward codes: the code prefix must be letters, digits, "-" or "_"');
  const report: RewardCodeSyncReport = { created: [], updated: [], unchanged: [], deactivated: [], refused: [] };
  const now = options.now();
  const wanted = new Map<string, LoyaltyReward>();
  for (const reward of options.rewards) {
    const problem = rewardProblem(reward, prefix);
    if (problem) {
      report.refused.push({ rewardId: String(reward.id), reason: problem });
      continue;
    }
    const expired = reward.expiresAt !== undefined && Date.parse(reward.expiresAt) <= now;
    if (reward.status === 'available' && !expired) wanted.set(reward.id, reward);
  }
  const existing = await existingCodes(client.api, customerId, [...wanted.keys()].map(rewardKey));
  const ownTag = customerGroupTag(customerId);
  for (const [rewardId, reward] of wanted) {
    const code = existing.get(rewardKey(rewardId));
    try {
      if (code && !code.groups.includes(ownTag)) {
        report.refused.push({ rewardId, reason: 'the code of this reward is bound to another customer' });
        continue;
      }
      const outcome = code ? await converge(client.api, code, desiredCode(reward, options)) : await create(client.api, reward, options);
      report[outcome].push(rewardId);
    } catch (error) {
      report.refused.push({ rewardId, reason: reasonOrRethrow(error) });
    }
  }
  // Codes of this customer whose reward ended or is no longer listed.
  for (const code of existing.values()) {
    const rewardId = rewardIdOfKey(code.key);
    if (rewardId === undefined || wanted.has(rewardId) || !code.groups.includes(ownTag)) continue;
    try {
      const outcome = await deactivate(client.api, code);
      report[outcome].push(rewardId);
    } catch (error) {
      report.refused.push({ rewardId, reason: reasonOrRethrow(error) });
    }
  }
  return report;
}

/** The rewards an order redeemed, each once: its codes (expanded, or read by id) whose key names a reward. */
export interface RedeemedReward {
  rewardId: string;
  discountCodeId: string;
}

/** What reads discount codes by id: the commercetools client, or the engine's ResourceFetcher over it. */
export interface DiscountCodeReader {
  fetchReferenced(typeId: 'discount-code', by: 'id', ids: string[]): Promise<Map<string, Record<string, unknown>>>;
}

export async function redeemedRewards(client: DiscountCodeReader, order: Record<string, unknown>, prefix: string): Promise<RedeemedReward[]> {
  const infos = Array.isArray(order.discountCodes) ? (order.discountCodes as { discountCode?: { id?: unknown; obj?: unknown }; state?: unknown }[]) : [];
  // An order keeps the codes' states from its cart; only a code that matched was applied (the API refuses to create
  // an order with one in any other state, and ApplicationStoppedByGroupBestDeal means it was not applied).
  const applied = infos.filter((info) => typeof info.discountCode?.id === 'string' && (info.state === undefined || info.state === 'MatchesCart'));
  const codes = new Map<string, Record<string, unknown>>();
  const missing: string[] = [];
  for (const info of applied) {
    const id = info.discountCode!.id as string;
    if (isRecord(info.discountCode!.obj)) codes.set(id, info.discountCode!.obj);
    else missing.push(id);
  }
  if (missing.length > 0) for (const [id, code] of await client.fetchReferenced('discount-code', 'id', missing)) codes.set(id, code);
  const found = new Map<string, RedeemedReward>();
  for (const info of applied) {
    const id = info.discountCode!.id as string;
    const code = codes.get(id);
    if (!code) continue;
    const rewardId = rewardIdOfKey(code.key) ?? (typeof code.code === 'string' && prefix && code.code.startsWith(prefix) ? code.code.slice(prefix.length) : undefined);
    if (rewardId && !found.has(rewardId)) found.set(rewardId, { rewardId, discountCodeId: id });
  }
  return [...found.values()];
}

/** The contract's `redeem` transaction for one reward an order used: `POST /v1/members/{memberId}/transactions`. */
export interface RedeemTransaction {
  memberId: string;
  idempotencyKey: string;
  body: { type: 'redeem'; sourceId: string; rewardId: string; orderId: string; orderNumber?: string; occurredAt: string };
}

/**
 * `sourceId` is the id of the message that reported the order's creation. The body depends only on the order and
 * that message, so a retry sends the same body under the same Idempotency-Key (order id and reward id), which
 * Momentis answers with its first answer; `occurredAt` is when the order was created, when the code was used.
 */
export function redeemTransaction(order: Record<string, unknown>, reward: Pick<RedeemedReward, 'rewardId'>, sourceId: string): RedeemTransaction {
  const orderId = order.id;
  const customerId = order.customerId;
  const createdAt = order.createdAt;
  if (typeof orderId !== 'string' || orderId === '') throw new PermanentError('redeem: the order has no id');
  if (typeof customerId !== 'string' || customerId === '') throw new PermanentError(`redeem: order ${orderId} has no customer, and a reward belongs to a member`);
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) throw new PermanentError(`redeem: order ${orderId} has no createdAt`);
  const orderNumber = typeof order.orderNumber === 'string' && order.orderNumber !== '' ? order.orderNumber : undefined;
  return {
    memberId: customerId,
    idempotencyKey: `${orderId}:${reward.rewardId}`,
    body: { type: 'redeem', sourceId, rewardId: reward.rewardId, orderId, ...(orderNumber && { orderNumber }), occurredAt: new Date(Date.parse(createdAt)).toISOString() },
  };
}

const rewardKey = (rewardId: string) => `${REWARD_KEY_PREFIX}${rewardId}`;

function rewardIdOfKey(key: unknown): string | undefined {
  return typeof key === 'string' && key.startsWith(REWARD_KEY_PREFIX) && key.length > REWARD_KEY_PREFIX.length ? key.slice(REWARD_KEY_PREFIX.length) : undefined;
}

/** Why a reward cannot become a code, or undefined. Names the rule broken, never the value. */
function rewardProblem(reward: LoyaltyReward, prefix: string): string | undefined {
  if (typeof reward.id !== 'string' || !SAFE_ID.test(reward.id)) return 'the reward id must be letters, digits, "-" or "_"';
  // A key is at most 256 characters (DiscountCodeDraft in the API reference).
  if (rewardKey(reward.id).length > 256) return 'the reward id is too long for a commercetools key';
  if (!['available', 'redeemed', 'expired'].includes(reward.status)) return 'the reward status is not available, redeemed or expired';
  if (reward.expiresAt !== undefined && Number.isNaN(Date.parse(reward.expiresAt))) return 'expiresAt is not a date-time';
  if (reward.status !== 'available') return undefined;
  if (typeof reward.name !== 'string' || reward.name.trim() === '') return 'the reward has no name';
  const value = reward.value as { type?: unknown; money?: unknown; permyriad?: unknown } | undefined;
  if (value?.type === 'relative') {
    if (!Number.isInteger(value.permyriad) || (value.permyriad as number) < 1 || (value.permyriad as number) > 10_000) return 'a relative value needs a whole permyriad from 1 to 10000';
  } else if (value?.type === 'absolute') {
    const money = Array.isArray(value.money) ? (value.money as { currencyCode?: unknown; centAmount?: unknown }[]) : [];
    if (money.length === 0) return 'an absolute value needs an amount in at least one currency';
    if (money.some((m) => typeof m.currencyCode !== 'string' || !CURRENCY.test(m.currencyCode) || !Number.isInteger(m.centAmount) || (m.centAmount as number) < 1)) {
      return 'an absolute value needs ISO currency codes and whole positive cent amounts';
    }
    // commercetools refuses two amounts in one currency (InvalidOperation).
    if (new Set(money.map((m) => m.currencyCode)).size !== money.length) return 'an absolute value has two amounts in one currency';
  } else {
    return 'the reward value is neither absolute nor relative';
  }
  if (`${prefix}${reward.id}`.length > 64 && prefix.length > 0) return 'the code (prefix and reward id) is longer than 64 characters';
  return undefined;
}

interface DesiredCode {
  key: string;
  cartDiscount: CartDiscountDraft;
  code: Omit<DiscountCodeDraft, 'cartDiscounts'>;
}

function desiredCode(reward: LoyaltyReward, options: SyncRewardCodesOptions): DesiredCode {
  const key = rewardKey(reward.id);
  // Bound on the code and on its discount: the discount then applies to no one else, whatever code points at it.
  // Cart predicate identifiers: https://docs.commercetools.com/api/projects/predicates (customer.id, currency).
  const cartPredicate = `customer.id = ${quotePredicateString(options.customerId)}`;
  const value: CartDiscountValueDraft =
    reward.value.type === 'absolute' ? { type: 'absolute', money: reward.value.money.map((m) => ({ currencyCode: m.currencyCode, centAmount: m.centAmount })) } : { type: 'relative', permyriad: reward.value.permyriad };
  // An absolute discount takes nothing off a cart in another currency, yet the code would match and the order use
  // the reward up: such a cart does not match, so checkout refuses the code instead.
  const discountPredicate = value.type === 'absolute' ? `${cartPredicate} and currency in (${value.money.map((m) => quotePredicateString(m.currencyCode)).join(', ')})` : cartPredicate;
  return {
    key,
    cartDiscount: {
      key,
      name: { en: reward.name },
      value,
      cartPredicate: discountPredicate,
      // Off the cart's total, the way a voucher is; after the shop's own promotions (a low sort order: commercetools
      // applies higher ones first) and alongside them (Stacking), so a reward neither blocks nor is blocked.
      target: { type: 'totalPrice' },
      sortOrder: sortOrderOf(key, 0),
      isActive: true,
      requiresDiscountCode: true,
      stackingMode: 'Stacking',
      ...(options.storeKey && { stores: [{ typeId: 'store' as const, key: options.storeKey }] }),
    },
    code: {
      key,
      code: `${options.prefix}${reward.id}`,
      name: { en: reward.name },
      cartPredicate,
      isActive: true,
      maxApplications: 1,
      groups: [REWARD_CODE_GROUP, customerGroupTag(options.customerId)],
      ...(reward.expiresAt !== undefined && { validUntil: new Date(Date.parse(reward.expiresAt)).toISOString() }),
    },
  };
}

/**
 * A sort order for the reward's cart discount, which must be unique among all cart discounts: derived from the
 * reward's key (so the same reward always asks for the same one), below 0.001, with `attempt` choosing another
 * when one is taken.
 */
function sortOrderOf(key: string, attempt: number): string {
  const hash = createHash('sha256').update(`${key}#${attempt}`).digest('hex');
  const digits = (BigInt(`0x${hash.slice(0, 16)}`) % 10n ** 15n).toString().padStart(15, '0');
  // Ends in 1 so that no two strings name the same number (0.5 and 0.50).
  return `0.000${digits}1`;
}

type Outcome = 'created' | 'updated' | 'unchanged';

/** This customer's reward codes (by their group) and codes under the given keys, keyed by key, with their discounts expanded. */
async function existingCodes(api: Api, customerId: string, keys: string[]): Promise<Map<string, DiscountCode>> {
  const found = new Map<string, DiscountCode>();
  const query = async (where: string) => {
    for (let offset = 0; ; offset += PAGE_SIZE) {
      let page: DiscountCode[];
      try {
        page = (await api.discountCodes().get({ queryArgs: { where, expand: ['cartDiscounts[*]'], limit: PAGE_SIZE, offset, withTotal: false } }).execute()).body.results;
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, 'reading the reward discount codes');
      }
      for (const code of page) if (code.key) found.set(code.key, code);
      if (page.length < PAGE_SIZE) return;
    }
  };
  // `contains any (…)` is the query predicate for an array holding a value (https://docs.commercetools.com/api/predicates/query).
  await query(`groups contains any (${quotePredicateString(customerGroupTag(customerId))})`);
  const unknown = keys.filter((key) => !found.has(key));
  for (let i = 0; i < unknown.length; i += KEYS_PER_QUERY) {
    await query(`key in (${unknown.slice(i, i + KEYS_PER_QUERY).map(quotePredicateString).join(', ')})`);
  }
  return found;
}

/** Creates the reward's cart discount (unless it exists) and code; a code another process created meanwhile is converged instead. */
async function create(api: Api, reward: LoyaltyReward, options: SyncRewardCodesOptions): Promise<Outcome> {
  const desired = desiredCode(reward, options);
  const discount = await ensureCartDiscount(api, desired);
  try {
    await api
      .discountCodes()
      .post({ body: { ...desired.code, cartDiscounts: [{ typeId: 'cart-discount', id: discount.id }] } })
      .execute();
    return 'created';
  } catch (error) {
    const refused = apiErrorOf(error);
    if (refused.code === 'DuplicateField' && refused.field === 'key') {
      const code = await readCode(api, desired.key);
      if (code) return converge(api, code, desired);
    }
    if (refused.code === 'DuplicateField' && refused.field === 'code') throw new PermanentError('another discount code already has this reward\'s code');
    throw toDeliveryErrorFromCommercetools(error, 'creating a reward discount code');
  }
}

async function ensureCartDiscount(api: Api, desired: DesiredCode): Promise<CartDiscount> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const existing = await readCartDiscount(api, desired.key);
    if (existing) {
      await convergeCartDiscount(api, existing, desired.cartDiscount);
      return existing;
    }
    try {
      return (await api.cartDiscounts().post({ body: { ...desired.cartDiscount, sortOrder: sortOrderOf(desired.key, attempt) } }).execute()).body;
    } catch (error) {
      const refused = apiErrorOf(error);
      // Another process created it (key), or another discount has this sort order: read again, or try the next one.
      if (refused.code === 'DuplicateField' && (refused.field === 'key' || refused.field === 'sortOrder')) continue;
      throw toDeliveryErrorFromCommercetools(error, 'creating a reward cart discount');
    }
  }
  throw new RetryableError('creating a reward cart discount: no free sort order or a key kept changing hands');
}

/** Brings an existing code (and its cart discount) to what the reward says: active, bound, single-use, valid until it expires. */
async function converge(api: Api, found: DiscountCode, desired: DesiredCode): Promise<Outcome> {
  let code: DiscountCode | undefined = found;
  let changed = false;
  for (const reference of code.cartDiscounts) {
    const discount = reference.obj ?? (await readCartDiscountById(api, reference.id));
    if (discount && discount.key === desired.key && (await convergeCartDiscount(api, discount, desired.cartDiscount))) changed = true;
  }
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && code; attempt += 1) {
    const actions = codeActions(code, desired.code);
    if (actions.length === 0) return changed ? 'updated' : 'unchanged';
    const written = await updateCode(api, code, actions);
    if (written) return 'updated';
    code = await readCode(api, desired.key);
  }
  if (!code) throw new RetryableError('a reward discount code was deleted while it was being updated');
  throw new RetryableError('a reward discount code kept changing while it was being updated (409)');
}

function codeActions(code: DiscountCode, desired: DesiredCode['code']): DiscountCodeUpdateAction[] {
  const actions: DiscountCodeUpdateAction[] = [];
  if (!code.isActive) actions.push({ action: 'changeIsActive', isActive: true });
  if (code.cartPredicate !== desired.cartPredicate) actions.push({ action: 'setCartPredicate', ...(desired.cartPredicate !== undefined && { cartPredicate: desired.cartPredicate }) });
  if (code.maxApplications !== desired.maxApplications) actions.push({ action: 'setMaxApplications', ...(desired.maxApplications !== undefined && { maxApplications: desired.maxApplications }) });
  if (!sameInstant(code.validUntil, desired.validUntil)) actions.push({ action: 'setValidUntil', ...(desired.validUntil !== undefined && { validUntil: desired.validUntil }) });
  return actions;
}

/** True when it wrote something. */
async function convergeCartDiscount(api: Api, found: CartDiscount, desired: CartDiscountDraft): Promise<boolean> {
  let discount: CartDiscount | undefined = found;
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && discount; attempt += 1) {
    const actions: CartDiscountUpdateAction[] = [];
    if (!discount.isActive) actions.push({ action: 'changeIsActive', isActive: true });
    if (discount.cartPredicate !== desired.cartPredicate) actions.push({ action: 'changeCartPredicate', cartPredicate: desired.cartPredicate });
    if (!sameValue(discount.value, desired.value)) actions.push({ action: 'changeValue', value: desired.value });
    const stores = (desired.stores ?? []).map((store) => store.key).sort();
    if (JSON.stringify((discount.stores ?? []).map((store) => store.key).sort()) !== JSON.stringify(stores)) actions.push({ action: 'setStores', stores: desired.stores ?? [] });
    if (actions.length === 0) return false;
    if (await updateCartDiscount(api, discount, actions)) return true;
    discount = await readCartDiscount(api, desired.key ?? '');
  }
  if (!discount) throw new RetryableError('a reward cart discount was deleted while it was being updated');
  throw new RetryableError('a reward cart discount kept changing while it was being updated (409)');
}

async function deactivate(api: Api, found: DiscountCode): Promise<'deactivated' | 'unchanged'> {
  let code: DiscountCode | undefined = found;
  let changed = false;
  for (const reference of found.cartDiscounts) {
    let discount = reference.obj ?? (await readCartDiscountById(api, reference.id));
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && discount?.isActive && discount.key === found.key; attempt += 1) {
      if (await updateCartDiscount(api, discount, [{ action: 'changeIsActive', isActive: false }])) {
        changed = true;
        break;
      }
      discount = await readCartDiscountById(api, reference.id);
    }
  }
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && code; attempt += 1) {
    if (!code.isActive) return changed ? 'deactivated' : 'unchanged';
    if (await updateCode(api, code, [{ action: 'changeIsActive', isActive: false }])) return 'deactivated';
    code = await readCode(api, found.key ?? '');
  }
  if (!code) return changed ? 'deactivated' : 'unchanged';
  throw new RetryableError('a reward discount code kept changing while it was being deactivated (409)');
}

/** False on 409 (changed since read): the caller reads again and decides again. */
async function updateCode(api: Api, code: DiscountCode, actions: DiscountCodeUpdateAction[]): Promise<boolean> {
  try {
    await api.discountCodes().withId({ ID: code.id }).post({ body: { version: code.version, actions } }).execute();
    return true;
  } catch (error) {
    if (apiErrorOf(error).status === 409) return false;
    throw toDeliveryErrorFromCommercetools(error, 'updating a reward discount code');
  }
}

async function updateCartDiscount(api: Api, discount: CartDiscount, actions: CartDiscountUpdateAction[]): Promise<boolean> {
  try {
    await api.cartDiscounts().withId({ ID: discount.id }).post({ body: { version: discount.version, actions } }).execute();
    return true;
  } catch (error) {
    if (apiErrorOf(error).status === 409) return false;
    throw toDeliveryErrorFromCommercetools(error, 'updating a reward cart discount');
  }
}

async function readCode(api: Api, key: string): Promise<DiscountCode | undefined> {
  try {
    return (await api.discountCodes().withKey({ key }).get({ queryArgs: { expand: ['cartDiscounts[*]'] } }).execute()).body;
  } catch (error) {
    if (apiErrorOf(error).status === 404) return undefined;
    throw toDeliveryErrorFromCommercetools(error, 'reading a reward discount code');
  }
}

async function readCartDiscount(api: Api, key: string): Promise<CartDiscount | undefined> {
  try {
    return (await api.cartDiscounts().withKey({ key }).get().execute()).body;
  } catch (error) {
    if (apiErrorOf(error).status === 404) return undefined;
    throw toDeliveryErrorFromCommercetools(error, 'reading a reward cart discount');
  }
}

async function readCartDiscountById(api: Api, id: string): Promise<CartDiscount | undefined> {
  try {
    return (await api.cartDiscounts().withId({ ID: id }).get().execute()).body;
  } catch (error) {
    if (apiErrorOf(error).status === 404) return undefined;
    throw toDeliveryErrorFromCommercetools(error, 'reading a reward cart discount');
  }
}

/** The status and the first error's code and field of a commercetools answer the SDK threw. */
function apiErrorOf(error: unknown): { status: number | undefined; code: string | undefined; field: string | undefined } {
  const outer = (error ?? {}) as { statusCode?: unknown; body?: { statusCode?: unknown; errors?: { code?: unknown; field?: unknown }[] } };
  const status = outer.statusCode ?? outer.body?.statusCode;
  const first = outer.body?.errors?.[0];
  return {
    status: typeof status === 'number' ? status : undefined,
    code: typeof first?.code === 'string' ? first.code : undefined,
    field: typeof first?.field === 'string' ? first.field : undefined,
  };
}

/** A per-reward failure: permanent ones are reported for that reward, the others stop the sync to be retried. */
function reasonOrRethrow(error: unknown): string {
  if (error instanceof DeliveryError && !error.retryable) return error.message;
  throw error;
}

function sameInstant(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Date.parse(a) === Date.parse(b);
}

function sameValue(actual: CartDiscount['value'], desired: CartDiscountValueDraft): boolean {
  if (actual.type === 'relative' && desired.type === 'relative') return actual.permyriad === desired.permyriad;
  if (actual.type === 'absolute' && desired.type === 'absolute') {
    const amounts = (money: readonly { currencyCode: string; centAmount: number }[]) =>
      money
        .map((m) => `${m.currencyCode}:${m.centAmount}`)
        .sort()
        .join(',');
    return amounts(actual.money) === amounts(desired.money);
  }
  return false;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
