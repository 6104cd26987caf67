// Mapping throughput (issue 3): orders mapped per second on one core by a realistic 30-field order mapping in
// ctbridge's declarative form (paths, templates, transforms, a line-item list), against the same mapping written
// as one JSONata expression — what a mapping layer built on JSONata alone would run. Both see the same orders
// (commercetools Order shape, 1–6 line items with localized names, centPrecision money, store, addresses) and
// must produce identical payloads, which is checked before anything is timed.
// Run alone: `node bench/mapping.ts` (prints a line per figure); `npm run bench` runs it as scenario 7 with --json.
import jsonata from 'jsonata';
import { compileMapping, type MappingSpec } from '../src/mapping/record-mapping.ts';

const ORDERS = 2_000;
const MEASURE_MS = 1_500;
const WARM_UP_MS = 500;

/** The declarative mapping: 30 fields. */
export const ORDER_MAPPING: MappingSpec = {
  fields: {
    orderId: 'id',
    orderNumber: 'orderNumber',
    version: 'version',
    createdAt: { path: 'createdAt', pipe: ['iso8601'] },
    createdAtUnix: { path: 'createdAt', pipe: ['unixSeconds'] },
    email: { path: 'customerEmail', pipe: ['trim', 'lower'] },
    customerId: 'customerId',
    store: '$store',
    locale: 'locale',
    currency: 'totalPrice.currencyCode',
    total: { path: 'totalPrice', pipe: ['money'] },
    totalMinor: { path: 'totalPrice', pipe: [{ money: { as: 'minor' } }] },
    net: { path: 'taxedPrice.totalNet', pipe: ['money'] },
    gross: { path: 'taxedPrice.totalGross', pipe: ['money'] },
    tax: { path: 'taxedPrice.totalTax', pipe: ['money'] },
    shipping: { path: 'shippingInfo.price', pipe: ['money'] },
    shippingMethod: 'shippingInfo.shippingMethodName',
    status: { path: 'orderState', pipe: [{ map: { table: { Open: 'open', Confirmed: 'confirmed', Complete: 'complete', Cancelled: 'cancelled' } } }] },
    paymentState: 'paymentState',
    shipmentState: 'shipmentState',
    shipName: { template: '{{shippingAddress.firstName}} {{shippingAddress.lastName}}' },
    shipStreet: { template: '{{shippingAddress.streetName}} {{shippingAddress.streetNumber}}' },
    shipCity: 'shippingAddress.city',
    shipPostalCode: 'shippingAddress.postalCode',
    shipCountry: 'shippingAddress.country',
    itemCount: { path: 'lineItems[*].quantity', pipe: ['sum'] },
    lineCount: { path: 'lineItems', pipe: ['count'] },
    skus: { path: 'lineItems[*].variant.sku', pipe: ['join'] },
    firstProduct: { path: 'lineItems[0].name', pipe: ['localized'] },
    lines: {
      list: 'lineItems',
      fields: {
        sku: 'variant.sku',
        name: { path: 'name', pipe: ['localized'] },
        quantity: 'quantity',
        unitPrice: { path: 'price.value', pipe: ['money'] },
        total: { path: 'totalPrice', pipe: ['money'] },
      },
    },
  },
};

/** The same mapping as one JSONata expression. */
export const ORDER_JSONATA = `(
  $money := function($m) { $m ? $formatNumber($m.centAmount / $power(10, $m.fractionDigits), '0.00') : null };
  $name := function($n) { ( $l := $lookup($n, $$.locale); $l ? $l : $lookup($n, $substringBefore($$.locale, '-')) ) };
  {
    "orderId": id,
    "orderNumber": orderNumber,
    "version": version,
    "createdAt": $fromMillis($toMillis(createdAt)),
    "createdAtUnix": $floor($toMillis(createdAt) / 1000),
    "email": $lowercase($trim(customerEmail)),
    "customerId": customerId,
    "store": store.key,
    "locale": locale,
    "currency": totalPrice.currencyCode,
    "total": $money(totalPrice),
    "totalMinor": totalPrice.centAmount,
    "net": $money(taxedPrice.totalNet),
    "gross": $money(taxedPrice.totalGross),
    "tax": $money(taxedPrice.totalTax),
    "shipping": $money(shippingInfo.price),
    "shippingMethod": shippingInfo.shippingMethodName,
    "status": $lookup({"Open": "open", "Confirmed": "confirmed", "Complete": "complete", "Cancelled": "cancelled"}, orderState),
    "paymentState": paymentState,
    "shipmentState": shipmentState,
    "shipName": $trim(shippingAddress.firstName & ' ' & shippingAddress.lastName),
    "shipStreet": $trim(shippingAddress.streetName & ' ' & shippingAddress.streetNumber),
    "shipCity": shippingAddress.city,
    "shipPostalCode": shippingAddress.postalCode,
    "shipCountry": shippingAddress.country,
    "itemCount": $sum(lineItems.quantity),
    "lineCount": $count(lineItems),
    "skus": $join(lineItems.variant.sku, ', '),
    "firstProduct": $name(lineItems[0].name),
    "lines": [lineItems.{
      "sku": variant.sku,
      "name": $name(name),
      "quantity": quantity,
      "unitPrice": $money(price.value),
      "total": $money(totalPrice)
    }]
  }
)`;

