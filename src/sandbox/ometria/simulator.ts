// A local Ometria Push API as strict as the documented one (spec/ometria/push-api.md), for the tests, the sandbox
// and the benchmark. POST /v2/push takes an array of at most 100 records of one @type, none over 60 KB, with the
// X-Ometria-Auth key (401 without, 403 wrong); 4 requests per second (a token bucket, 429 beyond) and a backlog of
// 50,000 records (429 beyond), announced in X-QueueSize-Limit / X-QueueSize-Remaining on every answer. A 200 means
// only "received": records wait in the backlog, and when processed each is validated (field types and enums per the
// reference) and either merged into the account (a partial update) or reported on GET /v2/push/_errors (the 100
// newest), as the real service does. State is inspectable by tests; faults can be injected.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readBody } from '../http-body.ts';
import { listenLocally } from '../local-server.ts';

export const OMETRIA_TYPES = ['contact', 'order', 'product', 'custom_event'] as const;
export type OmetriaType = (typeof OMETRIA_TYPES)[number];

/** docs.ometria.com "Ometria API introduction": 100 records per request, 60 KB per record, 4 requests/s, 50k backlog. */
export const MAX_RECORDS_PER_PUSH = 100;
export const MAX_RECORD_BYTES = 60 * 1024;
export const QUEUE_LIMIT = 50_000;
export const MAX_LISTED_ERRORS = 100;

/** An injected failure for the next request (of the given endpoint only, when `only` says). */
export type OmetriaFault = ({ kind: 'status'; status: number } | { kind: 'reset' }) & { only?: 'push' | 'errors' };

export interface OmetriaSimulatorOptions {
  apiKey: string;
  /** Requests per second (Ometria: 4). */
  requestsPerSecond?: number;
  /** Records the backlog processes per second (how fast the queue drains); default: at once (no backlog). */
  processedPerSecond?: number;
  port?: number;
  now?: () => number;
}

export interface PushLogEntry {
  at: number;
  status: number;
  type: string | undefined;
  records: number;
}

export interface ValidationError {
  error_message: string;
  error_path: string;
}

export interface OmetriaSimulator {
  url: string;
  /** The accepted key; change it to revoke the old one. */
  apiKey: string;
  /** Records held, per type, by id (contacts by `@collection` and id: `<collection>/<id>`). */
  readonly records: Record<OmetriaType, Map<string, Record<string, unknown>>>;
  /** Validation errors, newest first (GET /v2/push/_errors shows the first 100). */
  readonly errors: ValidationError[];
  /** Every push answered, in order (429s and refusals included). */
  readonly pushes: PushLogEntry[];
  /** Every record that passed validation, as it was sent, in the order it was processed. */
  readonly received: Array<{ type: OmetriaType; record: Record<string, unknown> }>;
  /** Calls of every kind received, and those answered 429. */
  readonly stats: { calls: number; rateLimited: number; errorPolls: number; recordsAccepted: number };
  /** The next answers: each request takes the first queued fault. */
  faults: OmetriaFault[];
  /** Makes a record fail asynchronous validation with this message (tests: an error the real service would find). */
  invalidWhen: ((type: OmetriaType, record: Record<string, unknown>) => { field: string; message: string } | undefined) | undefined;
  /** While true the backlog is not processed (its records wait; X-QueueSize-Remaining shrinks). */
  processingPaused: boolean;
  /** Records waiting in the backlog now (after processing what is due). */
  backlog(): number;
  /** A contact by id (and collection, when several collections share ids). */
  contact(id: string, collection?: string): Record<string, unknown> | undefined;
  /**
   * Ometria's profiles: contacts clustered by customer_id, then by e-mail (docs.ometria.com "Contacts endpoint"),
   * each with the orders linked to it by customer.id (an order naming only an e-mail: by that e-mail).
   */
  profiles(): Array<{ contacts: Array<Record<string, unknown>>; orders: Array<Record<string, unknown>> }>;
  close(): Promise<void>;
}

interface Queued {
  type: OmetriaType;
  record: Record<string, unknown>;
}

