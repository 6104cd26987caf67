// How mapped fields become Intercom's: which names are Intercom's own contact fields, which are custom attributes
// (flattened: an object-valued field is one attribute per key), the tags field, a company's fields, and an
// event's metadata (at most 10 typed values). Pure functions, shared by the definition's field checks and the
// operations.
import type { IntercomSettings } from './settings.ts';

/** The contact fields Intercom has itself; every other mapped field is a custom attribute. */
export const STANDARD_FIELDS = new Set(['email', 'phone', 'name', 'avatar', 'signed_up_at', 'last_seen_at', 'owner_id', 'unsubscribed_from_emails']);
/** A mapped field named `tags` (a name or a list of names, e.g. customerGroup.obj.name) is the contact's tags. */
export const TAGS_FIELD = 'tags';
/** What a business-unit record maps: the company's id and name, and its associates' customer ids. */
export const COMPANY_FIELDS = new Set(['company_id', 'associates']);
/** What a record mapping can read: customers (contacts) and business units (companies). */
export const RECORD_SOURCES = new Set(['customer', 'business-unit']);
export const MAX_METADATA_KEYS = 10;
/** A mapped `event_name` names the Intercom event (e.g. by a payment transaction's type); null sends none. */
export const EVENT_NAME_FIELD = 'event_name';
/** Event fields that are not metadata: the guest's email (for the lead) and the event's name. */
export const NOT_METADATA = new Set(['email', EVENT_NAME_FIELD]);

/**
 * Intercom's own contact fields that take null to remove their value (update_contact_request in spec/intercom:
 * `nullable: true`); the email is not nullable there, and a commercetools customer always has one.
 */
const NULLABLE_FIELDS = new Set([...STANDARD_FIELDS].filter((name) => name !== 'email'));

/**
 * Mapped fields as Intercom's contact body: its own fields at the top, the rest flattened into custom_attributes.
 * A null removes the value (a field or a declared attribute ctbridge maps; a null for anything else is nothing to
 * send, and so is a null email, which Intercom's update does not take).
 */
export function contactBody(fields: Record<string, unknown>, settings: IntercomSettings, undeclared: (name: string) => void): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flatten(fields))) {
    if (value === null || value === undefined) {
      if (NULLABLE_FIELDS.has(name)) body[name] = null;
      else if (Object.hasOwn(settings.attributes, name)) custom[name] = null;
    } else if (STANDARD_FIELDS.has(name)) {
      body[name] = value;
    } else if (Object.hasOwn(settings.attributes, name)) {
      custom[name] = value;
    } else if (name !== TAGS_FIELD) {
      undeclared(name);
    }
  }
  if (Object.keys(custom).length > 0) body.custom_attributes = custom;
  return body;
}

/**
 * The changed fields, with null for what the destination was last sent and the record has no more: a field
 * whose value is gone (a phone removed in commercetools), and the keys an object-valued field had and has no more
 * (a currency whose orders are all gone). Only fields of the previous send, so only fields ctbridge maps. Without
 * a previous send (a new contact) nothing is removed.
 */
export function withRemovals(fields: Record<string, unknown>, record: Record<string, unknown>, previous: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!previous) return fields;
  let out = fields;
  for (const [name, before] of Object.entries(previous)) {
    if (before === null || before === undefined) continue;
    const now = record[name];
    if (now === null || now === undefined) {
      // Every attribute an object-valued field was sent as; a personal field's snapshot is a digest (text).
      out = { ...out, [name]: isObject(before) ? Object.fromEntries(Object.keys(before).map((key) => [key, null])) : null };
      continue;
    }
    if (!isObject(now) || !isObject(before)) continue;
    const gone = Object.keys(before).filter((key) => !Object.hasOwn(now, key));
    if (gone.length > 0) out = { ...out, [name]: { ...Object.fromEntries(gone.map((key) => [key, null])), ...now } };
  }
  return out;
}

