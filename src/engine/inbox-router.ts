// Moves accepted request bodies from the inbox into work: one transaction per batch normalises them, quarantines what
// is not understood, dedupes the notifications, dirties record keys and queues events (the rules in routing.ts, the
// storage in store/inbox.ts), then wakes the workers of the destinations that got work. Runs as a work loop of
// concurrency one, woken by every commit of the inbox writer; on PostgreSQL an advisory lock keeps it to one process
// at a time.
//
// No stored row may stop ctbridge for good. After a batch fails, and after a start-up that finds an attempt the
// previous process recorded but never finished (it died routing: out of memory, killed), the router goes carefully:
// it routes rows one at a time, recording each attempt before it starts, so the row that fails (or stops the process)
// is known; after MAX_HEAD_ATTEMPTS such attempts it is quarantined with the reason, and routing goes on. Errors that
// say the store was briefly unavailable (a lost connection, a lock, a deadlock) do not count.
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { purgeDoneInbound } from '../store/inbound.ts';
import { inboxHead, quarantineInboxHead, readHeadAttempts, reconcileInbox, recordHeadAttempt, recordHeadFailure } from '../store/inbox.ts';
import { routeInbox, type RouteResult } from './routing.ts';
import type { PiiKeys } from '../pii/keys.ts';
import type { Store } from '../store/store.ts';
import type { EngineHooks } from './hooks.ts';
import type { Routes } from './routes.ts';
import { WorkLoop } from './work-loop.ts';

/** Items (notifications, mostly) per routing transaction: big enough to amortise it, small enough not to hold up commits. */
const BATCH = 100;
const PURGE_EVERY_MS = 60_000;
/** Attempts on one row (recorded, so attempts that stopped the process count) before it is quarantined. */
export const MAX_HEAD_ATTEMPTS = 3;
/** Rows routed one at a time after a failure: at least the rows of the batch that failed. */
const CAREFUL_ROWS = BATCH;