export async function startOmetriaSimulator(options: OmetriaSimulatorOptions): Promise<OmetriaSimulator> {
  const now = options.now ?? Date.now;
  const rate = options.requestsPerSecond ?? 4;
  const processedPerSecond = options.processedPerSecond ?? Number.POSITIVE_INFINITY;
  // A token bucket: `rate` calls may come at once, and `rate` more each second.
  let bucket = { tokens: rate, at: now() };
  const queue: Queued[] = [];
  let processedUpTo = now();

  const sim: Omit<OmetriaSimulator, 'url' | 'close'> = {
    apiKey: options.apiKey,
    records: { contact: new Map(), order: new Map(), product: new Map(), custom_event: new Map() },
    errors: [],
    pushes: [],
    received: [],
    stats: { calls: 0, rateLimited: 0, errorPolls: 0, recordsAccepted: 0 },
    faults: [],
    invalidWhen: undefined,
    processingPaused: false,
    backlog: () => {
      drain();
      return queue.length;
    },
    contact: (id, collection) => {
      drain();
      if (collection !== undefined) return sim.records.contact.get(`${collection}/${id}`);
      for (const record of sim.records.contact.values()) if (record.id === id) return record;
      return undefined;
    },
    profiles: () => {
      drain();
      const contacts = [...sim.records.contact.values()];
      // Union-find over the contacts: same customer_id, or same e-mail, is one profile.
      const parent = contacts.map((_, i) => i);
      const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
      const byKey = new Map<string, number>();
      contacts.forEach((contact, i) => {
        const keys = [typeof contact.customer_id === 'string' ? `id:${contact.customer_id}` : undefined, typeof contact.email === 'string' ? `email:${contact.email.toLowerCase()}` : undefined];
        for (const key of keys) {
          if (key === undefined) continue;
          const other = byKey.get(key);
          if (other === undefined) byKey.set(key, i);
          else parent[find(i)] = find(other);
        }
      });
      const groups = new Map<number, Array<Record<string, unknown>>>();
      contacts.forEach((contact, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), contact]));
      return [...groups.values()].map((members) => {
        const ids = new Set(members.map((c) => c.customer_id).filter((id) => typeof id === 'string'));
        const emails = new Set(members.map((c) => (typeof c.email === 'string' ? c.email.toLowerCase() : undefined)).filter((e) => e !== undefined));
        const orders = [...sim.records.order.values()].filter((order) => {
          const customer = isObject(order.customer) ? order.customer : {};
          if (typeof customer.id === 'string') return ids.has(customer.id);
          return typeof customer.email === 'string' && emails.has(customer.email.toLowerCase());
        });
        return { contacts: members, orders };
      });
    },
  };

  /** Processes what the backlog has had time for since the last look. */
  function drain(): void {
    const at = now();
    if (sim.processingPaused) {
      processedUpTo = at;
      return;
    }
    const due = processedPerSecond === Number.POSITIVE_INFINITY ? queue.length : Math.floor(((at - processedUpTo) * processedPerSecond) / 1000);
    if (due <= 0) return;
    processedUpTo = at;
    for (const { type, record } of queue.splice(0, due)) apply(type, record);
  }

  function apply(type: OmetriaType, record: Record<string, unknown>): void {
    const problem = validate(type, record) ?? sim.invalidWhen?.(type, record);
    if (problem) {
      sim.errors.unshift({ error_message: problem.message, error_path: `root > ${type}[${JSON.stringify(String(record.id))}] > ${problem.field}` });
      if (sim.errors.length > 1_000) sim.errors.length = 1_000;
      return;
    }
    const key = type === 'contact' ? `${typeof record['@collection'] === 'string' ? record['@collection'] : ''}/${String(record.id)}` : String(record.id);
    const store = sim.records[type];
    store.set(key, merge(store.get(key) ?? {}, record));
    sim.received.push({ type, record });
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  function queueHeaders(): Record<string, string> {
    return { 'x-queuesize-limit': String(QUEUE_LIMIT), 'x-queuesize-remaining': String(Math.max(0, QUEUE_LIMIT - queue.length)) };
  }

  function takeToken(): boolean {
    const at = now();
    bucket = { tokens: Math.min(rate, bucket.tokens + ((at - bucket.at) * rate) / 1000), at };
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    sim.stats.calls += 1;
    drain();
    const url = new URL(req.url ?? '/', 'http://simulator');
    const endpoint = url.pathname === '/v2/push/_errors' ? 'errors' : 'push';
    const at = sim.faults.findIndex((f) => f.only === undefined || f.only === endpoint);
    const fault = at === -1 ? undefined : sim.faults.splice(at, 1)[0];
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'status') return send(res, fault.status, { status: 'ERROR', message: `injected ${fault.status}` }, queueHeaders());

    const key = req.headers['x-ometria-auth'];
    if (key === undefined || key === '') return send(res, 401, { status: 'ERROR', message: 'Missing X-Ometria-Auth header' });
    if (key !== sim.apiKey) return send(res, 403, { status: 'ERROR', message: 'Invalid API key' });

    const isPush = req.method === 'POST' && url.pathname === '/v2/push';
    const isErrors = req.method === 'GET' && url.pathname === '/v2/push/_errors';
    if (!isPush && !isErrors) return send(res, 404, { status: 'ERROR', message: `Not found: ${req.method} ${url.pathname}` });

    if (!takeToken()) {
      sim.stats.rateLimited += 1;
      if (isPush) sim.pushes.push({ at: now(), status: 429, type: undefined, records: 0 });
      return send(res, 429, { status: 'ERROR', message: 'Too many requests' }, queueHeaders());
    }
    if (isErrors) {
      sim.stats.errorPolls += 1;
      return send(res, 200, sim.errors.slice(0, MAX_LISTED_ERRORS), queueHeaders());
    }

    const refuse = (message: string, type?: string) => {
      sim.pushes.push({ at: now(), status: 400, type, records: 0 });
      send(res, 400, { status: 'ERROR', message }, queueHeaders());
    };
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return refuse('Payload invalid: not valid JSON');
    }
    if (!Array.isArray(body)) return refuse('Payload invalid: expected an array of records');
    if (body.length === 0) return refuse('Payload invalid: no records');
    if (body.length > MAX_RECORDS_PER_PUSH) return refuse(`Payload invalid: at most ${MAX_RECORDS_PER_PUSH} records per request`);
    const records = body as unknown[];
    if (!records.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) return refuse('Payload invalid: every record must be an object');
    const types = new Set(records.map((r) => (r as Record<string, unknown>)['@type']));
    if (types.size > 1) return refuse('Payload invalid: one record type per request');
    const type = [...types][0];
    if (typeof type !== 'string' || !(OMETRIA_TYPES as readonly string[]).includes(type)) return refuse(`Payload invalid: unknown @type ${JSON.stringify(type)}`);
    for (const record of records) if (Buffer.byteLength(JSON.stringify(record)) > MAX_RECORD_BYTES) return refuse('Payload invalid: Record is too large', type);
    if (queue.length + records.length > QUEUE_LIMIT) {
      sim.stats.rateLimited += 1;
      sim.pushes.push({ at: now(), status: 429, type, records: 0 });
      return send(res, 429, { status: 'ERROR', message: 'Queue is full' }, queueHeaders());
    }
    for (const record of records) queue.push({ type: type as OmetriaType, record: record as Record<string, unknown> });
    sim.stats.recordsAccepted += records.length;
    sim.pushes.push({ at: now(), status: 200, type, records: records.length });
    drain();
    send(res, 200, { status: 'OK', request_id: randomUUID(), accepted: records.length, rejected: 0 }, queueHeaders());
  }

  const server: Server = createServer((req, res) => {
    void readBody(req).then((raw) => handle(req, res, raw));
  });
  return Object.assign(sim, await listenLocally(server, options.port));
}

