// POST /v1/ingest/commercetools: authenticate over the raw body, parse, normalise whatever envelope carried the
// notifications, commit them durably, and only then acknowledge. Also answers the Azure Event Grid handshakes.
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { createIngestAuthenticator } from '../ingest/auth.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { IngestAuthConfig } from '../config/schema.ts';
import { sendProblem } from './problem.ts';

export interface IngestRoutesOptions {
  auth: IngestAuthConfig;
  bodyLimit: number;
  maxInFlightBytes: number;
  ingest: IngestService;
  fetchJwks?: (url: string) => Promise<unknown>;
}

const CORRELATION_ID = /^[\w.:/@=-]{1,200}$/;

export function ingestRoutes(app: FastifyInstance, options: IngestRoutesOptions): void {
  const authenticate = createIngestAuthenticator(options.auth, options.fetchJwks ? { fetchJwks: options.fetchJwks } : undefined);

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
  // A body without a Content-Length counts as the largest allowed. One request alone is always admitted. The
  // bytes are given back when the handler is done with them, or when the connection closes before it starts
  // (an upload cut off, a 413): a sender that disconnects mid-commit does not free memory still in use.
  let inFlightBytes = 0;
  const admitted = new WeakMap<object, { handling: boolean; release: () => void }>();
  const admit: onRequestHookHandler = (request, reply, done) => {
    const declared = Number(request.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, options.bodyLimit) : options.bodyLimit;
    if (inFlightBytes > 0 && inFlightBytes + bytes > options.maxInFlightBytes) {
      void sendProblem(reply.header('retry-after', '1'), 503, 'overloaded', `more than ${options.maxInFlightBytes} bytes of ingest are in flight; retry shortly`);
      return;
    }
    inFlightBytes += bytes;
    let released = false;
    const ticket = {
      handling: false,
      release() {
        if (released) return;
        released = true;
        inFlightBytes -= bytes;
      },
    };
    admitted.set(request, ticket);
    reply.raw.once('close', () => {
      if (!ticket.handling) ticket.release();
    });
    done();
  };

  // Ingest logs per message through its own logger; a per-request child logger would be built for nothing at
  // thousands of requests a second.
  app.post('/v1/ingest/commercetools', { childLoggerFactory: (logger) => logger, onRequest: admit }, async (request, reply) => {
    const ticket = admitted.get(request);
    if (ticket) ticket.handling = true;
    try {
      return await handleIngest(request, reply);
    } finally {
      ticket?.release();
    }
  });

  async function handleIngest(request: FastifyRequest, reply: FastifyReply) {
    const rawBody = request.body as Buffer;
    const verdict = await authenticate({ headers: request.headers, rawBody });
    if (!verdict.ok) return sendProblem(reply, 401, 'unauthorized', verdict.reason);

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
}
