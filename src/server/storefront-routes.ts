// POST /v1/events/storefront: behaviour events from shoppers' browsers (ingest/storefront-events.ts). A request
// names its storefront by the storefront's publishable key (X-Storefront-Key, or ?key= where a header cannot be
// set, as with navigator.sendBeacon); its Origin must be one that storefront allows; requests under a key are
// rate-limited; then the body takes the ordinary ingest path (validated against the published schema, committed
// to the inbox, acknowledged 202 once stored) and its events reach destinations through their `events:` mappings.
// Also: CORS preflights for allowed origins, and the JSON Schema at GET /v1/events/storefront/schema.json.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { StorefrontConfig } from '../config/schema.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import { STOREFRONT_BODY_LIMIT, storefrontEventsJsonSchema } from '../ingest/storefront-events.ts';
import { CORRELATION_ID, Ticket, type IngestBudgets } from './ingest-routes.ts';
import { sendProblem } from './problem.ts';

export const STOREFRONT_ROUTE = '/v1/events/storefront';
export const STOREFRONT_SCHEMA_ROUTE = '/v1/events/storefront/schema.json';

export interface StorefrontRoutesOptions {
  storefronts: readonly StorefrontConfig[];
  ingest: IngestService;
  /** The in-flight budget ingest of commercetools notifications uses too: one memory bound for every body. */
  budgets: IngestBudgets;
  /** The clock of the rate limits (tests inject one). */
  now: () => number;
}

/** How long a browser may cache a preflight's answer (Chromium caps it at 2 hours, Firefox at 24). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
const ALLOWED_HEADERS = 'content-type, x-storefront-key, x-correlation-id';
const KEY_HEADER = 'x-storefront-key';

/** A token bucket per key: `requestsPerSecond` refill it, up to `burst`. */
export class RequestBucket {
  #tokens: number;
  #at: number;
  readonly #rate: number;
  readonly #burst: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes one request's token: 0 when it may go, otherwise the seconds until it may (for Retry-After). */
  take(now: number): number {
    // A clock that went back refills nothing (and takes nothing back).
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
      this.#at = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate));
  }
}

interface Storefront {
  config: StorefrontConfig;
  /** SHA-256 of the key: every comparison is of 32 bytes, whatever a request sends. */
  keyDigest: Buffer;
  origins: ReadonlySet<string>;
  bucket: RequestBucket;
}

