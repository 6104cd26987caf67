// Who a record or event is about, as one stable key per person: a registered commercetools customer by id, a
// guest (an order with customerEmail and no customerId) by the keyed digest of their normalised email, within
// the order's store. Emails are normalised by configurable rules: trim and lower-case always, and for named
// domains, dots in the local part ignored and a +tag dropped (Gmail treats a.b+x@gmail.com as ab@gmail.com).
import { carriedByMessage } from '../ingest/message.ts';
import { storefrontShopper } from '../ingest/storefront-events.ts';
import { keyedDigest } from '../pii/secrets.ts';

export interface EmailRules {
  /** Domains whose mailboxes ignore dots in the local part. */
  foldDots: readonly string[];
  /** Domains whose mailboxes ignore a +tag in the local part. */
  foldPlus: readonly string[];
}

export interface Person {
  key: string;
  kind: 'customer' | 'guest';
  storeKey: string;
  emailDigest: string | undefined;
}

export function normaliseEmail(email: string, rules: EmailRules): string | undefined {
  const text = email.trim().toLowerCase();
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return undefined;
  let local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (rules.foldPlus.includes(domain)) local = local.split('+')[0]!;
  if (rules.foldDots.includes(domain)) local = local.replaceAll('.', '');
  return local === '' ? undefined : `${local}@${domain}`;
}

export type PersonResolver = (typeId: string, resource: Record<string, unknown>) => Person | undefined;

/** `secret` keys the email digests, so a digest cannot be looked up in a list of known addresses. */
export function createPersonResolver(rules: EmailRules, secret: Buffer): PersonResolver {
  const digest = keyedDigest(secret, 32);
  const digestOf = (email: unknown): string | undefined => {
    const normalised = typeof email === 'string' ? normaliseEmail(email, rules) : undefined;
    return normalised === undefined ? undefined : digest(normalised);
  };
  const keyOf = (reference: unknown): string => {
    const key = reference !== null && typeof reference === 'object' ? (reference as { key?: unknown }).key : undefined;
    return typeof key === 'string' ? key : '';
  };
  return (typeId, resource) => {
    if (typeId === 'customer') {
      if (typeof resource.id !== 'string') return undefined;
      const stores = Array.isArray(resource.stores) ? (resource.stores as unknown[]) : [];
      return { key: `customer:${resource.id}`, kind: 'customer', storeKey: keyOf(stores[0]), emailDigest: digestOf(resource.email) };
    }
    if (typeId === 'payment') {
      const customer = resource.customer as { id?: unknown } | undefined;
      return typeof customer?.id === 'string' ? { key: `customer:${customer.id}`, kind: 'customer', storeKey: '', emailDigest: undefined } : undefined;
    }
    // Orders, carts, and the shoppers of storefront events (shaped like an order's customer: storefrontSubject).
    const storeKey = keyOf(resource.store);
    const emailDigest = digestOf(resource.customerEmail);
    if (typeof resource.customerId === 'string') return { key: `customer:${resource.customerId}`, kind: 'customer', storeKey, emailDigest };
    if (emailDigest === undefined) return undefined;
    return { key: `guest:${storeKey}:${emailDigest}`, kind: 'guest', storeKey, emailDigest };
  };
}

/** The resource a Message is about, when it carries it (OrderCreated carries `order`), for its person. */
export function messageSubject(message: Record<string, unknown>): { typeId: string; resource: Record<string, unknown> } | undefined {
  const subject = carriedByMessage(message);
  if (!subject) return undefined;
  if (subject.resource) return { typeId: subject.typeId, resource: subject.resource };
  // A customer Message that does not carry the customer still names them.
  return subject.typeId === 'customer' && subject.id !== undefined ? { typeId: 'customer', resource: { id: subject.id } } : undefined;
}

/**
 * The shopper of a storefront event, as the person resolver reads an order's customer: the customer when logged in,
 * else the guest of their e-mail in the event's store (the same guest as a guest order's), else nobody.
 */
export function storefrontSubject(payload: Record<string, unknown>): { typeId: string; resource: Record<string, unknown> } | undefined {
  const shopper = storefrontShopper(payload);
  return shopper ? { typeId: 'storefront-event', resource: shopper } : undefined;
}

/** The commercetools customer a person is, if they are one (a guest is not): whose data a vault token holds. */
export function customerIdOf(person: Person | undefined): string | undefined {
  return person?.kind === 'customer' ? person.key.slice('customer:'.length) : undefined;
}
