// Reading a record back from a generic HTTP receiver (reconciliation), when its settings declare `read`: a GET of
// the URL template filled in with the record's ids, answered with JSON holding the record's mapped fields (at
// `fieldsAt`), or 404/410 when the receiver has no such record.
import { PermanentError, type RecordReadItem, type RecordReadOutcome } from '../kit/index.ts';
import { atPointer, renderPath } from '../rest/template.ts';
import type { HttpDestinationClient } from './client.ts';

export const readRecord = {
  supported: (settings: HttpDestinationClient['settings']) => settings.read !== undefined,
  async read(client: HttpDestinationClient, item: RecordReadItem): Promise<RecordReadOutcome> {
    const read = client.settings.read;
    if (!read) throw new PermanentError('this http destination declares no read URL');
    const url = renderPath(read.url, { recordType: item.recordType, id: item.resourceId, destinationId: item.destinationId });
    const answer = await client.read(url);
    if (answer === undefined) return { found: false };
    const fields = atPointer(answer, read.fieldsAt);
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) throw new PermanentError(`GET ${read.url} answered without an object of fields at "${read.fieldsAt}"`);
    return { found: true, fields: fields as Record<string, unknown> };
  },
};
