// What one role sees of a view: the parts it is given (`fields`), personal data treated by its PII policy for the
// market the data belongs to (an order: its store; a profile: the strictest policy of the stores the customer and
// the shown orders are in), and, whatever the policy says, no payment card data or IBAN anywhere (masked in every
// text, as logs and dead letters are). The same mask transform as mappings (mapping/transforms.ts).
import { compileTransform, type TransformContext } from '../mapping/transforms.ts';
import { classOfName, type PiiClass, type PiiPolicy, type PiiTreatment } from '../pii/classes.ts';
import { maskPaymentData } from '../pii/payment-data.ts';
import { policyFor, strictest, type SupportField, type SupportRole } from './settings.ts';
import type { Address, CustomerProfile, CustomerView, OrderView } from './views.ts';

const NO_CONTEXT = {} as TransformContext;
const maskEmail = compileTransform({ mask: { kind: 'email' } });
const maskPhone = compileTransform({ mask: { kind: 'phone' } });
const maskText = compileTransform({ mask: { kind: 'text' } });

/** Classes whose `fields` entry, when the role lacks it, drops them like a `drop` policy. */
const FIELD_OF_CLASS: Partial<Record<PiiClass, SupportField>> = { email: 'email', name: 'name', phone: 'phone', address: 'addresses', dateOfBirth: 'dateOfBirth' };

export class RoleView {
  readonly #role: SupportRole;
  readonly #fields: ReadonlySet<SupportField>;

  constructor(role: SupportRole) {
    this.#role = role;
    this.#fields = new Set(role.fields);
  }

  /** Whether the role may see a store's customers and orders. */
  allowsStore(storeKey: string | undefined): boolean {
    if (this.#role.stores === undefined) return true;
    return storeKey !== undefined && this.#role.stores.includes(storeKey);
  }

  /** The customer custom fields the role sees, by name. */
  get customFields(): readonly string[] {
    return this.#role.customFields;
  }

  get stores(): readonly string[] | undefined {
    return this.#role.stores;
  }

  has(field: SupportField): boolean {
    return this.#fields.has(field);
  }

  /** The policy in a market, with the parts the role is not given dropped. */
  policy(markets: ReadonlyArray<string | undefined>): PiiPolicy {
    const policy = strictest((markets.length === 0 ? [undefined] : markets).map((market) => policyFor(this.#role, market)));
    for (const [piiClass, field] of Object.entries(FIELD_OF_CLASS)) if (!this.#fields.has(field)) policy[piiClass as PiiClass] = 'drop';
    return policy;
  }

  order(order: OrderView): OrderView {
    const policy = this.policy([order.storeKey]);
    const out: OrderView = { ...order };
    const email = treat(out.email, policy.email, 'email');
    if (email === undefined) delete out.email;
    else out.email = email;
    for (const key of ['shippingAddress', 'billingAddress'] as const) {
      const treated = out[key] && treatAddress(out[key], policy);
      if (treated === undefined) delete out[key];
      else out[key] = treated;
    }
    if (!this.has('lineItems')) out.lineItems = [];
    if (!this.has('payments')) {
      out.payments = [];
      delete out.refunded;
    }
    if (!this.has('shipping')) delete out.shipping;
    if (!this.has('returns')) out.returns = [];
    return noPaymentData(out);
  }

  customer(view: CustomerView): CustomerView {
    const stores = [...new Set([...view.customer.storeKeys, ...view.orders.map((o) => o.storeKey)])];
    const policy = this.policy(stores);
    const profile: CustomerProfile = { ...view.customer };
    for (const [key, piiClass] of [['email', 'email'], ['firstName', 'name'], ['lastName', 'name'], ['phone', 'phone'], ['dateOfBirth', 'dateOfBirth']] as const) {
      const treated = treat(profile[key], policy[piiClass], piiClass);
      if (treated === undefined) delete profile[key];
      else profile[key] = treated;
    }
    profile.addresses = profile.addresses.map((a) => treatAddress(a, policy)).filter((a): a is Address => a !== undefined);
    if (!this.has('customerGroup')) delete profile.customerGroup;
    profile.customFields = this.has('customFields') ? customFields(profile.customFields, policy) : {};
    return noPaymentData({
      customer: profile,
      orders: this.has('orders') ? view.orders.map((order) => this.order(order)) : [],
      ordersPage: this.has('orders') ? view.ordersPage : { ...view.ordersPage, count: 0 },
    });
  }
}

function treat(value: string | undefined, treatment: PiiTreatment | undefined, piiClass: PiiClass): string | undefined {
  if (value === undefined) return undefined;
  switch (treatment ?? 'pass') {
    case 'pass':
      return value;
    case 'mask':
      return String((piiClass === 'email' ? maskEmail : piiClass === 'phone' ? maskPhone : maskText)(value, NO_CONTEXT));
    default:
      // drop; hash and tokenize are refused by the configuration (settings.ts).
      return undefined;
  }
}

/** An address under the policy: masked means city and country only; its name, phone and e-mail by their own class. */
function treatAddress(value: Address, policy: PiiPolicy): Address | undefined {
  const treatment = policy.address ?? 'pass';
  if (treatment === 'drop') return undefined;
  if (treatment === 'mask') return { ...pick(value, ['id', 'key', 'city', 'country']) };
  const out: Address = { ...value };
  for (const [key, piiClass] of [['firstName', 'name'], ['lastName', 'name'], ['phone', 'phone'], ['mobile', 'phone'], ['email', 'email']] as const) {
    const treated = treat(out[key], policy[piiClass], piiClass);
    if (treated === undefined) delete out[key];
    else out[key] = treated;
  }
  return out;
}

/** Custom fields named like personal data (`mobile`, `birthday`) are treated as their class. */
function customFields(fields: Record<string, unknown>, policy: PiiPolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const piiClass = classOfName(name);
    if (piiClass === undefined) {
      out[name] = value;
      continue;
    }
    if (piiClass === 'payment') continue;
    const treatment = policy[piiClass] ?? 'pass';
    if (treatment === 'drop') continue;
    out[name] = treatment === 'pass' || typeof value !== 'string' ? (treatment === 'pass' ? value : undefined) : treat(value, treatment, piiClass);
    if (out[name] === undefined) delete out[name];
  }
  return out;
}

function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (value[key] !== undefined) out[key] = value[key];
  return out;
}

/** Every text in the view with card numbers and IBANs replaced (pii/payment-data.ts). */
function noPaymentData<T>(value: T): T {
  if (typeof value === 'string') return maskPaymentData(value) as T;
  if (Array.isArray(value)) return value.map(noPaymentData) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, noPaymentData(item)])) as T;
  return value;
}
