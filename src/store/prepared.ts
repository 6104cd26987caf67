// Hot statements compiled once. Kysely builds a query's operation tree and compiles it to SQL on every call,
// which costs more than SQLite takes to run a one-row statement. A prepared query is built once, with named
// placeholders standing in for the values, and each call only binds values to the same SQL (so SQLite's
// statement cache hits too). Only for fixed-shape queries: an `in` list or a multi-row insert would compile to a
// different SQL text per length.
import type { Compilable, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.ts';

const NAME = Symbol('placeholder');

interface Placeholder {
  readonly [NAME]: string;
}

function isPlaceholder(value: unknown): value is Placeholder {
  return typeof value === 'object' && value !== null && NAME in value;
}

export type PreparedQuery<A, R> = (executor: Kysely<Database>, args: A) => Promise<QueryResult<R>>;

/**
 * Compiles `build(args)` once against `db`, where every property of `args` read by `build` is a placeholder;
 * the returned function runs that SQL on `executor` (the database or a transaction of it) with the real values.
 */
export function prepare<A extends object, R>(db: Kysely<Database>, build: (args: A) => Compilable<R>): PreparedQuery<A, R> {
  const args = new Proxy({} as A, { get: (_target, name) => ({ [NAME]: String(name) }) satisfies Placeholder });
  const compiled = build(args).compile();
  const bindings: Array<{ name: keyof A } | { value: unknown }> = compiled.parameters.map((value) => (isPlaceholder(value) ? { name: value[NAME] as keyof A } : { value }));
  return (executor, values) => {
    const parameters = bindings.map((binding) => ('name' in binding ? values[binding.name] : binding.value));
    return executor.executeQuery({ ...compiled, parameters });
  };
}

export type PreparedBatch<A> = <R>(executor: Kysely<Database>, rows: readonly A[]) => Promise<R[]>;

/**
 * The same for a multi-row statement (an insert of `rows`, whose columns are the properties of the first row):
 * compiled once per shape, for row counts that are powers of two up to `maxRows`, so a batch of any size runs
 * as a few statements of known shapes (100 rows: 64, 32 and 4). Returns the rows the statements return.
 */
export function prepareBatch<A extends object>(db: Kysely<Database>, build: (rows: A[]) => Compilable<unknown>, maxRows = 256): PreparedBatch<A> {
  const byShape = new Map<string, PreparedQuery<Record<string, unknown>, unknown>>();
  const columnOf = (index: number, name: string) => `${index}\u0000${name}`;
  function statementFor(columns: string[], size: number) {
    const shape = `${size}\u0000${columns.join('\u0000')}`;
    let statement = byShape.get(shape);
    if (!statement) {
      statement = prepare(db, (args: Record<string, unknown>) => build(Array.from({ length: size }, (_unused, index) => Object.fromEntries(columns.map((column) => [column, args[columnOf(index, column)]])) as A)));
      byShape.set(shape, statement);
    }
    return statement;
  }
  return async <R>(executor: Kysely<Database>, rows: readonly A[]): Promise<R[]> => {
    const returned: R[] = [];
    if (rows.length === 0) return returned;
    const columns = Object.keys(rows[0]!);
    let offset = 0;
    while (offset < rows.length) {
      let size = maxRows;
      while (size > rows.length - offset) size /= 2;
      const values: Record<string, unknown> = {};
      for (let index = 0; index < size; index += 1) {
        const row = rows[offset + index] as Record<string, unknown>;
        for (const column of columns) values[columnOf(index, column)] = row[column] ?? null;
      }
      const result = await statementFor(columns, size)(executor, values);
      for (const row of result.rows) returned.push(row as R);
      offset += size;
    }
    return returned;
  };
}
