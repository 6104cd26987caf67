// Momentis destination (`type: momentis`): the REST destination (destinations/rest/) with the contract's defaults
// (settings.ts, after spec/momentis/momentis.openapi.yaml) and default mappings of members, interactions and
// loyalty transactions (defaults.ts); everything overridable in the configuration. What Momentis needs beyond a
// plain REST call: an event is about a member, so one about a guest (no customer) is not sent — Momentis knows
// members only; a message that means no interaction or transaction (its mapped `type` is empty) is not sent; and
// a brand's destination (`stores`) takes only what belongs to its stores, so two programmes stay apart; a cart
// created and never ordered becomes `cart.abandoned` after the idle time (cart-abandonment.ts). Momentis
// owns points, tier and rewards: an outbound mapping of the loyalty fields is refused at start-up, and they come
// back only through the webhooks (inbound.ts). An order placed with reward codes of this programme (its code
// prefix) is reported as one `redeem` transaction per reward, keyed by order and reward (commercetools/reward-codes.ts).
import { redeemedRewards, redeemTransaction, type DiscountCodeReader } from '../../commercetools/reward-codes.ts';
import { defineDestination, type EventItem, type FieldProblem, type ItemOutcome, type MappedFieldNames, type RecordItem } from '../kit/index.ts';
import { checkOperations } from '../rest/index.ts';
import { createRestClient } from '../rest/client.ts';
import { eventContext, sendEvent, type RestConnection } from '../rest/events.ts';
import { sendRecord } from '../rest/records.ts';
import { createEventWindow } from '../rest/window.ts';
import { createCartAbandonment, type CartAbandonment } from './cart-abandonment.ts';
import { momentisDefaultMappings } from './defaults.ts';
import { LOYALTY_FIELDS, momentisInbound } from './inbound.ts';
import { brandStores, checkMomentisSettings, momentisSettings, momentisToRest, type MomentisSettings } from './settings.ts';

interface MomentisConnection extends RestConnection {
  settings: MomentisSettings;
  carts: CartAbandonment | undefined;
}

/** The cart an interaction is about (data.cartId), if any. */
function cartOf(payload: Record<string, unknown>): string | undefined {
  const data = payload.data;
  return data !== null && typeof data === 'object' ? text((data as Record<string, unknown>).cartId) : undefined;
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

/** The store an item is of: the member's, the interaction's context's, the transaction's. */
function storeOf(values: Record<string, unknown>): string | undefined {
  const context = values.context;
  return text(values.store) ?? (context !== null && typeof context === 'object' ? text((context as Record<string, unknown>).store) : undefined);
}

/** Another brand's store: not this destination's. */
const elsewhere = (settings: MomentisSettings, store: string | undefined) => {
  const stores = brandStores(settings);
  return stores !== undefined && store !== undefined && !stores.includes(store);
};

/** Momentis owns the loyalty fields: a mapping sending them from commercetools is refused. */
function checkLoyaltyFields(mapped: MappedFieldNames): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [block, mappings] of [['records', mapped.records], ['events', mapped.events]] as const) {
    for (const [mapping, fields] of Object.entries(mappings)) {
      for (const field of fields) {
        if (LOYALTY_FIELDS.has(field)) problems.push({ block, mapping, field, message: `${field} is Momentis' own (points, tier and rewards come from its webhooks): ctbridge never sends it from commercetools` });
      }
    }
  }
  return problems;
}

const SKIPPED: ItemOutcome = { ok: true, skipped: true };

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The engine expanded every discount code of the order it could read; one it could not is gone, no reward's. */
const EXPANDED_ONLY: DiscountCodeReader = { fetchReferenced: () => Promise.resolve(new Map()) };

/**
 * One redeem transaction per reward an order used, each under the Idempotency-Key of order and reward, so a retry
 * (all of them again) books each reward once. Only codes with this programme's prefix: another brand's are its own.
 */
