// The payload log's storage (the `payload_log` table): rows written by the recorder (observability/payload-log.ts),
// read by `ctbridge payloads --record ID`, purged by retention (engine/retention.ts) and by an erasure of their
// resource (engine/erasure.ts).
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { Database, PayloadLogTable } from './schema.ts';

export type PayloadLogRow = Selectable<PayloadLogTable>;

export async function insertPayloadRows(db: Kysely<Database>, rows: ReadonlyArray<Insertable<PayloadLogTable>>): Promise<void> {
  if (rows.length > 0) await db.insertInto('payload_log').values([...rows]).execute();
}

/** The newest `limit` calls made for a resource, oldest first, in every destination (or one). */
export async function payloadsOf(db: Kysely<Database>, resourceId: string, options: { limit: number; destination?: string | undefined }): Promise<PayloadLogRow[]> {
  let query = db.selectFrom('payload_log').selectAll().where('resource_id', '=', resourceId);
  if (options.destination !== undefined) query = query.where('destination', '=', options.destination);
  const rows = await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(options.limit).execute();
  return rows.reverse();
}

/** Deletes a destination's entries older than `before`; how many went. */
export async function purgePayloadLog(db: Kysely<Database>, destination: string, before: number): Promise<number> {
  const result = await db.deleteFrom('payload_log').where('destination', '=', destination).where('at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes every entry about these resources (an erasure). */
export async function erasePayloads(db: Kysely<Database>, resourceIds: readonly string[]): Promise<number> {
  if (resourceIds.length === 0) return 0;
  const result = await db.deleteFrom('payload_log').where('resource_id', 'in', [...resourceIds]).executeTakeFirst();
  return Number(result.numDeletedRows);
}
