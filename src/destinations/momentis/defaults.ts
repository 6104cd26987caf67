// The mappings a Momentis destination gets when it maps nothing itself (ordinary mapping fields, so `ctbridge
// mapping preview` shows them and a destination can copy and change them):
// - `member` (customers): the contract's member — externalId (the customer id), e-mail, names and phone as vault
//   tokens by default (memberPii), store (the brand's own store of the customer first), locale (the market's when
//   the customer has none), currency (the market's: `markets`), customer group key, brand.
// - `interactions`: what happened to a member's carts, orders, payments, shipments, returns and refunds, one
//   interaction per source message (its id the message's), with the market context (store, channel, locale,
//   currency, price channel: the market's price book when `markets` names one) and a link to the order in the
//   back office. A message that means no interaction (a payment transaction still pending, a shipment state
//   between) has no type and is not sent.
// - `loyalty`: an accrual when an order is paid (its total, in its currency, with its store), a reversal when it
//   is cancelled or refunded (the refund's amount, when the refund transaction is added as Success or moves to
//   it) — and, when `reverseOn` has it, when goods are returned (their value; only for shops whose returns are
//   not refunded through payment transactions, which would reverse twice).
// - `redemptions` (with `rewardCodes.enabled`): an order placed with reward codes, whose codes the connector
//   reports to Momentis as one `redeem` transaction each (index.ts); an order without codes is not sent.
// The order a payment or order-state message only names is read from commercetools: `$subject` (event-delivery).
import { brandStores, type MomentisSettings } from './settings.ts';

/** The commercetools messages that become interactions. */
export const INTERACTION_MESSAGES = ['CartCreated', 'OrderCreated', 'OrderStateChanged', 'PaymentTransactionAdded', 'PaymentTransactionStateChanged', 'OrderShipmentStateChanged', 'ParcelAddedToDelivery', 'ReturnInfoAdded'];

/** The commercetools messages that may become loyalty transactions. */
export const LOYALTY_MESSAGES = ['OrderPaymentStateChanged', 'OrderStateChanged', 'PaymentTransactionAdded', 'PaymentTransactionStateChanged', 'ReturnInfoAdded'];

/**
 * The payment transaction a payment message is about: the message's own (PaymentTransactionAdded), or, for
 * PaymentTransactionStateChanged, which names only the transaction id and its new state, the one in the order's
 * payments (a payment message's `$subject` is its order, payments expanded: commercetools/client.ts). A payment
 * service provider usually adds a transaction as Pending and moves it to Success later, so the capture or refund
 * is the state change, not the addition.
 */
const TRANSACTION = `(type = "PaymentTransactionStateChanged" ? $merge([$subject.paymentInfo.payments.obj.transactions[id = $$.transactionId], { "state": $$.state }]) : transaction)`;

const INTERACTION_TYPE = `(
  type = "CartCreated" ? "cart.created" :
  type = "OrderCreated" ? "order.placed" :
  type = "OrderStateChanged" ? "order.state_changed" :
  type = "PaymentTransactionAdded" ? (
    transaction.state = "Failure" ? "payment.failed" :
    transaction.type = "Refund" ? (transaction.state = "Success" ? "payment.refunded" : "refund.created") :
    transaction.state = "Success" and transaction.type = "Authorization" ? "payment.authorized" :
    transaction.state = "Success" and transaction.type = "Charge" ? "payment.captured" : null
  ) :
  type = "PaymentTransactionStateChanged" ? (
    $t := ${TRANSACTION};
    state = "Failure" ? "payment.failed" :
    state = "Success" and $t.type = "Refund" ? "payment.refunded" :
    state = "Success" and $t.type = "Authorization" ? "payment.authorized" :
    state = "Success" and $t.type = "Charge" ? "payment.captured" : null
  ) :
  type = "OrderShipmentStateChanged" ? (shipmentState = "Shipped" ? "shipment.shipped" : shipmentState = "Delivered" ? "shipment.delivered" : null) :
  type = "ParcelAddedToDelivery" ? "shipment.shipped" :
  type = "ReturnInfoAdded" ? "return.created" :
  null
)`;

