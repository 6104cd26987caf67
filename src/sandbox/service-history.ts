// A customer's service history in a commercetools project (in practice the emulator), through the real HTTP API:
// what a customer-service agent looks at in the support view. One customer who shops in both stores (DACH in EUR,
// UK in GBP), with orders that carry a shipping method, deliveries with parcels and tracking numbers, payments
// with their transactions, returns and refunds, and a cancellation. The seeded shop (seed.ts) has none of that:
// commercetools only takes shipping info when an order is created or imported, so these orders are imported
// whole. Everything is derived from the seed; ids are commercetools'.
import type { BaseAddress, ByProjectKeyRequestBuilder, OrderImportDraft, PaymentDraft, TransactionDraft } from '@commercetools/platform-sdk';
import { Random } from './seed.ts';

/** The catalogue items the history's orders are made of (they must exist: seed.ts creates them, and the vip group). */
const ITEMS = [
  { sku: 'JMP-MER-001', name: { 'de-DE': 'Merino-Pullover', 'en-GB': 'Merino jumper' }, eur: 8995, gbp: 7900 },
  { sku: 'JKT-RAIN-002', name: { 'de-DE': 'Regenjacke', 'en-GB': 'Rain jacket' }, eur: 14900, gbp: 12900 },
  { sku: 'SCK-WOL-004', name: { 'de-DE': 'Wollsocken (3er-Pack)', 'en-GB': 'Wool socks (3-pack)' }, eur: 2495, gbp: 1999 },
  { sku: 'ACC-THM-005', name: { 'de-DE': 'Thermosflasche 0,75 l', 'en-GB': 'Vacuum flask 750 ml' }, eur: 3490, gbp: 2950 },
] as const;

const MARKETS = {
  'dach-store': { currency: 'EUR', country: 'DE', locale: 'de-DE', tax: { name: 'MwSt. 19%', amount: 0.19, includedInPrice: true, country: 'DE' }, shipping: 495, carrier: 'DHL' },
  'uk-store': { currency: 'GBP', country: 'GB', locale: 'en-GB', tax: { name: 'VAT 20%', amount: 0.2, includedInPrice: true, country: 'GB' }, shipping: 399, carrier: 'Royal Mail' },
} as const;
type MarketKey = keyof typeof MARKETS;

export const SHIPPING_METHOD_KEY = 'standard-delivery';
export const SUPPORT_PROFILE_TYPE = 'support-profile';

export interface ServiceHistoryOptions {
  /** Orders, alternating between the two stores (default 6). */
  orders?: number;
  seed?: number;
  email?: string;
  customerNumber?: string;
}

export interface HistoryOrder {
  id: string;
  orderNumber: string;
  storeKey: MarketKey;
  currencyCode: 'EUR' | 'GBP';
  /** Gross total in cents. */
  totalCentAmount: number;
  trackingIds: string[];
  /** A line item was sent back (returnInfo) and refunded. */
  returned: boolean;
  cancelled: boolean;
  paymentId: string;
}

export interface ServiceHistory {
  customer: { id: string; email: string; customerNumber: string; phone: string; firstName: string; lastName: string };
  orders: HistoryOrder[];
}

/**
 * The project's shipping method, its zones and tax category, and the customer custom type the view reads; once per
 * project (a second call finds them there).
 */
