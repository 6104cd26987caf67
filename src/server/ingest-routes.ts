// POST /v1/ingest/commercetools: authenticate (before the body is read where the credential is a header), admit the
// body into the in-flight budget, parse, normalise whatever envelope carried the notifications, commit them
// durably, and only then acknowledge. Also answers the Azure Event Grid handshakes.
import { finished, Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preParsingHookHandler } from 'fastify';
import { createIngestAuth, type IngestAuthOptions, type IngestAuthResult } from '../ingest/auth.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { IngestAuthConfig } from '../config/schema.ts';
import { sendProblem } from './problem.ts';

export interface IngestRoutesOptions {
  auth: IngestAuthConfig;
  authOptions?: IngestAuthOptions;
  bodyLimit: number;
  maxInFlightBytes: number;
  maxUnverifiedBytes: number;
  ingest: IngestService;
  /** The byte budgets, when shared with another intake (storefront events); made here otherwise. */
  budgets?: IngestBudgets;
}

export const CORRELATION_ID = /^[\w.:/@=-]{1,200}$/;
const EMPTY = Buffer.alloc(0);

/** Bytes held by requests. Past `max` further bytes are refused, except by the only holder: one request alone always fits. */
export class ByteBudget {
  held = 0;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  take(bytes: number, alreadyMine: number): boolean {
    if (this.held - alreadyMine > 0 && this.held + bytes > this.max) return false;
    this.held += bytes;
    return true;
  }
}

/** The memory bounds of ingest: bodies admitted (in flight) and bodies not yet verified; one pair per server. */
export interface IngestBudgets {
  inFlight: ByteBudget;
  unverified: ByteBudget;
}

export function createIngestBudgets(limits: { maxInFlightBytes: number; maxUnverifiedBytes: number }): IngestBudgets {
  return { inFlight: new ByteBudget(limits.maxInFlightBytes), unverified: new ByteBudget(limits.maxUnverifiedBytes) };
}

/** What one request holds of the two budgets; given back once, when the handler is done or the connection closes. */
export class Ticket {
  handling = false;
  private inFlight = 0;
  private unverified = 0;
  private readonly budgets: IngestBudgets;
  constructor(budgets: IngestBudgets) {
    this.budgets = budgets;
  }
  takeInFlight(bytes: number): boolean {
    if (!this.budgets.inFlight.take(bytes, this.inFlight)) return false;
    this.inFlight += bytes;
    return true;
  }
  takeUnverified(bytes: number): boolean {
    if (!this.budgets.unverified.take(bytes, this.unverified)) return false;
    this.unverified += bytes;
    return true;
  }
  releaseUnverified(): void {
    this.budgets.unverified.held -= this.unverified;
    this.unverified = 0;
  }
  release(): void {
    this.releaseUnverified();
    this.budgets.inFlight.held -= this.inFlight;
    this.inFlight = 0;
  }
}

/** Raised from the body stream when the unverified budget is taken; app.ts answers it with 503 and closes. */
export class UnverifiedBudgetError extends Error {
  readonly statusCode = 503;
  readonly code = 'CTBRIDGE_UNVERIFIED_BUDGET';
  constructor(max: number) {
    super(`more than ${max} bytes of ingest bodies are waiting for their signature check; retry shortly`);
  }
}