/** The market: what the order or cart says, the price book its market names (JSONata leaves out what it lacks). */
const context = (settings: MomentisSettings) => `{
  "store": $subject.store.key,
  "channel": $subject.lineItems[0].distributionChannel.id,
  "locale": $subject.locale,
  "currency": $subject.totalPrice.currencyCode,
  "priceChannel": ${settings.markets ? `$subject.store.key and ${marketOf(settings, '$subject.store.key', 'priceChannel')} ? ${marketOf(settings, '$subject.store.key', 'priceChannel')} : ` : ''}$subject.lineItems[0].price.channel.id
}`;

const money = (of: string) => `{ "currencyCode": ${of}.currencyCode, "centAmount": ${of}.centAmount, "fractionDigits": ${of}.fractionDigits }`;

// The transaction is found once ($t) and read for its type, state and amount.
const DATA = `($t := ${TRANSACTION}; {
  "orderId": $subject.id,
  "orderNumber": $subject.orderNumber,
  "cartId": type = "CartCreated" ? resource.id : $subject.cart.id,
  "total": $subject.totalPrice ? ${money('$subject.totalPrice')},
  "orderState": orderState, "previousOrderState": oldOrderState,
  "shipmentState": shipmentState, "previousShipmentState": oldShipmentState,
  "transactionType": $t.type, "transactionState": $t.state,
  "amount": $t.amount ? ${money('$t.amount')},
  "trackingId": parcel.trackingData.trackingId, "carrier": parcel.trackingData.carrier,
  "returnedQuantity": returnInfo ? $sum(returnInfo.items.quantity), "returnTrackingId": returnInfo.returnTrackingId
})`;

function loyaltyType(reverseOn: ReadonlyArray<string>): string {
  return `(
  type = "OrderPaymentStateChanged" ? (paymentState = "Paid" ? "accrue" : null) :
  type = "OrderStateChanged" ? (${reverseOn.includes('cancellation') ? 'orderState = "Cancelled" ? "reverse" : null' : 'null'}) :
  type = "PaymentTransactionAdded" ? (${reverseOn.includes('refund') ? 'transaction.type = "Refund" and transaction.state = "Success" ? "reverse" : null' : 'null'}) :
  type = "PaymentTransactionStateChanged" ? (${reverseOn.includes('refund') ? `state = "Success" and ${TRANSACTION}.type = "Refund" ? "reverse" : null` : 'null'}) :
  type = "ReturnInfoAdded" ? (${reverseOn.includes('return') ? '"reverse"' : 'null'}) :
  null
)`;
}

// Without a reason (an accrual), the field is left out: the contract's accrual has none.
const REASON = `(type = "OrderStateChanged" ? "cancellation" : type in ["PaymentTransactionAdded", "PaymentTransactionStateChanged"] ? "refund" : type = "ReturnInfoAdded" ? "return")`;

const RETURNED = `{
  "currencyCode": $subject.totalPrice.currencyCode,
  "centAmount": $sum(returnInfo.items.($item := $; $line := $subject.lineItems[id = $item.lineItemId]; $line.price.value.centAmount * $item.quantity)),
  "fractionDigits": $subject.totalPrice.fractionDigits
}`;

const AMOUNT = `(type in ["PaymentTransactionAdded", "PaymentTransactionStateChanged"] ? ($t := ${TRANSACTION}; ${money('$t.amount')}) : type = "ReturnInfoAdded" ? ${RETURNED} : ${money('$subject.totalPrice')})`;

