// Fills a commercetools project (in practice the emulator) with a small, realistic shop through the real HTTP API:
// two stores (DACH in EUR, UK in GBP), a catalogue, customer groups, customers across DE/AT/CH/GB with the messy
// variety real data has (umlauts, apostrophes, several phone formats, store-scoped and global accounts, some in a
// customer group), orders and payments.
// Everything is derived from a seed, so the same seed gives the same shop (except the ids commercetools assigns).
import type {
  BaseAddress,
  ByProjectKeyRequestBuilder,
  CustomerDraft,
  LineItemImportDraft,
  OrderImportDraft,
  OrderState,
  PaymentDraft,
  PaymentState,
  ProductDraft,
  ShipmentState,
  TaxRate,
  TransactionDraft,
} from '@commercetools/platform-sdk';

/** Anything holding the SDK request builder, e.g. a CommercetoolsClient. */
export interface HasApi {
  api: ByProjectKeyRequestBuilder;
}

export interface SeedOptions {
  customers?: number;
  ordersPerCustomer?: number;
  seed?: number;
  /** Requests in flight at once. */
  concurrency?: number;
}

export type CountryCode = 'DE' | 'AT' | 'CH' | 'GB';

export interface StoreSpec {
  key: string;
  name: Record<string, string>;
  languages: string[];
  countries: CountryCode[];
  currency: 'EUR' | 'GBP';
}

export interface SeededCustomer {
  id: string;
  key: string;
  email: string;
  firstName: string;
  lastName: string;
  /** The phone numbers of the customer's addresses. */
  phones: string[];
  country: CountryCode;
  /** The store the customer shops in; its orders go there. */
  storeKey: string;
  /** True when the customer account itself belongs to the store (a store-scoped customer). */
  storeScoped: boolean;
  /** The key of the customer group the customer was created in, if any. */
  customerGroupKey: string | undefined;
}

export interface SeededOrder {
  id: string;
  orderNumber: string;
  customerId: string;
  storeKey: string;
  orderState: OrderState;
  paymentId: string;
}

export interface SeededShop {
  stores: StoreSpec[];
  /** The customer groups, by key. */
  customerGroups: Record<string, { id: string; name: string }>;
  productIds: string[];
  customers: SeededCustomer[];
  orders: SeededOrder[];
  customerIds: string[];
  orderIds: string[];
  paymentIds: string[];
}

export const STORES: readonly StoreSpec[] = [
  {
    key: 'dach-store',
    name: { 'de-DE': 'DACH Shop', 'en-GB': 'DACH shop' },
    languages: ['de-DE', 'de-AT', 'de-CH'],
    countries: ['DE', 'AT', 'CH'],
    currency: 'EUR',
  },
  { key: 'uk-store', name: { 'en-GB': 'UK shop', 'de-DE': 'UK Shop' }, languages: ['en-GB'], countries: ['GB'], currency: 'GBP' },
];

/** The shop's customer groups: business accounts trade, every seventh private customer VIP. */
export const CUSTOMER_GROUPS = [
  { key: 'trade', groupName: 'Trade' },
  { key: 'vip', groupName: 'VIP' },
] as const;

/** Which group a customer draft joins (no random draw, so a seed's shop stays what it was). */
function customerGroupFor(index: number, business: boolean): string | undefined {
  if (business) return 'trade';
  return index % 7 === 0 ? 'vip' : undefined;
}

