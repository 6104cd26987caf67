// POST /v1/ingest/commercetools: authenticate over the raw body, parse, normalise whatever envelope carried the
// notifications, commit them durably, and only then acknowledge. Also answers the Azure Event Grid handshakes.
import type { FastifyInstance } from 'fastify';
import { createIngestAuthenticator } from '../ingest/auth.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import { normalizeBody } from '../ingest/normalize.ts';
import type { IngestAuthConfig } from '../config/schema.ts';
import { sendProblem } from './problem.ts';

export interface IngestRoutesOptions {
  auth: IngestAuthConfig;
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

  app.post('/v1/ingest/commercetools', async (request, reply) => {
    const rawBody = request.body as Buffer;
    const verdict = await authenticate({ headers: request.headers, rawBody });
    if (!verdict.ok) return sendProblem(reply, 401, 'unauthorized', verdict.reason);

    let body: unknown;
    try {
      body = JSON.parse(rawBody.toString('utf8'));
    } catch (error) {
      return sendProblem(reply, 400, 'malformed-json', `the body is not valid JSON: ${(error as Error).message}`);
    }
    const header = request.headers['x-correlation-id'];
    const correlationId = typeof header === 'string' && CORRELATION_ID.test(header) ? header : undefined;
    const outcome = await options.ingest.ingest(normalizeBody(body, request.headers), { correlationId, source: 'http' });

    const validation = outcome.controls.find((c) => c.kind === 'eventgrid-validation');
    if (validation) return reply.code(200).send({ validationResponse: validation.validationCode });
    return reply.code(202).send({
      accepted: outcome.accepted,
      quarantined: outcome.quarantined,
      ignored: outcome.ignored,
      ...(outcome.controls.length > 0 && { notices: outcome.controls.map((c) => c.kind) }),
    });
  });
}
