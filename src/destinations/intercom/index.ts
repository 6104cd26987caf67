// Intercom destination (`type: intercom`), through the official intercom-client SDK (Intercom-Version 2.14, its
// retries off: the engine owns retries). Customer records become users (external_id = the commercetools
// customer id), with their order context (last order, total orders, lifetime value per currency) read from
// `$orders` in the customer mapping; business units become companies (company_id = a mapped company_id, e.g. the
// unit's key) with their associates' contacts attached; a guest's events create a lead by email; a guest who
// registers is merged into the user (POST /contacts/merge). Mapped fields named like Intercom's own contact
// fields (email, phone, name, signed_up_at…) go there; the others are custom attributes, which must be declared
// with their type in `attributes` and are created at start-up when missing; an object-valued field (a total
// per currency) becomes one attribute per key (lifetime_value_EUR). Events become data events (POST /events),
// which Intercom deduplicates on name + contact + created_at, so a redelivery is harmless; an event is named
// after its mapping, or by a mapped `event_name` (payment-captured or payment-refunded by the transaction's
// type; null: not an event for Intercom). Calls are paced by the destination's shared rate limiter and by
// Intercom's own X-RateLimit headers, which it reads on every answer.
import { createRequire } from 'node:module';
import type * as IntercomSdk from 'intercom-client';
import { z } from 'zod';
import { PermanentError, RateLimitedError, RetryableError, type DeliveryError } from '../../engine/errors.ts';
import { defineDestination, type ConnectorDeps, type EventItem, type FieldProblem, type ItemOutcome, type PersonMergeItem, type RecordItem } from '../types.ts';

/** The contact fields Intercom has itself; every other mapped field is a custom attribute. */
const STANDARD_FIELDS = new Set(['email', 'phone', 'name', 'avatar', 'signed_up_at', 'last_seen_at', 'owner_id', 'unsubscribed_from_emails']);
/** A mapped field named `tags` (a name or a list of names, e.g. customerGroup.obj.name) is the contact's tags. */
const TAGS_FIELD = 'tags';
/** What a business-unit record maps: the company's id and name, and its associates' customer ids. */
const COMPANY_FIELDS = new Set(['company_id', 'associates']);
/** What a record mapping can read: customers (contacts) and business units (companies). */
const RECORD_SOURCES = new Set(['customer', 'business-unit']);
const ATTRIBUTE_TYPES = ['string', 'integer', 'float', 'boolean', 'date'] as const;
const MAX_METADATA_KEYS = 10;
/** A mapped `event_name` names the Intercom event (e.g. by a payment transaction's type); null sends none. */
const EVENT_NAME_FIELD = 'event_name';
/** Event fields that are not metadata: the guest's email (for the lead) and the event's name. */
const NOT_METADATA = new Set(['email', EVENT_NAME_FIELD]);
const PACE = 0.97;

// The SDK (a few MB of modules) is loaded when an Intercom destination is created, not by every thread that
// reads the configuration.
const requireModule = createRequire(import.meta.url);

const settings = z.object({
  token: z.string().min(1).describe('an Intercom access token, from the environment (${INTERCOM_TOKEN})'),
  region: z.enum(['us', 'eu', 'au']).default('us').describe('the workspace\'s data region'),
  baseUrl: z.url().optional().describe('instead of the region: another API base URL (a simulator)'),
  timeoutMs: z.number().int().positive().default(10_000),
  limitPerMinute: z.number().int().positive().default(10_000).describe('the workspace\'s API rate limit; calls are paced to stay under it'),
  attributes: z.record(z.string(), z.enum(ATTRIBUTE_TYPES)).default({}).describe('custom contact attributes the mappings write, with their Intercom data type; created at start-up when missing'),
  onDelete: z.enum(['archive', 'delete']).default('archive').describe('what a deleted (or erased) commercetools customer becomes in Intercom'),
  orderLink: z
    .string()
    .regex(/^https:\/\/[^\s]*\{id\}/, 'an https URL with {id} where the order id goes')
    .optional()
    .describe('the order in the merchant\'s back office, e.g. https://mc.europe-west1.gcp.commercetools.com/my-project/orders/{id}: added to order events as order_url'),
});

type Settings = z.infer<typeof settings>;