/** Small deterministic PRNG (mulberry32 style): same seed, same sequence, on every platform. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  digits(count: number): string {
    let out = '';
    for (let i = 0; i < count; i += 1) out += String(this.int(0, 9));
    return out;
  }
}

interface CountryProfile {
  locale: string;
  storeKey: string;
  currency: 'EUR' | 'GBP';
  tax: TaxRate;
  firstNames: readonly string[];
  lastNames: readonly string[];
  streets: readonly string[];
  cities: readonly (readonly [city: string, postalCode: string])[];
  emailDomains: readonly string[];
  phone(random: Random): string;
}

const GERMAN_FIRST = ['Anna', 'Lena', 'Jürgen', 'Sophie', 'Maximilian', 'Jörg', 'Katharina', 'Lukas', 'Zoë', 'Matthias', 'Hannah', 'Björn', 'Özlem', 'Felix', 'Marie-Luise', 'Karl-Heinz'];
const GERMAN_LAST = ['Müller', 'Schmidt', 'Schäfer', 'Weiß', 'Becker', 'Köhler', 'Hoffmann', 'Jäger', 'Yılmaz', 'Groß', 'von Bülow', 'Schneider', 'Fischer', 'Krüger', 'Wagner', 'Lehmann'];
const SWISS_FIRST = ['Luca', 'Noemi', 'Urs', 'Seraina', 'Reto', 'Chiara', 'Beat', 'Mirjam', 'Gian', 'Lea'];
const SWISS_LAST = ['Meier', 'Keller', 'Brunner', 'Gerber', 'Baumann', 'Zürcher', 'Frei', 'Steiner', 'Bernasconi', 'Huber'];
const AUSTRIAN_FIRST = ['Florian', 'Magdalena', 'Stefan', 'Theresa', 'Andreas', 'Elisabeth', 'Dominik', 'Valentina', 'Ferdinand', 'Johanna'];
const AUSTRIAN_LAST = ['Gruber', 'Huber', 'Bauer', 'Pichler', 'Moser', 'Hofer', 'Leitner', 'Wimmer', 'Eder', 'Öztürk'];
const BRITISH_FIRST = ['Oliver', 'Amelia', 'Harry', 'Isla', 'George', 'Siobhan', 'Priya', 'Callum', 'Niamh', 'Rhys', 'Chloé', 'Mohammed', 'Ellie', 'Dylan'];
const BRITISH_LAST = ["O'Brien", 'Smith', 'Jones', 'Patel', 'Williams', 'Taylor', 'Davies', 'Evans', 'Hughes', 'Khan', 'MacDonald', 'Wright', 'Thompson', 'Ní Bhriain'];

const COUNTRIES: Record<CountryCode, CountryProfile> = {
  DE: {
    locale: 'de-DE',
    storeKey: 'dach-store',
    currency: 'EUR',
    tax: { name: 'MwSt. 19%', amount: 0.19, includedInPrice: true, country: 'DE' },
    firstNames: GERMAN_FIRST,
    lastNames: GERMAN_LAST,
    streets: ['Hauptstraße', 'Bahnhofstraße', 'Schillerstraße', 'Lindenallee', 'Am Gartenweg', 'Friedrichstraße', 'Kastanienallee'],
    cities: [['Berlin', '10115'], ['München', '80331'], ['Hamburg', '20095'], ['Köln', '50667'], ['Frankfurt am Main', '60311'], ['Leipzig', '04109'], ['Düsseldorf', '40213']],
    emailDomains: ['example.de', 'example.com', 'example.org'],
    phone: (r) => r.pick([`+49 30 ${r.digits(8)}`, `0151 ${r.digits(8)}`, `+49 (0)89 ${r.digits(7)}`, `0170/${r.digits(7)}`, `+4917${r.digits(9)}`]),
  },
  AT: {
    locale: 'de-AT',
    storeKey: 'dach-store',
    currency: 'EUR',
    tax: { name: 'USt. 20%', amount: 0.2, includedInPrice: true, country: 'AT' },
    firstNames: AUSTRIAN_FIRST,
    lastNames: AUSTRIAN_LAST,
    streets: ['Mariahilfer Straße', 'Landstraßer Hauptstraße', 'Herrengasse', 'Linzer Gasse', 'Annenstraße'],
    cities: [['Wien', '1010'], ['Graz', '8010'], ['Salzburg', '5020'], ['Linz', '4020'], ['Innsbruck', '6020']],
    emailDomains: ['example.at', 'example.com'],
    phone: (r) => r.pick([`+43 1 ${r.digits(7)}`, `0664 ${r.digits(7)}`, `+43 664 ${r.digits(3)} ${r.digits(4)}`]),
  },
  CH: {
    locale: 'de-CH',
    storeKey: 'dach-store',
    currency: 'EUR',
    tax: { name: 'MWST 8.1%', amount: 0.081, includedInPrice: true, country: 'CH' },
    firstNames: SWISS_FIRST,
    lastNames: SWISS_LAST,
    // Swiss German writes "ss", never "ß".
    streets: ['Bahnhofstrasse', 'Seestrasse', 'Dorfstrasse', 'Rue du Rhône', 'Via Nassa'],
    cities: [['Zürich', '8001'], ['Bern', '3011'], ['Basel', '4051'], ['Genève', '1204'], ['Luzern', '6003'], ['Lugano', '6900']],
    emailDomains: ['example.ch', 'example.com'],
    phone: (r) => r.pick([`+41 44 ${r.digits(3)} ${r.digits(2)} ${r.digits(2)}`, `079 ${r.digits(3)} ${r.digits(2)} ${r.digits(2)}`, `0041 31 ${r.digits(7)}`]),
  },
  GB: {
    locale: 'en-GB',
    storeKey: 'uk-store',
    currency: 'GBP',
    tax: { name: 'VAT 20%', amount: 0.2, includedInPrice: true, country: 'GB' },
    firstNames: BRITISH_FIRST,
    lastNames: BRITISH_LAST,
    streets: ['High Street', 'Station Road', 'Church Lane', 'Victoria Road', 'Mill Lane', 'Park Avenue'],
    cities: [['London', 'EC1A 1BB'], ['Manchester', 'M1 1AE'], ['Edinburgh', 'EH1 1YZ'], ['Bristol', 'BS1 4DJ'], ['Leeds', 'LS1 4AP'], ['Cardiff', 'CF10 1EP']],
    emailDomains: ['example.co.uk', 'example.com', 'example.org'],
    // Ofcom's ranges reserved for drama: realistic, never anyone's number.
    phone: (r) => r.pick([`07700 900${r.digits(3)}`, `+44 7700 900${r.digits(3)}`, `020 7946 0${r.digits(3)}`, `+44 (0)20 7946 0${r.digits(3)}`]),
  },
};

const CUSTOMER_COUNTRIES: readonly CountryCode[] = ['DE', 'DE', 'DE', 'AT', 'CH', 'GB', 'GB', 'GB'];

interface CatalogueItem {
  key: string;
  sku: string;
  name: { 'de-DE': string; 'en-GB': string };
  eur: number;
  gbp: number;
}

const CATALOGUE: readonly CatalogueItem[] = [
  { key: 'merino-jumper', sku: 'JMP-MER-001', name: { 'de-DE': 'Merino-Pullover', 'en-GB': 'Merino jumper' }, eur: 8995, gbp: 7900 },
  { key: 'rain-jacket', sku: 'JKT-RAIN-002', name: { 'de-DE': 'Regenjacke', 'en-GB': 'Rain jacket' }, eur: 14900, gbp: 12900 },
  { key: 'trail-shoes', sku: 'SHO-TRL-003', name: { 'de-DE': 'Trailschuhe', 'en-GB': 'Trail shoes' }, eur: 12995, gbp: 11500 },
  { key: 'wool-socks', sku: 'SCK-WOL-004', name: { 'de-DE': 'Wollsocken (3er-Pack)', 'en-GB': 'Wool socks (3-pack)' }, eur: 2495, gbp: 1999 },
  { key: 'thermos', sku: 'ACC-THM-005', name: { 'de-DE': 'Thermosflasche 0,75 l', 'en-GB': 'Vacuum flask 750 ml' }, eur: 3490, gbp: 2950 },
  { key: 'daypack', sku: 'BAG-DAY-006', name: { 'de-DE': 'Tagesrucksack 22 l', 'en-GB': 'Daypack 22 l' }, eur: 7900, gbp: 6800 },
  { key: 'beanie', sku: 'ACC-BNE-007', name: { 'de-DE': 'Strickmütze', 'en-GB': 'Knitted beanie' }, eur: 2990, gbp: 2500 },
  { key: 'fleece', sku: 'FLC-ZIP-008', name: { 'de-DE': 'Fleecejacke mit Reißverschluss', 'en-GB': 'Full-zip fleece' }, eur: 6995, gbp: 5995 },
];

export const CATALOGUE_SKUS: readonly string[] = CATALOGUE.map((item) => item.sku);

/** ASCII local part for an e-mail address: "Jürgen Groß" → "juergen.gross". */
export function emailLocalPart(firstName: string, lastName: string): string {
  const ascii = (text: string) =>
    text
      .toLowerCase()
      .replace(/ä/g, 'ae')
      .replace(/ö/g, 'oe')
      .replace(/ü/g, 'ue')
      .replace(/ß/g, 'ss')
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/ı/g, 'i')
      .replace(/[^a-z0-9]+/g, '');
  return `${ascii(firstName)}.${ascii(lastName)}`;
}