async function sendRedemptions(connection: MomentisConnection, item: EventItem): Promise<ItemOutcome> {
  const order = item.payload.order;
  const operation = connection.client.settings.operations.events[item.eventType];
  if (!isRecord(order) || operation === undefined) return SKIPPED;
  const { prefix } = connection.settings.rewardCodes;
  const infos = Array.isArray(order.discountCodes) ? (order.discountCodes as Array<{ discountCode?: { obj?: { code?: unknown } } }>) : [];
  const own = infos.filter((info) => typeof info.discountCode?.obj?.code === 'string' && info.discountCode.obj.code.startsWith(prefix));
  for (const reward of await redeemedRewards(EXPANDED_ONLY, { ...order, discountCodes: own }, prefix)) {
    const transaction = redeemTransaction(order, reward, item.idempotencyKey);
    await connection.client.call(operation.send, { ...eventContext(item), customerId: transaction.memberId, fields: transaction.body }, { idempotencyKey: transaction.idempotencyKey, correlationId: item.correlationId, defaultBody: transaction.body });
  }
  return { ok: true };
}

export const momentisDestination = defineDestination({
  type: 'momentis',
  description: 'Momentis loyalty and customer care (contract spec/momentis): members, an interaction timeline, loyalty accruals and reversals; points, tier and rewards back through signed webhooks',
  settings: momentisSettings,
  limits: (settings) => ({ maxBatchSize: settings.concurrency, rateLimit: settings.rateLimit }),
  // A PUT replaces the whole member: whenever something changed, the whole mapped record goes.
  delta: 'full',
  checkSettings: checkMomentisSettings,
  checkFields: (settings, mapped) => [...checkOperations(momentisToRest(settings), mapped), ...checkLoyaltyFields(mapped)],
  defaultMappings: (settings) => momentisDefaultMappings(settings),
  client(settings, deps): MomentisConnection {
    const client = createRestClient(momentisToRest(settings), deps);
    const connection: MomentisConnection = { client, window: createEventWindow(client), settings, carts: undefined };
    const { enabled, idleMinutes, checkMs } = settings.cartAbandonment;
    if (enabled) connection.carts = createCartAbandonment(client, { idleMs: idleMinutes * 60_000, checkMs, send: (item) => sendEvent.perform(connection, item) });
    return connection;
  },
  records: {
    name: 'upsert member',
    perform(connection: MomentisConnection, item: RecordItem) {
      if (item.operation === 'upsert' && elsewhere(connection.settings, storeOf(item.record))) return Promise.resolve(SKIPPED);
      return sendRecord.perform(connection.client, item);
    },
  },
  events: {
    name: 'send interaction or transaction',
    async perform(connection: MomentisConnection, item: EventItem) {
      // Only a member has a timeline and a balance; a message meaning nothing here has no type.
      if (!item.person?.key.startsWith('customer:')) return SKIPPED;
      const type = text(item.payload.type);
      if (type === undefined) return SKIPPED;
      if (elsewhere(connection.settings, storeOf(item.payload))) return SKIPPED;
      if (type === 'redeem') return sendRedemptions(connection, item);
      // A field the message has no value for is left out (the contract's bodies have no nulls: an accrual no reason).
      const outcome = await sendEvent.perform(connection, { ...item, payload: Object.fromEntries(Object.entries(item.payload).filter(([, value]) => value !== null && value !== undefined)) });
      const cart = item.eventType === 'interactions' ? cartOf(item.payload) : undefined;
      if (outcome.ok && cart !== undefined && connection.carts) {
        if (type === 'cart.created') await connection.carts.created(item, cart, item.occurredAt ?? connection.client.now());
        else if (type === 'order.placed') await connection.carts.ordered(item, cart, item.occurredAt ?? connection.client.now());
      }
      return outcome;
    },
  },
  close(connection) {
    connection.client.close();
    return Promise.resolve();
  },
  inbound: momentisInbound,
});
