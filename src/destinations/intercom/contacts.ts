// Customer records as Intercom users (external_id = the commercetools customer id): an upsert updates the known
// contact with what changed (or creates it with the whole record, finding through the 409 the one Intercom
// already has with that external_id, and bringing it back when an admin archived it), with its tags; a delete
// archives or deletes the contact (settings.onDelete). A guest's lead (guestLead) is created once per guest, by one
// process of all those sending to the destination.
import { PermanentError, RetryableError, type ConnectorState, type ItemOperation, type ItemOutcome, type RecordItem } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { contactBody, withRemovals } from './fields.ts';
import { syncTags } from './tags.ts';

export const upsertContact: ItemOperation<IntercomClient, RecordItem> = {
  name: 'upsert contact',
  async perform(client, item) {
    const update = async (id: string, body: Record<string, unknown>, tags: Pick<RecordItem, 'fields' | 'previous'>): Promise<ItemOutcome> => {
      // Only the tags changed: no contact update to send.
      if (Object.keys(body).length > 0) await client.call(`updating contact ${id}`, (api) => api.contacts.update({ contact_id: id, ...body }));
      await syncTags(client, id, tags);
      return { ok: true, destinationId: id, personId: id };
    };
    const known = item.person?.destinationId ?? item.destinationId;
    if (known) {
      try {
        // What changed, and null for what was sent before and is gone now (a removed phone): Intercom removes it.
        return await update(known, contactBody(withRemovals(item.fields, item.record, item.previous), client.settings, client.undeclared), item);
      } catch (error) {
        // Deleted, merged away or archived in Intercom meanwhile (an archived contact answers 404 too): the create
        // below tells which.
        if (!(error instanceof PermanentError && error.status === 404)) throw error;
      }
    }
    // The whole record, not the delta: a new contact needs every field.
    const whole = contactBody(item.record, client.settings, client.undeclared);
    const contact = await client.createContact(`creating contact ${item.resourceId}`, { role: 'user', external_id: item.resourceId, ...whole });
    if (contact.created) {
      await syncTags(client, contact.id, { fields: item.record, previous: undefined });
      return { ok: true, destinationId: contact.id, personId: contact.id };
    }
    // An admin archived the customer's contact; commercetools still has the customer (this is its upsert), so it
    // comes back — archived, it takes no update and no event (POST /contacts/{id}/unarchive).
    if (contact.archived) await client.call(`unarchiving contact ${contact.id}`, (api) => api.contacts.unarchive({ contact_id: contact.id }));
    // Intercom's contact missed what changed while it was archived or unknown to ctbridge: the whole record, and
    // null for what was sent before and is gone now.
    return update(contact.id, contactBody(withRemovals(item.record, item.record, item.previous), client.settings, client.undeclared), { fields: item.record, previous: item.previous });
  },
};

/** The leads being created or made per guest and destination in this process, so that concurrent sends share one. */
const leadsOf = new WeakMap<IntercomClient, Map<string, Promise<string>>>();
/** Guests remembered per destination; beyond that the oldest are forgotten (the store and the identity table know them). */
const MAX_REMEMBERED_LEADS = 10_000;
/**
 * How long a process's claim to create a guest's lead holds off the others: longer than a create can take, the wait
 * for the rate limiter included, so it only runs out when the process died between claiming and recording.
 */
export const LEAD_CLAIM_MS = 5 * 60_000;
/** How soon the event of a guest whose lead another process is creating tries again. */
const LEAD_CLAIMED_RETRY_MS = 1_000;

/** What the store holds per guest: the lead, or a process's claim to create it. */
type LeadEntry = { leadId: string } | { claimedUntil: number };

const leadKey = (guest: string) => `guest-lead/${guest}`;

/**
 * The lead of a guest the identity table has no Intercom id for yet, created by the guest's email. Intercom makes
 * a new lead for every create (leads are not unique by email), so the events of one guest share one create: in
 * this process, those delivered together (one batch, or batches in flight at once) share its promise; across
 * processes and restarts, the store (the connector's state, when the engine gives one) holds the lead once made,
 * and before that the claim of the process making it, whose sends the others retry shortly. Once an event is
 * delivered the identity table holds the lead's id for the next ones. `guest` is the guest's person key (its store
 * and keyed email digest), `shared` then; or the email when the event names no person, which is not `shared`: an
 * email is never a key in the store, so such a guest's lead is remembered in this process only.
 */
export function guestLead(client: IntercomClient, guest: string, email: string, options: { shared: boolean }): Promise<string> {
  let leads = leadsOf.get(client);
  if (!leads) {
    leads = new Map<string, Promise<string>>();
    leadsOf.set(client, leads);
  }
  let lead = leads.get(guest);
  if (!lead) {
    if (leads.size >= MAX_REMEMBERED_LEADS) leads.delete(leads.keys().next().value!);
    lead = client.state && options.shared ? storedLead(client, client.state, guest, email) : createLead(client, email);
    // A failed create is not remembered: the retry creates it.
    const remembered = leads;
    const created = lead;
    created.catch(() => remembered.get(guest) === created && remembered.delete(guest));
    leads.set(guest, lead);
  }
  return lead;
}

function createLead(client: IntercomClient, email: string): Promise<string> {
  return client.createContact('creating a lead for a guest', { role: 'lead', email }).then((contact) => contact.id);
}

async function storedLead(client: IntercomClient, state: ConnectorState, guest: string, email: string): Promise<string> {
  const key = leadKey(guest);
  const held = (await state.get([key])).get(key) as LeadEntry | undefined;
  if (held && 'leadId' in held) return held.leadId;
  const claimedElsewhere = () => new RetryableError('another process is creating this guest\'s Intercom lead', { retryAfterMs: LEAD_CLAIMED_RETRY_MS });
  if (held && held.claimedUntil > client.now()) throw claimedElsewhere();
  // A claim whose process died before recording the lead: of the processes finding it, the one that takes it goes on.
  if (held && (await state.take([key])).length === 0) throw claimedElsewhere();
  if (!(await state.add({ key, value: { claimedUntil: client.now() + LEAD_CLAIM_MS } satisfies LeadEntry }))) throw claimedElsewhere();
  let leadId: string;
  try {
    leadId = await createLead(client, email);
  } catch (error) {
    // Not made: the claim goes, so the retry (this process's or another's) creates it.
    await state.take([key]).catch(() => undefined);
    throw error;
  }
  await state.put([{ key, value: { leadId } satisfies LeadEntry }]);
  return leadId;
}

/**
 * Forgets the lead remembered for a guest when Intercom no longer has it (merged away, deleted), so that the next
 * event makes another; or once it is merged into the guest's user, whose id the identity table then gives.
 */
export async function forgetGuestLead(client: IntercomClient, guest: string, leadId: string, options: { shared: boolean }): Promise<void> {
  const leads = leadsOf.get(client);
  const lead = leads?.get(guest);
  if (lead && (await lead.catch(() => undefined)) === leadId && leads!.get(guest) === lead) leads!.delete(guest);
  if (!client.state || !options.shared) return;
  const key = leadKey(guest);
  const held = (await client.state.get([key])).get(key) as LeadEntry | undefined;
  if (held && 'leadId' in held && held.leadId === leadId) await client.state.take([key]);
}

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