export function randomPerson(random: Random, country: CountryCode): { firstName: string; lastName: string } {
  const profile = COUNTRIES[country];
  return { firstName: random.pick(profile.firstNames), lastName: random.pick(profile.lastNames) };
}

export function randomAddress(random: Random, country: CountryCode, person: { firstName: string; lastName: string }, key: string): BaseAddress {
  const profile = COUNTRIES[country];
  const [city, postalCode] = random.pick(profile.cities);
  return {
    key,
    firstName: person.firstName,
    lastName: person.lastName,
    streetName: random.pick(profile.streets),
    streetNumber: String(random.int(1, 180)) + (random.chance(0.15) ? random.pick(['a', 'b', 'c']) : ''),
    postalCode,
    city,
    country,
    phone: profile.phone(random),
    ...(random.chance(0.2) ? { additionalAddressInfo: random.pick(['2. OG', 'c/o Reception', 'Hinterhaus', 'Flat 3']) } : {}),
  };
}

export function countryProfile(country: CountryCode): { locale: string; storeKey: string; currency: 'EUR' | 'GBP'; emailDomains: readonly string[]; phone(random: Random): string } {
  return COUNTRIES[country];
}

export function customerDraft(random: Random, index: number): { draft: CustomerDraft; country: CountryCode; storeScoped: boolean } {
  const country = random.pick(CUSTOMER_COUNTRIES);
  const profile = COUNTRIES[country];
  const person = randomPerson(random, country);
  const storeScoped = random.chance(0.35);
  const addresses = [randomAddress(random, country, person, 'home')];
  const separateBilling = random.chance(0.25);
  if (separateBilling) addresses.push(randomAddress(random, country, person, 'billing'));
  const business = random.chance(0.15);
  const group = customerGroupFor(index, business);
  const draft: CustomerDraft = {
    key: `customer-${String(index + 1).padStart(4, '0')}`,
    customerNumber: `C${100000 + index}`,
    email: `${emailLocalPart(person.firstName, person.lastName)}${index + 1}@${random.pick(profile.emailDomains)}`,
    firstName: person.firstName,
    lastName: person.lastName,
    ...(random.chance(0.6) ? { salutation: country === 'GB' ? random.pick(['Mr', 'Ms', 'Mx', 'Dr']) : random.pick(['Herr', 'Frau']) } : {}),
    ...(random.chance(0.5) ? { dateOfBirth: `${random.int(1950, 2004)}-${String(random.int(1, 12)).padStart(2, '0')}-${String(random.int(1, 28)).padStart(2, '0')}` } : {}),
    ...(business ? { companyName: `${person.lastName} ${random.pick(['GmbH', 'AG', 'Ltd', '& Co. KG'])}` } : {}),
    locale: profile.locale,
    isEmailVerified: random.chance(0.8),
    addresses,
    defaultShippingAddress: 0,
    shippingAddresses: [0],
    defaultBillingAddress: separateBilling ? 1 : 0,
    billingAddresses: [separateBilling ? 1 : 0],
    ...(storeScoped ? { stores: [{ typeId: 'store', key: profile.storeKey }] } : {}),
    // By key, as a ResourceIdentifier: commercetools keeps it on the new customer (the emulator too, see
    // emulator.ts keepCustomerGroups).
    ...(group ? { customerGroup: { typeId: 'customer-group', key: group } } : {}),
  };
  return { draft, country, storeScoped };
}

