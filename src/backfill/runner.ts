// Runs backfills inside the engine: takes the lease of a running backfill (a process that died leaves it to the
// next one), reads commercetools page by page (reader.ts) and marks each resource's record key dirty with the
// resource it read — exactly what a notification carrying the full resource does — so the normal record path
// (mapping, delta, identity, PII, the version guard) decides what is sent: a key a live message already synced at
// a newer version sends nothing, an unchanged record sends nothing. The marks and the cursor move in one
// transaction, so a crash resumes after the last page marked, and no resource is marked twice by one backfill.
//
// Live work first: the marks are `background`, which the record queue claims only after every due live key, and
// the runner keeps at most `window` of its keys waiting in the queue, so a backfill never builds a backlog that
// live changes (or the store) must wade through. The destination's rate limit is the one its connector shares.
import { randomUUID } from 'node:crypto';
import type { Kysely, Insertable } from 'kysely';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Routes } from '../engine/routes.ts';
import type { PiiKeys } from '../pii/keys.ts';
import type { Sealer } from '../pii/sealed.ts';
import { compareRecordKeys, prepareRecordMarks } from '../store/record-queue.ts';
import type { Database, RecordsTable } from '../store/schema.ts';
import { PermanentError, DeliveryError } from '../destinations/kit/errors.ts';
import { advance, BackfillLeaseLost, claimBackfill, finishBackfill, listBackfills, pendingCount, progressOf, renewBackfill, type BackfillCursor, type BackfillRow } from './backfills.ts';
import type { PageReader } from './reader.ts';

export interface BackfillRunnerOptions {
  db: Kysely<Database>;
  reader: PageReader;
  routes: Routes;
  pii: () => Promise<PiiKeys>;
  /** Wakes the destination's record workers after a page is marked. */
  notify: (destination: string) => void;
  logger: Logger;
  leaseMs: number;
  /** Resources per page (commercetools allows at most 500). */
  pageSize?: number;
  /** Most of a backfill's keys waiting in the queue before the next page is read. */
  window?: number;
  /** How often to look for backfills to run, and at the queue while waiting for it. */
  pollMs?: number;
  /** Backfills run at once by this process. */
  concurrency?: number;
  now?: () => number;
}

export interface BackfillRunner {
  start(): void;
  /** Look for backfills now (one was just asked for). */
  wake(): void;
  /** Stops reading; running backfills keep their cursor and are resumed by the next process. */
  stop(): Promise<void>;
}

const DEFAULT_PAGE = 500;
const DEFAULT_POLL_MS = 1000;
const WAIT_POLL_MS = 20;
const RETRY_MS = 5000;
/** Keys marked per transaction. */
const MARK_CHUNK = 100;

/**
 * The mark of a record key carrying the resource read from commercetools at its version — what a notification
 * carrying the full resource makes — or undefined for something that is not a resource (no id or version).
 */
export function carriedMark(
  key: { destination: string; recordType: string; resourceType: string },
  resource: Record<string, unknown>,
  options: { sealer: Sealer; at: number; correlationId: string; background: boolean },
): Insertable<RecordsTable> | undefined {
  if (typeof resource.id !== 'string' || typeof resource.version !== 'number') return undefined;
  return {
    destination: key.destination,
    record_type: key.recordType,
    resource_id: resource.id,
    resource_type: key.resourceType,
    dirty_seq: 1,
    due_at: options.at,
    seen_version: resource.version,
    deleted_version: null,
    carried_version: resource.version,
    // Sealed while it waits, like a resource a message carried (pii/sealed.ts).
    carried_resource: options.sealer.seal(JSON.stringify(resource)),
    refresh: 0,
    correlation_id: options.correlationId,
    dirtied_at: options.at,
    occurred_at: null,
    background: options.background ? 1 : 0,
  };
}

