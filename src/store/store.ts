// Opens the configured store (`sqlite:PATH` or a postgres:// URL) as one Kysely instance, so every query in
// ctbridge is written once for both. Also runs migrations and answers readiness.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';
import { openSqlite } from './sqlite.ts';
import { startCheckpointer } from './sqlite-checkpointer.ts';
import { createMigrator, migrationNames } from './migrations.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Human-readable location without credentials. */
  location: string;
  migrate(): Promise<void>;
  /** Migrations known to this build that the database has not applied. */
  pendingMigrations(): Promise<string[]>;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

export interface StoreOptions {
  poolSize?: number;
  /**
   * Run SQLite WAL checkpoints for this database (default true). One connection per process is enough: with
   * the engine on its thread, that thread's connection does them.
   */
  checkpoints?: boolean;
}

export function openStore(url: string, options: StoreOptions = {}): Store {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const { database } = openSqlite(path);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    const checkpointer = path === ':memory:' || options.checkpoints === false ? undefined : startCheckpointer(path);
    const store = withMigrations(db, 'sqlite', `sqlite:${path}`);
    return { ...store, close: async () => {
      await checkpointer?.stop();
      await store.close();
    } };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      // Millisecond timestamps and counters are bigint columns; they fit in a JS number.
      types: {
        getTypeParser: (oid: number, format?: string) =>
          oid === INT8_OID || oid === NUMERIC_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown),
      },
    });
    // A dropped idle connection must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return withMigrations(db, 'postgres', redactCredentials(url));
  }
  throw new Error(`unsupported store "${redactCredentials(url)}": expected sqlite:PATH or a postgres:// URL`);
}

function withMigrations(db: Kysely<Database>, dialect: Dialect, location: string): Store {
  const migrator = createMigrator(db as unknown as Kysely<unknown>, dialect);
  return {
    db,
    dialect,
    location,
    async migrate() {
      const { error, results } = await migrator.migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error');
        throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
      }
    },
    async pendingMigrations() {
      const all = migrationNames(dialect);
      const applied = await sql<{ name: string }>`select name from ctbridge_migration`
        .execute(db)
        .then((r) => new Set(r.rows.map((row) => row.name)))
        .catch(() => new Set<string>());
      return all.filter((name) => !applied.has(name));
    },
    close: () => db.destroy(),
  };
}

export function redactCredentials(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
