// Storefront behaviour events (product viewed, added to cart, checkout started, search): what a browser may send
// to POST /v1/events/storefront, as one zod schema that validates the requests and is published as JSON Schema
// (GET /v1/events/storefront/schema.json, and schemas/storefront-events.schema.json in the repository), and how
// accepted events become notifications on the ordinary event path. They never pass through commercetools, so
// their routing type carries a prefix commercetools message types never have (`storefront.ProductViewed`: those
// are bare PascalCase names), and their dedupe key ctbridge's own prefix and the storefront's name
// (`ctbridge:storefront:<name>:<event id>`; commercetools ids are UUIDs, and ingest keeps `ctbridge:` ids for
// ctbridge), so neither can meet a commercetools message's.
import { z } from 'zod';
import type { CommercetoolsNotification, NormalizedItem } from './message.ts';
import { RESERVED_DEDUPE_PREFIX } from './normalize.ts';

/** The event kinds a storefront may send, as the `type` of an event. */
export const STOREFRONT_EVENT_KINDS = ['ProductViewed', 'ProductAddedToCart', 'CheckoutStarted', 'ProductsSearched'] as const;
export type StorefrontEventKind = (typeof STOREFRONT_EVENT_KINDS)[number];

/** What an event mapping names in `on:` for a storefront event: the kind with this prefix. */
export const STOREFRONT_TYPE_PREFIX = 'storefront.';

/** The routing types of storefront events (`storefront.ProductViewed`…), for `on:` lists. */
export const STOREFRONT_EVENT_TYPES: readonly string[] = STOREFRONT_EVENT_KINDS.map((kind) => `${STOREFRONT_TYPE_PREFIX}${kind}`);

export function isStorefrontEventType(type: string): boolean {
  return type.startsWith(STOREFRONT_TYPE_PREFIX);
}

/** Events one request may hold (a page sends one, a batching script a handful). */
export const MAX_EVENTS_PER_REQUEST = 100;
/** Largest request body: a hundred events of ordinary size fit with room to spare. */
export const STOREFRONT_BODY_LIMIT = 64 * 1024;

// Identifiers become indexed text (the dedupe key) and are echoed in problems: a safe alphabet, bounded length.
const identifier = (what: string) =>
  z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits, ".", "_", ":" and "-", starting with a letter or digit')
    .describe(what);
const text = (max: number, what: string) => z.string().min(1).max(max).describe(what);

const money = z
  .strictObject({
    centAmount: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('the amount in the currency\'s smallest unit (cents)'),
    currencyCode: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as EUR').describe('ISO 4217'),
    fractionDigits: z.number().int().min(0).max(20).optional().describe('digits after the decimal point (2 when absent, as commercetools)'),
  })
  .describe('commercetools Money: { centAmount, currencyCode }');

const shopper = z
  .strictObject({
    customerId: identifier('the commercetools customer id, when the shopper is logged in').optional(),
    email: z.email().max(254).describe('the shopper\'s e-mail address, when known (personal data: each destination\'s PII policy applies)').optional(),
    anonymousId: identifier('a stable id of the browser or session (e.g. the commercetools anonymousId, or a first-party cookie)').optional(),
  })
  .refine((s) => s.customerId !== undefined || s.email !== undefined || s.anonymousId !== undefined, { message: 'name the shopper: customerId, email or anonymousId' })
  .describe('who the shopper is: the customer when logged in, else the e-mail when known, else an anonymous id');

const product = z
  .strictObject({
    id: identifier('the commercetools product id'),
    key: text(256, 'the product key').optional(),
    sku: text(256, 'the variant\'s SKU').optional(),
    variantId: z.number().int().min(1).max(1_000_000).optional().describe('the variant id within the product'),
    name: text(512, 'the product name as shown').optional(),
    price: money.optional().describe('the price as shown'),
    categories: z.array(text(256, 'a category key or id')).max(20).optional(),
  })
  .describe('the product (and variant) concerned');

const MAX_PROPERTIES = 50;
const properties = z
  .record(text(64, 'a property name'), z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]))
  .refine((p) => Object.keys(p).length <= MAX_PROPERTIES, `at most ${MAX_PROPERTIES} properties`)
  .describe('anything else, flat: names to strings, numbers, booleans or null');

