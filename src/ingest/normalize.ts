// Turns whatever reached the ingest endpoint (a Platform-format payload, or one wrapped by CloudEvents, Pub/Sub,
// EventBridge, SNS or Event Grid, or an array of those) into NormalizedItems. Transports are detected from the
// body's shape because commercetools gives the service no other reliable signal. It is total: it never throws,
// and whatever it cannot understand comes back as 'unrecognised' with a reason, so the route can quarantine and
// acknowledge it instead of letting a push queue redeliver a poison message forever.
//
// Note for the route author: Azure Event Grid's CloudEvents-schema validation handshake is an HTTP OPTIONS request
// carrying `WebHook-Request-Origin`; it must be answered with `WebHook-Allowed-Origin` (and optionally
// `WebHook-Allowed-Rate`) in the route, since it has no body. Only the Event Grid-schema handshake (a
// SubscriptionValidationEvent in the body) is handled here. SNS message signatures are not verified here either;
// ingest auth is the job of auth.ts.
import type { CommercetoolsNotification, NormalizedItem, ResourceRef } from './message.ts';

type Headers = Record<string, string | string[] | undefined>;
type JsonObject = Record<string, unknown>;

/** Envelopes and arrays nest a few levels at most (array > SNS > CloudEvent > payload); more is garbage. */
const MAX_DEPTH = 8;

const EVENT_GRID_VALIDATION = 'Microsoft.EventGrid.SubscriptionValidationEvent';

/** Properties of a Message that reference or describe something other than the carried resource. */
const NOT_CARRIED = new Set(['resource', 'resourceUserProvidedIdentifiers', 'createdBy', 'lastModifiedBy', 'payloadNotIncluded']);

interface Context {
  depth: number;
  /** Where in the envelope chain we are, for reasons ('SNS Message > CloudEvent data'). */
  path: string;
  /** The envelope's own timestamp, used when the payload has none. */
  fallbackTime: number | undefined;
  headers: Headers;
}

/**
 * Unwraps a parsed JSON body into notifications, transport control messages and unrecognised parts.
 * Always returns at least one item; never throws.
 */
export function normalizeBody(body: unknown, headers: Record<string, string | string[] | undefined>): NormalizedItem[] {
  return normalizeSlice(body, headers, 0, Number.POSITIVE_INFINITY).items;
}

/** Part of what a body holds: `more` says whether it holds items beyond the slice. */
export interface NormalizedSlice {
  items: NormalizedItem[];
  more: boolean;
}

/**
 * Thrown by a Slice once it is full, to stop the walk: a body's size never decides how much work reading it is.
 * (One instance, made once: nothing is allocated per throw.)
 */
const FULL = new Error('slice full');

/** Keeps the items from `skip` on, up to `limit` of them; the one after that ends the walk. */
class Slice {
  readonly items: NormalizedItem[] = [];
  #seen = 0;
  readonly #skip: number;
  readonly #end: number;

  constructor(skip: number, limit: number) {
    this.#skip = skip;
    this.#end = skip + limit;
  }