function pickOrderStates(random: Random): { orderState: OrderState; shipmentState?: ShipmentState; paymentState: PaymentState } {
  const roll = random.next();
  if (roll < 0.45) return { orderState: 'Complete', shipmentState: 'Delivered', paymentState: 'Paid' };
  if (roll < 0.7) return { orderState: 'Confirmed', shipmentState: random.pick(['Ready', 'Shipped'] as const), paymentState: 'Paid' };
  if (roll < 0.9) return { orderState: 'Open', shipmentState: 'Pending', paymentState: 'Pending' };
  return { orderState: 'Cancelled', paymentState: random.pick(['Failed', 'Pending'] as const) };
}

function orderDraft(random: Random, customer: SeededCustomer, address: BaseAddress, orderNumber: string, placedAt: string): { draft: OrderImportDraft; total: { currencyCode: string; centAmount: number } } {
  const profile = COUNTRIES[customer.country];
  const currencyCode = profile.currency;
  const lineItems: LineItemImportDraft[] = [];
  let total = 0;
  const count = random.int(1, 3);
  const used = new Set<string>();
  for (let i = 0; i < count; i += 1) {
    const item = random.pick(CATALOGUE);
    if (used.has(item.sku)) continue;
    used.add(item.sku);
    const quantity = random.chance(0.8) ? 1 : random.int(2, 3);
    const centAmount = currencyCode === 'EUR' ? item.eur : item.gbp;
    total += centAmount * quantity;
    lineItems.push({
      name: item.name,
      variant: { sku: item.sku },
      price: { value: { currencyCode, centAmount } },
      quantity,
      taxRate: profile.tax,
    });
  }
  const states = pickOrderStates(random);
  const draft: OrderImportDraft = {
    orderNumber,
    customerId: customer.id,
    customerEmail: customer.email,
    store: { typeId: 'store', key: customer.storeKey },
    country: customer.country,
    lineItems,
    totalPrice: { currencyCode, centAmount: total },
    shippingAddress: address,
    billingAddress: address,
    orderState: states.orderState,
    paymentState: states.paymentState,
    ...(states.shipmentState ? { shipmentState: states.shipmentState } : {}),
    origin: 'Customer',
    completedAt: placedAt,
  };
  return { draft, total: { currencyCode, centAmount: total } };
}

