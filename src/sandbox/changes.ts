// Makes realistic changes to commercetools resources through the API and returns the subscription notifications
// the real platform would deliver for them (the emulator emits none): Messages in the Platform format and
// ResourceCreated / ResourceUpdated change notifications, with versions taken from what the API answered. Also
// scrambles a delivery stream with duplicates and reordering, as real queues do. Products change too (a price
// changed and published, a product unpublished or published again), so the sandbox shows products arriving, and
// open orders get paid (OrderPaymentStateChanged), which is what a loyalty programme awards points for.
import { randomUUID } from 'node:crypto';
import type {
  ByProjectKeyRequestBuilder,
  CartDraft,
  CreatedBy,
  Customer,
  LastModifiedBy,
  MessagePayload,
  Order,
  OrderState,
  Payment,
  Product,
  TransactionDraft,
  UserProvidedIdentifiers,
} from '@commercetools/platform-sdk';
import { CATALOGUE_SKUS, Random, countryProfile, customerDraft, emailLocalPart, randomPerson } from './seed.ts';
import type { CountryCode, SeededShop } from './seed.ts';

export type ChangeTypeId = 'customer' | 'order' | 'payment' | 'product';

interface Envelope {
  projectKey: string;
  resource: { typeId: ChangeTypeId; id: string };
  resourceUserProvidedIdentifiers: UserProvidedIdentifiers;
}

/** A Message as a Platform-format subscription delivers it: the message fields flattened next to the envelope. */
export type PlatformMessage = Envelope & {
  notificationType: 'Message';
  id: string;
  version: 1;
  sequenceNumber: number;
  resourceVersion: number;
  createdAt: string;
  lastModifiedAt: string;
  createdBy?: CreatedBy;
  lastModifiedBy?: LastModifiedBy;
} & MessagePayload;

export type ResourceCreatedNotification = Envelope & { notificationType: 'ResourceCreated'; version: number; modifiedAt: string };
export type ResourceUpdatedNotification = Envelope & { notificationType: 'ResourceUpdated'; version: number; oldVersion: number; modifiedAt: string };
export type ChangeNotification = ResourceCreatedNotification | ResourceUpdatedNotification;
export type PlatformNotification = PlatformMessage | ChangeNotification;

export type ChangeKind = 'customer-name' | 'customer-email' | 'customer-created' | 'order-state' | 'order-paid' | 'order-created' | 'payment-transaction' | 'product-price' | 'product-publication';

export interface AppliedChange {
  kind: ChangeKind;
  /** For progress output: ids, keys and order numbers only, never personal data. */
  summary: string;
  resource: { typeId: ChangeTypeId; id: string };
  /** Version before the change; undefined when the resource was created. */
  oldVersion: number | undefined;
  /** Version the API reported after the change. */
  version: number;
  /** One Message per effect, in the order commercetools would emit them. */
  messages: PlatformMessage[];
  /** One change notification per API request (ResourceCreated or ResourceUpdated). */
  changes: ChangeNotification[];
}

export interface ChangeGeneratorOptions {
  /** Defaults to the target's projectKey. */
  projectKey?: string;
  seed?: number;
  /** The seeded shop; randomChange() picks its resources from here (and from what it created itself). */
  shop?: SeededShop;
}

