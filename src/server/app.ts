// The HTTP server: Fastify with the ingest, admin and health/metrics routes as explicit plugins. Bodies are read
// raw (the HMAC is computed over the exact bytes) and parsed by the ingest service, so that malformed JSON
// gets a problem+json answer instead of a framework error. No error escapes as a stack trace. Connections are
// bounded in number and in time (headers, whole request, keep-alive idle), so that slow or many clients cannot
// hold the process's memory or sockets.
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { IngestAuthOptions } from '../ingest/auth.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/store.ts';
import packageJson from '../../package.json' with { type: 'json' };
import { adminRoutes } from './admin-routes.ts';
import { ApiDescription } from './openapi.ts';
import { ApiClients, type ApiClientsOptions } from './api-clients.ts';
import type { CommercetoolsClient } from '../commercetools/client.ts';
import { supportRoutes } from '../support/routes.ts';
import { supportReaderOf } from '../support/reader.ts';
import { supportSettingsSchema } from '../support/settings.ts';
import { actionRoutes } from '../actions/routes.ts';
import type { ActionsService } from '../actions/service.ts';
import { createIngestBudgets, ingestRoutes } from './ingest-routes.ts';
import { rawProblem, sendProblem } from './problem.ts';
import { STOREFRONT_ROUTE, storefrontRoutes } from './storefront-routes.ts';
import { INBOUND_ROUTE, inboundRoutes } from './inbound-routes.ts';
import type { Sealer } from '../pii/sealed.ts';

const INGEST_ROUTE = '/v1/ingest/commercetools';
/** Routes whose failure to store a body is answered 503 (deliver it again), not 500. */
const INTAKE_ROUTES = new Set([INGEST_ROUTE, STOREFRONT_ROUTE, INBOUND_ROUTE]);

