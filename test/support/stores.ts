// The store matrix every engine test runs on: SQLite always, PostgreSQL when CTBRIDGE_TEST_PG is set (CI sets
// it, making that half mandatory). Each use gets a fresh database so test files never see each other's rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestStore {
  name: 'sqlite' | 'postgres';
  /** Creates a fresh, empty database and returns its store URL. */
  create(): Promise<string>;
  /** Drops everything create() made. */
  cleanup(): Promise<void>;
}

const pgUrl = process.env.CTBRIDGE_TEST_PG;

if (!pgUrl && !process.env.CTBRIDGE_PG_SKIP_NOTED) {
  process.env.CTBRIDGE_PG_SKIP_NOTED = '1';
  console.warn('CTBRIDGE_TEST_PG is not set: the PostgreSQL half of the engine tests is SKIPPED (CI runs it).');
}

function sqliteStore(): TestStore {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    create() {
      const dir = mkdtempSync(join(tmpdir(), 'ctbridge-test-'));
      dirs.push(dir);
      return Promise.resolve(`sqlite:${join(dir, 'ctbridge.db')}`);
    },
    cleanup() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

function postgresStore(url: string): TestStore {
  const created: string[] = [];
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    async create() {
      const name = `ctbridge_t_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
      await admin((c) => c.query(`create database ${name}`));
      created.push(name);
      const target = new URL(url);
      target.pathname = `/${name}`;
      return target.toString();
    },
    async cleanup() {
      for (const name of created.splice(0)) await admin((c) => c.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** The stores to run against: use with describe.each. */
export const testStores: TestStore[] = [sqliteStore(), ...(pgUrl ? [postgresStore(pgUrl)] : [])];