export interface ChangeGenerator {
  changeCustomerName(customerId: string, next?: { firstName?: string; lastName?: string }): Promise<AppliedChange>;
  changeCustomerEmail(customerId: string, email?: string): Promise<AppliedChange>;
  createCustomer(country?: CountryCode): Promise<AppliedChange>;
  changeOrderState(orderId: string, orderState?: OrderState): Promise<AppliedChange>;
  /** The order's payment state set to Paid (OrderPaymentStateChanged), as a payment service provider's capture does. */
  markOrderPaid(orderId: string): Promise<AppliedChange>;
  /** A cart of the customer's market ordered; `discountCodes` go into the cart (refused as commercetools refuses them). */
  createOrder(customerId: string, options?: { discountCodes?: readonly string[] }): Promise<AppliedChange>;
  addPaymentTransaction(paymentId: string, transaction?: Partial<TransactionDraft>): Promise<AppliedChange>;
  /**
   * A price of the product's master variant changed by a few percent (up or down) and published, as a merchandiser
   * would: ProductPriceChanged (staged) then ProductPublished, one request each.
   */
  changeProductPrice(productId: string): Promise<AppliedChange>;
  /** A published product unpublished (ProductUnpublished), an unpublished one published again (ProductPublished). */
  toggleProductPublication(productId: string): Promise<AppliedChange>;
  /** One change picked at random (weighted towards the common ones) from the shop's resources. */
  randomChange(): Promise<AppliedChange>;
  /** `count` successive name changes of one customer, as a burst of edits would produce. */
  burst(customerId: string, count: number): Promise<AppliedChange[]>;
}

const NEXT_ORDER_STATES: Record<string, OrderState[]> = {
  Open: ['Confirmed', 'Cancelled'],
  Confirmed: ['Complete', 'Cancelled'],
  Complete: [],
  Cancelled: [],
};

const COUNTRIES: readonly CountryCode[] = ['DE', 'AT', 'CH', 'GB'];

interface VersionedResource {
  id: string;
  version: number;
  createdAt: string;
  lastModifiedAt: string;
  createdBy?: CreatedBy;
  lastModifiedBy?: LastModifiedBy;
}