/** A metadata value as Intercom types it (createDataEvent's description, its table of metadata types). */
export type MetadataValue = string | number | RichLink | MonetaryAmount;
/** Shown as a link with its text. */
export interface RichLink {
  url: string;
  value: string;
}
/** An amount of money: `amount` in minor units (cents), a non-negative whole number, and its currency. */
export interface MonetaryAmount {
  amount: number;
  currency: string;
}

/**
 * An event's metadata, typed as Intercom documents it (spec/intercom createDataEvent's description; "Event
 * Metadata Types", https://developers.intercom.com/docs/references/1.3/rest-api/data-events/event-metadata-types):
 * text as text (an http(s) URL is a link), numbers as numbers (a `*_date` key holding Unix seconds is a date), a
 * `{ amount, currency }` in minor units (the `money: { as: object }` transform) as a monetary amount, a
 * `{ url, value }` (the `richLink` transform) as a rich link; other objects flattened into `parent_child` keys,
 * lists into comma-separated text (Intercom takes no other nested JSON). Intercom keeps the first 10 keys in the
 * order sent and ignores the rest without an error, so the order is decided here: `first` (the order link), then
 * the mapped fields in their mapping's order, then `last` (the true time of a moved event) — what does not fit
 * is left out and named in `left`, never silently dropped by Intercom. The email that identifies a guest and the
 * event's name are not metadata.
 */
export function metadataOf(payload: Record<string, unknown>, first: Record<string, MetadataValue> = {}, last: Record<string, MetadataValue> = {}): { metadata: Record<string, MetadataValue>; left: string[] } {
  const metadata: Record<string, MetadataValue> = {};
  const left: string[] = [];
  const add = (key: string, value: MetadataValue) => {
    if (Object.hasOwn(metadata, key)) return;
    if (Object.keys(metadata).length >= MAX_METADATA_KEYS) left.push(key);
    else metadata[key] = value;
  };
  for (const [key, value] of Object.entries(first)) add(key, value);
  for (const [name, value] of Object.entries(payload)) {
    if (NOT_METADATA.has(name) || value === null || value === undefined) continue;
    if (isTypedMetadata(value)) {
      add(name, value);
      continue;
    }
    for (const [key, scalar] of Object.entries(flatten({ [name]: value }))) {
      if (scalar === null || scalar === undefined) continue;
      add(key, typeof scalar === 'number' && Number.isFinite(scalar) ? scalar : String(scalar));
    }
  }
  for (const [key, value] of Object.entries(last)) add(key, value);
  return { metadata, left };
}

/** A rich link or a monetary amount: an object Intercom reads as one metadata value. */
function isTypedMetadata(value: unknown): value is RichLink | MonetaryAmount {
  if (!isObject(value)) return false;
  const keys = Object.keys(value).sort().join(',');
  if (keys === 'url,value') return typeof value.url === 'string' && /^https?:\/\//i.test(value.url) && typeof value.value === 'string';
  // The description: "a positive integer representing the amount in cents"; a negative amount is flattened.
  if (keys === 'amount,currency') return Number.isSafeInteger(value.amount) && (value.amount as number) >= 0 && typeof value.currency === 'string';
  return false;
}

/** A list field's names (tags, associates): one name, or a list of them; empty ones left out. */
export function names(value: unknown): string[] {
  const list = Array.isArray(value) ? (value as unknown[]) : value === null || value === undefined ? [] : [value];
  return [...new Set(list.filter((v): v is string | number => (typeof v === 'string' && v !== '') || typeof v === 'number').map(String))];
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Nested values become `parent_child` names; lists become comma-separated text. */
type Scalar = string | number | boolean | null | undefined;

function flatten(fields: Record<string, unknown>, prefix = ''): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const [name, value] of Object.entries(fields)) {
    const key = prefix === '' ? name : `${prefix}_${name}`;
    if (Array.isArray(value)) out[key] = value.map((item) => (typeof item === 'object' ? JSON.stringify(item) : String(item))).join(', ');
    else if (value !== null && typeof value === 'object') Object.assign(out, flatten(value as Record<string, unknown>, key));
    else out[key] = value as Scalar;
  }
  return out;
}