const digestOf = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export function storefrontRoutes(app: FastifyInstance, options: StorefrontRoutesOptions): void {
  const { ingest, budgets, now } = options;
  const storefronts: Storefront[] = options.storefronts.map((config) => ({
    config,
    keyDigest: digestOf(config.key),
    origins: new Set(config.allowedOrigins),
    bucket: new RequestBucket(config.rateLimit.requestsPerSecond, config.rateLimit.burst, now()),
  }));
  // Preflights carry no key (browsers send no custom header in them): an origin any storefront allows is answered.
  const anyOrigin = new Set(storefronts.flatMap((s) => [...s.origins]));
  const schema = JSON.stringify(storefrontEventsJsonSchema());

  /** The storefront a key belongs to: compared in constant time with every configured key, none skipped. */
  function storefrontOf(key: string | undefined): Storefront | undefined {
    if (key === undefined || key.length === 0) return undefined;
    const given = digestOf(key);
    let found: Storefront | undefined;
    for (const storefront of storefronts) if (timingSafeEqual(given, storefront.keyDigest) && found === undefined) found = storefront;
    return found;
  }

  /** CORS answer headers for an origin that may read the answer (one some storefront allows). */
  function allowOrigin(reply: FastifyReply, origin: string | undefined): FastifyReply {
    reply.header('vary', 'Origin');
    if (origin !== undefined && anyOrigin.has(origin)) reply.header('access-control-allow-origin', origin).header('access-control-expose-headers', 'Retry-After');
    return reply;
  }

  app.options(STOREFRONT_ROUTE, async (request, reply) => {
    const origin = headerOf(request, 'origin');
    reply.header('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    if (origin === undefined || !anyOrigin.has(origin)) return sendProblem(reply, 403, 'forbidden', 'this origin may not send storefront events (allowedOrigins of the storefronts)');
    return reply
      .code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', 'POST, OPTIONS')
      .header('access-control-allow-headers', ALLOWED_HEADERS)
      .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_SECONDS))
      .send();
  });

  app.get(STOREFRONT_SCHEMA_ROUTE, async (_request, reply) => reply.header('access-control-allow-origin', '*').type('application/schema+json').send(schema));

  const admitted = new WeakMap<object, { ticket: Ticket; storefront: Storefront }>();

  // Before the body is read: the key (401), the origin (403), the rate (429), then the memory bound (503). A
  // refused request's connection is closed: reading its body would spend what the refusal saves.
  const gate: onRequestHookHandler = (request, reply, done) => {
    const origin = headerOf(request, 'origin');
    allowOrigin(reply, origin);
    const query = request.query as Record<string, unknown> | undefined;
    const key = headerOf(request, KEY_HEADER) ?? (typeof query?.key === 'string' ? query.key : undefined);
    const storefront = storefrontOf(key);
    if (!storefront) return void refuse(reply, 401, 'unauthorized', key === undefined ? `no storefront key: send it in the ${KEY_HEADER} header (or ?key=)` : 'this is not the key of a configured storefront');
    if (origin === undefined ? !storefront.config.allowMissingOrigin : !storefront.origins.has(origin)) {
      return void refuse(reply, 403, 'forbidden', origin === undefined ? 'no Origin header: this storefront accepts events from its pages only (allowMissingOrigin)' : `origin ${origin} may not send events for storefront ${storefront.config.name}`);
    }
    const wait = storefront.bucket.take(now());
    if (wait > 0) {
      return void refuse(reply.header('retry-after', String(wait)), 429, 'rate-limited', `more than ${storefront.config.rateLimit.requestsPerSecond} requests a second (burst ${storefront.config.rateLimit.burst}) under the key of storefront ${storefront.config.name}; retry after ${wait} s`);
    }
    const ticket = new Ticket(budgets);
    const declared = Number(request.headers['content-length']);
    if (!ticket.takeInFlight(Number.isFinite(declared) && declared >= 0 ? Math.min(declared, STOREFRONT_BODY_LIMIT) : STOREFRONT_BODY_LIMIT)) {
      return void refuse(reply.header('retry-after', '1'), 503, 'overloaded', 'too much ingest is in flight; retry shortly');
    }
    admitted.set(request, { ticket, storefront });
    reply.raw.once('close', () => {
      if (!ticket.handling) ticket.release();
    });
    done();
  };

  app.post(STOREFRONT_ROUTE, { bodyLimit: STOREFRONT_BODY_LIMIT, childLoggerFactory: (logger) => logger, onRequest: gate }, async (request, reply) => {
    const entry = admitted.get(request)!;
    entry.ticket.handling = true;
    try {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (raw.length === 0) return sendProblem(reply, 400, 'empty-body', 'the request has no body: expected a storefront event, or an array of them (see GET /v1/events/storefront/schema.json)');
      const header = headerOf(request, 'x-correlation-id');
      const correlationId = header !== undefined && CORRELATION_ID.test(header) ? header : undefined;
      const result = await ingest.ingest({ raw, correlationId, source: 'storefront', intake: { kind: 'storefront', storefront: entry.storefront.config.name } });
      if (!result.ok) {
        const extra = result.problem === 'invalid-event' ? { invalidParams: result.invalid.map((i) => ({ name: i.pointer, reason: i.reason })), pointer: result.invalid[0]?.pointer } : {};
        return sendProblem(reply, result.status, result.problem, result.detail, extra);
      }
      return reply.code(202).send({ accepted: result.outcome.accepted });
    } finally {
      entry.ticket.release();
    }
  });
}

function refuse(reply: FastifyReply, status: number, kind: 'unauthorized' | 'forbidden' | 'rate-limited' | 'overloaded', detail: string): FastifyReply {
  return sendProblem(reply.header('connection', 'close'), status, kind, detail);
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first.length > 0 ? first : undefined;
}