/** A partial update: objects are merged key by key, anything else replaced (spec/ometria/push-api.md, last section). */
function merge(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...into };
  for (const [key, value] of Object.entries(from)) {
    const before = out[key];
    out[key] = isObject(value) && isObject(before) ? merge(before, value) : value;
  }
  return out;
}

// ---- validation, per the reference's field types and enums (spec/ometria/push-api.md) ----

type Problem = { field: string; message: string } | undefined;
type Check = (value: unknown) => boolean;

const NOT_VALID = 'not a valid value';
const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const string: Check = (v) => typeof v === 'string';
const number: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const boolean: Check = (v) => typeof v === 'boolean';
const iso8601: Check = (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(v) && !Number.isNaN(Date.parse(v));
const date: Check = (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v));
const currency: Check = (v) => typeof v === 'string' && /^[A-Z]{3}$/.test(v);
const e164: Check = (v) => typeof v === 'string' && /^\+[1-9]\d{6,14}$/.test(v);
const oneOf = (...values: string[]): Check => (v) => typeof v === 'string' && values.includes(v);
const listOf = (item: Check): Check => (v) => Array.isArray(v) && v.every(item);
const object: Check = isObject;
const address: Check = (v) => isObject(v) && Object.values(v).every((x) => x === null || typeof x === 'string');

const CONTACT: Record<string, Check> = {
  '@collection': string,
  email: string,
  customer_id: string,
  firstname: string,
  lastname: string,
  date_of_birth: date,
  gender: oneOf('f', 'm', 'o'),
  phone_number: e164,
  store_ids: listOf(string),
  country_id: string,
  properties: object,
  '@add_to_lists': listOf(string),
  '@remove_from_lists': listOf(string),
  marketing_optin: oneOf('EXPLICITLY_OPTEDIN', 'EXPLICITLY_OPTEDOUT', 'NOT_SPECIFIED'),
  '@force_optin': boolean,
  timestamp_subscribed: iso8601,
  timestamp_unsubscribed: iso8601,
  channels: object,
};