/** Deterministic orders in the commercetools Order shape (see spec/commercetools/resources). */
export function generateOrders(count: number, seed = 7): Array<Record<string, unknown>> {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const markets = [
    { store: 'dach-store', locale: 'de-DE', currency: 'EUR', country: 'DE', city: 'Berlin' },
    { store: 'dach-store', locale: 'de-AT', currency: 'EUR', country: 'AT', city: 'Wien' },
    { store: 'uk-store', locale: 'en-GB', currency: 'GBP', country: 'GB', city: 'Leeds' },
  ] as const;
  const money = (currencyCode: string, centAmount: number) => ({ type: 'centPrecision', currencyCode, centAmount, fractionDigits: 2 });
  return Array.from({ length: count }, (_, index) => {
    const market = pick(markets);
    const lineItems = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, line) => {
      const unit = 500 + Math.floor(random() * 20_000);
      const quantity = 1 + Math.floor(random() * 3);
      return {
        id: `li-${index}-${line}`,
        productId: `p-${Math.floor(random() * 500)}`,
        name: { en: `Product ${line} in English`, de: `Produkt ${line} auf Deutsch` },
        productSlug: { en: `product-${line}`, de: `produkt-${line}` },
        variant: { id: 1, sku: `SKU-${index}-${line}`, prices: [], images: [], attributes: [{ name: 'color', value: 'blue' }] },
        price: { id: `price-${line}`, value: money(market.currency, unit) },
        quantity,
        totalPrice: money(market.currency, unit * quantity),
        taxRate: { name: 'standard', amount: 0.19, includedInPrice: true, country: market.country },
        state: [{ quantity, state: { typeId: 'state', id: 'initial' } }],
        priceMode: 'Platform',
        lineItemMode: 'Standard',
      };
    });
    const itemsTotal = lineItems.reduce((sum, item) => sum + item.totalPrice.centAmount, 0);
    const shipping = 495;
    const gross = itemsTotal + shipping;
    const net = Math.round(gross / 1.19);
    const address = { firstName: pick(['Anna', 'Jonas', 'Mia', 'Oliver']), lastName: pick(['Schmidt', 'Huber', 'Smith']), streetName: 'Hauptstraße', streetNumber: String(1 + (index % 90)), postalCode: String(10_000 + index), city: market.city, country: market.country };
    return {
      type: 'Order',
      id: `order-${index}`,
      version: 1 + (index % 5),
      orderNumber: `ON-${100_000 + index}`,
      createdAt: new Date(Date.UTC(2026, 10, 1) + index * 60_000).toISOString(),
      lastModifiedAt: new Date(Date.UTC(2026, 10, 1) + index * 60_000).toISOString(),
      customerId: `customer-${index % 700}`,
      customerEmail: ` Customer.${index}@Example.com `,
      locale: market.locale,
      store: { typeId: 'store', key: market.store },
      totalPrice: money(market.currency, gross),
      taxedPrice: { totalNet: money(market.currency, net), totalGross: money(market.currency, gross), totalTax: money(market.currency, gross - net), taxPortions: [] },
      shippingInfo: { shippingMethodName: 'Standard', price: money(market.currency, shipping), shippingRate: { price: money(market.currency, shipping) } },
      orderState: pick(['Open', 'Confirmed', 'Complete', 'Cancelled']),
      paymentState: pick(['Paid', 'Pending']),
      shipmentState: pick(['Pending', 'Shipped', 'Delivered']),
      shippingAddress: address,
      billingAddress: address,
      lineItems,
      customLineItems: [],
      discountCodes: [],
      origin: 'Customer',
      taxMode: 'Platform',
      inventoryMode: 'None',
    };
  });
}

export interface MappingFigures {
  /** Orders per second, ctbridge's declarative mapping. */
  declarative: number;
  /** Orders per second, the same mapping as one JSONata expression. */
  jsonata: number;
  fields: number;
}

/** Runs `map` over the orders, round after round, for `ms`; orders per second. */
async function throughput(orders: readonly unknown[], map: (order: unknown) => Promise<unknown>, ms: number): Promise<number> {
  let mapped = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (const order of orders) await map(order);
    mapped += orders.length;
    elapsed = performance.now() - started;
  }
  return (mapped / elapsed) * 1000;
}

export async function measureMapping(): Promise<MappingFigures> {
  const orders = generateOrders(ORDERS);
  const mapping = compileMapping(ORDER_MAPPING);
  const expression = jsonata(ORDER_JSONATA);
  const declarative = async (order: unknown) => {
    const mapped = await mapping.apply(order);
    return mapped.skip ? undefined : mapped.payload;
  };
  const viaJsonata = (order: unknown) => expression.evaluate(order) as Promise<unknown>;

  // Same payloads, or the comparison means nothing.
  for (const order of orders.slice(0, 200)) {
    const a = JSON.stringify(await declarative(order));
    const b = JSON.stringify(await viaJsonata(order));
    if (a !== b) throw new Error(`the two mappings disagree on ${(order as { id: string }).id}:\n declarative ${a}\n jsonata     ${b}`);
  }
  await throughput(orders, declarative, WARM_UP_MS);
  await throughput(orders, viaJsonata, WARM_UP_MS);
  return {
    declarative: await throughput(orders, declarative, MEASURE_MS),
    jsonata: await throughput(orders, viaJsonata, MEASURE_MS),
    fields: Object.keys(ORDER_MAPPING.fields).length,
  };
}

if (import.meta.main) {
  const figures = await measureMapping();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    console.log(`${figures.fields}-field order mapping, one core:`);
    console.log(`  ctbridge declarative  ${Math.round(figures.declarative).toLocaleString('en')} orders/s`);
    console.log(`  one JSONata expression ${Math.round(figures.jsonata).toLocaleString('en')} orders/s`);
    console.log(`  ratio                 ${(figures.declarative / figures.jsonata).toFixed(1)}x`);
  }
}
