// Reading and replaying dead letters, shared by the CLI and the admin HTTP API. A record dead letter is replayed
// by marking its key dirty again (record sync is level-triggered, so the latest state is sent); an event dead
// letter by putting its kept delivery back in the queue. Quarantined payloads cannot be replayed: they were
// never understood, and only their redacted form is kept.
import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import { redactText } from '../observability/redact.ts';
import type { Database, DeadLettersTable } from './schema.ts';
import { replayInbound } from './inbound.ts';

export type DeadLetter = Selectable<DeadLettersTable>;

export type ReplayResult = { ok: true; deadLetter: DeadLetter } | { ok: false; status: 404 | 409; reason: string };

export class DeadLetters {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  list(options: { destination?: string | undefined; includeReplayed?: boolean; limit?: number; afterId?: number } = {}): Promise<DeadLetter[]> {
    return this.#db
      .selectFrom('dead_letters')
      .selectAll()
      .$call((qb) => (options.destination ? qb.where('destination', '=', options.destination) : qb))
      .$call((qb) => (options.includeReplayed ? qb : qb.where('replayed_at', 'is', null)))
      .$call((qb) => (options.afterId !== undefined ? qb.where('id', '>', options.afterId) : qb))
      .orderBy('id')
      .limit(options.limit ?? 100)
      .execute();
  }

  get(id: number): Promise<DeadLetter | undefined> {
    return this.#db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async replay(id: number, now = Date.now()): Promise<ReplayResult> {
    return this.#db.transaction().execute(async (trx): Promise<ReplayResult> => {
      const letter = await trx.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
      if (!letter) return { ok: false, status: 404, reason: `dead letter ${id} does not exist` };
      if (letter.replayed_at !== null) return { ok: false, status: 409, reason: `dead letter ${id} was already replayed` };
      if (letter.kind === 'record') {
        await trx
          .updateTable('records')
          .set({
            dirty_seq: sql`case when dirty_seq > processed_seq then dirty_seq else dirty_seq + 1 end`,
            due_at: now,
            dirtied_at: now,
            attempts: 0,
            first_failed_at: null,
            last_error: null,
            attempt_log: null,
            correlation_id: letter.correlation_id,
            refresh: 1,
          })
          .where('destination', '=', letter.destination)
          .where('record_type', '=', letter.item_type)
          .where('resource_id', '=', letter.resource_id)
          .execute();
      } else if (letter.kind === 'event') {
        const updated = await trx
          .updateTable('events')
          .set({ dead: 0, due_at: now, attempts: 0, first_failed_at: null, last_error: null, attempt_log: null })
          .where('destination', '=', letter.destination)
          .where('event_type', '=', letter.item_type)
          .where('dedupe_key', '=', letter.dedupe_key)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) return { ok: false, status: 409, reason: `the delivery behind dead letter ${id} no longer exists` };
      } else if (letter.kind === 'inbound' && letter.destination !== null && letter.dedupe_key !== null) {
        // A destination's webhook (two-way sync): its stored body is worked off again.
        if (!(await replayInbound(trx, letter.destination, letter.dedupe_key, now))) return { ok: false, status: 409, reason: `the webhook behind dead letter ${id} is no longer stored` };
      } else {
        return { ok: false, status: 409, reason: `dead letter ${id} is a quarantined payload that was never understood; fix the sender and deliver it again` };
      }
      await trx.updateTable('dead_letters').set({ replayed_at: now }).where('id', '=', id).execute();
      return { ok: true, deadLetter: { ...letter, replayed_at: now } };
    });
  }

  /** Replays every replayable dead letter (of one destination), in pages; reports progress per page. */
  async replayAll(options: { destination?: string | undefined; onProgress?: (done: number, failed: number) => void } = {}): Promise<{ replayed: DeadLetter[]; skipped: Array<{ id: number; reason: string }> }> {
    const replayed: DeadLetter[] = [];
    const skipped: Array<{ id: number; reason: string }> = [];
    let afterId = 0;
    for (;;) {
      const page = await this.list({ destination: options.destination, afterId, limit: 500 });
      if (page.length === 0) break;
      for (const letter of page) {
        afterId = letter.id;
        if (letter.kind === 'quarantine') continue;
        const result = await this.replay(letter.id);
        if (result.ok) replayed.push(result.deadLetter);
        else skipped.push({ id: letter.id, reason: result.reason });
      }
      options.onProgress?.(replayed.length, skipped.length);
    }
    return { replayed, skipped };
  }
}

export interface QuarantineEntry {
  reason: string;
  correlationId: string;
  /** What was received, already redacted. */
  redactedBody: unknown;
  /** The notification's dedupe key, when it had one. */
  dedupeKey?: string;
}

/** Keeps something that could not be processed as a quarantine dead letter; usable inside a transaction. */
export async function insertQuarantine(db: Kysely<Database>, entry: QuarantineEntry, now: number): Promise<number> {
  const row = await db
    .insertInto('dead_letters')
    .values({
      destination: null,
      kind: 'quarantine',
      item_type: null,
      resource_id: null,
      dedupe_key: entry.dedupeKey?.slice(0, 256) ?? null,
      correlation_id: entry.correlationId,
      // Reasons quote the payload (a JSON parse error shows the text it choked on): redacted like it. PostgreSQL
      // refuses NUL in text, and a quarantine that cannot be written would turn a poison message into a 503
      // redelivered forever.
      reason: redactText(entry.reason).replaceAll('\u0000', '\uFFFD'),
      last_error: null,
      attempts: 0,
      attempt_log: null,
      payload: JSON.stringify(entry.redactedBody),
      created_at: now,
      replayed_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}
