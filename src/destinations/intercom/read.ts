// Reading a customer's contact back from Intercom (reconciliation): GET /contacts/{id} (ShowContact), its fields in
// the mapping's terms — Intercom's own contact fields by their names, declared custom attributes by theirs, an
// object-valued field (a total per currency) gathered back from its `<field>_<key>` attributes. Tags and companies
// are not read back. An archived or deleted contact answers 404 ("User Not Found"), which is a record Intercom does
// not hold (https://developers.intercom.com/docs/references/2.14/rest-api/api.intercom.io/contacts/showcontact).
import { PermanentError, type RecordReadItem, type RecordReadOutcome } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { STANDARD_FIELDS } from './fields.ts';

export const readContact = {
  async read(client: IntercomClient, item: RecordReadItem): Promise<RecordReadOutcome> {
    // Companies are not compared; a contact never sent has no id to read by.
    if (item.resourceType !== 'customer' || item.destinationId === undefined) return { found: true, fields: {} };
    let contact: Record<string, unknown>;
    try {
      contact = (await client.call(`reading contact ${item.destinationId}`, (api) => api.contacts.find({ contact_id: item.destinationId! }))) as unknown as Record<string, unknown>;
    } catch (error) {
      if (error instanceof PermanentError && error.status === 404) return { found: false };
      throw error;
    }
    const custom = (contact.custom_attributes ?? {}) as Record<string, unknown>;
    const declared = Object.keys(client.settings.attributes);
    const fields: Record<string, unknown> = {};
    for (const name of item.fields) {
      if (STANDARD_FIELDS.has(name)) fields[name] = contact[name] ?? null;
      else if (Object.hasOwn(client.settings.attributes, name)) fields[name] = custom[name] ?? null;
      else {
        const keys = declared.filter((attribute) => attribute.startsWith(`${name}_`));
        if (keys.length === 0) continue;
        const value = Object.fromEntries(keys.flatMap((attribute) => (custom[attribute] === null || custom[attribute] === undefined ? [] : [[attribute.slice(name.length + 1), custom[attribute]]])));
        fields[name] = Object.keys(value).length === 0 ? null : value;
      }
    }
    return { found: true, fields };
  },
};
