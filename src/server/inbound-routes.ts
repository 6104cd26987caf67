// POST /v1/inbound/<destination>: a destination's webhooks (two-way sync). A verification challenge (monday's) is
// echoed and nothing stored; anything else is authenticated as the destination's `inbound.auth` says (401 and
// nothing stored otherwise), must be JSON, and is stored — sealed, under the delivery's own id so a redelivery is
// stored once — before it is answered 200. The engine's inbound work (engine/inbound-work.ts) takes it from there.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DestinationConfig } from '../config/schema.ts';
import { findDestinationDefinition } from '../destinations/registry.ts';
import type { Sealer } from '../pii/sealed.ts';
import { appendInbound } from '../store/inbound.ts';
import type { Store } from '../store/store.ts';
import { checkInboundAuth } from './inbound-auth.ts';
import { sendProblem } from './problem.ts';

export const INBOUND_ROUTE = '/v1/inbound/:destination';

export interface InboundRouteDeps {
  destinations: readonly DestinationConfig[];
  store: Store;
  sealer: Pick<Sealer, 'seal'>;
  now: () => number;
  /** A delivery was stored for this destination: wake its inbound work. */
  onStored: (destination: string) => void;
}

export function inboundRoutes(app: FastifyInstance, deps: InboundRouteDeps): void {
  // A destination that is polled without webhook auth takes no webhooks.
  const byName = new Map(deps.destinations.filter((d) => d.inbound?.auth !== undefined).map((d) => [d.name, d]));
  app.post<{ Params: { destination: string } }>(INBOUND_ROUTE, async (request, reply) => {
    const destination = byName.get(request.params.destination);
    const definition = destination ? findDestinationDefinition(destination.type) : undefined;
    if (!destination?.inbound?.auth || !definition?.inbound) return sendProblem(reply, 404, 'not-found', `no destination "${request.params.destination}" takes inbound webhooks`);
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (raw.length === 0) return sendProblem(reply, 400, 'empty-body', 'the body is empty');
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendProblem(reply, 400, 'malformed-json', 'the body is not valid JSON');
    }
    // The URL verification of a webhook being registered: the token echoed back proves the endpoint, and nothing
    // is stored or disclosed (webhooks registered with a personal token carry no JWT, not even here).
    const challenge = definition.inbound.challenge?.(body);
    if (challenge !== undefined) return reply.code(200).send(challenge);
    const auth = checkInboundAuth(destination.inbound.auth, { headers: request.headers, rawBody: raw }, deps.now());
    if (!auth.ok) {
      request.log.warn({ destination: destination.name, reason: auth.reason }, 'inbound webhook refused');
      return sendProblem(reply.header('www-authenticate', 'Signature'), 401, 'unauthorized', `the webhook is not authenticated: ${auth.reason}`);
    }
    const dedupeKey = definition.inbound.dedupeKey?.(body) ?? `sha256:${createHash('sha256').update(raw).digest('base64url')}`;
    const correlationId = typeof request.headers['x-correlation-id'] === 'string' ? request.headers['x-correlation-id'].slice(0, 200) : randomUUID();
    const stored = await appendInbound(deps.store.db, { destination: destination.name, dedupeKey, body: deps.sealer.seal(raw.toString('utf8')), correlationId, now: deps.now() });
    if (stored === 'stored') deps.onStored(destination.name);
    return reply.code(200).header('x-correlation-id', correlationId).send({ accepted: stored === 'stored' ? 1 : 0, duplicate: stored === 'duplicate' });
  });
}