export function createInboxRouter(deps: {
  store: Store;
  routes: Routes;
  metrics: Metrics;
  logger: Logger;
  hooks: EngineHooks;
  /** The keys: bodies are sealed, and so is what routing stores. */
  pii: () => Promise<PiiKeys>;
  pollIntervalMs: number;
  lingerMs: number;
  dedupeWindowMs: number;
  /** Resolves when the router may take the store: it gives way to ingest's commits, as the workers do. */
  yieldTo?: () => Promise<void>;
  /** After each batch: what it put in the destinations' queues, and how many inbox items it took. */
  onRouted: (queued: RouteResult['queued'], items: number, erasures: number) => void;
}): WorkLoop<RouteResult> {
  const { store, routes, metrics, logger, hooks, onRouted } = deps;
  // The dedupe memory is purged at start-up and then every PURGE_EVERY_MS.
  let lastPurge = Number.NEGATIVE_INFINITY;
  let reconciled = false;
  /** Whether this process has checked for an attempt a previous one left unfinished. */
  let started = false;
  /** The next batch is the first of this process: record an attempt on its head first. */
  let recordFirst = false;
  /** Rows still to route one at a time. */
  let careful = 0;
  const onRow = hooks.onRouteRow?.bind(hooks);

  /** Routes the head alone, its attempt recorded first; quarantines it once it has had its attempts. */
  async function routeHead(now: number, sealer: PiiKeys['sealer']): Promise<RouteResult | undefined> {
    const head = await inboxHead(store);
    if (!head) {
      careful = 0;
      return undefined;
    }
    const record = await readHeadAttempts(store.db);
    if (record.seq === head.seq && record.attempts >= MAX_HEAD_ATTEMPTS) {
      const reason = record.error
        ? `could not be routed (${record.attempts} attempts): ${record.error}`
        : `routing it stopped ctbridge ${record.attempts} times (the process ended while routing it, e.g. out of memory)`;
      const quarantined = await quarantineInboxHead(store, sealer, reason, now);
      if (!quarantined) return undefined;
      careful -= 1;
      logger.error({ ...quarantined, seq: head.seq, reason }, 'an accepted request body could not be routed; quarantined');
      return { ...emptyResult(), routed: 1, quarantined: [{ ...quarantined, reason, parts: 1 }] };
    }
    await recordHeadAttempt(store.db, head);
    let result: RouteResult;
    try {
      result = await routeInbox(store, routes, 1, now, { sealer, clearAttempts: true, ...(onRow && { onRow }) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await recordHeadFailure(store.db, head, message, !isTransient(error)).catch(() => undefined);
      throw error;
    }
    // Another process holds the router lock (PostgreSQL): this was no attempt.
    if (result.routed === 0 && result.items === 0) await recordHeadFailure(store.db, head, record.error ?? '', false);
    else careful -= 1;
    return result;
  }

  function reportRouted(result: RouteResult): void {
    for (const [destination, counts] of result.queued) {
      metrics.queued.inc({ destination, kind: 'record' }, counts.records);
      metrics.queued.inc({ destination, kind: 'event' }, counts.events);
    }
    metrics.duplicates.inc(result.duplicates);
    for (const { deadLetterId, reason, correlationId, parts } of result.quarantined) {
      logger.warn({ correlationId, deadLetterId, reason, parts }, 'unrecognised payload quarantined');
      metrics.quarantined.inc(parts);
    }
    for (const notice of result.notices) {
      if (notice.kind === 'sns-subscription-confirmation') {
        logger.warn({ topicArn: notice.topicArn, subscribeUrl: notice.subscribeUrl }, 'AWS SNS asks to confirm the subscription: open the SubscribeURL once to start receiving notifications');
      }
    }
    for (const { correlationId, type, resource, version, duplicate } of result.detail ?? []) {
      logger.debug({ correlationId, type, resource, version, duplicate }, 'notification routed');
    }
    hooks.onRouted?.({ routed: result.notifications, duplicates: result.duplicates });
    onRouted(result.queued, result.items, result.erasures);
  }

  return new WorkLoop<RouteResult>({
    name: 'inbox-router',
    concurrency: 1,
    // A claim yields one routed batch; a non-empty one means more may wait, so the loop claims again at once.
    batchSize: 1,
    pollIntervalMs: deps.pollIntervalMs,
    lingerMs: deps.lingerMs,
    ...(deps.yieldTo && { yieldTo: deps.yieldTo }),
    logger,
    async claim() {
      if (!reconciled) {
        const warning = await reconcileInbox(store);
        if (warning) logger.error(warning);
        reconciled = true;
      }
      const now = Date.now();
      if (now - lastPurge >= PURGE_EVERY_MS) {
        lastPurge = now;
        await purgeDedupeMemory(store, now, deps.dedupeWindowMs);
      }
      const { sealer } = await deps.pii();
      if (!started) {
        started = true;
        const [record, head] = [await readHeadAttempts(store.db), await inboxHead(store)];
        // An attempt the last process recorded on what is still the head and never finished: it may have died of it.
        if (head && record.attempts > 0 && record.seq === head.seq) {
          careful = CAREFUL_ROWS;
          logger.warn({ seq: head.seq, attempts: record.attempts }, 'the last routing attempt did not finish; routing one body at a time');
        } else recordFirst = true;
      }
      if (careful > 0) {
        const result = await routeHead(now, sealer);
        return result && (result.routed > 0 || result.items > 0) ? [result] : [];
      }
      let clearAttempts = false;
      if (recordFirst) {
        recordFirst = false;
        const head = await inboxHead(store);
        if (head) {
          await recordHeadAttempt(store.db, head);
          clearAttempts = true;
        }
      }
      let result: RouteResult;
      try {
        result = await routeInbox(store, routes, BATCH, now, { sealer, clearAttempts, detail: logger.isLevelEnabled('debug'), ...(onRow && { onRow }) });
      } catch (error) {
        // One row may be what fails: route one at a time until past the rows of this batch.
        logger.warn({ err: error }, 'routing a batch failed; routing one body at a time');
        careful = CAREFUL_ROWS;
        const head = await routeHead(now, sealer);
        return head && (head.routed > 0 || head.items > 0) ? [head] : [];
      }
      return result.routed > 0 || result.items > 0 ? [result] : [];
    },
    process([result]) {
      reportRouted(result!);
      return Promise.resolve();
    },
  });
}

/** Forgets notification ids and done destination webhooks (two-way sync) received before the dedupe window. */
export async function purgeDedupeMemory(store: Pick<Store, 'db'>, now: number, dedupeWindowMs: number): Promise<{ seen: number; inbound: number }> {
  const before = now - dedupeWindowMs;
  const seen = await store.db.deleteFrom('seen').where('received_at', '<', before).executeTakeFirst();
  return { seen: Number(seen.numDeletedRows), inbound: await purgeDoneInbound(store.db, before) };
}

function emptyResult(): RouteResult {
  return { routed: 0, items: 0, notifications: 0, duplicates: 0, erasures: 0, queued: new Map(), quarantined: [], notices: [] };
}

/** PostgreSQL SQLSTATE classes and codes, SQLite result codes and socket errors that say "try again", not "this row". */
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001|40P01|55P03)/;
const TRANSIENT_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

function isTransient(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errcode, message } = error as { code?: unknown; errcode?: unknown; message?: unknown };
  if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_SOCKET.has(code))) return true;
  if (typeof errcode === 'number' && ((errcode & 0xff) === SQLITE_BUSY || (errcode & 0xff) === SQLITE_LOCKED)) return true;
  return typeof message === 'string' && /Connection terminated|connection timeout|database is locked/i.test(message);
}