export function createChangeGenerator(target: { api: ByProjectKeyRequestBuilder; projectKey?: string }, options: ChangeGeneratorOptions = {}): ChangeGenerator {
  const { api } = target;
  const projectKey = options.projectKey ?? target.projectKey;
  if (!projectKey) throw new Error('createChangeGenerator: projectKey is required');
  const random = new Random(options.seed ?? 2);
  const customerIds = [...(options.shop?.customerIds ?? [])];
  const orderIds = [...(options.shop?.orderIds ?? [])];
  const paymentIds = [...(options.shop?.paymentIds ?? [])];
  const productIds = [...(options.shop?.productIds ?? [])];
  const customerCountry = new Map<string, CountryCode>((options.shop?.customers ?? []).map((c) => [c.id, c.country]));
  const sequenceNumbers = new Map<string, number>();
  const locks = new Map<string, Promise<unknown>>();
  let createdCustomers = 0;
  let createdOrders = 0;
  let emailChanges = 0;
  let randomChanges = 0;

  // Changes to one resource run one after the other: each reads the version the previous one produced.
  const serialised = <T>(id: string, task: () => Promise<T>): Promise<T> => {
    const previous = locks.get(id) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    locks.set(id, settled);
    void settled.then(() => {
      if (locks.get(id) === settled) locks.delete(id);
    });
    return run;
  };

  // commercetools numbers a resource's messages 1, 2, 3...; for resources we did not create we assume one message
  // per earlier version, which is what the seeded resources got.
  const nextSequenceNumber = (id: string, versionBefore: number): number => {
    const next = (sequenceNumbers.get(id) ?? versionBefore) + 1;
    sequenceNumbers.set(id, next);
    return next;
  };

  const envelope = (typeId: ChangeTypeId, resource: { id: string }, identifiers: UserProvidedIdentifiers): Envelope => ({
    projectKey,
    resource: { typeId, id: resource.id },
    resourceUserProvidedIdentifiers: identifiers,
  });

  const message = (typeId: ChangeTypeId, resource: VersionedResource, versionBefore: number, identifiers: UserProvidedIdentifiers, payload: MessagePayload): PlatformMessage => ({
    notificationType: 'Message',
    ...envelope(typeId, resource, identifiers),
    id: randomUUID(),
    version: 1,
    sequenceNumber: nextSequenceNumber(resource.id, versionBefore),
    resourceVersion: resource.version,
    ...payload,
    createdAt: resource.lastModifiedAt,
    lastModifiedAt: resource.lastModifiedAt,
    ...(resource.lastModifiedBy ? { createdBy: resource.lastModifiedBy, lastModifiedBy: resource.lastModifiedBy } : {}),
  });

  const updated = (typeId: ChangeTypeId, resource: VersionedResource, oldVersion: number, identifiers: UserProvidedIdentifiers): ResourceUpdatedNotification => ({
    notificationType: 'ResourceUpdated',
    ...envelope(typeId, resource, identifiers),
    version: resource.version,
    oldVersion,
    modifiedAt: resource.lastModifiedAt,
  });

  const created = (typeId: ChangeTypeId, resource: VersionedResource, identifiers: UserProvidedIdentifiers): ResourceCreatedNotification => ({
    notificationType: 'ResourceCreated',
    ...envelope(typeId, resource, identifiers),
    version: resource.version,
    modifiedAt: resource.lastModifiedAt,
  });

  const getCustomer = async (id: string) => (await api.customers().withId({ ID: id }).get().execute()).body;
  const getOrder = async (id: string) => (await api.orders().withId({ ID: id }).get().execute()).body;
  const getPayment = async (id: string) => (await api.payments().withId({ ID: id }).get().execute()).body;
  const getProduct = async (id: string) => (await api.products().withId({ ID: id }).get().execute()).body;
  const productUpdate = async (product: Product, action: Record<string, unknown>) =>
    (await api.products().withId({ ID: product.id }).post({ body: { version: product.version, actions: [action as never] } }).execute()).body;
  /** ProductPublished as commercetools sends it: the published projection (current data) with it. */
  const published = (after: Product, versionBefore: number): PlatformMessage =>
    message('product', after, versionBefore, productIdentifiers(after), {
      type: 'ProductPublished',
      removedImageUrls: [],
      scope: 'All',
      productProjection: { id: after.id, version: after.version, key: after.key, productType: after.productType, ...after.masterData.current, published: true, hasStagedChanges: false, createdAt: after.createdAt, lastModifiedAt: after.lastModifiedAt },
    });

  /** One of the generator's orders that is neither paid nor cancelled, if any. */
  const unpaidOrderId = async (): Promise<string | undefined> => {
    const known = new Set(orderIds);
    const open = (await api.orders().get({ queryArgs: { where: 'orderState = "Open" or orderState = "Confirmed"', limit: 500 } }).execute()).body.results;
    const unpaid = open.filter((order) => known.has(order.id) && order.paymentState !== 'Paid').map((order) => order.id);
    return unpaid.length > 0 ? random.pick(unpaid) : undefined;
  };

  const countryOf = (customer: Customer): CountryCode => {
    const known = customerCountry.get(customer.id);
    if (known) return known;
    const fromAddress = customer.addresses[0]?.country;
    return COUNTRIES.find((c) => c === fromAddress) ?? 'DE';
  };

  const generator: ChangeGenerator = {
    changeCustomerName(customerId, next) {
      return serialised(customerId, async () => {
        const before = await getCustomer(customerId);
        let firstName = next?.firstName;
        let lastName = next?.lastName;
        if (firstName === undefined && lastName === undefined) {
          // Marriage (last name), a typo fixed (first name), or both, roughly as often as support desks see them.
          const country = countryOf(before);
          const roll = random.next();
          if (roll < 0.5 || roll >= 0.8) lastName = differentFrom(before.lastName, () => randomPerson(random, country).lastName);
          if (roll >= 0.5) firstName = differentFrom(before.firstName, () => randomPerson(random, country).firstName);
        }
        // One request per field: each resulting version then belongs to exactly one message.
        const identifiers = customerIdentifiers(before);
        const messages: PlatformMessage[] = [];
        const changes: ChangeNotification[] = [];
        let current = before;
        if (firstName !== undefined) {
          const after = (await api.customers().withId({ ID: customerId }).post({ body: { version: current.version, actions: [{ action: 'setFirstName', firstName }] } }).execute()).body;
          messages.push(message('customer', after, current.version, identifiers, { type: 'CustomerFirstNameSet', firstName }));
          changes.push(updated('customer', after, current.version, identifiers));
          current = after;
        }
        if (lastName !== undefined) {
          const after = (await api.customers().withId({ ID: customerId }).post({ body: { version: current.version, actions: [{ action: 'setLastName', lastName }] } }).execute()).body;
          messages.push(message('customer', after, current.version, identifiers, { type: 'CustomerLastNameSet', lastName }));
          changes.push(updated('customer', after, current.version, identifiers));
          current = after;
        }
        return {
          kind: 'customer-name' as const,
          summary: `customer ${before.key ?? customerId}: ${messages.map((m) => m.type).join(' + ')}`,
          resource: { typeId: 'customer' as const, id: customerId },
          oldVersion: before.version,
          version: current.version,
          messages,
          changes,
        };
      });
    },

    changeCustomerEmail(customerId, email) {
      return serialised(customerId, async () => {
        const before = await getCustomer(customerId);
        emailChanges += 1;
        const profile = countryProfile(countryOf(before));
        const newEmail = email ?? `${emailLocalPart(before.firstName ?? 'kunde', before.lastName ?? 'x')}.${emailChanges}@${random.pick(profile.emailDomains)}`;
        const after = (await api.customers().withId({ ID: customerId }).post({ body: { version: before.version, actions: [{ action: 'changeEmail', email: newEmail }] } }).execute()).body;
        const identifiers = customerIdentifiers(after);
        return {
          kind: 'customer-email' as const,
          summary: `customer ${after.key ?? customerId}: CustomerEmailChanged`,
          resource: { typeId: 'customer' as const, id: customerId },
          oldVersion: before.version,
          version: after.version,
          messages: [message('customer', after, before.version, identifiers, { type: 'CustomerEmailChanged', email: after.email, oldEmail: before.email })],
          changes: [updated('customer', after, before.version, identifiers)],
        };
      });
    },

    async createCustomer(country) {
      const index = (options.shop?.customers.length ?? 5000) + createdCustomers;
      createdCustomers += 1;
      let plan = customerDraft(random, index);
      if (country) {
        for (let attempt = 0; attempt < 50 && plan.country !== country; attempt += 1) plan = customerDraft(random, index);
      }
      // A customer group only where the project has it: a project the seed did not fill has none, and commercetools
      // refuses a draft that names a missing one.
      const { customerGroup, ...rest } = plan.draft;
      const draft = customerGroup?.key && options.shop?.customerGroups[customerGroup.key] ? plan.draft : rest;
      const customer = withoutEmulatorFields((await api.customers().post({ body: draft }).execute()).body.customer);
      sequenceNumbers.set(customer.id, 0);
      customerIds.push(customer.id);
      customerCountry.set(customer.id, plan.country);
      const identifiers = customerIdentifiers(customer);
      return {
        kind: 'customer-created',
        summary: `customer ${customer.key ?? customer.id}: CustomerCreated`,
        resource: { typeId: 'customer', id: customer.id },
        oldVersion: undefined,
        version: customer.version,
        messages: [message('customer', customer, 0, identifiers, { type: 'CustomerCreated', customer })],
        changes: [created('customer', customer, identifiers)],
      };
    },

    changeOrderState(orderId, orderState) {
      return serialised(orderId, async () => {
        const before = await getOrder(orderId);
        const target = orderState ?? pickNextState(random, before.orderState);
        if (!target) throw new Error(`order ${before.orderNumber ?? orderId} is ${before.orderState}; no further state to move to`);
        const after = (await api.orders().withId({ ID: orderId }).post({ body: { version: before.version, actions: [{ action: 'changeOrderState', orderState: target }] } }).execute()).body;
        const identifiers = orderIdentifiers(after);
        return {
          kind: 'order-state' as const,
          summary: `order ${after.orderNumber ?? orderId}: ${before.orderState} → ${after.orderState}`,
          resource: { typeId: 'order' as const, id: orderId },
          oldVersion: before.version,
          version: after.version,
          messages: [message('order', after, before.version, identifiers, { type: 'OrderStateChanged', orderState: after.orderState, oldOrderState: before.orderState })],
          changes: [updated('order', after, before.version, identifiers)],
        };
      });
    },

    markOrderPaid(orderId) {
      return serialised(orderId, async () => {
        const before = await getOrder(orderId);
        if (before.paymentState === 'Paid') throw new Error(`order ${before.orderNumber ?? orderId} is paid already`);
        const after = (await api.orders().withId({ ID: orderId }).post({ body: { version: before.version, actions: [{ action: 'changePaymentState', paymentState: 'Paid' }] } }).execute()).body;
        const identifiers = orderIdentifiers(after);
        return {
          kind: 'order-paid' as const,
          summary: `order ${after.orderNumber ?? orderId}: payment ${before.paymentState ?? 'none'} → Paid`,
          resource: { typeId: 'order' as const, id: orderId },
          oldVersion: before.version,
          version: after.version,
          messages: [message('order', after, before.version, identifiers, { type: 'OrderPaymentStateChanged', paymentState: 'Paid', ...(before.paymentState ? { oldPaymentState: before.paymentState } : {}) })],
          changes: [updated('order', after, before.version, identifiers)],
        };
      });
    },

    async createOrder(customerId, options = {}) {
      const customer = await getCustomer(customerId);
      const country = countryOf(customer);
      const profile = countryProfile(country);
      const address = customer.addresses.find((a) => a.id === customer.defaultShippingAddressId) ?? customer.addresses[0];
      const skus = new Set<string>();
      const items = random.int(1, 3);
      for (let i = 0; i < items; i += 1) skus.add(random.pick(CATALOGUE_SKUS));
      const cartDraft: CartDraft = {
        currency: profile.currency,
        country,
        locale: profile.locale,
        customerId,
        customerEmail: customer.email,
        store: { typeId: 'store', key: profile.storeKey },
        lineItems: [...skus].map((sku) => ({ sku, quantity: random.chance(0.8) ? 1 : 2 })),
        ...(options.discountCodes?.length && { discountCodes: [...options.discountCodes] }),
        ...(address ? { shippingAddress: stripAddressId(address), billingAddress: stripAddressId(address) } : {}),
      };
      const cart = (await api.carts().post({ body: cartDraft }).execute()).body;
      createdOrders += 1;
      const orderNumber = `${profile.storeKey === 'uk-store' ? 'UK' : 'DACH'}-LIVE-${String(createdOrders).padStart(6, '0')}-${random.digits(4)}`;
      const order = (await api.orders().post({ body: { cart: { typeId: 'cart', id: cart.id }, version: cart.version, orderNumber } }).execute()).body;
      sequenceNumbers.set(order.id, 0);
      orderIds.push(order.id);
      const identifiers = orderIdentifiers(order);
      return {
        kind: 'order-created',
        summary: `order ${orderNumber}: OrderCreated${options.discountCodes?.length ? ` with ${options.discountCodes.join(', ')}` : ''}`,
        resource: { typeId: 'order', id: order.id },
        oldVersion: undefined,
        version: order.version,
        messages: [message('order', order, 0, identifiers, { type: 'OrderCreated', order })],
        changes: [created('order', order, identifiers)],
      };
    },

    addPaymentTransaction(paymentId, transaction) {
      return serialised(paymentId, async () => {
        const before = await getPayment(paymentId);
        const draft = { ...nextTransaction(random, before), ...transaction };
        const after = (await api.payments().withId({ ID: paymentId }).post({ body: { version: before.version, actions: [{ action: 'addTransaction', transaction: draft }] } }).execute()).body;
        const added = after.transactions.find((t) => !before.transactions.some((old) => old.id === t.id)) ?? after.transactions.at(-1);
        if (!added) throw new Error(`payment ${paymentId}: the added transaction is missing from the answer`);
        const identifiers = paymentIdentifiers(after);
        return {
          kind: 'payment-transaction' as const,
          summary: `payment ${after.key ?? paymentId}: PaymentTransactionAdded (${added.type} ${added.state})`,
          resource: { typeId: 'payment' as const, id: paymentId },
          oldVersion: before.version,
          version: after.version,
          messages: [message('payment', after, before.version, identifiers, { type: 'PaymentTransactionAdded', transaction: added })],
          changes: [updated('payment', after, before.version, identifiers)],
        };
      });
    },

    changeProductPrice(productId) {
      return serialised(productId, async () => {
        const before = await getProduct(productId);
        const price = before.masterData.staged.masterVariant.prices?.[0];
        if (!price) throw new Error(`product ${before.key ?? productId} has no price to change`);
        const factor = 1 + (random.chance(0.5) ? 1 : -1) * random.int(3, 15) / 100;
        const centAmount = Math.max(100, Math.round((price.value.centAmount * factor) / 10) * 10 - 1);
        const newPrice = { ...price, value: { ...price.value, centAmount } };
        const changed = await productUpdate(before, { action: 'changePrice', priceId: price.id, price: { value: { type: 'centPrecision', currencyCode: price.value.currencyCode, centAmount, fractionDigits: price.value.fractionDigits } }, staged: true });
        const after = await productUpdate(changed, { action: 'publish', scope: 'All' });
        const identifiers = productIdentifiers(after);
        return {
          kind: 'product-price' as const,
          summary: `product ${after.key ?? productId}: ProductPriceChanged (${price.value.currencyCode} ${price.value.centAmount} → ${centAmount}) + ProductPublished`,
          resource: { typeId: 'product' as const, id: productId },
          oldVersion: before.version,
          version: after.version,
          messages: [
            message('product', changed, before.version, identifiers, { type: 'ProductPriceChanged', variantId: before.masterData.staged.masterVariant.id, oldPrice: price, newPrice, staged: true }),
            published(after, changed.version),
          ],
          changes: [updated('product', changed, before.version, identifiers), updated('product', after, changed.version, identifiers)],
        };
      });
    },

    toggleProductPublication(productId) {
      return serialised(productId, async () => {
        const before = await getProduct(productId);
        const unpublishing = before.masterData.published;
        const after = await productUpdate(before, unpublishing ? { action: 'unpublish' } : { action: 'publish', scope: 'All' });
        const identifiers = productIdentifiers(after);
        return {
          kind: 'product-publication' as const,
          summary: `product ${after.key ?? productId}: ${unpublishing ? 'ProductUnpublished' : 'ProductPublished'}`,
          resource: { typeId: 'product' as const, id: productId },
          oldVersion: before.version,
          version: after.version,
          messages: [unpublishing ? message('product', after, before.version, identifiers, { type: 'ProductUnpublished' }) : published(after, before.version)],
          changes: [updated('product', after, before.version, identifiers)],
        };
      });
    },

    async randomChange() {
      // Every fifth change, the first included, an open order gets paid: a short run shows points earned too.
      randomChanges += 1;
      if (randomChanges % 5 === 1) {
        const unpaid = await unpaidOrderId();
        if (unpaid) return generator.markOrderPaid(unpaid);
      }
      const roll = random.next();
      if (customerIds.length === 0 || roll < 0.04) return generator.createCustomer();
      if (roll < 0.3) return generator.changeCustomerName(random.pick(customerIds));
      if (roll < 0.42) return generator.changeCustomerEmail(random.pick(customerIds));
      if (roll < 0.52) return generator.createOrder(random.pick(customerIds));
      if (roll < 0.78 && orderIds.length > 0) {
        const orderId = random.pick(orderIds);
        const order = await getOrder(orderId);
        if (pickNextState(random, order.orderState)) return generator.changeOrderState(orderId);
      }
      // Merchandising: mostly price changes, now and then a product taken off the shop or put back.
      if (roll < 0.86 && productIds.length > 0) {
        const productId = random.pick(productIds);
        return random.chance(0.75) ? generator.changeProductPrice(productId) : generator.toggleProductPublication(productId);
      }
      if (paymentIds.length > 0) return generator.addPaymentTransaction(random.pick(paymentIds));
      return generator.changeCustomerName(random.pick(customerIds));
    },

    async burst(customerId, count) {
      const results: AppliedChange[] = [];
      for (let i = 0; i < count; i += 1) results.push(await generator.changeCustomerName(customerId));
      return results;
    },
  };
  return generator;
}

