// Kysely over the built-in node:sqlite (no native addon). Kysely's SQLite driver asks the database to prepare a
// statement for every query; this adapter caches prepared statements by SQL text, which matters on hot paths.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const STATEMENT_CACHE_SIZE = 500;

export interface SqliteOptions {
  /**
   * Let SQLite checkpoint the WAL itself, on the connection whose commit makes it pass 1,000 pages (default
   * true). A thread that must not stall for a checkpoint's page copy and fsync turns this off and leaves
   * checkpoints to another connection (see store.ts).
   */
  autocheckpoint?: boolean;
  /**
   * How to wait for another connection's write lock: `backoff` (default) is SQLite's busy handler, which sleeps
   * 1, 2, 5, 10… ms between tries, so a wait often outlasts the lock by far; `poll` tries again every 0.2 ms,
   * blocking the thread meanwhile. For the ingest thread, whose commits are what senders wait for, and which has
   * nothing else to do while it waits.
   */
  lockWait?: 'backoff' | 'poll';
  /** Page cache in KiB (default 4,000). */
  cacheKib?: number;
  /** Page size of a new database file (SQLite's default 4,096; an existing file keeps its own). */
  pageSize?: number;
}

const LOCK_WAIT_MS = 5_000;
const POLL_INTERVAL_MS = 0.2;
const SQLITE_BUSY = 5;

export function openSqlite(path: string, options: SqliteOptions = {}): { database: SqliteDatabase; raw: DatabaseSync } {
  const raw = new DatabaseSync(path);
  // Only takes effect before the first table is written, and before WAL mode is set.
  if (options.pageSize) raw.exec(`PRAGMA page_size = ${options.pageSize}`);
  // WAL lets readers (status, metrics) run beside the writer; NORMAL sync is durable across process crashes
  // (only an OS crash can lose the last transactions), which is what an acknowledged message needs here.
  raw.exec('PRAGMA journal_mode = WAL');
  raw.exec('PRAGMA synchronous = NORMAL');
  raw.exec(`PRAGMA busy_timeout = ${options.lockWait === 'poll' ? 0 : LOCK_WAIT_MS}`);
  // A small page cache: the operating system caches the file too, and each connection's cache counts in RSS.
  raw.exec(`PRAGMA cache_size = -${options.cacheKib ?? 4000}`);
  raw.exec('PRAGMA journal_size_limit = 67108864');
  if (options.autocheckpoint === false) raw.exec('PRAGMA wal_autocheckpoint = 0');
  raw.exec('PRAGMA foreign_keys = ON');
  // Deleted rows (routed inbox bodies, erased customers' rows) are overwritten with zeros, in their pages and in
  // the pages they free, so the file does not keep what ctbridge deleted. The WAL still holds older page images
  // until it is truncated: see `scrub` in store.ts.
  raw.exec('PRAGMA secure_delete = ON');
  const cache = new Map<string, SqliteStatement>();

  function prepare(text: string): SqliteStatement {
    // Every ctbridge transaction writes. A deferred BEGIN that reads first and writes later fails with
    // SQLITE_BUSY, without waiting, when another process (`ctbridge ingest`, a second thread) committed in
    // between; BEGIN IMMEDIATE takes the write lock up front and waits for it under busy_timeout instead.
    const sql = text === 'begin' ? 'begin immediate' : text;
    const cached = cache.get(sql);
    if (cached) return cached;
    const prepared = adapt(raw.prepare(sql));
    const statement = sql === 'begin immediate' && options.lockWait === 'poll' ? pollingForLock(prepared) : prepared;
    if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(sql, statement);
    return statement;
  }

  return {
    raw,
    database: {
      prepare,
      close() {
        cache.clear();
        raw.close();
      },
    },
  };
}

/**
 * Copies the WAL into the database file; PASSIVE never waits for (nor blocks) other connections, TRUNCATE waits
 * for readers and then empties the WAL file. True when every frame was copied (and, for TRUNCATE, the file emptied).
 */
export function checkpoint(raw: DatabaseSync, mode: 'PASSIVE' | 'TRUNCATE'): boolean {
  try {
    const result = raw.prepare(`PRAGMA wal_checkpoint(${mode})`).get() as { busy: number; log: number; checkpointed: number } | undefined;
    return result !== undefined && result.busy === 0 && result.log === result.checkpointed;
  } catch {
    // Busy: the next one catches up.
    return false;
  }
}

/** `begin immediate` that, while another connection holds the write lock, tries again every POLL_INTERVAL_MS. */
function pollingForLock(begin: SqliteStatement): SqliteStatement {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  return {
    ...begin,
    run(parameters) {
      const deadline = Date.now() + LOCK_WAIT_MS;
      for (;;) {
        try {
          return begin.run(parameters);
        } catch (error) {
          if ((error as { errcode?: number }).errcode !== SQLITE_BUSY || Date.now() >= deadline) throw error;
          Atomics.wait(sleeper, 0, 0, POLL_INTERVAL_MS);
        }
      }
    },
  };
}

type SqlValue = null | number | bigint | string | Uint8Array;

function toSqlValues(parameters: ReadonlyArray<unknown>): SqlValue[] {
  return parameters.map((value) => (typeof value === 'boolean' ? (value ? 1 : 0) : (value as SqlValue)));
}

function adapt(statement: StatementSync): SqliteStatement {
  const reader = statement.columns().length > 0;
  return {
    reader,
    all: (parameters) => statement.all(...toSqlValues(parameters)),
    run: (parameters) => statement.run(...toSqlValues(parameters)),
    iterate: (parameters) => statement.iterate(...toSqlValues(parameters)),
  };
}
