// Carries out erasure requests (a CustomerDeleted Message with dataErasure: true, or `ctbridge erase`): the
// customer's records at every destination are deleted there through the normal record-sync delete (the
// connector's own delete or archive), and ctbridge's own copies of the person go: snapshots, vault tokens, dead
// event payloads, identities. One transaction per request, which also deletes the request and writes the audit
// entry, so a crash midway repeats the whole request and two processes never both carry it out.
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { insertAudit } from '../store/audit-log.ts';
import type { Selectable } from 'kysely';
import type { ErasureRequestsTable } from '../store/schema.ts';
import type { PiiKeys } from '../pii/keys.ts';
import { Identities } from '../identity/identities.ts';

export type ErasureRequest = Selectable<ErasureRequestsTable>;

export function requestErasure(db: Kysely<Database>, customerId: string, correlationId: string, source: 'message' | 'cli', now: number): Promise<ErasureRequest> {
  return db.insertInto('erasure_requests').values({ customer_id: customerId, correlation_id: correlationId, source, requested_at: now }).returningAll().executeTakeFirstOrThrow();
}

export function claimErasures(db: Kysely<Database>, limit: number): Promise<ErasureRequest[]> {
  return db.selectFrom('erasure_requests').selectAll().orderBy('id').limit(limit).execute();
}

export async function carryOutErasures(db: Kysely<Database>, requests: readonly ErasureRequest[], keys: PiiKeys, now: number): Promise<void> {
  for (const request of requests) {
    await db.transaction().execute(async (trx) => {
      const taken = await trx.deleteFrom('erasure_requests').where('id', '=', request.id).executeTakeFirst();
      if (Number(taken.numDeletedRows) === 0) return; // another process carried it out
      const customer = request.customer_id;
      // Every record of the customer is deleted at its destination (a message already marked them; a CLI request
      // marks them here). The snapshot becomes empty rather than null: null would mean the destination never had
      // the record, and the delete would be skipped.
      const marked = await trx
        .updateTable('records')
        .set({
          deleted_version: sql`coalesce(deleted_version, coalesce(seen_version, synced_version, 0) + 1)`,
          dirty_seq: sql`dirty_seq + 1`,
          due_at: now,
          snapshot: sql`case when snapshot is null then null else '{}' end`,
          carried_resource: null,
          carried_version: null,
        })
        .where('resource_type', '=', 'customer')
        .where('resource_id', '=', customer)
        .where('destination_deleted', '=', 0)
        .executeTakeFirst();
      const tokens = keys.tokens ? await keys.tokens.eraseSubject(customer, trx) : 0;
      const identities = await new Identities(db).erase(trx, customer);
      const events = await trx.deleteFrom('events').where('resource_type', '=', 'customer').where('resource_id', '=', customer).where('dead', '=', 1).executeTakeFirst();
      // What connectors kept about the customer (Ometria: the consent last sent to them).
      await trx.deleteFrom('connector_state').where('subject', '=', customer).execute();
      await insertAudit(trx, [
        {
          at: now,
          action: 'erasure',
          destination: null,
          itemType: 'customer',
          resourceId: customer,
          version: null,
          fields: null,
          correlationId: request.correlation_id,
          outcome: 'ok',
          detail: `requested by ${request.source === 'cli' ? 'ctbridge erase' : 'CustomerDeleted (dataErasure)'}: ${Number(marked.numUpdatedRows)} record(s) deleted at their destinations, ${tokens} vault token(s), ${identities} identit${identities === 1 ? 'y' : 'ies'} and ${Number(events.numDeletedRows)} dead event(s) removed`,
        },
      ]);
    });
  }
}