const common = {
  id: identifier('the event id: unique per event (a UUID); an event sent again with the same id is delivered once'),
  occurredAt: z.iso.datetime({ offset: true }).describe('when it happened, ISO 8601 with a time zone (the browser\'s clock)'),
  store: text(256, 'the commercetools store key').optional(),
  locale: z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP 47 tag such as de-DE').max(35).optional().describe('the shop\'s locale'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as EUR').optional().describe('the shop\'s currency'),
  country: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as DE').optional().describe('the shop\'s country'),
  shopper,
  page: z
    .strictObject({ url: z.url().max(2048).describe('the page\'s URL'), referrer: z.url().max(2048).optional() })
    .optional()
    .describe('where it happened'),
  properties: properties.optional(),
};

const quantity = z.number().int().min(1).max(10_000).describe('how many');
const cart = z
  .strictObject({
    id: identifier('the commercetools cart id'),
    total: money.optional().describe('the cart\'s total'),
    lineItemCount: z.number().int().min(0).max(10_000).optional().describe('line items in the cart'),
  })
  .describe('the cart concerned');

/** One storefront event, by kind. */
export const storefrontEventSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('ProductViewed'), ...common, product }).describe('a product detail page was viewed'),
    z.strictObject({ type: z.literal('ProductAddedToCart'), ...common, product, quantity, cart: cart.optional() }).describe('a product was added to the cart'),
    z.strictObject({ type: z.literal('CheckoutStarted'), ...common, cart }).describe('the checkout was started'),
    z
      .strictObject({
        type: z.literal('ProductsSearched'),
        ...common,
        search: z.strictObject({ query: text(512, 'what was searched for'), results: z.number().int().min(0).optional().describe('how many results were shown') }),
      })
      .describe('the shop was searched'),
  ])
  .describe('a storefront behaviour event')
  // Named, so the published schema holds the events once, under $defs, for the single event and the array alike.
  .meta({ id: 'StorefrontEvent' });

export type StorefrontEvent = z.infer<typeof storefrontEventSchema>;

/** A request body: one event, or an array of 1 to MAX_EVENTS_PER_REQUEST of them. */
export const storefrontRequestSchema = z.union([storefrontEventSchema, z.array(storefrontEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST)]);

/** The published JSON Schema of a request body (draft 2020-12). */
export function storefrontEventsJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(storefrontRequestSchema, {
      io: 'input',
      // What the refinements check, in JSON Schema's words.
      override: ({ zodSchema, jsonSchema }) => {
        if (zodSchema === shopper) jsonSchema.anyOf = [{ required: ['customerId'] }, { required: ['email'] }, { required: ['anonymousId'] }];
        if (zodSchema === properties) jsonSchema.maxProperties = MAX_PROPERTIES;
      },
    }),
    $id: 'urn:ctbridge:schema:storefront-events',
    title: 'ctbridge storefront events',
    description: `POST /v1/events/storefront: one storefront event, or an array of 1 to ${MAX_EVENTS_PER_REQUEST}. Event mappings name them in on: as ${STOREFRONT_EVENT_TYPES.join(', ')}.`,
  };
}

/** Where a request body is wrong: a JSON pointer into it (RFC 6901) and why. */
export interface InvalidField {
  pointer: string;
  reason: string;
}

export type StorefrontRead = { ok: true; events: StorefrontEvent[] } | { ok: false; invalid: InvalidField[] };

/** At most this many problems are reported per request (the first are what a developer fixes first). */
const PROBLEMS_REPORTED = 10;

/** Validates a parsed request body: its events, or every field that is wrong (up to ten). Never throws. */
export function readStorefrontBody(body: unknown): StorefrontRead {
  // Validated one event at a time, so a problem is named at the event's own field, not "no union member matched".
  if (Array.isArray(body)) {
    if (body.length === 0) return { ok: false, invalid: [{ pointer: '', reason: 'an empty array: send at least one event' }] };
    if (body.length > MAX_EVENTS_PER_REQUEST) return { ok: false, invalid: [{ pointer: '', reason: `${body.length} events: at most ${MAX_EVENTS_PER_REQUEST} per request` }] };
  } else if (body === null || typeof body !== 'object') {
    return { ok: false, invalid: [{ pointer: '', reason: 'expected an event object or an array of them' }] };
  }
  const list: unknown[] = Array.isArray(body) ? body : [body];
  const events: StorefrontEvent[] = [];
  const invalid: InvalidField[] = [];
  list.forEach((element, index) => {
    const parsed = storefrontEventSchema.safeParse(element);
    if (parsed.success) events.push(parsed.data);
    else for (const issue of parsed.error.issues) invalid.push(toInvalidField(issue, Array.isArray(body) ? [index] : []));
  });
  return invalid.length > 0 ? { ok: false, invalid: invalid.slice(0, PROBLEMS_REPORTED) } : { ok: true, events };
}

