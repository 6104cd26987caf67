// Events as Intercom data events (POST /events), which Intercom deduplicates on name + contact + created_at, so a
// redelivery is harmless. An event is named after its mapping, or by a mapped `event_name` (null or empty: not an
// event for Intercom); its metadata is the rest, as text, with the order's back-office link when configured. It
// goes on the person's contact, the customer's user by external id, or, for a guest, a lead created by the
// event's email.
import { PermanentError, RetryableError, type EventItem, type ItemOperation } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { forgetGuestLead, guestLead } from './contacts.ts';
import { EVENT_NAME_FIELD, metadataOf } from './fields.ts';

export const createEvent: ItemOperation<IntercomClient, EventItem> = {
  name: 'create data event',
  async perform(client, item) {
    const named = item.payload[EVENT_NAME_FIELD];
    if (Object.hasOwn(item.payload, EVENT_NAME_FIELD) && (named === null || named === '')) return { ok: true };
    if (named !== undefined && typeof named !== 'string') throw new PermanentError(`event ${item.eventType}: event_name must be text, not ${JSON.stringify(named)}`);
    const eventName = named ?? item.eventType;
    const contact = await eventContact(client, item);
    const createdAt = Math.floor((item.occurredAt ?? Date.now()) / 1000);
    try {
      await client.call(`sending event ${eventName}`, (api) =>
        api.events.create({ event_name: eventName, created_at: createdAt, ...(contact.id ? { id: contact.id } : { user_id: contact.user_id }), metadata: metadataOf(item.payload, orderLink(client, item)) } as never),
      );
    } catch (error) {
      // The customer's contact is not there yet (its record sync is behind): try again later.
      if (error instanceof PermanentError && error.status === 404) {
        // A guest's lead remembered here but gone from Intercom (merged away, deleted): the retry makes a new one.
        if (contact.guest) forgetGuestLead(client, contact.guest, contact.id!);
        throw new RetryableError(`${error.message} (the contact does not exist yet)`, { status: 404 });
      }
      throw error;
    }
    return { ok: true, ...(contact.personId && { personId: contact.personId }) };
  },
};

/** The contact an event goes to: the person's, or for a guest a lead created by the event's email. */
async function eventContact(client: IntercomClient, item: EventItem): Promise<{ id?: string; user_id?: string; personId?: string; guest?: string }> {
  if (item.person?.destinationId) return { id: item.person.destinationId };
  if (item.person?.key.startsWith('customer:')) return { user_id: item.person.key.slice('customer:'.length) };
  const email = typeof item.payload.email === 'string' ? item.payload.email : undefined;
  if (!email) throw new PermanentError(`event ${item.eventType}: no contact to put it on: commercetools names no customer for it, and a guest's event needs an email field to create the Intercom lead`);
  const guest = item.person?.key ?? email.toLowerCase();
  const lead = await guestLead(client, guest, email);
  return { id: lead, personId: lead, guest };
}

/** The back-office link of an order event, when configured. */
function orderLink(client: IntercomClient, item: EventItem): string | undefined {
  const template = client.settings.orderLink;
  return template && item.resource?.typeId === 'order' ? template.replaceAll('{id}', encodeURIComponent(item.resource.id)) : undefined;
}