export const intercomDestination = defineDestination({
  type: 'intercom',
  description: 'Intercom contacts (users and leads) and data events, through the official SDK',
  settings,
  checkFields(config, mapped) {
    const problems: FieldProblem[] = [];
    const declared = Object.keys(config.attributes);
    for (const [mapping, fields] of Object.entries(mapped.records)) {
      const source = mapped.recordSources[mapping];
      if (source !== undefined && !RECORD_SOURCES.has(source)) {
        problems.push({ block: 'records', mapping, field: '', message: `Intercom has contacts and companies, no place for records of ${source}: map customers or business units (for order context on the contact, read $orders in the customer mapping, e.g. last_order_number: { path: "$orders[*].orderNumber", pipe: [last] })` });
        continue;
      }
      for (const field of fields) {
        if (STANDARD_FIELDS.has(field) || COMPANY_FIELDS.has(field) || field === TAGS_FIELD || Object.hasOwn(config.attributes, field)) continue;
        // An object-valued field (a total per currency) is sent as the attributes its keys name.
        if (declared.some((name) => name.startsWith(`${field}_`))) continue;
        problems.push({ block: 'records', mapping, field, message: `"${field}" is neither an Intercom contact field (${[...STANDARD_FIELDS].join(', ')}) nor declared under attributes with its data type (an object-valued field: declare ${field}_<key>, e.g. ${field}_EUR)` });
      }
    }
    // The order link, when configured, takes one of an event's 10 metadata keys.
    const room = MAX_METADATA_KEYS - (config.orderLink ? 1 : 0);
    for (const [mapping, fields] of Object.entries(mapped.events)) {
      const metadata = fields.filter((field) => !NOT_METADATA.has(field));
      if (metadata.length > room) problems.push({ block: 'events', mapping, field: metadata[room]!, message: `an Intercom event takes at most ${MAX_METADATA_KEYS} metadata keys${config.orderLink ? ' (one is the order link)' : ''}` });
    }
    return problems;
  },
  create(config: Settings, deps: ConnectorDeps) {
    const { logger, limiter } = deps;
    const { IntercomClient, IntercomEnvironment, IntercomError, IntercomTimeoutError } = requireModule('intercom-client') as typeof IntercomSdk;
    const client = new IntercomClient({
      token: config.token,
      ...(config.baseUrl ? { baseUrl: config.baseUrl } : { environment: { us: IntercomEnvironment.UsProduction, eu: IntercomEnvironment.EuProduction, au: IntercomEnvironment.AuProduction }[config.region] }),
      version: '2.14',
      maxRetries: 0,
      // The SDK's timer would also count the wait for the rate limiter; pacedFetch times the exchange alone.
      timeoutInSeconds: 24 * 3600,
      fetch: pacedFetch(limiter, deps.onCall, config.timeoutMs),
    });

    /** The SDK's failure as one of the engine's error classes. */
    function classify(error: unknown, doing: string): DeliveryError {
      if (error instanceof IntercomTimeoutError) return new RetryableError(`${doing}: Intercom did not answer within ${config.timeoutMs} ms`, { cause: error });
      if (!(error instanceof IntercomError)) return new RetryableError(`${doing}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      const status = error.statusCode ?? 0;
      const detail = errorMessages(error.body);
      if (status === 401 || status === 403) {
        logger.error({ status }, 'Intercom rejected the access token: nothing can be sent until it is replaced');
        return new PermanentError(`${doing}: Intercom rejected the access token (${status}${detail ? `: ${detail}` : ''}); replace the token and replay`, { status });
      }
      if (status === 429) {
        const reset = Number(error.rawResponse?.headers.get('x-ratelimit-reset'));
        return new RateLimitedError(`${doing}: Intercom's rate limit was reached`, { status, ...(Number.isFinite(reset) && reset > 0 && { retryAfterMs: Math.max(0, reset * 1000 - Date.now()) }) });
      }
      const message = `${doing}: Intercom answered ${status}${detail ? `: ${detail}` : ''}`;
      return status >= 500 || status === 408 || status === 0 ? new RetryableError(message, { status }) : new PermanentError(message, { status });
    }

    async function call<T>(doing: string, request: () => Promise<T>): Promise<T> {
      try {
        return await request();
      } catch (error) {
        throw classify(error, doing);
      }
    }

    /** The existing contact's id in a 409 ("…already exists with id=…"), or undefined. */
    function conflictId(error: unknown): string | undefined {
      if (!(error instanceof IntercomError) || error.statusCode !== 409) return undefined;
      return /id=([\w-]+)/.exec(errorMessages(error.body))?.[1];
    }

    // Custom attributes: created when missing, refused when Intercom has them with another type. Done at start-up
    // (prepare) and before the first send; an unreachable Intercom only postpones it.
    let attributesReady: Promise<void> | undefined;
    const ensureAttributes = () =>
      (attributesReady ??= (async () => {
        const wanted = Object.entries(config.attributes);
        if (wanted.length === 0) return;
        const existing = await call('listing data attributes', () => client.dataAttributes.list({ model: 'contact' }));
        const byName = new Map((existing.data ?? []).map((attribute) => [attribute.name, attribute]));
        for (const [name, type] of wanted) {
          const found = byName.get(name);
          if (!found) {
            await call(`creating the data attribute ${name}`, () => client.dataAttributes.create({ name, model: 'contact', data_type: type } as never));
            continue;
          }
          if (found.data_type !== type) throw new PermanentError(`the Intercom attribute "${name}" exists as ${String(found.data_type)}, but attributes.${name} says ${type}: change one of them`);
        }
      })().catch((error: unknown) => {
        attributesReady = undefined;
        throw error;
      }));

    // A key of an object-valued field with no attribute declared (a currency nobody expected): said once.
    const warned = new Set<string>();
    const undeclared = (name: string) => {
      if (warned.has(name) || warned.size >= 1_000) return;
      warned.add(name);
      logger.warn({ attribute: name }, 'a mapped value has no Intercom attribute declared under attributes: it is not sent');
    };

    // Tag ids by name: POST /tags creates a tag or answers the existing one.
    const tagIds = new Map<string, Promise<string>>();
    const tagId = (name: string) => {
      let id = tagIds.get(name);
      if (!id) {
        id = call(`creating the tag ${name}`, () => client.tags.create({ name })).then((tag) => tag.id);
        id.catch(() => tagIds.delete(name));
        tagIds.set(name, id);
      }
      return id;
    };

    /** Attaches the tags the record has now and detaches the ones it had when last sent. */
    async function syncTags(contactId: string, item: RecordItem): Promise<void> {
      if (!Object.hasOwn(item.fields, TAGS_FIELD)) return;
      const now = names(item.fields[TAGS_FIELD]);
      const before = names(item.previous?.[TAGS_FIELD]);
      for (const name of now.filter((n) => !before.includes(n))) {
        const id = await tagId(name);
        await call(`tagging contact ${contactId} with ${name}`, () => client.tags.tagContact({ contact_id: contactId, id }));
      }
      for (const name of before.filter((n) => !now.includes(n))) {
        const id = await tagId(name);
        try {
          await call(`untagging contact ${contactId} from ${name}`, () => client.tags.untagContact({ contact_id: contactId, tag_id: id }));
        } catch (error) {
          if (!(error instanceof PermanentError && error.status === 404)) throw error;
        }
      }
    }

    async function upsertContact(item: RecordItem): Promise<ItemOutcome> {
      const body = contactBody(item.operation === 'upsert' ? withClearedKeys(item.fields, item.previous) : {}, config, undeclared);
      const known = item.person?.destinationId ?? item.destinationId;
      const update = async (id: string): Promise<ItemOutcome> => {
        // Only the tags changed: no contact update to send.
        if (Object.keys(body).length > 0) await call(`updating contact ${id}`, () => client.contacts.update({ contact_id: id, ...body }));
        await syncTags(id, item);
        return { ok: true, destinationId: id, personId: id };
      };
      if (known) {
        try {
          return await update(known);
        } catch (error) {
          // Deleted in Intercom meanwhile (or merged away): create it again.
          if (!(error instanceof PermanentError && error.status === 404)) throw error;
        }
      }
      try {
        // The whole record, not the delta: a new contact needs every field.
        const created = await client.contacts.create({ role: 'user', external_id: item.resourceId, ...contactBody(item.record, config, undeclared) });
        await syncTags(created.id, { ...item, fields: item.record, previous: undefined });
        return { ok: true, destinationId: created.id, personId: created.id };
      } catch (error) {
        // Intercom's search lags behind creation, so "already exists" is the reliable way to find the contact.
        const id = conflictId(error);
        if (id) return update(id);
        throw classify(error, `creating contact ${item.resourceId}`);
      }
    }

    async function removeContact(item: RecordItem): Promise<ItemOutcome> {
      const id = item.person?.destinationId ?? item.destinationId;
      if (!id) return { ok: true };
      try {
        if (config.onDelete === 'delete') await call(`deleting contact ${id}`, () => client.contacts.delete({ contact_id: id }));
        else await call(`archiving contact ${id}`, () => client.contacts.archive({ contact_id: id }));
      } catch (error) {
        if (!(error instanceof PermanentError && error.status === 404)) throw error;
      }
      return { ok: true };
    }

    /**
     * A business unit as an Intercom company: company_id and name from the mapping, and its associates (a mapped
     * `associates` list of customer ids, e.g. associates[*].customer.id) attached as the company's contacts.
     */
    async function upsertCompany(item: RecordItem): Promise<ItemOutcome> {
      // Intercom keeps companies whose people left; a deleted unit stays as it was.
      if (item.operation === 'delete') return { ok: true };
      const companyId = item.record.company_id;
      if (typeof companyId !== 'string' || companyId === '') throw new PermanentError(`${item.recordType} ${item.resourceId}: map company_id (e.g. company_id: key) to make it an Intercom company`);
      const name = typeof item.record.name === 'string' ? item.record.name : undefined;
      const company = await call(`upserting company ${companyId}`, () => client.companies.createOrUpdate({ company_id: companyId, ...(name !== undefined && { name }) }));
      const now = names(item.record.associates);
      const before = new Set(names(item.previous?.associates));
      for (const customerId of now.filter((id) => !before.has(id))) {
        let contact: { id: string };
        try {
          contact = await call(`finding the contact of customer ${customerId}`, () => client.contacts.showContactByExternalId({ external_id: customerId }));
        } catch (error) {
          // The associate's own record sync has not created the contact yet: attach on a later sync.
          if (error instanceof PermanentError && error.status === 404) throw new RetryableError(`company ${companyId}: customer ${customerId} is not in Intercom yet`);
          throw error;
        }
        await call(`attaching contact ${contact.id} to company ${companyId}`, () => client.companies.attachContact({ contact_id: contact.id, id: company.id }));
      }
      return { ok: true, destinationId: company.id };
    }

    /** The contact an event goes to: the person's, or for a guest a lead created by the event's email. */
    async function eventContact(item: EventItem): Promise<{ id?: string; user_id?: string; personId?: string }> {
      if (item.person?.destinationId) return { id: item.person.destinationId };
      if (item.person?.key.startsWith('customer:')) return { user_id: item.person.key.slice('customer:'.length) };
      const email = typeof item.payload.email === 'string' ? item.payload.email : undefined;
      if (!email) throw new PermanentError(`event ${item.eventType}: no contact to put it on: commercetools names no customer for it, and a guest's event needs an email field to create the Intercom lead`);
      try {
        const lead = await client.contacts.create({ role: 'lead', email });
        return { id: lead.id, personId: lead.id };
      } catch (error) {
        const id = conflictId(error);
        if (id) return { id, personId: id };
        throw classify(error, 'creating a lead for a guest');
      }
    }

    async function sendEvent(item: EventItem): Promise<ItemOutcome> {
      const named = item.payload[EVENT_NAME_FIELD];
      if (Object.hasOwn(item.payload, EVENT_NAME_FIELD) && (named === null || named === '')) return { ok: true };
      if (named !== undefined && typeof named !== 'string') throw new PermanentError(`event ${item.eventType}: event_name must be text, not ${JSON.stringify(named)}`);
      const eventName = named ?? item.eventType;
      const contact = await eventContact(item);
      const createdAt = Math.floor((item.occurredAt ?? Date.now()) / 1000);
      try {
        await client.events.create({ event_name: eventName, created_at: createdAt, ...(contact.id ? { id: contact.id } : { user_id: contact.user_id }), metadata: metadataOf(item.payload, linkOf(item)) } as never);
      } catch (error) {
        const failure = classify(error, `sending event ${eventName}`);
        // The customer's contact is not there yet (its record sync is behind): try again later.
        if (failure instanceof PermanentError && failure.status === 404) throw new RetryableError(`${failure.message} (the contact does not exist yet)`, { status: 404 });
        throw failure;
      }
      return { ok: true, ...(contact.personId && { personId: contact.personId }) };
    }

    /** The back-office link of an order event, when configured. */
    const linkOf = (item: EventItem): string | undefined =>
      config.orderLink && item.resource?.typeId === 'order' ? config.orderLink.replaceAll('{id}', encodeURIComponent(item.resource.id)) : undefined;

    const each = async <T>(items: T[], send: (item: T) => Promise<ItemOutcome>): Promise<ItemOutcome[]> =>
      Promise.all(items.map((item) => send(item).catch((error: unknown): ItemOutcome => ({ ok: false, error: error instanceof RetryableError || error instanceof PermanentError ? error : classify(error, 'calling Intercom') }))));

    return {
      // Each call carries one contact or event; batches only bound what one worker has in flight.
      // 97% of the limit: what Intercom counts in a window and what the limiter schedules differ by a little
      // (clocks, window edges); the rest of the budget absorbs that without a 429.
      limits: { maxBatchSize: 20, rateLimit: { requestsPerSecond: (config.limitPerMinute / 60) * PACE, burst: Math.max(1, Math.floor(config.limitPerMinute / 600)) } },
      delta: 'changed',
      prepare: ensureAttributes,
      async sendRecords(items) {
        await ensureAttributes();
        return each(items, (item) => {
          if (item.resourceType === 'business-unit') return upsertCompany(item);
          return item.operation === 'delete' ? removeContact(item) : upsertContact(item);
        });
      },
      sendEvents(items) {
        return each(items, sendEvent);
      },
      mergePeople(items: PersonMergeItem[]) {
        return each(items, async (item) => {
          // A guest who never reached Intercom has nothing to merge.
          if (!item.from.destinationId) return { ok: true };
          if (!item.into.destinationId) throw new RetryableError('the registered customer is not in Intercom yet');
          await call('merging a lead into its user', () => client.contacts.mergeLeadInUser({ from: item.from.destinationId!, into: item.into.destinationId! }));
          return { ok: true };
        });
      },
    };
  },
});

