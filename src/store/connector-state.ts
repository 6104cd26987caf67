// A connector's keyed values in the store (the connector_state table), one namespace per destination: what the
// connector must remember between sends and share with every other process sending to the same destination.
// Values are JSON text, sealed when the engine gives a sealer: what a connector keeps may be personal (a held
// event's payload waiting for its batching window, a contact's e-mail) and waits in the store like a carried
// resource does, so it is kept encrypted like one (pii/sealed.ts; rows written before sealing still read).
// `take` deletes and returns what existed, so of two processes taking the same key only one gets it; `add` writes
// only what is absent, so of two processes adding the same key only one does.
import type { Kysely } from 'kysely';
import type { ConnectorState } from '../destinations/types.ts';
import type { Sealer } from '../pii/sealed.ts';
import type { Database } from './schema.ts';

/** Rows per statement: well under both stores' bound-parameter limits. */
const CHUNK = 200;

export interface ConnectorStateOptions {
  now?: () => number;
  /** Seals every value written and opens what is read; without it values are kept as plain JSON (tests, tools). */
  sealer?: () => Promise<Sealer>;
}

export function connectorState(db: Kysely<Database>, destination: string, options: ConnectorStateOptions = {}): ConnectorState {
  const now = options.now ?? Date.now;
  const plain = { seal: (text: string) => text, open: (text: string) => text };
  const sealing = async () => (options.sealer ? await options.sealer() : plain);
  return {
    async get(keys) {
      const sealer = await sealing();
      const found = new Map<string, unknown>();
      for (let i = 0; i < keys.length; i += CHUNK) {
        const rows = await db.selectFrom('connector_state').select(['key', 'value']).where('destination', '=', destination).where('key', 'in', keys.slice(i, i + CHUNK)).execute();
        for (const row of rows) found.set(row.key, JSON.parse(sealer.open(row.value)));
      }
      return found;
    },
    async put(entries) {
      // The last value for a key wins, as if put one after the other.
      const byKey = new Map(entries.map((entry) => [entry.key, entry]));
      const sealer = await sealing();
      const rows = [...byKey.values()].map((entry) => ({ destination, key: entry.key, value: sealer.seal(JSON.stringify(entry.value)), subject: entry.subject ?? null, updated_at: now() }));
      for (let i = 0; i < rows.length; i += CHUNK) {
        await db
          .insertInto('connector_state')
          .values(rows.slice(i, i + CHUNK))
          .onConflict((oc) => oc.columns(['destination', 'key']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), subject: eb.ref('excluded.subject'), updated_at: eb.ref('excluded.updated_at') })))
          .execute();
      }
    },
    async add(entry) {
      const sealer = await sealing();
      const row = { destination, key: entry.key, value: sealer.seal(JSON.stringify(entry.value)), subject: entry.subject ?? null, updated_at: now() };
      const added = await db.insertInto('connector_state').values(row).onConflict((oc) => oc.columns(['destination', 'key']).doNothing()).returning('key').executeTakeFirst();
      return added !== undefined;
    },
    async take(keys) {
      const taken: string[] = [];
      for (let i = 0; i < keys.length; i += CHUNK) {
        const rows = await db.deleteFrom('connector_state').where('destination', '=', destination).where('key', 'in', keys.slice(i, i + CHUNK)).returning('key').execute();
        taken.push(...rows.map((row) => row.key));
      }
      return taken;
    },
    async list(prefix, page = {}) {
      const sealer = await sealing();
      const rows = await db
        .selectFrom('connector_state')
        .select(['key', 'value'])
        .where('destination', '=', destination)
        .where('key', '>=', prefix)
        // Every key with the prefix sorts below prefix + U+FFFF.
        .where('key', '<', `${prefix}\uffff`)
        .$call((qb) => (page.after === undefined ? qb : qb.where('key', '>', page.after)))
        .orderBy('key')
        .limit(page.limit ?? 1_000)
        .execute();
      return rows.map((row) => ({ key: row.key, value: JSON.parse(sealer.open(row.value)) as unknown }));
    },
  };
}
