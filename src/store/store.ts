// Opens the configured store (`sqlite:PATH` or a postgres:// URL) as one Kysely instance, so every query in
// ctbridge is written once for both. Also runs migrations and answers readiness.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { createRequire } from 'node:module';
import type PgModule from 'pg';
import { redactUrl } from '../observability/redact.ts';
import type { Database, Dialect } from './schema.ts';
import type { DatabaseSync } from 'node:sqlite';
import { checkpoint, openSqlite, type SqliteOptions } from './sqlite.ts';
import { createMigrator, migrationNames } from './migrations.ts';

export type { Dialect } from './schema.ts';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Human-readable location without credentials. */
  location: string;
  /** Where accepted request bodies wait for the router. */
  inbox: InboxStore;
  migrate(): Promise<void>;
  /** Migrations known to this build that the database has not applied. */
  pendingMigrations(): Promise<string[]>;
  /**
   * Leaves no copy of deleted rows in the store's files, after an erasure: SQLite zeroes deleted content as it
   * goes (secure_delete), and this empties the write-ahead logs, which still hold older page images. False when
   * a reader kept a log from being emptied (try again later). PostgreSQL's files are out of ctbridge's reach
   * (dead tuples stay until VACUUM reuses their space): this does nothing there.
   */
  scrub(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The inbox's database. Beside an SQLite file it is a file of its own (`ctbridge.inbox.db` next to
 * `ctbridge.db`): SQLite has one write lock per file, and ingest's commits must not wait for it behind sync work.
 * Otherwise (PostgreSQL, an in-memory SQLite) it is the main database itself.
 */
export interface InboxStore {
  db: Kysely<Database>;
  dialect: Dialect;
  /** True when the inbox is not in the main database (so it cannot share a transaction with it). */
  separate: boolean;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

export interface StoreOptions {
  poolSize?: number;
  /**
   * Who checkpoints an SQLite store's WAL files: `auto` (default) SQLite itself, on the connection whose commit
   * passes the threshold; `periodic` this store, every quarter second, from a timer on its thread (the engine
   * thread, which can afford the pause: nothing waits for it there); `off` another connection of the process.
   */
  checkpoints?: 'auto' | 'periodic' | 'off';
}

const CHECKPOINT_INTERVAL_MS = 250;
// Inbox bodies are written once and read once: caching their pages buys nothing. They are 1-200 KB each: large
// pages store one in a few pages (and WAL frames, each checksummed) instead of dozens.
const INBOX_CACHE_KIB = 512;
const INBOX_PAGE_SIZE = 65_536;

/** The inbox file beside an SQLite store file. */
export function inboxPath(path: string): string {
  return path.endsWith('.db') ? `${path.slice(0, -'.db'.length)}.inbox.db` : `${path}.inbox`;
}

export function openStore(url: string, options: StoreOptions = {}): Store {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    const memory = path === ':memory:';
    if (!memory) mkdirSync(dirname(path), { recursive: true });
    const mode = options.checkpoints ?? 'auto';
    const main = openSqlite(path, { autocheckpoint: mode === 'auto' });
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: main.database }) });
    if (memory) return withMigrations(db, 'sqlite', `sqlite:${path}`, { db, dialect: 'sqlite', separate: false, close: () => Promise.resolve() });
    const { inbox, raw: inboxRaw } = openSqliteInbox(path, { autocheckpoint: mode === 'auto' });
    const files = [main.raw, inboxRaw];
    const timer = mode === 'periodic' ? setInterval(() => files.forEach((file) => checkpoint(file, 'PASSIVE')), CHECKPOINT_INTERVAL_MS).unref() : undefined;
    const store = withMigrations(db, 'sqlite', `sqlite:${path}`, inbox);
    return {
      ...store,
      // Both files, even when the first is busy: what one empties is gone either way.
      scrub: () => Promise.resolve(files.map((file) => checkpoint(file, 'TRUNCATE')).every(Boolean)),
      close: async () => {
        if (timer) {
          clearInterval(timer);
          // Leave small WAL files behind.
          files.forEach((file) => checkpoint(file, 'TRUNCATE'));
        }
        await store.close();
      },
    };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const db = postgresKysely(url, options.poolSize ?? 10);
    return withMigrations(db, 'postgres', redactUrl(url), { db, dialect: 'postgres', separate: false, close: () => Promise.resolve() });
  }
  throw new Error(`unsupported store "${redactUrl(url)}": expected sqlite:PATH or a postgres:// URL`);
}

