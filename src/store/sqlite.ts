// Kysely over the built-in node:sqlite (no native addon). Kysely's SQLite driver asks the database to prepare a
// statement for every query; this adapter caches prepared statements by SQL text, which matters on hot paths.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const STATEMENT_CACHE_SIZE = 500;

export function openSqlite(path: string): { database: SqliteDatabase; raw: DatabaseSync } {
  const raw = new DatabaseSync(path);
  // WAL lets readers (status, metrics) run beside the writer; NORMAL sync is durable across process crashes
  // (only an OS crash can lose the last transactions), which is what an acknowledged message needs here.
  raw.exec('PRAGMA journal_mode = WAL');
  raw.exec('PRAGMA synchronous = NORMAL');
  raw.exec('PRAGMA busy_timeout = 5000');
  // A small page cache: the operating system caches the file too, and each connection's cache counts in RSS.
  raw.exec('PRAGMA cache_size = -4000');
  raw.exec('PRAGMA journal_size_limit = 67108864');
  // Checkpoints run on a worker thread (sqlite-checkpointer.ts), never on this connection's event loop.
  if (path !== ':memory:') raw.exec('PRAGMA wal_autocheckpoint = 0');
  raw.exec('PRAGMA foreign_keys = ON');
  const cache = new Map<string, SqliteStatement>();

  function prepare(text: string): SqliteStatement {
    // Every ctbridge transaction writes. A deferred BEGIN that reads first and writes later fails with
    // SQLITE_BUSY, without waiting, when another process (`ctbridge ingest`, a second thread) committed in
    // between; BEGIN IMMEDIATE takes the write lock up front and waits for it under busy_timeout instead.
    const sql = text === 'begin' ? 'begin immediate' : text;
    const cached = cache.get(sql);
    if (cached) return cached;
    const statement = adapt(raw.prepare(sql));
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
