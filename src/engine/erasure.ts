// Carries out erasure requests: a resource deleted in commercetools with dataErasure (its ResourceDeleted
// notification says so; a *Deleted Message carrying dataErasure counts too), or `ctbridge erase --customer`. The
// resource's records at every destination are deleted there through the normal record-sync delete (the
// connector's own delete or archive), and ctbridge's own copies of it go: snapshots, carried resources, dead event
// payloads (and deliveries kept for a late refusal); for a customer also the person: vault tokens, identities and
// the seconds their events were sent at. Orders, carts, payments, shopping lists, reviews and quotes hold personal
// data too (addresses, emails, names), so any resource type is erased, not only customers. One transaction per
// request, which also deletes the request and writes the audit entry, so a crash midway repeats the whole request
// and two processes never both carry it out.
// Routing asks for one erasure per resource however many notifications say so (engine/routing.ts).
import { erasePayloads } from '../store/payload-log.ts';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { insertAudit } from '../store/audit-log.ts';
import type { Selectable } from 'kysely';
import type { ErasureRequestsTable } from '../store/schema.ts';
import type { PiiKeys } from '../pii/keys.ts';
import { Identities } from '../identity/identities.ts';
import { eraseEventSeconds } from '../store/event-seconds.ts';

export type ErasureRequest = Selectable<ErasureRequestsTable>;

/** Asks for the erasure of a customer (`ctbridge erase`); notifications ask through routing. */
export function requestErasure(db: Kysely<Database>, customerId: string, correlationId: string, source: 'cli', now: number): Promise<ErasureRequest> {
  return db.insertInto('erasure_requests').values({ resource_type: 'customer', resource_id: customerId, correlation_id: correlationId, source, requested_at: now }).returningAll().executeTakeFirstOrThrow();
}

/** Who asked, in the audit entry: rows from before resource types were kept say `message` (a CustomerDeleted). */
function requestedBy(source: string): string {
  if (source === 'cli') return 'ctbridge erase';
  return `${source === 'message' ? 'CustomerDeleted' : source} (dataErasure)`;
}

export function claimErasures(db: Kysely<Database>, limit: number): Promise<ErasureRequest[]> {
  return db.selectFrom('erasure_requests').selectAll().orderBy('id').limit(limit).execute();
}

export async function carryOutErasures(db: Kysely<Database>, requests: readonly ErasureRequest[], keys: PiiKeys, now: number): Promise<void> {
  for (const request of requests) {
    await db.transaction().execute(async (trx) => {
      const taken = await trx.deleteFrom('erasure_requests').where('id', '=', request.id).executeTakeFirst();
      if (Number(taken.numDeletedRows) === 0) return; // another process carried it out
      const { resource_type: resourceType, resource_id: resourceId } = request;
      // Every record of the resource is deleted at its destination (a notification already marked them; a CLI
      // request marks them here). The snapshot becomes empty rather than null: null would mean the destination
      // never had the record, and the delete would be skipped.
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
        .where('resource_type', '=', resourceType)
        .where('resource_id', '=', resourceId)
        .where('destination_deleted', '=', 0)
        .executeTakeFirst();
      // The person goes with a customer: their vault tokens (those no one else owns), identities, the seconds their
      // events were sent at (store/event-seconds.ts names the customer) and what connectors kept about them
      // (Ometria: the consent last sent). The tokens of an order's fields are its customer's (record-sync tokenizes
      // for the person), so they go with them.
      const person = resourceType === 'customer';
      const tokens = person && keys.tokens ? await keys.tokens.eraseSubject(resourceId, trx) : 0;
      const identities = person ? await new Identities(db).erase(trx, resourceId) : 0;
      if (person) {
        await eraseEventSeconds(trx, `customer:${resourceId}`);
        await trx.deleteFrom('connector_state').where('subject', '=', resourceId).execute();
      }
      // Two-way sync's field states (digests of its values on both sides) go with the resource.
      await trx.deleteFrom('field_state').where('resource_id', '=', resourceId).execute();
      // Dead events, and deliveries kept until the destination can no longer refuse them (store/event-queue.ts).
      const events = await trx.deleteFrom('events').where('resource_type', '=', resourceType).where('resource_id', '=', resourceId).where('dead', '!=', 0).executeTakeFirst();
      // The calls the payload log kept about it (store/payload-log.ts).
      await erasePayloads(trx, [resourceId]);
      await insertAudit(trx, [
        {
          at: now,
          action: 'erasure',
          destination: null,
          itemType: resourceType,
          resourceId,
          version: null,
          fields: null,
          correlationId: request.correlation_id,
          outcome: 'ok',
          detail: `requested by ${requestedBy(request.source)}: ${Number(marked.numUpdatedRows)} record(s) deleted at their destinations, ${tokens} vault token(s), ${identities} identit${identities === 1 ? 'y' : 'ies'} and ${Number(events.numDeletedRows)} dead or kept event(s) removed`,
        },
      ]);
    });
  }
}
