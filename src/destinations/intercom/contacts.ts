// Customer records as Intercom users (external_id = the commercetools customer id): an upsert updates the known
// contact with what changed (or creates it with the whole record, finding through the 409 one Intercom already
// has), with its tags; a delete archives or deletes the contact (settings.onDelete).
import { PermanentError, type ItemOperation, type ItemOutcome, type RecordItem } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { contactBody, withRemovals } from './fields.ts';
import { syncTags } from './tags.ts';

export const upsertContact: ItemOperation<IntercomClient, RecordItem> = {
  name: 'upsert contact',
  async perform(client, item) {
    // What changed, and null for what was sent before and is gone now (a removed phone): Intercom removes it.
    const body = contactBody(withRemovals(item.fields, item.record, item.previous), client.settings, client.undeclared);
    const known = item.person?.destinationId ?? item.destinationId;
    const update = async (id: string): Promise<ItemOutcome> => {
      // Only the tags changed: no contact update to send.
      if (Object.keys(body).length > 0) await client.call(`updating contact ${id}`, (api) => api.contacts.update({ contact_id: id, ...body }));
      await syncTags(client, id, item);
      return { ok: true, destinationId: id, personId: id };
    };
    if (known) {
      try {
        return await update(known);
      } catch (error) {
        // Deleted in Intercom meanwhile (or merged away): create it again.
        if (!(error instanceof PermanentError && error.status === 404)) throw error;
      }
    }
    // The whole record, not the delta: a new contact needs every field.
    const contact = await client.createContact(`creating contact ${item.resourceId}`, { role: 'user', external_id: item.resourceId, ...contactBody(item.record, client.settings, client.undeclared) });
    if (!contact.created) return update(contact.id);
    await syncTags(client, contact.id, { fields: item.record, previous: undefined });
    return { ok: true, destinationId: contact.id, personId: contact.id };
  },
};

export const removeContact: ItemOperation<IntercomClient, RecordItem> = {
  name: 'archive or delete contact',
  async perform(client, item) {
    const id = item.person?.destinationId ?? item.destinationId;
    // Never reached Intercom: nothing to remove.
    if (!id) return { ok: true };
    try {
      if (client.settings.onDelete === 'delete') await client.call(`deleting contact ${id}`, (api) => api.contacts.delete({ contact_id: id }));
      else await client.call(`archiving contact ${id}`, (api) => api.contacts.archive({ contact_id: id }));
    } catch (error) {
      // Already gone.
      if (!(error instanceof PermanentError && error.status === 404)) throw error;
    }
    return { ok: true };
  },
};
