// The admin API's backfills: `POST /v1/backfills` asks for one (202, or 409 naming the running backfill of the same
// scope), `GET /v1/backfills` and `GET /v1/backfills/{id}` show them with their progress, `DELETE
// /v1/backfills/{id}` cancels one. The engine's backfill runner (backfill/runner.ts) does the work, in whichever
// process sharing the store takes it first.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DestinationConfig } from '../config/schema.ts';
import { cancelBackfill, createBackfill, getBackfill, listBackfills, progressOf, resolveRequest } from '../backfill/backfills.ts';
import type { Store } from '../store/store.ts';
import { sendProblem } from './problem.ts';

export interface BackfillRoutesOptions {
  store: Store;
  destinations: readonly DestinationConfig[];
  guard: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** Wakes the engine (its backfill runner) for this destination. */
  wake: (destination: string) => void;
  now?: () => number;
}

/** A date, or a date and time, as ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`). */
export const isoDate = z
  .string()
  .refine((text) => /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text) && !Number.isNaN(Date.parse(text)), 'expected an ISO 8601 date such as 2024-01-31 or 2024-01-31T12:00:00Z')
  .transform((text) => Date.parse(text));

const BODY = z.strictObject({
  destination: z.string().min(1).max(200),
  records: z.array(z.string().min(1).max(200)).max(50).optional(),
  since: isoDate.optional(),
  where: z.string().min(1).max(4000).optional(),
  store: z.string().min(1).max(256).optional(),
});
const ID = z.strictObject({ id: z.string().uuid('expected a backfill id') });

export function backfillRoutes(app: FastifyInstance, options: BackfillRoutesOptions): void {
  const { store, guard } = options;
  const now = options.now ?? Date.now;

  app.post('/v1/backfills', { preHandler: guard }, async (request, reply) => {
    // Bodies reach this server as bytes (the ingest routes need them so): read the JSON here.
    let body: unknown;
    try {
      const raw = request.body;
      body = Buffer.isBuffer(raw) ? (raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'))) : (raw ?? {});
    } catch (error) {
      return sendProblem(reply, 400, 'malformed-json', `the body is not valid JSON: ${(error as Error).message}`);
    }
    const parsed = BODY.safeParse(body);
    if (!parsed.success) {
      const invalidParams = parsed.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys' ? issue.keys.map((key) => ({ name: key, reason: 'unknown field' })) : [{ name: issue.path.join('.') || '(body)', reason: issue.message }],
      );
      return sendProblem(reply, 400, 'bad-request', invalidParams.map((p) => `body field "${p.name}": ${p.reason}`).join('; '), { invalidParams });
    }
    const resolved = resolveRequest(options.destinations, parsed.data);
    if (!resolved.ok) return sendProblem(reply, 400, 'bad-request', resolved.detail);
    const created = await createBackfill(store.db, resolved.recordTypes, parsed.data, now());
    if (!created.ok) return sendProblem(reply, 409, 'conflict', `a backfill of the same scope is running: ${created.runningId}`, { runningId: created.runningId });
    options.wake(parsed.data.destination);
    return reply.code(202).header('location', `/v1/backfills/${created.backfill.id}`).send(await progressOf(store.db, created.backfill, now()));
  });

  app.get('/v1/backfills', { preHandler: guard }, async () => {
    const rows = await listBackfills(store.db);
    return { items: await Promise.all(rows.map((row) => progressOf(store.db, row, now()))) };
  });

  app.get('/v1/backfills/:id', { preHandler: guard }, async (request, reply) => {
    const params = ID.safeParse(request.params);
    if (!params.success) return sendProblem(reply, 400, 'invalid-parameter', 'path parameter "id": expected a backfill id');
    const row = await getBackfill(store.db, params.data.id);
    if (!row) return sendProblem(reply, 404, 'not-found', `backfill ${params.data.id} does not exist`);
    return progressOf(store.db, row, now());
  });

  app.delete('/v1/backfills/:id', { preHandler: guard }, async (request, reply) => {
    const params = ID.safeParse(request.params);
    if (!params.success) return sendProblem(reply, 400, 'invalid-parameter', 'path parameter "id": expected a backfill id');
    const result = await cancelBackfill(store.db, params.data.id, now());
    if (!result.ok) return sendProblem(reply, result.status, result.status === 404 ? 'not-found' : 'conflict', result.detail);
    return progressOf(store.db, result.backfill, now());
  });
}
