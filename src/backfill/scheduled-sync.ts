// Scheduled sync: for a record type configured `sync: { mode: scheduled, every | cron }`, changes are found by
// polling commercetools instead of (or besides) a Subscription. Each poll reads what was modified since the start
// of the previous complete poll, minus the overlap (clock skew between ctbridge and commercetools, writes that
// show up late), with the backfill's paged reader (sorted by id, `id > last`, `withTotal=false`), and marks each
// resource's record key dirty carrying the resource — the backfill's and a full notification's path — so mapping,
// delta, identity, PII and the version guard decide what is sent: what the overlap reads twice sends nothing.
// Deletions come from the Messages API (deletions.ts) when the project keeps Messages; otherwise the sync says
// they are not detectable (status, one log line, a metric).
//
// Progress is durable: each chunk of marks commits with the poll's cursor, fenced by the lease; the watermark moves
// to the poll's start only in the transaction that ends the poll, after its last marks. A process killed mid-poll
// leaves the cursor, and whichever process next holds the lease resumes there; a restart never loses the
// watermark. One process polls a sync at a time: the rows are claimed under leases (engine/leases.ts), renewed
// while a poll runs. The clock is injected: a runtime built with `scheduledSync: { manual: true }` polls only when
// `tick()` is called, at the time its `now` says, so tests drive the schedule without waiting.
import type { Insertable, Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { nextRun } from '../config/schedule.ts';
import { DELETION_MESSAGES, scheduledSyncs, type ScheduledSyncConfig } from '../config/sync.ts';
import type { DestinationConfig } from '../config/schema.ts';
import { Leases, tokenPattern } from '../engine/leases.ts';
import { compileRoutes, ORDERS_OF_CUSTOMERS, type Routes } from '../engine/routes.ts';
import type { PiiKeys } from '../pii/keys.ts';
import { compareRecordKeys, prepareRecordMarks } from '../store/record-queue.ts';
import type { Database, RecordsTable } from '../store/schema.ts';
import { PermanentError } from '../destinations/kit/errors.ts';
import type { DeletionMessage, DeletionReader } from './deletions.ts';
import type { PageReader } from './reader.ts';
import { carriedMark } from './runner.ts';
import { ensureScheduledSyncs, pendingBackground, releaseScheduledSyncs, ScheduledSyncLeaseLost, scheduledSyncQueue, scheduledSyncStatus, syncKey, updateFenced, type ScheduledSyncRow } from './scheduled-syncs.ts';

export interface ScheduledSyncOptions {
  db: Kysely<Database>;
  syncs: readonly ScheduledSyncConfig[];
  reader: PageReader;
  deletions: DeletionReader;
  routes: Routes;
  pii: () => Promise<PiiKeys>;
  /** Wakes the destination's record workers after marks are committed. */
  notify: (destination: string) => void;
  logger: Logger;
  leaseMs: number;
  /** This process's lease owner prefix (leases.ts). */
  owner: string;
  now?: () => number;
  /** Polls only when tick() is called (tests drive the schedule); otherwise a loop polls whatever is due. */
  manual?: boolean;
  pageSize?: number;
  /** Most background keys of a first poll waiting in the queue before its next page is read. */
  window?: number;
  /** Longest the loop sleeps before looking again (another process may have changed the rows). */
  idleMs?: number;
}

export interface ScheduledRun {
  destination: string;
  recordType: string;
  found: number;
  deleted: number;
  deletions: 'detected' | 'not-detectable';
}

export interface ScheduledSyncRunner {
  /** Creates the rows of the configured syncs and, unless manual, starts polling on schedule. */
  start(): Promise<void>;
  /** Polls every sync due now (by the injected clock) this process can take; resolves when their marks are committed. */
  tick(): Promise<ScheduledRun[]>;
  stop(): Promise<void>;
}

const DEFAULT_PAGE = 500;
const MARK_CHUNK = 100;
const WAIT_POLL_MS = 20;
const DEFAULT_IDLE_MS = 5_000;
/** A poll that failed (commercetools away) is tried again this soon, or at its next run if that comes first. */
const RETRY_MS = 60_000;

/** Where a poll in progress got: the last id its resource pages marked, and whether they are all read. */
interface RunCursor {
  afterId: string | null;
  resourcesDone: boolean;
}

export function createScheduledSync(options: ScheduledSyncOptions): ScheduledSyncRunner {
  const { db, syncs, reader, deletions, routes, pii, notify, logger } = options;
  const now = options.now ?? Date.now;
  const pageSize = options.pageSize ?? DEFAULT_PAGE;
  const window = options.window ?? pageSize * 4;
  const configs = new Map(syncs.map((sync) => [syncKey(sync.destination, sync.recordType), sync]));
  const prefix = `${options.owner}.sched`;
  const leases = new Leases<ScheduledSyncRow>({ prefix, leaseMs: options.leaseMs, queue: scheduledSyncQueue(db, syncs), maxBytes: Number.MAX_SAFE_INTEGER, logger, now });
  const upsertMarks = prepareRecordMarks(db);
  let stopped = true;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let ticking: Promise<ScheduledRun[]> = Promise.resolve([]);
  let started: Promise<void> | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });

  const markChunks = async (row: ScheduledSyncRow, token: string, marks: Array<Insertable<RecordsTable>>, after: (chunk: Array<Insertable<RecordsTable>>, last: boolean) => Parameters<typeof updateFenced>[3]) => {
    marks.sort(compareRecordKeys);
    for (let start = 0; start === 0 || start < marks.length; start += MARK_CHUNK) {
      const chunk = marks.slice(start, start + MARK_CHUNK);
      const last = start + MARK_CHUNK >= marks.length;
      await db.transaction().execute(async (trx) => {
        if (chunk.length > 0) await upsertMarks(trx, chunk);
        await updateFenced(trx, row, token, { ...after(chunk, last), lease_until: now() + options.leaseMs });
      });
      if (chunk.length > 0) notify(row.destination);
      if (last) break;
      // The event loop between chunks: one transaction of a whole page would hold the store that long.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  /** The poll of one sync, from where its row says it is; returns its counts when it completes. */
  const poll = async (row: ScheduledSyncRow, token: string, sync: ScheduledSyncConfig, messagesEnabled: () => Promise<boolean>): Promise<ScheduledRun | undefined> => {
    const log = logger.child({ destination: row.destination, recordType: row.record_type });
    const route = routes.record(row.destination, row.record_type);
    if (!route) throw new Error(`destination "${row.destination}" does not map record type "${row.record_type}"`);
    let runStart = row.run_started_at === null ? null : Number(row.run_started_at);
    let cursor: RunCursor = row.cursor === null ? { afterId: null, resourcesDone: false } : (JSON.parse(row.cursor) as RunCursor);
    let found = Number(row.run_found);
    if (runStart === null) {
      runStart = now();
      cursor = { afterId: null, resourcesDone: false };
      found = 0;
      await updateFenced(db, row, token, { run_started_at: runStart, cursor: JSON.stringify(cursor), run_found: 0 });
    } else log.info({ cursor }, 'scheduled sync resumed where its poll was interrupted');
    const watermark = row.watermark === null ? null : Number(row.watermark);
    // The first poll reads everything (the destination has nothing from this sync yet), behind live work like a
    // backfill; later polls read what changed, as live work.
    const background = watermark === null;
    const correlationId = `scheduled:${row.destination}:${row.record_type}:${runStart}`;

    while (!cursor.resourcesDone) {
      if (stopped) return undefined;
      if (background) {
        while ((await pendingBackground(db, row.destination, row.record_type)) >= window) {
          if (stopped) return undefined;
          await pause(WAIT_POLL_MS);
        }
      }
      const page = await reader.page({ resourceType: route.resourceType, afterId: cursor.afterId, since: watermark === null ? null : watermark - sync.overlapMs, where: null, storeKey: null, limit: pageSize });
      const keys = await pii();
      const at = now();
      const marks = page.flatMap((resource) => carriedMark({ destination: row.destination, recordType: row.record_type, resourceType: route.resourceType }, resource, { sealer: keys.sealer, at, correlationId, background }) ?? []);
      const end = page.length < pageSize;
      await markChunks(row, token, marks, (chunk, last) => {
        const next: RunCursor = { afterId: chunk.at(-1)?.resource_id ?? cursor.afterId, resourcesDone: last && end };
        found += chunk.length;
        cursor = next;
        return { cursor: JSON.stringify(next), run_found: found };
      });
    }

    // Deletions: from the poll's start minus the overlap (or where the previous poll's reading of them started).
    const messageType = DELETION_MESSAGES[route.resourceType];
    let notDetectable: string | null = null;
    let deleted = 0;
    try {
      if (messageType === undefined) notDetectable = `commercetools records no Message when a ${route.resourceType} is deleted`;
      else if (!(await messagesEnabled())) notDetectable = 'the project does not keep Messages (messages.enabled is false in its settings): enable them to have deletions found';
      else {
        const since = (row.deletions_watermark === null ? runStart : Number(row.deletions_watermark)) - sync.overlapMs;
        let after: { createdAt: number; id: string } | null = null;
        for (;;) {
          const messages = await deletions.page({ messageType, since, after, limit: pageSize });
          const marks = await deletionMarks(row, route.resourceType, messages, correlationId);
          deleted += marks.length;
          if (marks.length > 0) await markChunks(row, token, marks, () => ({}));
          if (messages.length < pageSize) break;
          after = { createdAt: messages.at(-1)!.createdAt, id: messages.at(-1)!.id };
        }
      }
    } catch (error) {
      // A refusal that asking again will not change (a client without the view_messages or view_project_settings
      // scope): the changes found still count, and the deletions are reported as not detectable, with why.
      if (!(error instanceof PermanentError)) throw error;
      notDetectable = `reading deletions failed: ${error.message}`;
    }
    if (notDetectable !== null && (row.deletions !== 'not-detectable' || row.deletions_reason !== notDetectable)) {
      // Said once, when it becomes so (the row remembers it across restarts); the status and the metric keep saying it.
      log.warn({ reason: notDetectable }, 'scheduled sync cannot detect deletions');
    }

    const finished = now();
    let next = nextRun(sync, new Date(runStart)).getTime();
    if (next <= finished) next = nextRun(sync, new Date(finished)).getTime();
    await updateFenced(db, row, token, {
      watermark: runStart,
      deletions_watermark: runStart,
      run_started_at: null,
      cursor: null,
      run_found: 0,
      deletions: notDetectable === null ? 'detected' : 'not-detectable',
      deletions_reason: notDetectable,
      last_run_at: finished,
      last_found: found,
      last_deleted: deleted,
      next_run_at: next,
      last_error: null,
      lease_owner: null,
      lease_until: null,
    });
    log.debug({ found, deleted }, 'scheduled sync polled');
    return { destination: row.destination, recordType: row.record_type, found, deleted, deletions: notDetectable === null ? 'detected' : 'not-detectable' };
  };

  /** Deletion marks for the keys this destination holds that no deletion at this version has marked yet. */
  const deletionMarks = async (row: ScheduledSyncRow, resourceType: string, messages: DeletionMessage[], correlationId: string): Promise<Array<Insertable<RecordsTable>>> => {
    if (messages.length === 0) return [];
    const known = await db
      .selectFrom('records')
      .select(['resource_id', 'deleted_version'])
      .where('destination', '=', row.destination)
      .where('record_type', '=', row.record_type)
      .where('resource_id', 'in', [...new Set(messages.map((m) => m.resourceId))])
      .execute();
    const at = now();
    return messages.flatMap((message) => {
      const key = known.find((k) => k.resource_id === message.resourceId);
      // A resource this destination never got needs no deletion; one already marked at this version is read again within the overlap.
      if (!key || (key.deleted_version !== null && Number(key.deleted_version) >= message.resourceVersion)) return [];
      return [
        {
          destination: row.destination,
          record_type: row.record_type,
          resource_id: message.resourceId,
          resource_type: resourceType,
          dirty_seq: 1,
          due_at: at,
          seen_version: message.resourceVersion,
          deleted_version: message.resourceVersion,
          carried_version: null,
          carried_resource: null,
          refresh: 0,
          correlation_id: correlationId,
          dirtied_at: at,
          occurred_at: message.createdAt,
          background: 0,
        },
      ];
    });
  };

  const runDue = async (): Promise<ScheduledRun[]> => {
    const rows = await leases.claim(configs.size);
    if (rows.length === 0) return [];
    const token = rows[0]!.lease_owner!;
    // The project's messages setting is read once per round, and only if a sync needs it.
    let enabled: Promise<boolean> | undefined;
    const messagesEnabled = () => (enabled ??= deletions.messagesEnabled());
    return leases.hold(rows, token, async () => {
      const runs: ScheduledRun[] = [];
      for (const row of rows) {
        const sync = configs.get(syncKey(row.destination, row.record_type))!;
        try {
          const run = await poll(row, token, sync, messagesEnabled);
          if (run) runs.push(run);
        } catch (error) {
          if (error instanceof ScheduledSyncLeaseLost) {
            logger.info({ destination: row.destination, recordType: row.record_type }, error.message);
            continue;
          }
          // The poll keeps its cursor and resumes at the next try; the watermark has not moved.
          const message = error instanceof Error ? error.message : String(error);
          logger.warn({ err: error, destination: row.destination, recordType: row.record_type }, 'scheduled sync failed; tried again later from where it got');
          const at = now();
          await updateFenced(db, row, token, { last_error: message, next_run_at: Math.min(at + RETRY_MS, nextRun(sync, new Date(at)).getTime()), lease_owner: null, lease_until: null }).catch(() => undefined);
          enabled = undefined;
        }
      }
      return runs;
    });
  };

  const tick = (): Promise<ScheduledRun[]> => {
    // One round at a time, whoever asks (the loop, or a test).
    const round = ticking.catch(() => []).then(async () => {
      await started;
      return stopped ? [] : runDue();
    });
    ticking = round;
    return round;
  };

  const runLoop = async () => {
    while (!stopped) {
      try {
        await tick();
      } catch (error) {
        logger.warn({ err: error }, 'looking for scheduled syncs failed; tried again shortly');
      }
      if (stopped) break;
      const next = await db.selectFrom('scheduled_syncs').select((eb) => eb.fn.min<number>('next_run_at').as('at')).executeTakeFirst().catch(() => undefined);
      const wait = next?.at === null || next?.at === undefined ? DEFAULT_IDLE_MS : Number(next.at) - now();
      await pause(Math.max(WAIT_POLL_MS, Math.min(options.idleMs ?? DEFAULT_IDLE_MS, wait)));
    }
  };

  return {
    start() {
      if (syncs.length === 0 || started) return started ?? Promise.resolve();
      stopped = false;
      started = ensureScheduledSyncs(db, syncs, now()).then(() => {
        if (!options.manual && !stopped) loop = runLoop();
      });
      return started;
    },
    tick,
    async stop() {
      stopped = true;
      wakeUp?.();
      await started?.catch(() => undefined);
      await loop;
      await ticking.catch(() => undefined);
      if (syncs.length > 0) await releaseScheduledSyncs(db, tokenPattern(prefix));
    },
  };
}

/** The scheduled syncs of a configuration, with the orders of customers whose scheduled mappings read `$orders`. */
export function configuredScheduledSyncs(destinations: readonly DestinationConfig[], routes?: Pick<Routes, 'record'>): ScheduledSyncConfig[] {
  const direct = scheduledSyncs(destinations);
  if (direct.length === 0) return direct;
  // Only which mappings read $orders is asked of the routes (the status, which maps nothing): compiled with a
  // stand-in key, as the configuration's validation does, since a mapping that hashes needs one to compile.
  const compiled = routes ?? compileRoutes({ destinations: [...destinations], pii: { hashKey: 'scheduled-sync-status-only' } });
  return scheduledSyncs(destinations, (destination) => compiled.record(destination, ORDERS_OF_CUSTOMERS)?.dirtiesCustomers ?? []);
}

/** `ctbridge_scheduled_sync_*` on /metrics: each scheduled sync's last run, watermark, next run, what it found, and whether deletions are detectable. */
export function registerScheduledSyncMetrics(registry: Registry, db: Kysely<Database>, syncs: readonly ScheduledSyncConfig[]): void {
  if (syncs.length === 0) return;
  const labelNames = ['destination', 'record_type'];
  const seconds = (iso: string | null) => (iso === null ? Number.NaN : Date.parse(iso) / 1000);
  const gauge = (name: string, help: string, value: (s: Awaited<ReturnType<typeof scheduledSyncStatus>>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const status of await scheduledSyncStatus(db, syncs)) this.set({ destination: status.destination, record_type: status.recordType }, value(status));
      },
    });
  gauge('ctbridge_scheduled_sync_last_run_seconds', 'When the last complete poll ended (Unix seconds; NaN before the first)', (s) => seconds(s.lastRunAt));
  gauge('ctbridge_scheduled_sync_watermark_seconds', 'What the next poll reads changes from, before the overlap (Unix seconds)', (s) => seconds(s.watermark));
  gauge('ctbridge_scheduled_sync_next_run_seconds', 'When the next poll is due (Unix seconds)', (s) => seconds(s.nextRunAt));
  gauge('ctbridge_scheduled_sync_found', 'Resources the last complete poll found changed (those read again in the overlap included)', (s) => s.lastFound);
  gauge('ctbridge_scheduled_sync_deleted', 'Deletions the last complete poll found', (s) => s.lastDeleted);
  gauge('ctbridge_scheduled_sync_deletions_detectable', '1 when deletions are found (Messages API), 0 when they cannot be detected, NaN before the first poll', (s) => (s.deletions === 'detected' ? 1 : s.deletions === 'not-detectable' ? 0 : Number.NaN));
}