  push(item: NormalizedItem): void {
    const index = this.#seen++;
    if (index >= this.#end) throw FULL;
    if (index >= this.#skip) this.items.push(item);
  }
}

/**
 * The items of a body from the `skip`-th on, at most `limit` of them, in the order normalizeBody gives them (it
 * is deterministic, so a body too big for one routing transaction is routed slice by slice). The walk stops at
 * the first item past the slice: a body of 100,000 parts costs no more than the slice asked for. Never throws.
 */
export function normalizeSlice(body: unknown, headers: Record<string, string | string[] | undefined>, skip: number, limit: number): NormalizedSlice {
  const out = new Slice(skip, limit);
  try {
    visit(body, { depth: 0, path: '', fallbackTime: undefined, headers }, out);
    return { items: out.items, more: false };
  } catch (error) {
    if (error === FULL) return { items: out.items, more: true };
    // Only reachable for inputs that are not plain JSON values (e.g. objects with throwing getters).
    return { items: skip === 0 ? [{ kind: 'unrecognised', unrecognised: { reason: `could not be normalized: ${errorText(error)}`, body } }] : [], more: false };
  }
}

/** The request headers normalisation reads; the inbox keeps them with a body so the router reads it the same way. */
const TRANSPORT_HEADERS = ['x-amz-sns-message-type'] as const;

/** The transport headers of a request that normalizeBody would read, or undefined when it has none. */
export function transportHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> | undefined {
  let picked: Record<string, string> | undefined;
  for (const name of TRANSPORT_HEADERS) {
    const value = headerValue(headers, name);
    if (value !== undefined) (picked ??= {})[name] = value;
  }
  return picked;
}

/** Where the walk puts what it finds (a Slice). */
interface Out {
  push(item: NormalizedItem): void;
}

function visit(value: unknown, ctx: Context, out: Out): void {
  if (ctx.depth > MAX_DEPTH) {
    out.push(unrecognised(ctx, `nested deeper than ${MAX_DEPTH} envelope or array levels`, value));
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push(unrecognised(ctx, 'empty array: no notifications in it', value));
      return;
    }
    value.forEach((element, index) => visit(element, child(ctx, `[${index}]`), out));
    return;
  }
  if (!isObject(value)) {
    out.push(unrecognised(ctx, `expected a JSON object or array, got ${describe(value)}`, value));
    return;
  }
  visitObject(value, ctx, out);
}

function visitObject(o: JsonObject, ctx: Context, out: Out): void {
  const eventGridType = own(o, 'eventType') ?? own(o, 'type');
  if (eventGridType === EVENT_GRID_VALIDATION) {
    const data = own(o, 'data');
    const code = isObject(data) ? own(data, 'validationCode') : undefined;
    out.push(
      typeof code === 'string' && code.length > 0
        ? { kind: 'control', control: { kind: 'eventgrid-validation', validationCode: code } }
        : unrecognised(ctx, 'Event Grid SubscriptionValidationEvent has no data.validationCode string', o),
    );
    return;
  }

  // Platform format first: a commercetools payload may well have fields named like envelope fields (data, type).
  if (own(o, 'notificationType') !== undefined) {
    out.push(fromPlatform(o, ctx));
    return;
  }

  const snsType = snsMessageType(o, ctx);
  if (snsType !== undefined) {
    visitSns(o, snsType, ctx, out);
    return;
  }

  if (typeof own(o, 'specversion') === 'string') {
    const data = envelopeData(o, 'data', 'data_base64');
    if (!data.ok) {
      out.push(unrecognised(ctx, `CloudEvent ${data.reason}`, o));
      return;
    }
    visit(data.value, child(ctx, 'CloudEvent data', timestamp(own(o, 'time'))), out);
    return;
  }

  const pubsubMessage = own(o, 'message');
  if (isObject(pubsubMessage) && (own(pubsubMessage, 'data') !== undefined || own(pubsubMessage, 'messageId') !== undefined || own(pubsubMessage, 'message_id') !== undefined)) {
    const raw = own(pubsubMessage, 'data');
    if (typeof raw !== 'string') {
      out.push(unrecognised(ctx, raw === undefined ? 'Pub/Sub push message has no data' : `Pub/Sub push message.data is ${describe(raw)}, expected a base64 string`, o));
      return;
    }
    const decoded = decodeBase64Json(raw);
    if (!decoded.ok) {
      out.push(unrecognised(ctx, `Pub/Sub push message.data ${decoded.reason}`, o));
      return;
    }
    const publishTime = timestamp(own(pubsubMessage, 'publishTime') ?? own(pubsubMessage, 'publish_time'));
    visit(decoded.value, child(ctx, 'Pub/Sub message.data', publishTime), out);
    return;
  }

  if (typeof own(o, 'detail-type') === 'string') {
    const detail = own(o, 'detail');
    if (detail === undefined) {
      out.push(unrecognised(ctx, 'EventBridge event has no detail', o));
      return;
    }
    visit(detail, child(ctx, 'EventBridge detail', timestamp(own(o, 'time'))), out);
    return;
  }

  if (typeof own(o, 'eventType') === 'string' && isEventGridEvent(o)) {
    const data = envelopeData(o, 'data', undefined);
    if (!data.ok) {
      out.push(unrecognised(ctx, `Event Grid event ${data.reason}`, o));
      return;
    }
    visit(data.value, child(ctx, 'Event Grid data', timestamp(own(o, 'eventTime'))), out);
    return;
  }

  // A page from GET /messages (what `ctbridge ingest` may be fed): the results are Messages.
  const results = own(o, 'results');
  if (Array.isArray(results) && typeof own(o, 'count') === 'number') {
    if (results.length === 0) {
      out.push(unrecognised(ctx, 'query result page has no results', o));
      return;
    }
    results.forEach((element, index) => visit(element, child(ctx, `results[${index}]`), out));
    return;
  }

  // Messages read from the Messages API have no notificationType, only the Message fields.
  if (looksLikeApiMessage(o)) {
    out.push(fromMessage(o, ctx));
    return;
  }

  out.push(
    unrecognised(
      ctx,
      'not a commercetools notification or a known envelope: expected notificationType (Platform), specversion (CloudEvents), ' +
        'message.data (Pub/Sub push), detail-type (EventBridge), Type (SNS) or eventType (Event Grid)',
      o,
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Platform format

function fromPlatform(o: JsonObject, ctx: Context): NormalizedItem {
  const notificationType = own(o, 'notificationType');
  switch (notificationType) {
    case 'Message':
      return fromMessage(o, ctx);
    case 'ResourceCreated':
    case 'ResourceUpdated':
    case 'ResourceDeleted':
      return fromChange(o, notificationType, ctx);
    case 'Event':
      return fromEvent(o, ctx);
    default:
      return unrecognised(
        ctx,
        typeof notificationType === 'string'
          ? `unknown notificationType ${quote(notificationType)}`
          : `notificationType is ${describe(notificationType)}, expected a string`,
        o,
      );
  }
}

function fromMessage(o: JsonObject, ctx: Context): NormalizedItem {
  const id = own(o, 'id');
  if (!isNonEmptyString(id)) return unrecognised(ctx, 'Message has no id (expected a non-empty string)', o);
  const resource = readRef(own(o, 'resource'));
  if (typeof resource === 'string') return unrecognised(ctx, `Message ${resource}`, o);
  const resourceVersion = own(o, 'resourceVersion');
  if (resourceVersion !== undefined && !isVersion(resourceVersion)) {
    return unrecognised(ctx, 'Message resourceVersion is not a non-negative integer', o);
  }
  if (resourceVersion !== undefined && !plausibleVersion(resourceVersion)) return unrecognised(ctx, `Message resourceVersion ${implausible(resourceVersion)}`, o);

  const notIncluded = own(o, 'payloadNotIncluded');
  const payloadNotIncluded = notIncluded !== undefined && notIncluded !== null && notIncluded !== false;
  const ownType = own(o, 'type');
  const payloadType = isObject(notIncluded) ? own(notIncluded, 'payloadType') : undefined;
  const type = isNonEmptyString(ownType) ? ownType : isNonEmptyString(payloadType) ? payloadType : undefined;
  if (type === undefined) {
    return unrecognised(ctx, payloadNotIncluded ? 'Message has neither type nor payloadNotIncluded.payloadType' : 'Message has no type', o);
  }

  return notification({
    dedupeKey: id,
    notificationType: 'Message',
    type,
    projectKey: optionalString(own(o, 'projectKey')),
    resource,
    resourceVersion,
    carriedResource: payloadNotIncluded ? undefined : carriedResource(o, type, resource, resourceVersion),
    deleted: type.endsWith('Deleted'),
    // commercetools' own Messages never carry it (CustomerDeletedMessage has only `email`); a relay's may.
    dataErasure: type.endsWith('Deleted') && own(o, 'dataErasure') === true,
    payloadNotIncluded,
    occurredAt: occurredAt(o, ctx),
    payload: o,
  }, ctx);
}

/**
 * Creation Messages carry the new resource under a property named after it (CustomerCreated.customer,
 * ProductCreated.productProjection). It only counts as the resource's state when it is that resource at the
 * version the Message is about; anything else would let the engine sync a stale or foreign object.
 */
function carriedResource(o: JsonObject, type: string, resource: ResourceRef, resourceVersion: number | undefined): JsonObject | undefined {
  if (!type.endsWith('Created') || resourceVersion === undefined) return undefined;
  for (const key in o) {
    const value = o[key];
    if (NOT_CARRIED.has(key) || !isObject(value)) continue;
    if (own(value, 'id') === resource.id && own(value, 'version') === resourceVersion) return value;
  }
  return undefined;
}

function fromChange(o: JsonObject, notificationType: 'ResourceCreated' | 'ResourceUpdated' | 'ResourceDeleted', ctx: Context): NormalizedItem {
  const resource = readRef(own(o, 'resource'));
  if (typeof resource === 'string') return unrecognised(ctx, `${notificationType} notification ${resource}`, o);
  const version = own(o, 'version');

  // Sent by commercetools when a Subscription is created or changed, to check the destination works.
  if (notificationType === 'ResourceCreated' && resource.typeId === 'subscription') {
    const versionPart = isVersion(version) ? String(version) : 'unversioned';
    return { kind: 'control', control: { kind: 'subscription-test', dedupeKey: `${resource.id}:${versionPart}:${notificationType}` } };
  }

  if (!isVersion(version)) {
    return unrecognised(
      ctx,
      version === undefined ? `${notificationType} notification has no version` : `${notificationType} notification version is not a non-negative integer`,
      o,
    );
  }
  if (!plausibleVersion(version)) return unrecognised(ctx, `${notificationType} notification version ${implausible(version)}`, o);
  return notification({
    dedupeKey: `${resource.id}:${version}:${notificationType}`,
    notificationType,
    type: notificationType,
    projectKey: optionalString(own(o, 'projectKey')),
    resource,
    resourceVersion: version,
    carriedResource: undefined,
    deleted: notificationType === 'ResourceDeleted',
    // ResourceDeletedDeliveryPayload.dataErasure: "true if the dataErasure parameter on the DELETE request was set
    // to true" (spec/commercetools/types/ResourceDeletedDeliveryPayload.raml); absent otherwise.
    dataErasure: notificationType === 'ResourceDeleted' && own(o, 'dataErasure') === true,
    payloadNotIncluded: false,
    occurredAt: occurredAt(o, ctx),
    payload: o,
  }, ctx);
}

function fromEvent(o: JsonObject, ctx: Context): NormalizedItem {
  const id = own(o, 'id');
  if (!isNonEmptyString(id)) return unrecognised(ctx, 'Event has no id (expected a non-empty string)', o);
  const type = own(o, 'type');
  if (!isNonEmptyString(type)) return unrecognised(ctx, 'Event has no type', o);

  // Events (import-api, checkout) are mostly not about a versioned commercetools resource; only claim one when
  // the Event names it unambiguously, so record sync is never pointed at something that does not exist.
  let resource: ResourceRef | undefined;
  let resourceVersion: number | undefined;
  const explicit = readRef(own(o, 'resource'));
  const data = own(o, 'data');
  if (typeof explicit !== 'string') {
    resource = explicit;
    const version = own(o, 'resourceVersion');
    resourceVersion = plausibleVersion(version) ? version : undefined;
  } else if (isObject(data)) {
    const fromData = readRef(data);
    if (typeof fromData !== 'string') {
      resource = fromData;
      const version = own(data, 'version');
      resourceVersion = plausibleVersion(version) ? version : undefined;
    }
  }

  return notification({
    dedupeKey: id,
    notificationType: 'Event',
    type,
    projectKey: optionalString(own(o, 'projectKey')),
    resource,
    resourceVersion,
    carriedResource: undefined,
    deleted: resource !== undefined && type.endsWith('Deleted'),
    dataErasure: false,
    payloadNotIncluded: false,
    occurredAt: occurredAt(o, ctx),
    payload: o,
  }, ctx);
}

function looksLikeApiMessage(o: JsonObject): boolean {
  return (
    isNonEmptyString(own(o, 'id')) &&
    isObject(own(o, 'resource')) &&
    (typeof own(o, 'resourceVersion') === 'number' || typeof own(o, 'sequenceNumber') === 'number') &&
    (isNonEmptyString(own(o, 'type')) || isObject(own(o, 'payloadNotIncluded')))
  );
}

function readRef(value: unknown): ResourceRef | string {
  if (!isObject(value)) return value === undefined ? 'has no resource' : `resource is ${describe(value)}, expected an object`;
  const id = own(value, 'id');
  const typeId = own(value, 'typeId');
  if (!isNonEmptyString(id)) return 'has no resource.id (expected a non-empty string)';
  if (!isNonEmptyString(typeId)) return 'has no resource.typeId (expected a non-empty string)';
  return { typeId, id };
}

function occurredAt(o: JsonObject, ctx: Context): number | undefined {
  return timestamp(own(o, 'createdAt')) ?? timestamp(own(o, 'modifiedAt')) ?? ctx.fallbackTime;
}

/** Ids and types longer than this are not commercetools' (ids are UUIDs, keys at most 256 characters). */
const MAX_IDENTIFIER_LENGTH = 256;

function notification(n: CommercetoolsNotification, ctx: Context): NormalizedItem {
  // Identifiers become indexed text columns: PostgreSQL refuses NUL characters in text and index entries over
  // ~2.7 kB, and a row it refuses would fail its request (or, once accepted, block routing behind it) forever.
  const problem =
    ((n.notificationType === 'Message' || n.notificationType === 'Event') && (identifierProblem('id', n.dedupeKey) || reservedIdProblem(n.dedupeKey))) ||
    identifierProblem('type', n.type) ||
    (n.resource && (identifierProblem('resource.typeId', n.resource.typeId) || identifierProblem('resource.id', n.resource.id)));
  if (problem) return unrecognised(ctx, `${n.notificationType} ${problem}`, n.payload);
  // The payload is stored as JSON text; JSON.stringify overflows the stack on a few thousand levels of nesting.
  if (nestedDeeperThan(n.payload, MAX_PAYLOAD_DEPTH)) return unrecognised(ctx, `${n.notificationType} payload is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`, n.payload);
  return { kind: 'notification', notification: n };
}

/**
 * Dedupe keys ctbridge writes beside the notifications' own start with this (routing's "an erasure of this
 * resource was asked for"); a Message or Event id never does (commercetools' are UUIDs), so none can pose as one.
 */
export const RESERVED_DEDUPE_PREFIX = 'ctbridge:';

function reservedIdProblem(id: string): string | undefined {
  return id.startsWith(RESERVED_DEDUPE_PREFIX) ? `id starts with "${RESERVED_DEDUPE_PREFIX}", which ctbridge keeps for its own dedupe keys` : undefined;
}

function identifierProblem(name: string, value: string): string | undefined {
  if (value.length > MAX_IDENTIFIER_LENGTH) return `${name} is longer than ${MAX_IDENTIFIER_LENGTH} characters`;
  if (value.includes('\u0000')) return `${name} contains a NUL character`;
  // A lone surrogate (JSON "\ud800") cannot be written as UTF-8: both stores would keep U+FFFD instead, so the
  // key read back would differ from the one routed (the message silently dropped as a duplicate), and two such
  // ids would become one.
  if (!value.isWellFormed()) return `${name} is not well-formed Unicode (it holds a lone surrogate)`;
  return undefined;
}

/** commercetools resources nest a few dozen levels at most. */
const MAX_PAYLOAD_DEPTH = 100;

/** Whether an object or array in `value` sits deeper than `limit` levels (the value itself being level 1). */
function nestedDeeperThan(value: unknown, limit: number, depth = 1): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (depth > limit) return true;
  // Recursion is bounded by `limit`; for-in allocates nothing (a parsed JSON object has no inherited keys).
  if (Array.isArray(value)) {
    for (const child of value as unknown[]) if (nestedDeeperThan(child, limit, depth + 1)) return true;
    return false;
  }
  for (const key in value) if (nestedDeeperThan((value as JsonObject)[key], limit, depth + 1)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Envelopes

function snsMessageType(o: JsonObject, ctx: Context): string | undefined {
  const type = own(o, 'Type');
  if (typeof type === 'string' && (own(o, 'TopicArn') !== undefined || own(o, 'MessageId') !== undefined)) return type;
  // The header describes the outer HTTP request only. SNS sends it with raw message delivery too, where the body
  // is the payload itself, so it only decides the type of a body that has SNS envelope fields.
  if (ctx.depth === 0) {
    const header = headerValue(ctx.headers, 'x-amz-sns-message-type');
    const snsFields = ['TopicArn', 'MessageId', 'SubscribeURL', 'Token'].some((key) => own(o, key) !== undefined) || typeof own(o, 'Message') === 'string';
    if (header !== undefined && snsFields) return typeof type === 'string' ? type : header;
  }
  return undefined;
}

function visitSns(o: JsonObject, type: string, ctx: Context, out: Out): void {
  switch (type) {
    case 'Notification': {
      const message = own(o, 'Message');
      const nested = child(ctx, 'SNS Message', timestamp(own(o, 'Timestamp')));
      if (typeof message === 'string') {
        const parsed = parseJson(message);
        if (!parsed.ok) {
          out.push(unrecognised(ctx, `SNS Message ${parsed.reason}`, o));
          return;
        }
        visit(parsed.value, nested, out);
      } else if (isObject(message) || Array.isArray(message)) {
        visit(message, nested, out);
      } else {
        out.push(unrecognised(ctx, message === undefined ? 'SNS Notification has no Message' : `SNS Message is ${describe(message)}, expected a JSON string`, o));
      }
      return;
    }
    case 'SubscriptionConfirmation':
      out.push({
        kind: 'control',
        control: {
          kind: 'sns-subscription-confirmation',
          topicArn: optionalString(own(o, 'TopicArn')),
          subscribeUrl: optionalString(own(o, 'SubscribeURL')),
          messageId: optionalString(own(o, 'MessageId')),
        },
      });
      return;
    case 'UnsubscribeConfirmation':
      out.push(unrecognised(ctx, 'SNS UnsubscribeConfirmation: this endpoint was unsubscribed from the topic; nothing to ingest', o));
      return;
    default:
      out.push(unrecognised(ctx, `unknown SNS message Type ${quote(type)}`, o));
  }
}

function isEventGridEvent(o: JsonObject): boolean {
  return (
    own(o, 'dataVersion') !== undefined ||
    own(o, 'metadataVersion') !== undefined ||
    own(o, 'eventTime') !== undefined ||
    own(o, 'topic') !== undefined
  );
}

type Decoded = { ok: true; value: unknown } | { ok: false; reason: string };

/** An envelope's data: a JSON value, JSON text, or (CloudEvents' data_base64) base64-encoded JSON. */
function envelopeData(o: JsonObject, dataKey: string, base64Key: string | undefined): Decoded {
  const data = own(o, dataKey);
  if (typeof data === 'string') {
    const parsed = parseJson(data);
    return parsed.ok ? parsed : { ok: false, reason: `${dataKey} is a string that ${parsed.reason}` };
  }
  if (data !== undefined && data !== null) return { ok: true, value: data };
  if (base64Key !== undefined) {
    const encoded = own(o, base64Key);
    if (typeof encoded === 'string') {
      const decoded = decodeBase64Json(encoded);
      return decoded.ok ? decoded : { ok: false, reason: `${base64Key} ${decoded.reason}` };
    }
    return { ok: false, reason: `has neither ${dataKey} nor ${base64Key}` };
  }
  return { ok: false, reason: `has no ${dataKey}` };
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeBase64Json(encoded: string): Decoded {
  const compact = encoded.replace(/\s+/g, '');
  if (compact.length === 0) return { ok: false, reason: 'is empty' };
  // Buffer.from silently skips characters it does not understand, so validate the alphabet first.
  if (!BASE64.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) return { ok: false, reason: 'is not valid base64' };
  let text: string;
  try {
    text = utf8.decode(Buffer.from(compact, 'base64'));
  } catch {
    return { ok: false, reason: 'does not decode to UTF-8 text' };
  }
  const parsed = parseJson(text);
  return parsed.ok ? parsed : { ok: false, reason: `decodes to text that ${parsed.reason}` };
}

function parseJson(text: string): Decoded {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, reason: `is not JSON (${clip(errorText(error), 120)})` };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function child(ctx: Context, segment: string, time?: number): Context {
  return {
    depth: ctx.depth + 1,
    path: ctx.path === '' ? segment : `${ctx.path} > ${segment}`,
    fallbackTime: time ?? ctx.fallbackTime,
    headers: ctx.headers,
  };
}

function unrecognised(ctx: Context, reason: string, body: unknown): NormalizedItem {
  return { kind: 'unrecognised', unrecognised: { reason: ctx.path === '' ? reason : `${ctx.path}: ${reason}`, body } };
}

/** Own properties only: JSON may contain keys like "constructor" or "__proto__" that must not reach the prototype. */
function own(o: JsonObject, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * A version is evidence, not truth: one no real resource reaches (a forged 9007199254740991) would make every later
 * genuine version look stale and freeze the record, so it is quarantined (or, for an Event, ignored).
 */
export const MAX_PLAUSIBLE_VERSION = 1_000_000_000;

function plausibleVersion(value: unknown): value is number {
  return isVersion(value) && value >= 1 && value <= MAX_PLAUSIBLE_VERSION;
}

function implausible(version: number): string {
  return `${version} is implausible (commercetools versions run from 1 to ${MAX_PLAUSIBLE_VERSION})`;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function timestamp(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

function headerValue(headers: Headers, name: string): string | undefined {
  let value = headers[name];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : headers[key];
  }
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first.length > 0 ? first : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'missing';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

function quote(text: string): string {
  return JSON.stringify(clip(text, 80));
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