function paymentDraft(random: Random, customerId: string, orderNumber: string, amount: { currencyCode: string; centAmount: number }, paymentState: PaymentState, at: string): PaymentDraft {
  const method = random.pick([
    { paymentInterface: 'adyen', method: 'scheme', name: { 'en-GB': 'Credit card', 'de-DE': 'Kreditkarte' } },
    { paymentInterface: 'paypal', method: 'paypal', name: { 'en-GB': 'PayPal', 'de-DE': 'PayPal' } },
    { paymentInterface: 'adyen', method: 'klarna', name: { 'en-GB': 'Klarna Pay Later', 'de-DE': 'Klarna Rechnung' } },
    { paymentInterface: 'stripe', method: 'sepa_debit', name: { 'en-GB': 'SEPA Direct Debit', 'de-DE': 'SEPA-Lastschrift' } },
  ] as const);
  const interaction = () => `${method.paymentInterface.slice(0, 3)}_${random.digits(16)}`;
  const transactions: TransactionDraft[] = [
    { type: 'Authorization', amount, state: paymentState === 'Failed' ? 'Failure' : 'Success', timestamp: at, interactionId: interaction() },
  ];
  if (paymentState === 'Paid') transactions.push({ type: 'Charge', amount, state: 'Success', timestamp: at, interactionId: interaction() });
  return {
    key: `payment-${orderNumber}`,
    customer: { typeId: 'customer', id: customerId },
    amountPlanned: amount,
    paymentMethodInfo: { paymentInterface: method.paymentInterface, method: method.method, name: method.name },
    transactions,
  };
}

