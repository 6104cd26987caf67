// Business units as Intercom companies: company_id and name from the mapping, and its associates (a mapped
// `associates` list of customer ids, e.g. associates[*].customer.id) as the company's contacts — the ones added
// since the last send attached, the ones removed detached. Intercom keeps companies whose people left, so a
// deleted unit stays as it was.
import { PermanentError, RetryableError, type ItemOperation, type RecordItem } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { names } from './fields.ts';

export const upsertCompany: ItemOperation<IntercomClient, RecordItem> = {
  name: 'upsert company',
  async perform(client, item) {
    if (item.operation === 'delete') return { ok: true };
    const companyId = item.record.company_id;
    if (typeof companyId !== 'string' || companyId === '') throw new PermanentError(`${item.recordType} ${item.resourceId}: map company_id (e.g. company_id: key) to make it an Intercom company`);
    const name = typeof item.record.name === 'string' ? item.record.name : undefined;
    const company = await client.call(`upserting company ${companyId}`, (api) => api.companies.createOrUpdate({ company_id: companyId, ...(name !== undefined && { name }) }));
    const now = names(item.record.associates);
    const before = new Set(names(item.previous?.associates));
    for (const customerId of now.filter((id) => !before.has(id))) {
      let contact: { id: string };
      try {
        contact = await client.call(`finding the contact of customer ${customerId}`, (api) => api.contacts.showContactByExternalId({ external_id: customerId }));
      } catch (error) {
        // The associate's own record sync has not created the contact yet: attach on a later sync.
        if (error instanceof PermanentError && error.status === 404) throw new RetryableError(`company ${companyId}: customer ${customerId} is not in Intercom yet`);
        throw error;
      }
      await client.call(`attaching contact ${contact.id} to company ${companyId}`, (api) => api.companies.attachContact({ contact_id: contact.id, id: company.id }));
    }
    const still = new Set(now);
    for (const customerId of [...before].filter((id) => !still.has(id))) {
      try {
        const contact = await client.call(`finding the contact of customer ${customerId}`, (api) => api.contacts.showContactByExternalId({ external_id: customerId }));
        await client.call(`detaching contact ${contact.id} from company ${companyId}`, (api) => api.companies.detachContact({ contact_id: contact.id, company_id: company.id }));
      } catch (error) {
        // No contact (deleted, archived, never created) or no longer attached: nothing to detach.
        if (!(error instanceof PermanentError && error.status === 404)) throw error;
      }
    }
    return { ok: true, destinationId: company.id };
  },
};
