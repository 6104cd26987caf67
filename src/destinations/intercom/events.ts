// Events as Intercom data events (POST /events). An event is named after its mapping, or by a mapped `event_name`
// (null or empty: not an event for Intercom); its metadata is the rest, typed as Intercom documents it (fields.ts
// metadataOf), with the order's back-office link as a rich link when configured. It goes on the person's contact,
// the customer's user by external id, or, for a guest, a lead created by the event's email.
//
// Intercom takes an event with the same name, contact and created_at (seconds) as one it has for a duplicate: it
// answers 202 and stores nothing (createDataEvent's description, "Event de-duplication", spec/intercom). So each
// event claims its second per name and person in the store (kit EventSeconds, store/event-seconds.ts): its own
// second when free — a redelivery gets the second it had, and stays a harmless duplicate — else the first free
// second after it (a customer's second order in the same second goes one second later), with the true second in
// the metadata as `occurred_at_date`.
import { PermanentError, RetryableError, type EventItem, type ItemOperation } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { forgetGuestLead, guestLead } from './contacts.ts';
import { EVENT_NAME_FIELD, metadataOf, type MetadataValue } from './fields.ts';

/** The metadata key of a moved event's true time (a `*_date` key: Intercom shows Unix seconds as a date). */
export const OCCURRED_AT_KEY = 'occurred_at_date';

export const createEvent: ItemOperation<IntercomClient, EventItem> = {
  name: 'create data event',
  async perform(client, item) {
    const named = item.payload[EVENT_NAME_FIELD];
    if (Object.hasOwn(item.payload, EVENT_NAME_FIELD) && (named === null || named === '')) return { ok: true, skipped: true };
    if (named !== undefined && typeof named !== 'string') throw new PermanentError(`event ${item.eventType}: event_name must be text, not ${JSON.stringify(named)}`);
    const eventName = named ?? item.eventType;
    const contact = await eventContact(client, item);
    const occurred = Math.floor((item.occurredAt ?? Date.now()) / 1000);
    const createdAt = await client.eventSeconds.claim({
      scope: JSON.stringify([eventName, item.person?.key ?? contact.id ?? `customer:${contact.user_id}`]),
      eventKey: item.idempotencyKey,
      second: occurred,
      person: item.person?.key,
    });
    const link = orderLink(client, item);
    const { metadata, left } = metadataOf(item.payload, link ? { order_url: link } : {}, createdAt === occurred ? {} : { [OCCURRED_AT_KEY]: occurred });
    if (left.length > 0) leftOut(client, eventName, left);
    try {
      await client.call(`sending event ${eventName}`, (api) =>
        api.events.create({ event_name: eventName, created_at: createdAt, ...(contact.id ? { id: contact.id } : { user_id: contact.user_id }), metadata } as never),
      );
    } catch (error) {
      // The customer's contact is not there yet (its record sync is behind): try again later.
      if (error instanceof PermanentError && error.status === 404) {
        // A guest's lead remembered here but gone from Intercom (merged away, deleted): the retry makes a new one.
        if (contact.guest) await forgetGuestLead(client, contact.guest.key, contact.id!, contact.guest);
        throw new RetryableError(`${error.message} (the contact does not exist yet)`, { status: 404 });
      }
      throw error;
    }
    return { ok: true, ...(contact.personId && { personId: contact.personId }) };
  },
};

/** The contact an event goes to: the person's, or for a guest a lead created by the event's email. */
async function eventContact(client: IntercomClient, item: EventItem): Promise<{ id?: string; user_id?: string; personId?: string; guest?: { key: string; shared: boolean } }> {
  if (item.person?.destinationId) return { id: item.person.destinationId };
  if (item.person?.key.startsWith('customer:')) return { user_id: item.person.key.slice('customer:'.length) };
  const email = typeof item.payload.email === 'string' ? item.payload.email : undefined;
  if (!email) throw new PermanentError(`event ${item.eventType}: no contact to put it on: commercetools names no customer for it, and a guest's event needs an email field to create the Intercom lead`);
  // Without a person (its keyed email digest), the guest is known by the email itself: remembered in this
  // process only, never written to the store.
  const guest = { key: item.person?.key ?? email.toLowerCase(), shared: item.person !== undefined };
  const lead = await guestLead(client, guest.key, email, guest);
  return { id: lead, personId: lead, guest };
}

/**
 * The back-office link of an order event, when configured, as a rich link: its text the mapped order_number
 * when the event has one, else the order id.
 */
function orderLink(client: IntercomClient, item: EventItem): MetadataValue | undefined {
  const template = client.settings.orderLink;
  if (!template || item.resource?.typeId !== 'order') return undefined;
  const number = item.payload.order_number;
  const text = typeof number === 'string' && number !== '' ? number : typeof number === 'number' ? String(number) : item.resource.id;
  return { url: template.replaceAll('{id}', encodeURIComponent(item.resource.id)), value: text };
}

const warnedOf = new WeakMap<IntercomClient, Set<string>>();

/**
 * Says once per event name (up to a thousand) which metadata keys did not fit in Intercom's 10: the mapping has
 * more keys than `config check` saw (an object-valued field flattens into several).
 */
function leftOut(client: IntercomClient, eventName: string, keys: string[]): void {
  let warned = warnedOf.get(client);
  if (!warned) warnedOf.set(client, (warned = new Set()));
  if (warned.has(eventName) || warned.size >= 1_000) return;
  warned.add(eventName);
  client.logger.warn({ event: eventName, left: keys }, 'an Intercom event keeps 10 metadata keys: these were left out (the first 10 in mapping order are sent)');
}
