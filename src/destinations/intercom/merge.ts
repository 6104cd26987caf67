// A guest who registers: the guest's lead merged into the customer's user (POST /contacts/merge), so the user
// has the guest's events and conversations too.
import { RetryableError, type ItemOperation, type PersonMergeItem } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { forgetGuestLead } from './contacts.ts';

export const mergeLeadIntoUser: ItemOperation<IntercomClient, PersonMergeItem> = {
  name: 'merge lead into user',
  async perform(client, item) {
    const from = item.from.destinationId;
    const into = item.into.destinationId;
    // A guest who never reached Intercom has nothing to merge.
    if (!from) return { ok: true };
    if (!into) throw new RetryableError('the registered customer is not in Intercom yet');
    await client.call('merging a lead into its user', (api) => api.contacts.mergeLeadInUser({ from, into }));
    // The guest's events go to the user from now on (the identity table says so): the lead need not be remembered.
    await forgetGuestLead(client, item.from.person, from, { shared: true });
    return { ok: true };
  },
};
