// How mapped fields become Intercom's: which names are Intercom's own contact fields, which are custom attributes
// (flattened: an object-valued field is one attribute per key), the tags field, a company's fields, and an
// event's metadata (at most 10 text values). Pure functions, shared by the definition's field checks and the
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

/** Mapped fields as Intercom's contact body: its own fields at the top, the rest flattened into custom_attributes. */
export function contactBody(fields: Record<string, unknown>, settings: IntercomSettings, undeclared: (name: string) => void): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flatten(fields))) {
    if (STANDARD_FIELDS.has(name)) {
      if (value !== null) body[name] = value;
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
 * The changed fields, with the keys an object-valued field had when last sent and has no more set to null (a
 * currency whose orders are all gone): its attribute is cleared, not left at the old total.
 */
export function withClearedKeys(fields: Record<string, unknown>, previous: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!previous) return fields;
  let out = fields;
  for (const [name, value] of Object.entries(fields)) {
    const before = previous[name];
    if (!isObject(value) || !isObject(before)) continue;
    const gone = Object.keys(before).filter((key) => !Object.hasOwn(value, key));
    if (gone.length > 0) out = { ...out, [name]: { ...Object.fromEntries(gone.map((key) => [key, null])), ...value } };
  }
  return out;
}

/**
 * An event's metadata: at most 10 keys of text (the 2.14 description allows only strings there), nested values
 * flattened (a money { amount, currency } becomes total_amount and total_currency), with the order's back-office
 * link when configured; the email that identifies a guest is not repeated in it.
 */
export function metadataOf(payload: Record<string, unknown>, orderUrl: string | undefined): Record<string, string> {
  // The link counts against the 10 keys and comes first, so it is never the one left out.
  const out: Record<string, string> = orderUrl ? { order_url: orderUrl } : {};
  for (const [key, value] of Object.entries(flatten(payload))) {
    if (NOT_METADATA.has(key) || value === null || value === undefined) continue;
    if (Object.keys(out).length >= MAX_METADATA_KEYS) break;
    // flatten() leaves only scalars.
    out[key] = String(value);
  }
  return out;
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