function toInvalidField(issue: z.core.$ZodIssue, prefix: Array<string | number>): InvalidField {
  const path: Array<PropertyKey> = [...prefix, ...issue.path];
  // An unknown field is reported at the object holding it; the pointer names the field itself.
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    return { pointer: pointerOf([...path, issue.keys[0]!]), reason: issue.keys.length === 1 ? 'not a field of this event' : `not fields of this event: ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}` };
  }
  // The reason names the rule broken, never the value (it may be personal data).
  return { pointer: pointerOf(path), reason: issue.message };
}

/** A JSON pointer (RFC 6901) from a path. */
export function pointerOf(path: ReadonlyArray<PropertyKey>): string {
  return path.map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/**
 * The notifications of a stored storefront body (validated when it was accepted: read again the same way), from
 * the `skip`-th, at most `limit`; `more` when there are more. What a mapping of such an event reads is the event
 * as the browser sent it plus `storefront` (the configured name of the storefront whose key accepted it). Never
 * throws: a body that no longer validates (a schema changed between acceptance and routing) is one unrecognised
 * part, quarantined by the router.
 */
export function normalizeStorefrontSlice(body: unknown, storefront: string, skip: number, limit: number): { items: NormalizedItem[]; more: boolean } {
  const read = readStorefrontBody(body);
  if (!read.ok) {
    const reason = `storefront ${storefront}: the stored events do not validate (${read.invalid.map((i) => `${i.pointer || '/'}: ${i.reason}`).join('; ')})`;
    return { items: skip === 0 ? [{ kind: 'unrecognised', unrecognised: { reason, body } }] : [], more: false };
  }
  const slice = read.events.slice(skip, skip + limit);
  return { items: slice.map((event) => ({ kind: 'notification', notification: storefrontNotification(event, storefront) })), more: read.events.length > skip + limit };
}

/**
 * The start of every storefront event's dedupe key (and so of its idempotency key at destinations): under the
 * prefix no commercetools Message or Event id may have, so neither can stand for the other.
 */
export const STOREFRONT_DEDUPE_PREFIX = `${RESERVED_DEDUPE_PREFIX}storefront:`;

/** A storefront event's dedupe key: event ids are unique per storefront. */
export function storefrontDedupeKey(storefront: string, eventId: string): string {
  return `${STOREFRONT_DEDUPE_PREFIX}${storefront}:${eventId}`;
}

function storefrontNotification(event: StorefrontEvent, storefront: string): CommercetoolsNotification {
  const occurredAt = Date.parse(event.occurredAt);
  return {
    dedupeKey: storefrontDedupeKey(storefront, event.id),
    notificationType: 'StorefrontEvent',
    type: `${STOREFRONT_TYPE_PREFIX}${event.type}`,
    projectKey: undefined,
    // Not about a commercetools resource: no record keys, and deliveries are not held in order behind a resource.
    resource: undefined,
    resourceVersion: undefined,
    carriedResource: undefined,
    deleted: false,
    dataErasure: false,
    payloadNotIncluded: false,
    occurredAt: Number.isFinite(occurredAt) ? occurredAt : undefined,
    payload: { ...event, storefront },
  };
}

/**
 * The shopper of a storefront event (as a mapping reads it), shaped as an order or cart names its customer, so the
 * identity layer (identity/person.ts) ties it to the same person: `customer:<id>` when logged in, else the guest
 * of that e-mail in the event's store (the guest a guest order with that e-mail is); an anonymous shopper is nobody
 * (the mapping can still send `shopper.anonymousId`).
 */
export function storefrontShopper(payload: Record<string, unknown>): Record<string, unknown> | undefined {
  const shopperOf = payload.shopper;
  if (shopperOf === null || typeof shopperOf !== 'object') return undefined;
  const { customerId, email } = shopperOf as { customerId?: unknown; email?: unknown };
  if (typeof customerId !== 'string' && typeof email !== 'string') return undefined;
  return {
    ...(typeof customerId === 'string' && { customerId }),
    ...(typeof email === 'string' && { customerEmail: email }),
    ...(typeof payload.store === 'string' && { store: { typeId: 'store', key: payload.store } }),
  };
}