/** Personal fields as tokens (the vault) or as the destination's pii policy says. */
const personal = (path: string, settings: MomentisSettings, pipe: string[] = []) => {
  const steps = settings.memberPii === 'tokenize' ? [...pipe, 'tokenize'] : pipe;
  return steps.length === 0 ? path : { path, pipe: steps };
};

/** The customer's store (a JSONata expression): one of the brand's stores when it has one, else its first. */
function storeOf(settings: MomentisSettings): string {
  const stores = brandStores(settings);
  if (!stores) return 'stores[0].key';
  return `($mine := $filter(stores.key, function($k) { $k in ${JSON.stringify(stores)} }); $exists($mine[0]) ? $mine[0] : stores[0].key)`;
}

/** A market's setting for a store key (a JSONata expression), when markets are configured. */
const marketOf = (settings: MomentisSettings, store: string, field: 'currency' | 'locale' | 'priceChannel') => `$lookup(${JSON.stringify(settings.markets ?? {})}, ${store}).${field}`;

/** The member's market: its currency, and its language when the customer has none of its own. */
function marketFields(settings: MomentisSettings): Record<string, unknown> {
  if (!settings.markets) return { locale: 'locale' };
  const store = storeOf(settings);
  return { locale: { jsonata: `locale ? locale : ${marketOf(settings, `(${store})`, 'locale')}` }, currency: { jsonata: marketOf(settings, `(${store})`, 'currency') } };
}

/**
 * The order as placed, with its discount codes' keys and codes, for finding the rewards it redeemed: the engine
 * expands the discount code references the expression reads (`discountCode.obj`) before mapping.
 */
const PLACED_ORDER = `order.{
  "id": id, "customerId": customerId, "orderNumber": orderNumber, "createdAt": createdAt,
  "discountCodes": [discountCodes.{ "state": state, "discountCode": { "id": discountCode.id, "obj": discountCode.obj.{ "key": key, "code": code } } }]
}`;

export function momentisDefaultMappings(settings: MomentisSettings): { records: Record<string, unknown>; events: Record<string, unknown> } {
  const link = `"${settings.backOfficeUrl.replace(/\/+$/, '').replaceAll('"', '\\"')}/" & $projectKey & ($subject.cartState ? "/orders/carts/" : "/orders/") & $subject.id`;
  return {
    records: {
      member: {
        source: 'customer',
        fields: {
          externalId: 'id',
          email: personal('email', settings, ['trim', 'lower']),
          firstName: personal('firstName', settings),
          lastName: personal('lastName', settings),
          phone: personal('addresses[?id=defaultShippingAddressId].phone', settings),
          store: { jsonata: storeOf(settings) },
          ...marketFields(settings),
          customerGroup: 'customerGroup.obj.key',
          ...(settings.brand !== undefined && { brand: { value: settings.brand } }),
        },
      },
    },
    events: {
      interactions: {
        on: INTERACTION_MESSAGES,
        fields: {
          type: { jsonata: INTERACTION_TYPE },
          occurredAt: { path: 'createdAt', pipe: ['iso8601'] },
          context: { jsonata: context(settings) },
          link: { jsonata: `$subject.id ? ${link}` },
          data: { jsonata: DATA },
        },
      },
      loyalty: {
        on: LOYALTY_MESSAGES,
        fields: {
          type: { jsonata: loyaltyType(settings.reverseOn) },
          orderId: { first: ['$subject.id', 'resource.id'] },
          orderNumber: '$subject.orderNumber',
          amount: { jsonata: AMOUNT },
          reason: { jsonata: REASON },
          store: '$subject.store.key',
          occurredAt: { path: 'createdAt', pipe: ['iso8601'] },
        },
      },
      ...(settings.rewardCodes.enabled && {
        redemptions: {
          on: ['OrderCreated'],
          fields: {
            type: { jsonata: '$count(order.discountCodes) > 0 ? "redeem" : null' },
            order: { jsonata: PLACED_ORDER },
            store: 'order.store.key',
          },
        },
      }),
    },
  };
}