export async function ensureServiceSetup(api: ByProjectKeyRequestBuilder): Promise<void> {
  const existing = await api.shippingMethods().get({ queryArgs: { where: `key = "${SHIPPING_METHOD_KEY}"` } }).execute();
  if (existing.body.results.length > 0) return;
  await api
    .taxCategories()
    .post({ body: { key: 'standard', name: 'Standard', rates: Object.values(MARKETS).map((m) => ({ name: m.tax.name, amount: m.tax.amount, includedInPrice: true, country: m.country })) } })
    .execute();
  await api.zones().post({ body: { key: 'dach', name: 'DACH', locations: [{ country: 'DE' }, { country: 'AT' }, { country: 'CH' }] } }).execute();
  await api.zones().post({ body: { key: 'uk', name: 'United Kingdom', locations: [{ country: 'GB' }] } }).execute();
  await api
    .shippingMethods()
    .post({
      body: {
        key: SHIPPING_METHOD_KEY,
        name: 'Standard delivery',
        localizedName: { 'de-DE': 'Standardversand', 'en-GB': 'Standard delivery' },
        taxCategory: { typeId: 'tax-category', key: 'standard' },
        isDefault: true,
        zoneRates: [
          { zone: { typeId: 'zone', key: 'dach' }, shippingRates: [{ price: { currencyCode: 'EUR', centAmount: MARKETS['dach-store'].shipping } }] },
          { zone: { typeId: 'zone', key: 'uk' }, shippingRates: [{ price: { currencyCode: 'GBP', centAmount: MARKETS['uk-store'].shipping } }] },
        ],
      },
    })
    .execute();
  await api
    .types()
    .post({
      body: {
        key: SUPPORT_PROFILE_TYPE,
        name: { 'en-GB': 'Support profile' },
        resourceTypeIds: ['customer'],
        fieldDefinitions: [
          { name: 'loyaltyTier', label: { 'en-GB': 'Loyalty tier' }, required: false, type: { name: 'String' } },
          { name: 'preferredChannel', label: { 'en-GB': 'Preferred channel' }, required: false, type: { name: 'String' } },
          { name: 'internalNote', label: { 'en-GB': 'Internal note' }, required: false, type: { name: 'String' } },
        ],
      },
    })
    .execute();
}

/** One customer with `orders` orders across both stores, shipped, paid, some returned and refunded, one cancelled. */
export async function seedServiceHistory(api: ByProjectKeyRequestBuilder, options: ServiceHistoryOptions = {}): Promise<ServiceHistory> {
  await ensureServiceSetup(api);
  const random = new Random(options.seed ?? 18);
  const count = options.orders ?? 6;
  const email = options.email ?? `ada.brennan.${random.digits(4)}@example.com`;
  const customerNumber = options.customerNumber ?? `CN-${random.digits(6)}`;
  const phone = `+44 7700 900${random.digits(3)}`;
  const person = { firstName: 'Ada', lastName: "Brennan-O'Neill" };
  const addresses: Record<MarketKey, BaseAddress> = {
    'dach-store': { key: 'berlin', ...person, streetName: 'Kastanienallee', streetNumber: '12', postalCode: '10435', city: 'Berlin', country: 'DE', phone: `+49 30 ${random.digits(8)}` },
    'uk-store': { key: 'london', ...person, streetName: 'Church Lane', streetNumber: '7', postalCode: 'EC1A 1BB', city: 'London', country: 'GB', phone },
  };
  const created = (
    await api
      .customers()
      .post({
        body: {
          email,
          password: `pw-${random.digits(12)}`,
          customerNumber,
          ...person,
          addresses: [addresses['uk-store'], addresses['dach-store']],
          defaultShippingAddress: 0,
          defaultBillingAddress: 0,
          // seed.ts creates the group (the emulator keeps it, see emulator.ts keepCustomerGroups).
          customerGroup: { typeId: 'customer-group', key: 'vip' },
          custom: { type: { typeId: 'type', key: SUPPORT_PROFILE_TYPE }, fields: { loyaltyTier: 'gold', preferredChannel: 'chat', internalNote: 'prefers calls after 6pm' } },
        },
      })
      .execute()
  ).body.customer;

  const orders: HistoryOrder[] = [];
  for (let index = 0; index < count; index += 1) {
    const storeKey: MarketKey = index % 2 === 0 ? 'uk-store' : 'dach-store';
    orders.push(await importHistoryOrder(api, { random, index, storeKey, customerId: created.id, email, address: addresses[storeKey] }));
  }
  return { customer: { id: created.id, email, customerNumber, phone, ...person }, orders };
}

