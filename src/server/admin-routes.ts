// The operator's HTTP API: dead letters (list, show, replay) and queue status, behind the admin token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DeadLetters } from '../store/dead-letters.ts';
import { readStatus } from '../store/status.ts';
import type { Store } from '../store/store.ts';
import { sendProblem } from './problem.ts';

export interface AdminRoutesOptions {
  store: Store;
  adminToken: string | undefined;
  destinations: readonly string[];
  /** Wakes the workers after a replay so it is delivered at once. */
  onReplay: (destination: string | null) => void;
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

  app.get('/v1/dead-letters', { preHandler: guard }, async (request) => {
    const query = request.query as { destination?: string; limit?: string; after?: string; all?: string };
    const limit = Math.min(Math.max(Number(query.limit ?? 100) || 100, 1), 1000);
    const items = await deadLetters.list({ destination: query.destination, limit, includeReplayed: query.all === 'true', ...(query.after && { afterId: Number(query.after) }) });
    return { items: items.map(present), next: items.length === limit ? items.at(-1)!.id : null };
  });

  app.get('/v1/dead-letters/:id', { preHandler: guard }, async (request, reply) => {
    const id = parseId((request.params as { id: string }).id);
    const letter = id === undefined ? undefined : await deadLetters.get(id);
    if (!letter) return sendProblem(reply, 404, 'not-found', `dead letter ${(request.params as { id: string }).id} does not exist`);
    return present(letter);
  });

  app.post('/v1/dead-letters/:id/replay', { preHandler: guard }, async (request, reply) => {
    const id = parseId((request.params as { id: string }).id);
    if (id === undefined) return sendProblem(reply, 404, 'not-found', 'dead letter ids are positive integers');
    const result = await deadLetters.replay(id);
    if (!result.ok) return sendProblem(reply, result.status, result.status === 404 ? 'not-found' : 'conflict', result.reason);
    options.onReplay(result.deadLetter.destination);
    return reply.code(202).send({ replayed: present(result.deadLetter) });
  });

  app.post('/v1/dead-letters/replay', { preHandler: guard }, async (request, reply) => {
    const query = request.query as { destination?: string };
    const result = await deadLetters.replayAll({ destination: query.destination });
    options.onReplay(query.destination ?? null);
    return reply.code(202).send({ replayed: result.replayed.length, skipped: result.skipped });
  });

  app.get('/v1/status', { preHandler: guard }, () => readStatus(options.store, options.destinations));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function parseId(raw: string): number | undefined {
  return /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
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
