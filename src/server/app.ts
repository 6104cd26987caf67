// The HTTP server: Fastify with the ingest, admin and health/metrics routes as explicit plugins. Bodies are read
// raw (the HMAC is computed over the exact bytes) and parsed by the ingest service, so that malformed JSON
// gets a problem+json answer instead of a framework error. No error escapes as a stack trace.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/store.ts';
import { adminRoutes } from './admin-routes.ts';
import { ingestRoutes } from './ingest-routes.ts';
import { sendProblem } from './problem.ts';

export interface ServerDeps {
  config: Pick<Config, 'server' | 'destinations'>;
  store: Store;
  ingest: IngestService;
  metrics: Metrics;
  logger: Logger;
  onReplay: (destination: string | null) => void;
  fetchJwks?: (url: string) => Promise<unknown>;
  /** The Prometheus exposition; defaults to this thread's registry. */
  metricsText?: () => Promise<string>;
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config, store, metrics, logger } = deps;
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }),
    // Per-request lines would double the log volume at ingest rates; ctbridge logs per message instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.server.bodyLimit,
    // Keep-alive connections from push subscriptions are long-lived; keep them open across bursts.
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
      return sendProblem(reply, 413, 'payload-too-large', `bodies are limited to ${config.server.bodyLimit} bytes`);
    }
    if (error.statusCode === 415) return sendProblem(reply, 415, 'unsupported-media-type', error.message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return sendProblem(reply, error.statusCode, 'bad-request', error.message);
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, 503, 'unavailable', 'the request could not be stored; it was not accepted, deliver it again');
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, 'not-found', `no route for ${request.method} ${request.url.split('?')[0]}`));

  app.register((scope, _options, done) => {
    ingestRoutes(scope, { auth: config.server.ingest.auth, bodyLimit: config.server.bodyLimit, maxInFlightBytes: config.server.maxInFlightBytes, ingest: deps.ingest, ...(deps.fetchJwks && { fetchJwks: deps.fetchJwks }) });
    adminRoutes(scope, { store, adminToken: config.server.adminToken, destinations: config.destinations.map((d) => d.name), onReplay: deps.onReplay });
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
  const metricsText = deps.metricsText ?? (() => metrics.registry.metrics());
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metricsText()));
  return app as unknown as FastifyInstance;
}