export function ingestRoutes(app: FastifyInstance, options: IngestRoutesOptions): void {
  const auth = createIngestAuth(options.auth, options.authOptions);

  // Event Grid (CloudEvents schema) validates a webhook with an OPTIONS request before sending anything.
  app.options('/v1/ingest/commercetools', async (request, reply) => {
    const origin = request.headers['webhook-request-origin'];
    if (typeof origin === 'string' && origin.length > 0) {
      return reply.code(200).header('webhook-allowed-origin', origin).header('webhook-allowed-rate', '*').send();
    }
    return reply.code(204).header('allow', 'POST, OPTIONS').send();
  });

  // Bodies being received, parsed and committed take memory until they are acknowledged. Past the bound, new
  // requests are refused with 503 + Retry-After (push subscriptions redeliver) rather than risking the process.
  // Only an authenticated request takes any of it: where the credential is a header (bearer, oidc), it is checked
  // before the body is read, and a request without one is answered 401 and its connection closed, its body never
  // read. Its declared size is reserved (a body without a Content-Length counts as the largest allowed).
  // Where the credential covers the body (hmac, sns), the body must be read to check it: until then its bytes are
  // counted as they arrive against a budget of their own (server.maxUnverifiedBytes), so a client that declares a
  // large body and trickles it holds only what it sent, never the in-flight budget; once verified, the body moves
  // into the in-flight budget. Budgets are given back when the handler is done with the body, or when the
  // connection closes before it starts (an upload cut off, a 413, a request timeout): a sender that disconnects
  // mid-commit does not free memory still in use.
  const budgets = options.budgets ?? createIngestBudgets(options);
  const admitted = new WeakMap<object, Ticket>();

  const gate: onRequestHookHandler = (request, reply, done) => {
    auth.checkHeaders(request.headers).then((verdict) => {
      if (!verdict.ok) return void refuse(reply, verdict, true);
      const ticket = new Ticket(budgets);
      if (!auth.coversBody) {
        const declared = Number(request.headers['content-length']);
        const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, options.bodyLimit) : options.bodyLimit;
        if (!ticket.takeInFlight(bytes)) return void overloaded(reply, true);
      }
      admitted.set(request, ticket);
      reply.raw.once('close', () => {
        if (!ticket.handling) ticket.release();
      });
      done();
    }, done);
  };

  // Counts the bytes of a body not yet verified as they arrive (only for hmac and sns).
  const meter: preParsingHookHandler = (request, _reply, payload, done) => {
    const ticket = admitted.get(request);
    if (!ticket) return done(null, payload);
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (ticket.takeUnverified(chunk.length)) callback(null, chunk);
        else callback(new UnverifiedBudgetError(options.maxUnverifiedBytes));
      },
    });
    // Not pipeline(): a refusal must leave the request (and its socket) open for the 503. An upload cut off ends the
    // counted stream with an error, so the body reader does not wait for it forever.
    payload.pipe(counted);
    finished(payload, (error) => {
      if (error) counted.destroy(error);
    });
    done(null, counted);
  };

  // Ingest logs per message through its own logger; a per-request child logger would be built for nothing at
  // thousands of requests a second.
  app.post(
    '/v1/ingest/commercetools',
    { childLoggerFactory: (logger) => logger, onRequest: gate, ...(auth.coversBody && { preParsing: meter }) },
    async (request, reply) => {
      const ticket = admitted.get(request);
      if (ticket) ticket.handling = true;
      try {
        return await handleIngest(request, reply, ticket);
      } finally {
        ticket?.release();
      }
    },
  );

  async function handleIngest(request: FastifyRequest, reply: FastifyReply, ticket: Ticket | undefined) {
    // No Content-Type and no body: Fastify runs no parser and there is no body at all.
    const rawBody = Buffer.isBuffer(request.body) ? request.body : EMPTY;
    if (auth.coversBody) {
      const verdict = await auth.checkBody({ headers: request.headers, rawBody });
      ticket?.releaseUnverified();
      if (!verdict.ok) return refuse(reply, verdict, false);
      if (ticket && !ticket.takeInFlight(rawBody.length)) return overloaded(reply, false);
    }
    if (rawBody.length === 0) return sendProblem(reply, 400, 'empty-body', 'the request has no body: expected a JSON notification, or an array or envelope of them');

    const header = request.headers['x-correlation-id'];
    const correlationId = typeof header === 'string' && CORRELATION_ID.test(header) ? header : undefined;
    const result = await options.ingest.ingest({ raw: rawBody, headers: request.headers, correlationId, source: 'http' });
    if (!result.ok) return sendProblem(reply, result.status, result.problem, result.detail);
    const { outcome } = result;

    const validation = outcome.controls.find((c) => c.kind === 'eventgrid-validation');
    if (validation) return reply.code(200).send({ validationResponse: validation.validationCode });
    return reply.code(202).send({
      accepted: outcome.accepted,
      quarantined: outcome.quarantined,
      ignored: outcome.ignored,
      ...(outcome.controls.length > 0 && { notices: outcome.controls.map((c) => c.kind) }),
    });
  }

  // Before the body is read, a refusal closes the connection: reading the body to keep the connection would spend
  // the bandwidth (and the time) of a request that was refused anyway.
  function refuse(reply: FastifyReply, verdict: Exclude<IngestAuthResult, { ok: true }>, beforeBody: boolean): FastifyReply {
    if (beforeBody) reply.header('connection', 'close');
    if (verdict.retryable) return sendProblem(reply.header('retry-after', '5'), 503, 'unavailable', `the credential cannot be checked now: ${verdict.reason}`);
    return sendProblem(reply, 401, 'unauthorized', verdict.reason);
  }

  function overloaded(reply: FastifyReply, beforeBody: boolean): FastifyReply {
    if (beforeBody) reply.header('connection', 'close');
    return sendProblem(reply.header('retry-after', '1'), 503, 'overloaded', `more than ${options.maxInFlightBytes} bytes of ingest are in flight; retry shortly`);
  }
}
