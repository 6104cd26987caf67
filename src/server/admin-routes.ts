// The operator's HTTP API: dead letters (list, show, replay) and queue status, behind the admin token. Every
// parameter is validated before it reaches the store: a malformed or repeated one, or one a route does not know
// (a typo in `destination` must not turn "replay this destination's letters" into "replay all"), is a 400 that
// names it.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DeadLetters } from '../store/dead-letters.ts';
import { readStatus } from '../store/status.ts';
import { listBackfills, progressOf } from '../backfill/backfills.ts';
import type { Store } from '../store/store.ts';
import { sendProblem } from './problem.ts';
import { backfillRoutes } from './backfill-routes.ts';
import { scheduledSyncStatus } from '../backfill/scheduled-syncs.ts';
import { configuredScheduledSyncs } from '../backfill/scheduled-sync.ts';
import { reconcileRoutes } from './reconcile-routes.ts';
import type { DestinationConfig } from '../config/schema.ts';

export interface AdminRoutesOptions {
  store: Store;
  adminToken: string | undefined;
  destinations: readonly string[];
  /** Wakes the workers after a replay so it is delivered at once. */
  onReplay: (destination: string | null) => void;
  /** The destinations' configuration, for backfill requests (backfill-routes.ts). */
  destinationConfigs?: readonly DestinationConfig[];
}

export function adminRoutes(app: FastifyInstance, options: AdminRoutesOptions): void {
  const deadLetters = new DeadLetters(options.store.db);
  const expected = options.adminToken ? digest(options.adminToken) : undefined;

  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!expected) return sendProblem(reply, 403, 'forbidden', 'the admin API is disabled: set server.adminToken to enable it');
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!token || !timingSafeEqual(digest(token), expected)) return sendProblem(reply, 401, 'unauthorized', 'a valid admin bearer token is required');
  };

  app.get('/v1/dead-letters', { preHandler: guard }, async (request, reply) => {
    const query = validate(reply, request.query, LIST_QUERY, 'query');
    if (!query) return reply;
    const limit = query.limit ?? 100;
    const items = await deadLetters.list({ destination: query.destination, limit, includeReplayed: query.all === 'true', ...(query.after !== undefined && { afterId: query.after }) });
    return { items: items.map(present), next: items.length === limit ? items.at(-1)!.id : null };
  });

  app.get('/v1/dead-letters/:id', { preHandler: guard }, async (request, reply) => {
    const params = validate(reply, request.params, ID_PARAMS, 'path');
    if (!params || !validate(reply, request.query, NO_QUERY, 'query')) return reply;
    const letter = await deadLetters.get(params.id);
    if (!letter) return sendProblem(reply, 404, 'not-found', `dead letter ${params.id} does not exist`);
    return present(letter);
  });

  app.post('/v1/dead-letters/:id/replay', { preHandler: guard }, async (request, reply) => {
    const params = validate(reply, request.params, ID_PARAMS, 'path');
    if (!params || !validate(reply, request.query, NO_QUERY, 'query')) return reply;
    const result = await deadLetters.replay(params.id);
    if (!result.ok) return sendProblem(reply, result.status, result.status === 404 ? 'not-found' : 'conflict', result.reason);
    options.onReplay(result.deadLetter.destination);
    return reply.code(202).send({ replayed: present(result.deadLetter) });
  });

  app.post('/v1/dead-letters/replay', { preHandler: guard }, async (request, reply) => {
    const query = validate(reply, request.query, REPLAY_QUERY, 'query');
    if (!query) return reply;
    const result = await deadLetters.replayAll({ destination: query.destination });
    options.onReplay(query.destination ?? null);
    return reply.code(202).send({ replayed: result.replayed.length, skipped: result.skipped });
  });

  const syncs = configuredScheduledSyncs(options.destinationConfigs ?? []);
  app.get('/v1/status', { preHandler: guard }, async (request, reply) => {
    if (!validate(reply, request.query, NO_QUERY, 'query')) return reply;
    const status = await readStatus(options.store, options.destinations);
    const running = await listBackfills(options.store.db, { running: true });
    return {
      ...status,
      backfills: await Promise.all(running.map((row) => progressOf(options.store.db, row, Date.now()))),
      scheduledSyncs: await scheduledSyncStatus(options.store.db, syncs),
    };
  });

  backfillRoutes(app, { store: options.store, destinations: options.destinationConfigs ?? [], guard, wake: (destination) => options.onReplay(destination) });
  reconcileRoutes(app, { store: options.store, destinations: options.destinationConfigs ?? [], guard });
}

const id = z.string().regex(/^[1-9]\d{0,14}$/, 'expected a dead letter id (a positive whole number)').transform(Number);
const destination = z.string().min(1, 'expected a destination name').max(200, 'expected a destination name');
const ID_PARAMS = z.strictObject({ id });
const NO_QUERY = z.strictObject({});
const REPLAY_QUERY = z.strictObject({ destination: destination.optional() });
const LIST_QUERY = z.strictObject({
  destination: destination.optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'expected a whole number from 1 to 1000')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, 'expected a whole number from 1 to 1000')
    .optional(),
  after: id.optional(),
  all: z.enum(['true', 'false'], 'expected true or false').optional(),
});

/**
 * The parameters parsed by `schema`; otherwise answers 400 naming each bad parameter (and what was expected, never
 * the value given) and returns undefined.
 */
export function validate<T>(reply: FastifyReply, input: unknown, schema: z.ZodType<T>, where: 'query' | 'path'): T | undefined {
  const values = (input ?? {}) as Record<string, unknown>;
  const problems: Array<{ name: string; reason: string }> = [];
  // Fastify gives a repeated query parameter as an array: which of them was meant is anyone's guess.
  for (const [name, value] of Object.entries(values)) if (Array.isArray(value)) problems.push({ name, reason: 'given more than once' });
  if (problems.length === 0) {
    const parsed = schema.safeParse(values);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') for (const key of issue.keys) problems.push({ name: key, reason: 'unknown parameter' });
      else problems.push({ name: String(issue.path[0] ?? '?'), reason: issue.message });
    }
  }
  const detail = problems.map((p) => `${where} parameter "${p.name}": ${p.reason}`).join('; ');
  void sendProblem(reply, 400, 'invalid-parameter', detail, { invalidParams: problems });
  return undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The JSON view of a dead letter: stored JSON columns parsed, timestamps as ISO strings. */
export function present(letter: Awaited<ReturnType<DeadLetters['get']>> & object) {
  return {
    id: letter.id,
    destination: letter.destination,
    kind: letter.kind,
    itemType: letter.item_type,
    resourceId: letter.resource_id,
    correlationId: letter.correlation_id,
    reason: letter.reason,
    lastError: letter.last_error,
    attempts: letter.attempts,
    attemptLog: letter.attempt_log ? (JSON.parse(letter.attempt_log) as unknown) : [],
    payload: letter.payload ? (JSON.parse(letter.payload) as unknown) : null,
    createdAt: new Date(letter.created_at).toISOString(),
    replayedAt: letter.replayed_at === null ? null : new Date(letter.replayed_at).toISOString(),
  };
}