export interface ServerDeps {
  config: Pick<Config, 'server' | 'destinations'> & Partial<Pick<Config, 'storefronts' | 'api'>>;
  store: Store;
  ingest: IngestService;
  metrics: Metrics;
  logger: Logger;
  onReplay: (destination: string | null) => void;
  /** Injected fetchers and clock of ingest authentication (JWKS, SNS certificates). */
  ingestAuth?: IngestAuthOptions;
  /** The Prometheus exposition; defaults to this thread's registry. */
  metricsText?: () => Promise<string>;
  /** The clock of the storefront rate limits (tests inject one). */
  now?: () => number;
  /** What the support view reads commercetools with; without it, support lookups answer 503. */
  commercetools?: Pick<CommercetoolsClient, 'api' | 'projectKey'>;
  /** Agent actions, when configured (runtime.ts builds the service with its own commercetools client). */
  actions?: ActionsService;
  /** The JWKS fetcher and clock of API bearer tokens (tests). */
  apiAuth?: ApiClientsOptions;
  /** Seals inbound webhook bodies at rest, and wakes the engine's inbound work when one is stored. */
  inbound?: { sealer: Pick<Sealer, 'seal'>; onStored: (destination: string) => void };
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config, store, metrics, logger } = deps;
  const { requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs } = config.server;
  const httpLogger = logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: httpLogger,
    // Per-request lines would double the log volume at ingest rates; ctbridge logs per message instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.server.bodyLimit,
    // Keep-alive connections from push subscriptions are long-lived; keep them open across bursts (longer than
    // the idle timeout of a load balancer in front, so that it, not ctbridge, closes them).
    keepAliveTimeout: keepAliveTimeoutMs,
    requestTimeout: requestTimeoutMs,
    http: {
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      // Node checks the two timeouts above on this interval (30 s by default, which would let a 10 s headers
      // timeout run to 40 s): a fraction of the shorter one, and at most a second.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4))),
    },
    // Node's own answers to a request that timed out or is not HTTP, as problem+json; the connection is closed.
    clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, kind, detail] =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ([408, 'timeout', `a request must arrive within ${requestTimeoutMs} ms, its headers within ${headersTimeoutMs} ms`] as const)
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? ([431, 'headers-too-large', 'the request headers are too large'] as const)
            : ([400, 'bad-request', 'the request is not valid HTTP/1.1'] as const);
      httpLogger.debug({ code: error.code }, 'client error');
      // Only where no answer has begun on the connection: bytes written into a response would corrupt it. (Node's
      // own handler makes the same check on the same field.)
      const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (socket.writable && !answering?.headersSent) socket.write(rawProblem(status, kind, detail));
      socket.destroy();
    },
    return503OnClosing: true,
  });
  // Beyond this many open connections, new ones are closed at once: each holds memory (its parser, headers up to
  // 16 KB) on a thread with a small heap.
  app.server.maxConnections = config.server.maxConnections;

  // Refusals, by route pattern (bounded): a push subscription whose credential rotated, an attack, a storefront
  // over its rate all show here before anyone reads a log.
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status === 401 || status === 403 || status === 429) metrics.refusals.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(status) });
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
      // The rest of the body is not read: the connection cannot carry another request.
      return sendProblem(reply.header('connection', 'close'), 413, 'payload-too-large', `bodies are limited to ${request.routeOptions.bodyLimit ?? config.server.bodyLimit} bytes`);
    }
    if (error.code === 'CTBRIDGE_UNVERIFIED_BUDGET') return sendProblem(reply.header('connection', 'close').header('retry-after', '1'), 503, 'overloaded', error.message);
    if (error.statusCode === 415) return sendProblem(reply, 415, 'unsupported-media-type', error.message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return sendProblem(reply, error.statusCode, 'bad-request', error.message);
    request.log.error({ err: error }, 'request failed');
    if (INTAKE_ROUTES.has(request.routeOptions.url ?? '')) return sendProblem(reply, 503, 'unavailable', 'the request could not be stored; it was not accepted, deliver it again');
    return sendProblem(reply, 500, 'internal', 'the request failed; the log has the details');
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, 'not-found', `no route for ${request.method} ${request.url.split('?')[0]}`));

  // The agent-facing APIs describe their operations here as they register them (openapi.ts).
  const api = new ApiDescription({
    title: 'ctbridge',
    version: packageJson.version,
    description: "ctbridge's agent-facing API: the support view of a customer's orders and the actions agents take on them",
  });
  const clients = new ApiClients(config.api ?? { clients: [], roles: {} }, { ...deps.apiAuth, ...(deps.now && !deps.apiAuth?.now && { now: deps.now }) });

  // One memory bound for the bodies of both intakes.
  const budgets = createIngestBudgets(config.server);
  app.register((scope, _options, done) => {
    ingestRoutes(scope, {
      auth: config.server.ingest.auth,
      bodyLimit: config.server.bodyLimit,
      maxInFlightBytes: config.server.maxInFlightBytes,
      maxUnverifiedBytes: config.server.maxUnverifiedBytes,
      ingest: deps.ingest,
      budgets,
      ...(deps.ingestAuth && { authOptions: deps.ingestAuth }),
    });
    storefrontRoutes(scope, { storefronts: config.storefronts ?? [], ingest: deps.ingest, budgets, now: deps.now ?? Date.now });
    if (deps.inbound) inboundRoutes(scope, { destinations: config.destinations, store, now: deps.now ?? Date.now, ...deps.inbound });
    adminRoutes(scope, { store, adminToken: config.server.adminToken, destinations: config.destinations.map((d) => d.name), destinationConfigs: config.destinations, onReplay: deps.onReplay });
    const support = supportSettingsSchema.parse(config.api?.support ?? {});
    const now = deps.now ?? Date.now;
    supportRoutes(scope, { api, clients, settings: support, reader: supportReaderOf(deps.commercetools, support.cacheMs, now), projectKey: deps.commercetools?.projectKey ?? '', db: store.db, logger, now });
    if (deps.actions) actionRoutes(scope, { service: deps.actions, clients, api });
    done();
  });

  app.get('/healthz', () => ({ status: 'ok' }));
  // Unauthenticated, so it says whether, never where: no store URL, host, path or driver error (those are logged).
  app.get('/readyz', async (request, reply) => {
    try {
      const pending = await store.pendingMigrations();
      if (pending.length > 0) return sendProblem(reply, 503, 'unavailable', `${pending.length} store migrations not applied`);
      return { status: 'ready' };
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check: the store is unreachable');
      return sendProblem(reply, 503, 'unavailable', 'the store is unreachable');
    }
  });
  app.get('/v1/openapi.json', () => api.document());
  const metricsText = deps.metricsText ?? (() => metrics.registry.metrics());
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metricsText()));
  return app as unknown as FastifyInstance;
}