async function importHistoryOrder(
  api: ByProjectKeyRequestBuilder,
  input: { random: Random; index: number; storeKey: MarketKey; customerId: string; email: string; address: BaseAddress },
): Promise<HistoryOrder> {
  const { random, index, storeKey } = input;
  const market = MARKETS[storeKey];
  const currencyCode = market.currency;
  const lines = [ITEMS[index % ITEMS.length]!, ITEMS[(index + 1) % ITEMS.length]!];
  let itemsTotal = 0;
  const lineItems = lines.map((item, line) => {
    const quantity = line === 0 ? 1 : 2;
    const centAmount = currencyCode === 'EUR' ? item.eur : item.gbp;
    itemsTotal += centAmount * quantity;
    return { name: item.name, variant: { sku: item.sku }, price: { value: { currencyCode, centAmount } }, quantity, taxRate: market.tax };
  });
  const total = itemsTotal + market.shipping;
  // Index 3 is cancelled before shipping; index 2 and 5 have one line returned and refunded.
  const cancelled = index % 6 === 3;
  const returned = index % 3 === 2 && !cancelled;
  const trackingIds = cancelled ? [] : [`${market.carrier === 'DHL' ? 'JJD' : 'RM'}${random.digits(12)}`, ...(index % 4 === 1 ? [`JJD${random.digits(12)}`] : [])];
  const placed = new Date(Date.UTC(2025, index % 12, 1 + (index % 27), 9, 30)).toISOString();
  const orderNumber = `${storeKey === 'uk-store' ? 'UK' : 'DE'}-SUP-${String(random.int(100000, 999999))}-${index}`;
  const draft: OrderImportDraft = {
    orderNumber,
    customerId: input.customerId,
    customerEmail: input.email,
    store: { typeId: 'store', key: storeKey },
    country: market.country,
    lineItems,
    totalPrice: { currencyCode, centAmount: total },
    shippingAddress: input.address,
    billingAddress: input.address,
    shippingInfo: {
      shippingMethodName: 'Standard delivery',
      shippingMethod: { typeId: 'shipping-method', key: SHIPPING_METHOD_KEY },
      price: { currencyCode, centAmount: market.shipping },
      shippingRate: { price: { currencyCode, centAmount: market.shipping } },
      taxRate: market.tax,
      deliveries: trackingIds.map((trackingId, parcel) => ({
        key: `${orderNumber}-d${parcel + 1}`,
        items: [],
        parcels: [{ key: `${orderNumber}-p${parcel + 1}`, trackingData: { trackingId, carrier: market.carrier, provider: market.carrier, isReturn: false } }],
      })),
    },
    orderState: cancelled ? 'Cancelled' : returned ? 'Complete' : index === 0 ? 'Confirmed' : 'Complete',
    paymentState: cancelled ? 'Failed' : 'Paid',
    ...(cancelled ? {} : { shipmentState: index === 0 ? 'Shipped' : 'Delivered' }),
    origin: 'Customer',
    completedAt: placed,
  };
  let order = (await api.orders().importOrder().post({ body: draft }).execute()).body;
  const amount = { currencyCode, centAmount: total };
  const psp = () => `psp_${random.digits(10)}`;
  const transactions: TransactionDraft[] = [{ type: 'Authorization', amount, state: 'Success', timestamp: placed, interactionId: psp() }];
  if (cancelled) transactions.push({ type: 'CancelAuthorization', amount, state: 'Success', timestamp: placed, interactionId: psp() });
  else transactions.push({ type: 'Charge', amount, state: 'Success', timestamp: placed, interactionId: psp() });
  const payment: PaymentDraft = {
    key: `payment-${orderNumber}`,
    customer: { typeId: 'customer', id: input.customerId },
    amountPlanned: amount,
    paymentMethodInfo: { paymentInterface: 'adyen', method: 'scheme', name: { 'de-DE': 'Kreditkarte', 'en-GB': 'Credit card' } },
    transactions,
  };
  const createdPayment = (await api.payments().post({ body: payment }).execute()).body;
  order = (await api.orders().withId({ ID: order.id }).post({ body: { version: order.version, actions: [{ action: 'addPayment', payment: { typeId: 'payment', id: createdPayment.id } }] } }).execute()).body;
  if (returned) {
    const line = order.lineItems[1]!;
    const refund = (currencyCode === 'EUR' ? lines[1]!.eur : lines[1]!.gbp) * line.quantity;
    const returnTrackingId = `RET${random.digits(10)}`;
    await api
      .orders()
      .withId({ ID: order.id })
      .post({
        body: {
          version: order.version,
          actions: [{ action: 'addReturnInfo', returnTrackingId, returnDate: placed, items: [{ lineItemId: line.id, quantity: line.quantity, shipmentState: 'Returned', comment: 'too small' }] }],
        },
      })
      .execute();
    await api
      .payments()
      .withId({ ID: createdPayment.id })
      .post({ body: { version: createdPayment.version, actions: [{ action: 'addTransaction', transaction: { type: 'Refund', amount: { currencyCode, centAmount: refund }, state: 'Success', timestamp: placed, interactionId: psp() } }] } })
      .execute();
  }
  return { id: order.id, orderNumber, storeKey, currencyCode, totalCentAmount: total, trackingIds, returned, cancelled, paymentId: createdPayment.id };
}