const SMS: Record<string, Check> = { allow_marketing: boolean, allow_transactional: boolean, dt_updated_marketing: iso8601, dt_updated_transactional: iso8601 };

const LINE_ITEM: Record<string, Check> = {
  product_id: string,
  variant_id: string,
  sku: string,
  quantity: number,
  unit_price: number,
  subtotal: number,
  tax: number,
  total: number,
  discount: number,
  refunded: number,
  quantity_refunded: number,
  is_on_sale: boolean,
  variant_options: listOf((o) => isObject(o) && ['id', 'type', 'label'].every((k) => o[k] === undefined || typeof o[k] === 'string')),
  properties: object,
};

const ORDER: Record<string, Check> = {
  timestamp: iso8601,
  grand_total: number,
  subtotal: number,
  discount: number,
  shipping: number,
  tax: number,
  currency,
  status: string,
  is_valid: boolean,
  channel: string,
  store: string,
  web_id: string,
  ip_address: string,
  payment_method: string,
  shipping_method: string,
  coupon_code: string,
  billing_address: address,
  shipping_address: address,
  customer: (v) => isObject(v) && ['id', 'email', 'firstname', 'lastname'].every((k) => v[k] === undefined || typeof v[k] === 'string'),
  lineitems: Array.isArray,
  properties: object,
};

const LISTING: Record<string, Check> = { store: string, currency, price: number, special_price: number, special_price_dt_from: iso8601, special_price_dt_to: iso8601, title: string, url: string, image_url: string, is_active: boolean };

const PRODUCT: Record<string, Check> = {
  title: string,
  sku: string,
  price: number,
  special_price: number,
  special_price_dt_from: iso8601,
  special_price_dt_to: iso8601,
  url: string,
  image_url: string,
  is_active: boolean,
  is_variant: boolean,
  parent_id: string,
  stores: listOf(string),
  attributes: Array.isArray,
  listings: Array.isArray,
  currency,
};

const CUSTOM_EVENT: Record<string, Check> = {
  timestamp: iso8601,
  event_type: (v) => typeof v === 'string' && v.length > 0 && v.length < 32,
  identity_email: string,
  identity_account_id: string,
  profile_id: string,
  properties: object,
};

const FIELDS: Record<OmetriaType, Record<string, Check>> = { contact: CONTACT, order: ORDER, product: PRODUCT, custom_event: CUSTOM_EVENT };

function checkFields(record: Record<string, unknown>, fields: Record<string, Check>, prefix = ''): Problem {
  for (const [name, value] of Object.entries(record)) {
    if (name === '@type' || name === 'id' || value === null) continue;
    const check = fields[name];
    if (check && !check(value)) return { field: `${prefix}${name}`, message: NOT_VALID };
  }
  return undefined;
}

function validate(type: OmetriaType, record: Record<string, unknown>): Problem {
  if (typeof record.id !== 'string' || record.id === '') return { field: 'id', message: 'required: a non-empty string' };
  const problem = checkFields(record, FIELDS[type]);
  if (problem) return problem;
  if (type === 'contact') {
    const sms = isObject(record.channels) ? record.channels.sms : undefined;
    if (sms !== undefined && sms !== null) return isObject(sms) ? checkFields(sms, SMS, 'channels > sms > ') : { field: 'channels > sms', message: NOT_VALID };
  }
  if (type === 'order' && Array.isArray(record.lineitems)) {
    for (const [index, line] of (record.lineitems as unknown[]).entries()) {
      if (!isObject(line)) return { field: `lineitems > ${index}`, message: NOT_VALID };
      const lineProblem = checkFields(line, LINE_ITEM, `lineitems > ${index} > `);
      if (lineProblem) return lineProblem;
    }
  }
  if (type === 'product' && Array.isArray(record.listings)) {
    for (const [index, listing] of (record.listings as unknown[]).entries()) {
      if (!isObject(listing)) return { field: `listings > ${index}`, message: NOT_VALID };
      const listingProblem = checkFields(listing, LISTING, `listings > ${index} > `);
      if (listingProblem) return listingProblem;
    }
  }
  if (type === 'custom_event') {
    if (typeof record.event_type !== 'string') return { field: 'event_type', message: 'required' };
    if (record.identity_email === undefined && record.identity_account_id === undefined && record.profile_id === undefined) return { field: 'identity_account_id', message: 'one of identity_email, identity_account_id or profile_id is required' };
    if (isObject(record.properties)) {
      for (const [name, value] of Object.entries(record.properties)) {
        if (typeof value === 'string' && value.length > 512) return { field: `properties > ${name}`, message: 'at most 512 characters' };
      }
    }
  }
  return undefined;
}