export function createBackfillRunner(options: BackfillRunnerOptions): BackfillRunner {
  const { db, reader, routes, pii, notify, logger } = options;
  const now = options.now ?? Date.now;
  const pageSize = options.pageSize ?? DEFAULT_PAGE;
  const window = options.window ?? pageSize * 4;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const concurrency = options.concurrency ?? 2;
  const owner = `${process.pid}-${randomUUID()}`;
  const upsertMarks = prepareRecordMarks(db);
  const active = new Map<string, Promise<void>>();
  let stopped = true;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;

  /** Waits `ms`, or less when woken or stopped. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const previous = wakeUp;
      function done() {
        clearTimeout(timer);
        if (wakeUp === done) wakeUp = previous;
        resolve();
      }
      wakeUp = () => {
        previous?.();
        done();
      };
    });

  const run = async (row: BackfillRow): Promise<void> => {
    const log = logger.child({ backfill: row.id, destination: row.destination });
    const types = JSON.parse(row.record_types) as string[];
    let cursor = JSON.parse(row.cursor) as BackfillCursor;
    const lease = () => now() + options.leaseMs;
    try {
      log.info({ recordTypes: types, cursor }, row.read > 0 ? 'backfill resumed' : 'backfill started');
      while (cursor.index < types.length) {
        if (stopped) return;
        // Keep the queue short: live keys are claimed first anyway, this bounds what the backfill holds there.
        while ((await pendingCount(db, row)) >= window) {
          if (stopped || !(await renewBackfill(db, row.id, owner, lease()))) return;
          await pause(WAIT_POLL_MS);
        }
        const recordType = types[cursor.index]!;
        const route = routes.record(row.destination, recordType);
        if (!route) throw new PermanentError(`destination "${row.destination}" no longer maps record type "${recordType}"`);
        const page = await reader.page({ resourceType: route.resourceType, afterId: cursor.afterId, since: row.since, where: row.where_predicate, storeKey: row.store_key, limit: pageSize });
        const keys = await pii();
        const at = now();
        const marks: Array<Insertable<RecordsTable>> = [];
        for (const resource of page) {
          const mark = carriedMark({ destination: row.destination, recordType, resourceType: route.resourceType }, resource, { sealer: keys.sealer, at, correlationId: `backfill:${row.id}`, background: true });
          if (mark) marks.push(mark);
        }
        // Marked a chunk at a time, each with the cursor at its last id (the page is in id order, so a crash
        // between chunks resumes right after it), giving the event loop back in between: one transaction of a
        // whole page would hold the store (and a live key's sync) for its whole length.
        marks.sort(compareRecordKeys);
        const last = page.length < pageSize;
        for (let start = 0; start < marks.length || (start === 0 && marks.length === 0); start += MARK_CHUNK) {
          const chunk = marks.slice(start, start + MARK_CHUNK);
          const end = start + MARK_CHUNK >= marks.length;
          const next: BackfillCursor = end && last ? { index: cursor.index + 1, afterId: null } : { index: cursor.index, afterId: chunk.length > 0 ? chunk.at(-1)!.resource_id : cursor.afterId };
          const readDone = next.index >= types.length;
          // A page's resources count as read with the chunk that marks them (all of a short or empty page's with its last).
          const read = end ? page.length - start : chunk.length;
          await db.transaction().execute(async (trx) => {
            if (chunk.length > 0) await upsertMarks(trx, chunk);
            await advance(trx, row.id, owner, { cursor: next, read, queued: chunk.length, leaseUntil: lease(), readDoneAt: readDone ? at : null });
          });
          cursor = next;
          if (chunk.length > 0) notify(row.destination);
          if (end) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      // Everything is read: the backfill is done when the engine has finished its keys.
      while ((await pendingCount(db, row)) > 0) {
        if (stopped || !(await renewBackfill(db, row.id, owner, lease()))) return;
        await pause(WAIT_POLL_MS * 5);
      }
      if (await finishBackfill(db, row, owner, 'done', now())) {
        const current = await db.selectFrom('backfills').selectAll().where('id', '=', row.id).executeTakeFirst();
        if (current) log.info(await progressOf(db, current, now()), 'backfill finished');
      }
    } catch (error) {
      if (error instanceof BackfillLeaseLost) {
        log.info('backfill cancelled or taken over: this process stops reading it');
        return;
      }
      if (error instanceof PermanentError || (error instanceof Error && !(error instanceof DeliveryError))) {
        const message = error instanceof Error ? error.message : String(error);
        log.error({ err: error }, 'backfill failed');
        await finishBackfill(db, row, owner, 'failed', now(), message).catch((failure: unknown) => log.error({ err: failure }, 'recording the failed backfill failed'));
        return;
      }
      // Retryable (commercetools away, the store briefly unavailable): the lease runs out and the backfill is
      // taken again, from its cursor, after a pause.
      log.warn({ err: error }, 'backfill interrupted; resumed from its cursor');
      await pause(RETRY_MS);
    }
  };

  const claimLoop = async () => {
    while (!stopped) {
      try {
        while (!stopped && active.size < concurrency) {
          const row = await claimBackfill(db, owner, now(), now() + options.leaseMs, [...active.keys()]);
          if (!row) break;
          const task = run(row).finally(() => active.delete(row.id));
          active.set(row.id, task);
        }
      } catch (error) {
        logger.warn({ err: error }, 'looking for backfills failed; tried again shortly');
      }
      await pause(pollMs);
    }
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loop = claimLoop();
    },
    wake() {
      wakeUp?.();
    },
    async stop() {
      stopped = true;
      wakeUp?.();
      await loop;
      await Promise.all(active.values());
      // What this process held is free for the next one at once.
      await db.updateTable('backfills').set({ lease_owner: null, lease_until: null }).where('lease_owner', '=', owner).execute();
    },
  };
}

/** `ctbridge_backfill_records` and `ctbridge_backfills` on /metrics: running backfills' counts, and how many are in each state. */
export function registerBackfillMetrics(registry: Registry, db: Kysely<Database>): void {
  new Gauge({
    name: 'ctbridge_backfill_records',
    help: 'Running backfills: resources read and queued, keys delivered, failed (dead letters) and pending',
    labelNames: ['backfill', 'destination', 'count'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await listBackfills(db, { running: true })) {
        const progress = await progressOf(db, row, Date.now());
        for (const count of ['read', 'queued', 'delivered', 'failed', 'pending'] as const) this.set({ backfill: row.id, destination: row.destination, count }, progress[count]);
      }
    },
  });
  new Gauge({
    name: 'ctbridge_backfills',
    help: 'Backfills by state (the last 100)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = new Map<string, number>([['running', 0], ['done', 0], ['cancelled', 0], ['failed', 0]]);
      for (const row of await listBackfills(db)) counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
}
