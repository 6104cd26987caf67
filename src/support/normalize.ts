// commercetools resources as support views (views.ts), before any masking: a customer and orders read with their
// payments expanded become the normalised shape a service desk shows. Names are picked in the requested locale,
// else in the store's first language; amounts carry a display text in that locale. Payment transactions keep their
// kind, state, amount and time only: interaction ids, custom fields and anything else a PSP may put on a payment
// never enter a view.
import type { Address, CustomerProfile, Money, OrderView } from './views.ts';

type Json = Record<string, unknown>;

export interface LocaleContext {
  /** The locale the caller asked for (?locale=), if any. */
  requested: string | undefined;
  /** The languages of each store, by key (commercetools Store.languages). */
  storeLanguages: ReadonlyMap<string, readonly string[]>;
}

export interface LinkContext {
  projectKey: string;
  backOffice: { customer?: string | undefined; order?: string | undefined };
}

const FALLBACK_LOCALE = 'en';

export function localeFor(context: LocaleContext, storeKey: string | undefined, resourceLocale?: unknown): string {
  if (context.requested) return context.requested;
  const languages = storeKey ? context.storeLanguages.get(storeKey) : undefined;
  if (languages?.[0]) return languages[0];
  return typeof resourceLocale === 'string' && resourceLocale.length > 0 ? resourceLocale : FALLBACK_LOCALE;
}

/** A LocalizedString in `locale`: exact, then the same language, then the store's languages, then any. */
export function pickLocalized(value: unknown, locale: string, storeLanguages: readonly string[] = []): string | undefined {
  if (typeof value === 'string') return value;
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
  if (entries.length === 0) return undefined;
  const lower = locale.toLowerCase();
  const language = lower.split('-')[0];
  return (
    entries.find(([key]) => key.toLowerCase() === lower)?.[1] ??
    entries.find(([key]) => key.toLowerCase().split('-')[0] === language)?.[1] ??
    storeLanguages.map((l) => entries.find(([key]) => key === l)?.[1]).find((v) => v !== undefined) ??
    entries[0]![1]
  );
}

export function money(value: unknown, locale: string): Money | undefined {
  if (!isRecord(value) || typeof value.centAmount !== 'number' || typeof value.currencyCode !== 'string') return undefined;
  const fractionDigits = typeof value.fractionDigits === 'number' ? value.fractionDigits : 2;
  return { centAmount: value.centAmount, currencyCode: value.currencyCode, fractionDigits, formatted: formatMoney(value.centAmount, value.currencyCode, fractionDigits, locale) };
}

const formatters = new Map<string, Intl.NumberFormat>();

