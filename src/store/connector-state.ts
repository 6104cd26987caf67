// A connector's keyed values in the store (the connector_state table), one namespace per destination: what the
// connector must remember between sends and share with every other process sending to the same destination.
// Values are JSON text; `take` deletes and returns what existed, so of two processes taking the same key only one
// gets it.
import type { Kysely } from 'kysely';
import type { ConnectorState } from '../destinations/types.ts';
import type { Database } from './schema.ts';

/** Rows per statement: well under both stores' bound-parameter limits. */
const CHUNK = 200;

export function connectorState(db: Kysely<Database>, destination: string, now: () => number = Date.now): ConnectorState {
  return {
    async get(keys) {
      const found = new Map<string, unknown>();
      for (let i = 0; i < keys.length; i += CHUNK) {
        const rows = await db.selectFrom('connector_state').select(['key', 'value']).where('destination', '=', destination).where('key', 'in', keys.slice(i, i + CHUNK)).execute();
        for (const row of rows) found.set(row.key, JSON.parse(row.value));
      }
      return found;
    },
    async put(entries) {
      // The last value for a key wins, as if put one after the other.
      const byKey = new Map(entries.map((entry) => [entry.key, entry]));
      const rows = [...byKey.values()].map((entry) => ({ destination, key: entry.key, value: JSON.stringify(entry.value), subject: entry.subject ?? null, updated_at: now() }));
      for (let i = 0; i < rows.length; i += CHUNK) {
        await db
          .insertInto('connector_state')
          .values(rows.slice(i, i + CHUNK))
          .onConflict((oc) => oc.columns(['destination', 'key']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), subject: eb.ref('excluded.subject'), updated_at: eb.ref('excluded.updated_at') })))
          .execute();
      }
    },
    async take(keys) {
      const taken: string[] = [];
      for (let i = 0; i < keys.length; i += CHUNK) {
        const rows = await db.deleteFrom('connector_state').where('destination', '=', destination).where('key', 'in', keys.slice(i, i + CHUNK)).returning('key').execute();
        taken.push(...rows.map((row) => row.key));
      }
      return taken;
    },
    async list(prefix, options = {}) {
      const rows = await db
        .selectFrom('connector_state')
        .select(['key', 'value'])
        .where('destination', '=', destination)
        .where('key', '>=', prefix)
        // Every key with the prefix sorts below prefix + U+FFFF.
        .where('key', '<', `${prefix}\uffff`)
        .$call((qb) => (options.after === undefined ? qb : qb.where('key', '>', options.after)))
        .orderBy('key')
        .limit(options.limit ?? 1_000)
        .execute();
      return rows.map((row) => ({ key: row.key, value: JSON.parse(row.value) as unknown }));
    },
  };
}
