// Records through the REST destination's configured operations: a record whose destination id is known is
// updated ({destinationId} in the path); otherwise it is looked up (`find`, when configured) and updated, or
// created and its id read from the answer at `idPointer` (kept in the identity table for later updates); a
// deleted record is deleted (404 and 410 count as done). Templates read: id (the commercetools id),
// destinationId, recordType, resourceType, version, sequence, operation, fields (the whole mapped record),
// correlationId, idempotencyKey, person, personId.
import { PermanentError, type ItemOperation, type ItemOutcome, type RecordItem } from '../kit/index.ts';
import type { RestClient } from './client.ts';
import type { RestOperation } from './settings.ts';
import { idAt, type TemplateContext } from './template.ts';

function contextOf(item: RecordItem, destinationId: string | undefined): TemplateContext {
  return {
    id: item.resourceId,
    destinationId,
    recordType: item.recordType,
    resourceType: item.resourceType,
    version: item.version,
    sequence: item.sequence,
    operation: item.operation,
    fields: item.record,
    correlationId: item.correlationId,
    idempotencyKey: item.idempotencyKey,
    person: item.person?.key,
    personId: item.person?.destinationId,
  };
}

export const sendRecord: ItemOperation<RestClient, RecordItem> = {
  name: 'send record',
  async perform(client, item): Promise<ItemOutcome> {
    const ops = client.settings.operations.records[item.recordType];
    if (ops === undefined) throw new PermanentError(`no operations are configured for records of "${item.recordType}" (operations.records.${item.recordType})`);
    const meta = { idempotencyKey: item.idempotencyKey, correlationId: item.correlationId, defaultBody: item.record };
    let id = item.destinationId ?? (ops.find && (ops.update || item.operation === 'delete') ? await find(client, ops.find, item) : undefined);

    if (item.operation === 'delete') {
      if (ops.delete === undefined || id === undefined) return { ok: true };
      try {
        await client.call(ops.delete, contextOf(item, id), meta);
      } catch (error) {
        // Already gone: an earlier delete whose answer was lost, or deleted by someone else.
        if (!(error instanceof PermanentError && (error.status === 404 || error.status === 410))) throw error;
      }
      return { ok: true, destinationId: id };
    }

    if (id !== undefined && ops.update) {
      try {
        await client.call(ops.update, contextOf(item, id), meta);
        return { ok: true, destinationId: id };
      } catch (error) {
        // Deleted at the destination meanwhile: created again below, when it can be.
        if (!(error instanceof PermanentError && (error.status === 404 || error.status === 410) && ops.create)) throw error;
        id = undefined;
      }
    }
    if (ops.create === undefined) throw new PermanentError(`records of "${item.recordType}" have no create operation, and the destination's id of ${item.resourceId} is not known`);
    const answer = await client.call(ops.create, contextOf(item, id), meta);
    if (ops.create.idPointer === undefined) return { ok: true, ...(id !== undefined && { destinationId: id }) };
    const created = idAt(answer.json, ops.create.idPointer) ?? locationId(answer.headers);
    if (created === undefined) throw new PermanentError(`${ops.create.method} ${ops.create.path} answered ${answer.status} without an id at ${ops.create.idPointer}: the record may have been created; check the destination before replaying`);
    return { ok: true, destinationId: created };
  },
};

/** The destination's id of the record, when the find operation finds it. */
async function find(client: RestClient, operation: RestOperation & { idPointer: string }, item: RecordItem): Promise<string | undefined> {
  try {
    const answer = await client.call(operation, contextOf(item, undefined), { idempotencyKey: item.idempotencyKey, correlationId: item.correlationId });
    return idAt(answer.json, operation.idPointer);
  } catch (error) {
    if (error instanceof PermanentError && error.status === 404) return undefined;
    throw error;
  }
}

/** The last segment of a Location header (`/customers/42` → 42), for APIs that answer 201 with one. */
function locationId(headers: Headers): string | undefined {
  const location = headers.get('location');
  if (!location) return undefined;
  const last = location.replace(/[?#].*$/, '').replace(/\/+$/, '').split('/').pop();
  return last ? decodeURIComponent(last) : undefined;
}
