// Consent, decided when a contact is sent (not only when it is mapped, so a backfill, a replay or any other
// record reaching the contact obeys it too). A contact mapping gives each channel's state from commercetools
// (consent_email / consent_sms: true, false or null, with consent_email_at / consent_sms_at) and the suppression
// (suppressed, suppressed_at); a mapping may also give Ometria's marketing_optin directly. What was last sent per
// contact is kept in the store (`consent:<contact id>`): a state older than the one Ometria has is not sent (an
// opt-out is never overwritten by an older opt-in, whatever the arrival order), the same state is not sent twice
// (an opt-in sent again would be a new subscribe event), and while a contact is suppressed nothing sent to them
// is an opt-in — marketing_optin, SMS marketing and @force_optin are rewritten to opted-out.
import type { OmetriaClient } from './client.ts';

/** The mapped fields this module reads; they are ctbridge's, never sent to Ometria as they are. */
export const CONSENT_FIELDS = ['consent_email', 'consent_email_at', 'consent_sms', 'consent_sms_at', 'suppressed', 'suppressed_at'] as const;

interface ChannelState {
  optin: boolean;
  /** ms since epoch; 0 when commercetools said no time. */
  at: number;
}

export interface ContactConsent {
  email?: ChannelState;
  sms?: ChannelState;
  suppressed?: ChannelState;
}

export const consentKey = (contactId: string) => `consent:${contactId}`;

/** A contact about to be pushed, its consent worked out against what Ometria has. */
export interface ConsentDecision {
  /** The Ometria fields to set on the contact (consent fields removed, decided ones added). */
  body: Record<string, unknown>;
  /** The state to keep once the push succeeded; undefined when nothing changed. */
  next: ContactConsent | undefined;
}

/** Reads the stored consent of these contacts, in one query. */
export async function storedConsent(client: OmetriaClient, contactIds: readonly string[]): Promise<Map<string, ContactConsent>> {
  const found = await client.state.get(contactIds.map(consentKey));
  return new Map(contactIds.flatMap((id) => (found.has(consentKey(id)) ? [[id, found.get(consentKey(id)) as ContactConsent]] : [])));
}

/**
 * The contact body with its consent decided: `body` is the mapped contact (Ometria fields plus ctbridge's consent
 * fields), `record` the whole mapped record (a contact sent with only its changed fields still knows its consent).
 */
export function decideConsent(body: Record<string, unknown>, record: Record<string, unknown>, stored: ContactConsent | undefined): ConsentDecision {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) if (!(CONSENT_FIELDS as readonly string[]).includes(name)) out[name] = value;
  const next: ContactConsent = { ...stored };
  let changed = false;

  const suppression = channelOf(record.suppressed, record.suppressed_at);
  if (suppression && isNewer(suppression, stored?.suppressed)) {
    next.suppressed = suppression;
    changed = true;
  }
  const suppressed = next.suppressed?.optin === true;

  // E-mail: ctbridge's consent fields, or Ometria's own when the mapping gives them.
  const email = channelOf(record.consent_email, record.consent_email_at) ?? fromOptin(record.marketing_optin, record.timestamp_subscribed, record.timestamp_unsubscribed);
  delete out.marketing_optin;
  delete out.timestamp_subscribed;
  delete out.timestamp_unsubscribed;
  delete out['@force_optin'];
  if (suppressed) {
    // Suppressed: opted out, once per suppression (its time is the unsubscribe time).
    const optedOut = { optin: false, at: next.suppressed!.at };
    if (stored?.email?.optin !== false || changed) {
      Object.assign(out, { marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: iso(optedOut.at) });
      next.email = optedOut;
      changed = true;
    }
  } else if (email && isNewer(email, stored?.email)) {
    Object.assign(out, email.optin ? { marketing_optin: 'EXPLICITLY_OPTEDIN', timestamp_subscribed: iso(email.at) } : { marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: iso(email.at) });
    next.email = email;
    changed = true;
  }

  // SMS marketing: channels.sms.allow_marketing with its time; transactional SMS is not a consent ctbridge manages.
  const channels = isObject(out.channels) ? { ...out.channels } : undefined;
  const smsOut: Record<string, unknown> = channels && isObject(channels.sms) ? { ...channels.sms } : {};
  delete smsOut.allow_marketing;
  delete smsOut.dt_updated_marketing;
  const sms = channelOf(record.consent_sms, record.consent_sms_at) ?? channelOf(isObject(record.channels) && isObject(record.channels.sms) ? record.channels.sms.allow_marketing : undefined, isObject(record.channels) && isObject(record.channels.sms) ? record.channels.sms.dt_updated_marketing : undefined);
  if (suppressed) {
    if (stored?.sms?.optin !== false || changed) {
      Object.assign(smsOut, { allow_marketing: false, dt_updated_marketing: iso(next.suppressed!.at) });
      next.sms = { optin: false, at: next.suppressed!.at };
      changed = true;
    }
  } else if (sms && isNewer(sms, stored?.sms)) {
    Object.assign(smsOut, { allow_marketing: sms.optin, dt_updated_marketing: iso(sms.at) });
    next.sms = sms;
    changed = true;
  }
  if (Object.keys(smsOut).length > 0) out.channels = { ...channels, sms: smsOut };
  else if (channels) {
    delete channels.sms;
    if (Object.keys(channels).length > 0) out.channels = channels;
    else delete out.channels;
  }
  return { body: out, next: changed ? next : undefined };
}

/**
 * The last line: whatever produced it, a contact body for a suppressed contact carries no opt-in. Returns the body
 * to send.
 */
export function withoutOptIn(body: Record<string, unknown>, suppressedAt: number): Record<string, unknown> {
  const out = { ...body };
  delete out['@force_optin'];
  if (out.marketing_optin === 'EXPLICITLY_OPTEDIN' || out.timestamp_subscribed !== undefined) {
    delete out.timestamp_subscribed;
    Object.assign(out, { marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: iso(suppressedAt) });
  }
  if (isObject(out.channels) && isObject(out.channels.sms) && out.channels.sms.allow_marketing === true) {
    out.channels = { ...out.channels, sms: { ...out.channels.sms, allow_marketing: false, dt_updated_marketing: iso(suppressedAt) } };
  }
  return out;
}

/** A channel's state from a mapped value (true/false; anything else: unknown) and its time. */
function channelOf(value: unknown, at: unknown): ChannelState | undefined {
  if (typeof value !== 'boolean') return undefined;
  return { optin: value, at: timeOf(at) };
}

function fromOptin(value: unknown, subscribed: unknown, unsubscribed: unknown): ChannelState | undefined {
  if (value === 'EXPLICITLY_OPTEDIN') return { optin: true, at: timeOf(subscribed) };
  if (value === 'EXPLICITLY_OPTEDOUT') return { optin: false, at: timeOf(unsubscribed) };
  return undefined;
}

/** Newer than what Ometria has: a later time, or the same time with another state; nothing stored: always. */
function isNewer(incoming: ChannelState, stored: ChannelState | undefined): boolean {
  if (!stored) return true;
  if (incoming.at !== stored.at) return incoming.at > stored.at;
  // The same instant both ways (two sources disagree): the opt-out wins.
  return incoming.optin !== stored.optin && !incoming.optin;
}

function timeOf(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return at;
  }
  return 0;
}

const iso = (at: number) => new Date(at).toISOString();
const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
