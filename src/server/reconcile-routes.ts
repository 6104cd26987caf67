// The admin API's view of scheduled reconciliation: `GET /v1/reconciliations` lists, per destination with a
// `reconcile:` schedule (or a run recorded in the store), how often it runs, whether a run is in progress, when the
// last one started and finished, and what it found (counts per kind; the findings themselves are the command's).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DestinationConfig } from '../config/schema.ts';
import type { ReconcileCounts } from '../reconcile/reconcile.ts';
import type { Store } from '../store/store.ts';
import { z } from 'zod';
import { validate } from './admin-routes.ts';

export interface ReconcileRoutesOptions {
  store: Store;
  destinations: readonly DestinationConfig[];
  guard: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  now?: () => number;
}

export function reconcileRoutes(app: FastifyInstance, options: ReconcileRoutesOptions): void {
  const now = options.now ?? Date.now;
  app.get('/v1/reconciliations', { preHandler: options.guard }, async (request, reply) => {
    // No parameters: an unknown one is a 400 naming it, as on every admin route.
    if (!validate(reply, request.query, z.strictObject({}), 'query')) return reply;
    const rows = new Map((await options.store.db.selectFrom('reconciliations').selectAll().execute()).map((row) => [row.destination, row]));
    const names = [...new Set([...options.destinations.filter((d) => d.reconcile).map((d) => d.name), ...rows.keys()])].sort();
    const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
    return {
      items: names.map((destination) => {
        const row = rows.get(destination);
        return {
          destination,
          every: options.destinations.find((d) => d.name === destination)?.reconcile?.every ?? null,
          running: row?.lease_until !== null && row?.lease_until !== undefined && Number(row.lease_until) > now(),
          startedAt: iso(row?.started_at ?? null),
          finishedAt: iso(row?.finished_at ?? null),
          counts: row?.counts ? (JSON.parse(row.counts) as ReconcileCounts) : null,
          error: row?.error ?? null,
        };
      }),
    };
  });
}