/**
 * The notifications as an at-least-once queue might deliver them: some twice, some swapped with a neighbour.
 * Deterministic for a seed.
 */
export function scrambleDeliveries<T>(notifications: readonly T[], options: { seed?: number; duplicateRate?: number; reorderRate?: number } = {}): T[] {
  const random = new Random(options.seed ?? 3);
  const duplicateRate = options.duplicateRate ?? 0.1;
  const reorderRate = options.reorderRate ?? 0.2;
  const out: T[] = [];
  for (const notification of notifications) {
    out.push(notification);
    if (random.chance(duplicateRate)) out.push(notification);
  }
  for (let i = 0; i + 1 < out.length; i += 1) {
    if (random.chance(reorderRate)) {
      const a = out[i] as T;
      out[i] = out[i + 1] as T;
      out[i + 1] = a;
      i += 1;
    }
  }
  return out;
}

function differentFrom(current: string | undefined, draw: () => string): string {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const candidate = draw();
    if (candidate !== current) return candidate;
  }
  return `${current ?? ''}-${draw()}`;
}

function pickNextState(random: Random, current: OrderState): OrderState | undefined {
  const options = NEXT_ORDER_STATES[current] ?? ['Confirmed'];
  return options.length > 0 ? random.pick(options) : undefined;
}