/** Runs `task` over `items` with at most `limit` in flight; results keep the input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

export async function seedShop(target: HasApi, options: SeedOptions = {}): Promise<SeededShop> {
  const { api } = target;
  const customerCount = options.customers ?? 40;
  const ordersPerCustomer = options.ordersPerCustomer ?? 2;
  const random = new Random(options.seed ?? 1);
  const concurrency = options.concurrency ?? 8;

  for (const store of STORES) {
    await api
      .stores()
      .post({ body: { key: store.key, name: store.name, languages: store.languages, countries: store.countries.map((code) => ({ code })) } })
      .execute();
  }
  const customerGroups: SeededShop['customerGroups'] = {};
  for (const group of CUSTOMER_GROUPS) {
    const created = (await api.customerGroups().post({ body: { key: group.key, groupName: group.groupName } }).execute()).body;
    customerGroups[group.key] = { id: created.id, name: created.name };
  }
  await api.productTypes().post({ body: { key: 'outdoor-apparel', name: 'Outdoor apparel', description: 'Clothing and gear' } }).execute();
  const productIds = await mapLimit(CATALOGUE, concurrency, async (item) => {
    const body: ProductDraft = {
      key: item.key,
      productType: { typeId: 'product-type', key: 'outdoor-apparel' },
      name: item.name,
      slug: { 'de-DE': item.key, 'en-GB': item.key },
      masterVariant: {
        sku: item.sku,
        prices: [{ value: { currencyCode: 'EUR', centAmount: item.eur } }, { value: { currencyCode: 'GBP', centAmount: item.gbp } }],
      },
      publish: true,
    };
    return (await api.products().post({ body }).execute()).body.id;
  });

  // Draw every random value up front, in a fixed order, so concurrency cannot change what a seed produces.
  const customerPlans = Array.from({ length: customerCount }, (_, index) => customerDraft(random, index));
  const customers = await mapLimit(customerPlans, concurrency, async ({ draft, country, storeScoped }) => {
    const created = (await api.customers().post({ body: draft }).execute()).body.customer;
    const seeded: SeededCustomer = {
      id: created.id,
      key: draft.key ?? created.id,
      email: created.email,
      firstName: draft.firstName ?? '',
      lastName: draft.lastName ?? '',
      phones: (draft.addresses ?? []).flatMap((a) => (a.phone ? [a.phone] : [])),
      country,
      storeKey: COUNTRIES[country].storeKey,
      storeScoped,
      customerGroupKey: draft.customerGroup?.key,
    };
    const address = draft.addresses?.[0];
    if (!address) throw new Error(`customer draft ${seeded.key} has no address`);
    return { seeded, address };
  });

  let orderSequence = 0;
  const orderPlans = customers.flatMap(({ seeded, address }) =>
    Array.from({ length: ordersPerCustomer }, () => {
      orderSequence += 1;
      const prefix = seeded.storeKey === 'uk-store' ? 'UK' : 'DACH';
      const orderNumber = `${prefix}-2025-${String(orderSequence).padStart(6, '0')}`;
      // Imported orders are history: placed some time in 2025, which the order number says too.
      const placedAt = new Date(Date.UTC(2025, random.int(0, 11), random.int(1, 28), random.int(7, 22), random.int(0, 59))).toISOString();
      const { draft, total } = orderDraft(random, seeded, address, orderNumber, placedAt);
      const payment = paymentDraft(random, seeded.id, orderNumber, total, draft.paymentState ?? 'Pending', placedAt);
      return { customer: seeded, draft, payment };
    }),
  );
  const orders = await mapLimit(orderPlans, concurrency, async ({ customer, draft, payment }) => {
    const order = (await api.orders().importOrder().post({ body: draft }).execute()).body;
    const createdPayment = (await api.payments().post({ body: payment }).execute()).body;
    await api
      .orders()
      .withId({ ID: order.id })
      .post({ body: { version: order.version, actions: [{ action: 'addPayment', payment: { typeId: 'payment', id: createdPayment.id } }] } })
      .execute();
    const seeded: SeededOrder = {
      id: order.id,
      orderNumber: draft.orderNumber ?? order.id,
      customerId: customer.id,
      storeKey: customer.storeKey,
      orderState: draft.orderState ?? 'Open',
      paymentId: createdPayment.id,
    };
    return seeded;
  });

  return {
    stores: [...STORES],
    customerGroups,
    productIds,
    customers: customers.map((c) => c.seeded),
    orders,
    customerIds: customers.map((c) => c.seeded.id),
    orderIds: orders.map((o) => o.id),
    paymentIds: orders.map((o) => o.paymentId),
  };
}