/** Opens only the inbox of the store at `url` (the inbox writer thread needs nothing else). */
export function openInbox(url: string, options: { poolSize?: number } = {}): InboxStore {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === ':memory:') throw new Error('an in-memory store has no inbox another connection can reach');
    return openSqliteInbox(path, { autocheckpoint: false, lockWait: 'poll' }).inbox;
  }
  const db = postgresKysely(url, options.poolSize ?? 2);
  return { db, dialect: 'postgres', separate: false, close: () => db.destroy() };
}

/**
 * The inbox file beside the SQLite store at `path`. The ingest thread's connection never checkpoints (the engine
 * thread's store does) and waits for the router's brief deletes by polling, not by SQLite's sleeps.
 */
function openSqliteInbox(path: string, options: Pick<SqliteOptions, 'autocheckpoint' | 'lockWait'>): { inbox: InboxStore; raw: DatabaseSync } {
  const { database, raw } = openSqlite(inboxPath(path), { ...options, cacheKib: INBOX_CACHE_KIB, pageSize: INBOX_PAGE_SIZE });
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return { inbox: { db, dialect: 'sqlite', separate: true, close: () => db.destroy() }, raw };
}

// Loaded only for a PostgreSQL store: an SQLite deployment's threads need not hold the driver in memory.
const loadPg = () => createRequire(import.meta.url)('pg') as typeof PgModule;

function postgresKysely(url: string, poolSize: number): Kysely<Database> {
  const pg = loadPg();
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Millisecond timestamps and counters are bigint columns; they fit in a JS number.
    types: {
      getTypeParser: (oid: number, format?: string) =>
        oid === INT8_OID || oid === NUMERIC_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown),
    },
  });
  // A dropped idle connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

function withMigrations(db: Kysely<Database>, dialect: Dialect, location: string, inbox: InboxStore): Store {
  const layout = { inboxInMain: !inbox.separate };
  const migrators = [
    { part: 'main' as const, db, migrator: createMigrator(db as unknown as Kysely<unknown>, dialect, layout) },
    ...(inbox.separate ? [{ part: 'inbox' as const, db: inbox.db, migrator: createMigrator(inbox.db as unknown as Kysely<unknown>, dialect, layout, 'inbox') }] : []),
  ];
  return {
    db,
    dialect,
    location,
    inbox,
    async migrate() {
      for (const { migrator } of migrators) {
        const { error, results } = await migrator.migrateToLatest();
        if (error) {
          const failed = results?.find((r) => r.status === 'Error');
          throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
        }
      }
    },
    async pendingMigrations() {
      const pending: string[] = [];
      for (const { part, db: partDb } of migrators) {
        const table = part === 'main' ? 'ctbridge_migration' : 'ctbridge_inbox_migration';
        const applied = await sql<{ name: string }>`select name from ${sql.table(table)}`
          .execute(partDb)
          .then((r) => new Set(r.rows.map((row) => row.name)))
          .catch(() => new Set<string>());
        for (const name of migrationNames(dialect, layout, part)) if (!applied.has(name)) pending.push(part === 'main' ? name : `inbox/${name}`);
      }
      return pending;
    },
    scrub: () => Promise.resolve(true),
    async close() {
      await inbox.close();
      await db.destroy();
    },
  };
}