function nextTransaction(random: Random, payment: Payment): TransactionDraft {
  const amount = { currencyCode: payment.amountPlanned.currencyCode, centAmount: payment.amountPlanned.centAmount };
  const succeeded = (type: string) => payment.transactions.some((t) => t.type === type && t.state === 'Success');
  const interactionId = `${(payment.paymentMethodInfo.paymentInterface ?? 'psp').slice(0, 3)}_${random.digits(16)}`;
  const timestamp = new Date().toISOString();
  if (!succeeded('Authorization')) return { type: 'Authorization', amount, state: 'Success', interactionId, timestamp };
  if (!succeeded('Charge')) return { type: 'Charge', amount, state: 'Success', interactionId, timestamp };
  // A partial refund: one item sent back.
  const refund = Math.max(1, Math.round((amount.centAmount * random.int(20, 60)) / 100));
  return { type: 'Refund', amount: { currencyCode: amount.currencyCode, centAmount: refund }, state: random.chance(0.8) ? 'Success' : 'Pending', interactionId, timestamp };
}

function customerIdentifiers(customer: Customer): UserProvidedIdentifiers {
  return { ...(customer.key ? { key: customer.key } : {}), ...(customer.customerNumber ? { customerNumber: customer.customerNumber } : {}), ...(customer.externalId ? { externalId: customer.externalId } : {}) };
}

function orderIdentifiers(order: Order): UserProvidedIdentifiers {
  return order.orderNumber ? { orderNumber: order.orderNumber } : {};
}

function productIdentifiers(product: Product): UserProvidedIdentifiers {
  return product.key ? { key: product.key } : {};
}

function paymentIdentifiers(payment: Payment): UserProvidedIdentifiers {
  return payment.key ? { key: payment.key } : {};
}

function stripAddressId<T extends { id?: string }>(address: T): Omit<T, 'id'> {
  const { id: _id, ...rest } = address;
  return rest;
}

/** The emulator keeps a `lowercaseEmail` helper field on customers that commercetools does not return. */
function withoutEmulatorFields(customer: Customer): Customer {
  const { lowercaseEmail: _lowercaseEmail, ...rest } = customer as Customer & { lowercaseEmail?: string };
  return rest;
}
