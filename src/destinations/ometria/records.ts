// What each item becomes in Ometria: the records of one push body (pure functions; push.ts sends them).
// - customer records → a `contact` (id = the commercetools customer id, never an email; @collection from the
//   settings or a when: block's target); a deleted customer is opted out, since the Push API deletes nothing.
// - order records → an `order` whose customer.id is the contact's customer_id (a guest's: the identity layer's key,
//   also the id of a guest contact sent beside it with the order's e-mail, so Ometria stitches the guest's orders to
//   the profile when the same e-mail registers); a deleted order becomes invalid.
// - product records → a `product`, with each mapped variant as a product of its own (is_variant, parent_id).
// - events → a `custom_event` whose id is the source event id, so a retry never makes a second event.
import { PermanentError, type EventItem, type RecordItem } from '../kit/index.ts';
import type { OmetriaSettings } from './settings.ts';

export type OmetriaType = 'contact' | 'order' | 'product' | 'custom_event';
export type OmetriaRecord = Record<string, unknown> & { '@type': OmetriaType; id: string };

/** The ctbridge-only field of a product mapping that lists its variants (each becomes a child product). */
export const VARIANTS_FIELD = 'variants';
/** custom_event limits (spec/ometria/push-api.md): event_type under 32 characters, property text up to 512. */
const MAX_EVENT_TYPE = 31;
const MAX_PROPERTY_TEXT = 512;

/** A when: block may send contacts to another collection (a brand of its own). */
export interface OmetriaTarget {
  collection?: string;
}

/** The Ometria type a record mapping sends, by the commercetools resource it reads. */
export function typeOfRecord(item: Pick<RecordItem, 'resourceType' | 'recordType'>): OmetriaType | undefined {
  switch (item.resourceType) {
    case 'customer':
      return 'contact';
    case 'order':
      return 'order';
    case 'product':
      return 'product';
    default:
      return undefined;
  }
}

/** The id Ometria knows a person by: the customer id, or a guest's identity key (a keyed digest, no e-mail). */
export function accountIdOf(person: { key: string } | undefined): string | undefined {
  if (!person) return undefined;
  return person.key.startsWith('customer:') ? person.key.slice('customer:'.length) : person.key;
}

export function contactRecord(item: RecordItem, settings: OmetriaSettings, now: number): OmetriaRecord {
  const collection = (item.target as OmetriaTarget | undefined)?.collection ?? settings.collection;
  const base = { '@type': 'contact' as const, id: item.resourceId, '@collection': collection };
  // Deleted (or erased) in commercetools: opted out as of now, which no older opt-in overrides.
  if (item.operation === 'delete') return { ...base, marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: new Date(now).toISOString() };
  return { customer_id: item.resourceId, ...present(item), ...base };
}

/**
 * The fields to send: a null (nothing in commercetools) is left out, unless the field had a value when last sent —
 * then it clears it (a partial update keeps whatever a field it does not name had).
 */
function present(item: RecordItem): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item.fields)) {
    if (value === null || value === undefined) {
      const before = item.previous?.[name];
      if (before === null || before === undefined) continue;
    }
    out[name] = value;
  }
  return out;
}

/** The order, and for a guest the contact that carries the guest's e-mail (sent when the order's customer changed). */
export function orderRecords(item: RecordItem, settings: OmetriaSettings): OmetriaRecord[] {
  const base = { '@type': 'order' as const, id: item.resourceId };
  if (item.operation === 'delete') return [{ ...base, status: 'cancelled', is_valid: false }];
  const order: OmetriaRecord = { ...present(item), ...base };
  const accountId = accountIdOf(item.person);
  const customer = isObject(item.record.customer) ? item.record.customer : {};
  if (Object.hasOwn(item.fields, 'customer') || accountId !== undefined) {
    order.customer = { ...(isObject(item.fields.customer) ? item.fields.customer : {}), ...(accountId !== undefined && { id: accountId }) };
  }
  const records: OmetriaRecord[] = [order];
  if (accountId !== undefined && item.person!.key.startsWith('guest:') && Object.hasOwn(item.fields, 'customer') && typeof customer.email === 'string') {
    records.unshift({
      '@type': 'contact',
      id: accountId,
      '@collection': (item.target as OmetriaTarget | undefined)?.collection ?? settings.collection,
      customer_id: accountId,
      email: customer.email,
      ...(typeof customer.firstname === 'string' && { firstname: customer.firstname }),
      ...(typeof customer.lastname === 'string' && { lastname: customer.lastname }),
    });
  }
  return records;
}

/** The product and its variants (children with is_variant and parent_id). */
export function productRecords(item: RecordItem): OmetriaRecord[] {
  const base = { '@type': 'product' as const, id: item.resourceId };
  if (item.operation === 'delete') return [{ ...base, is_active: false }];
  const parent: OmetriaRecord = { ...present(item), ...base, is_variant: false };
  delete parent[VARIANTS_FIELD];
  const variants = Array.isArray(item.fields[VARIANTS_FIELD]) ? (item.fields[VARIANTS_FIELD] as unknown[]) : [];
  const children = variants.filter(isObject).map((variant, index): OmetriaRecord => {
    const id = typeof variant.id === 'string' && variant.id !== '' ? variant.id : `${item.resourceId}-${index + 1}`;
    const fields = Object.fromEntries(Object.entries(variant).filter(([, value]) => value !== null && value !== undefined));
    return { ...fields, '@type': 'product', id, is_variant: true, parent_id: item.resourceId };
  });
  return [parent, ...children];
}

/** The custom event; a mistake Ometria would refuse later (a long event_type, long text) is refused now, naming it. */
export function customEventRecord(item: EventItem, now: number): OmetriaRecord {
  const payload = item.payload;
  const eventType = typeof payload.event_type === 'string' && payload.event_type !== '' ? payload.event_type : item.eventType;
  if (eventType.length > MAX_EVENT_TYPE) throw new PermanentError(`event ${item.eventType}: Ometria's event_type must be under 32 characters ("${eventType.slice(0, 40)}" has ${eventType.length}); map event_type to a shorter name`);
  const accountId = accountIdOf(item.person);
  const email = typeof payload.email === 'string' && payload.email !== '' ? payload.email : undefined;
  const identity = accountId !== undefined ? { identity_account_id: accountId } : email !== undefined ? { identity_email: email } : undefined;
  if (!identity) throw new PermanentError(`event ${item.eventType}: no one to put it on: commercetools names no customer for it, and no email field is mapped`);
  const properties: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (name === 'event_type' || name === 'email' || value === undefined || value === null) continue;
    if (typeof value === 'string' && value.length > MAX_PROPERTY_TEXT) throw new PermanentError(`event ${item.eventType}: property ${name} has ${value.length} characters; Ometria takes at most ${MAX_PROPERTY_TEXT}`);
    properties[name] = value;
  }
  return {
    '@type': 'custom_event',
    id: item.idempotencyKey,
    timestamp: new Date(item.occurredAt ?? now).toISOString(),
    event_type: eventType,
    ...identity,
    properties,
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