function formatMoney(centAmount: number, currencyCode: string, fractionDigits: number, locale: string): string {
  const key = `${locale}|${currencyCode}|${fractionDigits}`;
  let format = formatters.get(key);
  if (!format) {
    try {
      format = new Intl.NumberFormat(locale, { style: 'currency', currency: currencyCode, minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
    } catch {
      // A locale or currency Intl does not know: still a readable amount.
      format = new Intl.NumberFormat('en', { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
    }
    formatters.set(key, format);
  }
  const text = format.format(centAmount / 10 ** fractionDigits);
  return format.resolvedOptions().style === 'currency' ? text : `${text} ${currencyCode}`;
}

export function link(template: string | undefined, values: Record<string, string | undefined>): string | undefined {
  if (!template) return undefined;
  let missing = false;
  const out = template.replace(/\{([A-Za-z]+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) missing = true;
    return encodeURIComponent(value ?? '');
  });
  return missing ? undefined : out;
}

const ADDRESS_KEYS = ['id', 'key', 'firstName', 'lastName', 'company', 'streetName', 'streetNumber', 'additionalAddressInfo', 'postalCode', 'city', 'region', 'country', 'phone', 'mobile', 'email'] as const;

export function address(value: unknown): Address | undefined {
  if (!isRecord(value)) return undefined;
  const out: Address = {};
  for (const key of ADDRESS_KEYS) {
    const field = value[key];
    if (typeof field === 'string' && field.length > 0) out[key] = field;
  }
  return out;
}

export function customerProfile(customer: Json, customFieldNames: readonly string[], links: LinkContext): CustomerProfile {
  const id = String(customer.id);
  const addresses = (Array.isArray(customer.addresses) ? customer.addresses : []).map(address).filter((a): a is Address => a !== undefined);
  const defaultShipping = addresses.find((a) => a.id !== undefined && a.id === customer.defaultShippingAddressId) ?? addresses[0];
  const groupRef = isRecord(customer.customerGroup) ? customer.customerGroup : undefined;
  // Expanded by the reader; a group that could not be expanded still gives its id.
  const group = groupRef && isRecord(groupRef.obj) ? groupRef.obj : undefined;
  const storeKeys = (Array.isArray(customer.stores) ? customer.stores : []).map((s) => (isRecord(s) && typeof s.key === 'string' ? s.key : undefined)).filter((k): k is string => k !== undefined);
  const fields = isRecord(customer.custom) && isRecord(customer.custom.fields) ? customer.custom.fields : {};
  const customFields = Object.fromEntries(customFieldNames.filter((name) => Object.hasOwn(fields, name)).map((name) => [name, fields[name]]));
  const customerNumber = str(customer.customerNumber);
  return {
    references: {
      customerId: id,
      ...(customerNumber && { customerNumber }),
      ...(storeKeys.length === 1 && { storeKey: storeKeys[0] }),
      ...optional('backOffice', link(links.backOffice.customer, { projectKey: links.projectKey, customerId: id, customerNumber, storeKey: storeKeys[0] })),
    },
    id,
    ...optional('customerNumber', customerNumber),
    ...optional('email', str(customer.email)),
    ...optional('firstName', str(customer.firstName)),
    ...optional('lastName', str(customer.lastName)),
    ...optional('phone', defaultShipping?.phone ?? defaultShipping?.mobile),
    ...optional('dateOfBirth', str(customer.dateOfBirth)),
    ...(groupRef && { customerGroup: { id: String(groupRef.id), ...optional('key', str(group?.key)), ...optional('name', str(group?.name)) } }),
    storeKeys,
    addresses,
    customFields,
    createdAt: String(customer.createdAt),
  };
}

export function orderView(order: Json, locales: LocaleContext, links: LinkContext): OrderView {
  const storeKey = isRecord(order.store) && typeof order.store.key === 'string' ? order.store.key : undefined;
  const locale = localeFor(locales, storeKey, order.locale);
  const languages = (storeKey && locales.storeLanguages.get(storeKey)) || [];
  const m = (value: unknown) => money(value, locale);
  const id = String(order.id);
  const orderNumber = str(order.orderNumber);
  const customerId = str(order.customerId);
  const lineItems = (Array.isArray(order.lineItems) ? order.lineItems : []).filter(isRecord).map((item) => {
    const variant = isRecord(item.variant) ? item.variant : {};
    const price = isRecord(item.price) ? item.price.value : undefined;
    return {
      id: String(item.id),
      name: pickLocalized(item.name, locale, languages) ?? '',
      ...optional('sku', str(variant.sku)),
      quantity: typeof item.quantity === 'number' ? item.quantity : 0,
      unitPrice: m(price) ?? zero(order, locale),
      totalPrice: m(item.totalPrice) ?? zero(order, locale),
      states: (Array.isArray(item.state) ? item.state : []).filter(isRecord).map((s) => ({
        state: isRecord(s.state) ? (str(isRecord(s.state.obj) ? s.state.obj.key : undefined) ?? String(s.state.id)) : 'unknown',
        quantity: typeof s.quantity === 'number' ? s.quantity : 0,
      })),
    };
  });
  const taxed = isRecord(order.taxedPrice) ? order.taxedPrice : undefined;
  const shippingInfo = isRecord(order.shippingInfo) ? order.shippingInfo : undefined;
  const shippingMethod = shippingInfo && isRecord(shippingInfo.shippingMethod) && isRecord(shippingInfo.shippingMethod.obj) ? shippingInfo.shippingMethod.obj : undefined;
  const payments = (isRecord(order.paymentInfo) && Array.isArray(order.paymentInfo.payments) ? order.paymentInfo.payments : [])
    .filter(isRecord)
    .map((reference) => (isRecord(reference.obj) ? reference.obj : undefined))
    .filter((payment): payment is Json => payment !== undefined)
    .map((payment) => {
      const info = isRecord(payment.paymentMethodInfo) ? payment.paymentMethodInfo : {};
      return {
        id: String(payment.id),
        ...optional('method', pickLocalized(info.name, locale, languages) ?? str(info.method)),
        ...optional('paymentInterface', str(info.paymentInterface)),
        amountPlanned: m(payment.amountPlanned) ?? zero(order, locale),
        transactions: (Array.isArray(payment.transactions) ? payment.transactions : []).filter(isRecord).map((t) => ({
          ...optional('id', str(t.id)),
          type: String(t.type),
          state: str(t.state) ?? 'Initial',
          amount: m(t.amount) ?? zero(order, locale),
          ...optional('timestamp', str(t.timestamp)),
        })),
      };
    });
  const refunds = payments.flatMap((p) => p.transactions).filter((t) => t.type === 'Refund' && t.state === 'Success');
  const total = m(order.totalPrice) ?? zero(order, locale);
  const refunded = refunds.length > 0 ? money({ centAmount: refunds.reduce((sum, t) => sum + t.amount.centAmount, 0), currencyCode: total.currencyCode, fractionDigits: total.fractionDigits }, locale) : undefined;
  return {
    references: {
      orderId: id,
      ...optional('orderNumber', orderNumber),
      ...optional('customerId', customerId),
      ...optional('storeKey', storeKey),
      ...optional('backOffice', link(links.backOffice.order, { projectKey: links.projectKey, orderId: id, orderNumber, customerId, storeKey })),
    },
    id,
    ...optional('orderNumber', orderNumber),
    ...optional('storeKey', storeKey),
    locale,
    createdAt: String(order.createdAt),
    ...optional('completedAt', str(order.completedAt)),
    orderState: str(order.orderState) ?? 'Open',
    ...optional('paymentState', str(order.paymentState)),
    ...optional('shipmentState', str(order.shipmentState)),
    ...optional('email', str(order.customerEmail)),
    lineItems,
    totals: {
      total,
      ...optional('net', taxed ? m(taxed.totalNet) : undefined),
      ...optional('gross', taxed ? m(taxed.totalGross) : undefined),
      ...optional('tax', taxed ? m(taxed.totalTax) : undefined),
      taxPortions: (taxed && Array.isArray(taxed.taxPortions) ? taxed.taxPortions : []).filter(isRecord).map((portion) => ({
        ...optional('name', str(portion.name)),
        rate: typeof portion.rate === 'number' ? portion.rate : 0,
        amount: m(portion.amount) ?? zero(order, locale),
      })),
    },
    ...(shippingInfo && {
      shipping: {
        ...optional('method', pickLocalized(shippingMethod?.localizedName, locale, languages) ?? str(shippingInfo.shippingMethodName)),
        ...optional('price', m(shippingInfo.price)),
        deliveries: (Array.isArray(shippingInfo.deliveries) ? shippingInfo.deliveries : []).filter(isRecord).map((delivery) => ({
          id: String(delivery.id),
          ...optional('key', str(delivery.key)),
          ...optional('createdAt', str(delivery.createdAt)),
          items: (Array.isArray(delivery.items) ? delivery.items : []).filter(isRecord).map((item) => ({ lineItemId: String(item.id), quantity: typeof item.quantity === 'number' ? item.quantity : 0 })),
          parcels: (Array.isArray(delivery.parcels) ? delivery.parcels : []).filter(isRecord).map((parcel) => {
            const tracking = isRecord(parcel.trackingData) ? parcel.trackingData : {};
            return {
              id: String(parcel.id),
              ...optional('trackingId', str(tracking.trackingId)),
              ...optional('carrier', str(tracking.carrier)),
              ...(typeof tracking.isReturn === 'boolean' && { isReturn: tracking.isReturn }),
              ...optional('createdAt', str(parcel.createdAt)),
            };
          }),
        })),
      },
    }),
    ...optional('shippingAddress', address(order.shippingAddress)),
    ...optional('billingAddress', address(order.billingAddress)),
    payments,
    ...optional('refunded', refunded),
    returns: (Array.isArray(order.returnInfo) ? order.returnInfo : []).filter(isRecord).map((info) => ({
      ...optional('returnTrackingId', str(info.returnTrackingId)),
      ...optional('returnDate', str(info.returnDate)),
      items: (Array.isArray(info.items) ? info.items : []).filter(isRecord).map((item) => ({
        id: String(item.id),
        ...optional('lineItemId', str(item.lineItemId) ?? str(item.customLineItemId)),
        quantity: typeof item.quantity === 'number' ? item.quantity : 0,
        shipmentState: str(item.shipmentState) ?? 'Advised',
        paymentState: str(item.paymentState) ?? 'Initial',
        ...optional('comment', str(item.comment)),
      })),
    })),
  };
}

function zero(order: Json, locale: string): Money {
  const currencyCode = isRecord(order.totalPrice) && typeof order.totalPrice.currencyCode === 'string' ? order.totalPrice.currencyCode : 'EUR';
  return money({ centAmount: 0, currencyCode, fractionDigits: 2 }, locale)!;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** `{ [key]: value }` when the value is there, `{}` otherwise: optional members stay absent, never undefined. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