/**
 * fetch for the SDK: waits for the destination's shared limiter (paced just under the workspace's limit, see
 * `limits`), and reads Intercom's own budget from every answer: with the window's calls spent (someone else
 * shares the workspace, or clocks disagree), every process waits for the window to reset instead of collecting
 * 429s. Pausing earlier than that would only push the limiter's schedule back and waste the window.
 */
function pacedFetch(limiter: ConnectorDeps['limiter'], onCall: ConnectorDeps['onCall'], timeoutMs: number): typeof fetch {
  return async (input, init) => {
    await limiter?.acquire();
    onCall?.();
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(new RetryableError(`Intercom did not answer within ${timeoutMs} ms`)), timeoutMs);
    let response: Response;
    try {
      response = await fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timer.signal]) : timer.signal });
    } finally {
      clearTimeout(timeout);
    }
    const remaining = Number(response.headers.get('x-ratelimit-remaining'));
    const reset = Number(response.headers.get('x-ratelimit-reset')) * 1000;
    if (limiter && (remaining === 0 || response.status === 429) && Number.isFinite(reset) && reset > Date.now()) limiter.pauseUntil(reset);
    return response;
  };
}

/** A tags field's names: one name, or a list of them; empty ones left out. */
function names(value: unknown): string[] {
  const list = Array.isArray(value) ? (value as unknown[]) : value === null || value === undefined ? [] : [value];
  return [...new Set(list.filter((v): v is string | number => (typeof v === 'string' && v !== '') || typeof v === 'number').map(String))];
}

/** Intercom's error list as one line. */
function errorMessages(body: unknown): string {
  const errors = (body as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors;
  return Array.isArray(errors) ? errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ') : '';
}

/** Mapped fields as Intercom's contact body: its own fields at the top, the rest flattened into custom_attributes. */
function contactBody(fields: Record<string, unknown>, config: Settings, undeclared: (name: string) => void): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flatten(fields))) {
    if (STANDARD_FIELDS.has(name)) {
      if (value !== null) body[name] = value;
    } else if (Object.hasOwn(config.attributes, name)) {
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
function withClearedKeys(fields: Record<string, unknown>, previous: Record<string, unknown> | undefined): Record<string, unknown> {
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

/**
 * An event's metadata: at most 10 keys of text (the 2.14 description allows only strings there), nested values
 * flattened (a money { amount, currency } becomes total_amount and total_currency), with the order's back-office
 * link when configured; the email that identifies a guest is not repeated in it.
 */
function metadataOf(payload: Record<string, unknown>, orderUrl: string | undefined): Record<string, string> {
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
