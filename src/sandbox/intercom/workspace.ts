// The state of a simulated Intercom workspace and the rules Intercom applies to it: contacts (users and leads; a
// unique external_id, an email several contacts may share; a search index that lags behind creation), custom
// data attributes (a contact's custom_attributes must name existing ones, with values of their type; null removes
// a value), data events (deduplicated on name + contact + created_at, the first 10 metadata keys kept with their
// types), tags, companies (contacts attached and detached), notes by the workspace's admin, merges of leads into
// users, archive, unarchive and delete. The HTTP side
// (simulator.ts) checks shapes against the OpenAPI description; this module checks what only state can tell.
import { randomBytes } from 'node:crypto';

export interface SimContact {
  id: string;
  role: 'user' | 'lead';
  external_id: string | null;
  email: string | null;
  phone: string | null;
  name: string | null;
  signed_up_at: number | null;
  last_seen_at: number | null;
  custom_attributes: Record<string, unknown>;
  tags: string[];
  companies: string[];
  created_at: number;
  updated_at: number;
  archived: boolean;
  /** When search starts to see it (Intercom's index lags behind writes). */
  searchableAt: number;
}

export interface SimAttribute {
  id: number;
  name: string;
  model: 'contact' | 'company';
  data_type: 'string' | 'integer' | 'float' | 'boolean' | 'datetime' | 'date' | 'options';
  description: string;
  created_at: number;
}

export interface SimEvent {
  event_name: string;
  created_at: number;
  contactId: string;
  /** The metadata kept (the first 10 keys sent), each value as sent. */
  metadata: Record<string, unknown>;
  /** How Intercom reads each kept metadata value (the description's table of types). */
  metadataTypes: Record<string, EventMetadataType>;
}

/** At most this many metadata keys of an event are kept; the rest are ignored ("Metadata behaviour"). */
export const MAX_METADATA_KEYS = 10;

/** `unsupported`: a value of none of the documented types, which Intercom accepts but does not describe. */
export type EventMetadataType = 'string' | 'number' | 'date' | 'link' | 'rich_link' | 'monetary_amount' | 'unsupported';

/**
 * The type of one metadata value, by the table in createDataEvent's description (and the Event Metadata Types
 * page, https://developers.intercom.com/docs/references/1.3/rest-api/data-events/event-metadata-types): a JSON
 * string (a link when it is an http or https URI), a JSON number (a date when the key ends in `_date`: Unix
 * seconds), a rich link `{ url, value }`, or a monetary amount `{ amount, currency }` with the amount a whole
 * number of minor units. Anything else is `unsupported` ("we do not currently support nested JSON structure"):
 * the description names no error for it, and Intercom accepts such events (an object it did not read as a rich
 * link was stored and shown as "[object Object]": https://github.com/intercom/intercom-go/issues/146).
 */
export function eventMetadataType(name: string, value: unknown): EventMetadataType {
  if (typeof value === 'string') return /^https?:\/\/\S+$/i.test(value) ? 'link' : 'string';
  if (typeof value === 'number' && Number.isFinite(value)) return name.endsWith('_date') && Number.isInteger(value) ? 'date' : 'number';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'unsupported';
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort().join(',');
  if (keys === 'url,value' && typeof object.url === 'string' && /^https?:\/\//i.test(object.url) && typeof object.value === 'string') return 'rich_link';
  if (keys === 'amount,currency' && Number.isSafeInteger(object.amount) && (object.amount as number) >= 0 && typeof object.currency === 'string') return 'monetary_amount';
  return 'unsupported';
}

export interface SimNote {
  id: string;
  contactId: string;
  body: string;
  created_at: number;
}

/** The workspace's one admin: the author of every note. */
export const SIM_ADMIN = { type: 'admin', id: '991267583', name: 'Simulated Admin', email: 'admin@simulated-intercom.example', away_mode_enabled: false, away_mode_reassign: false } as const;

export interface SimCompany {
  id: string;
  company_id: string;
  name: string | null;
  custom_attributes: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

/** A refusal the HTTP side turns into Intercom's error body. */
export class WorkspaceError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const id = () => randomBytes(12).toString('hex');

export class Workspace {
  readonly contacts = new Map<string, SimContact>();
  readonly attributes = new Map<string, SimAttribute>();
  readonly events: SimEvent[] = [];
  readonly tags = new Map<string, { id: string; name: string }>();
  readonly companies = new Map<string, SimCompany>();
  readonly notes: SimNote[] = [];
  readonly workspaceId = randomBytes(4).toString('hex');
  #eventKeys = new Set<string>();
  #attributeIds = 1000;
  #tagIds = 100;
  #noteIds = 10;

  readonly options: { searchLagMs: number; now: () => number };

  constructor(options: { searchLagMs: number; now: () => number }) {
    this.options = options;
  }

  #seconds(): number {
    return Math.floor(this.options.now() / 1000);
  }

  /** Custom attributes must exist and hold values of their data type; nested values are refused. */
  #checkCustomAttributes(values: Record<string, unknown> | null | undefined, model: 'contact' | 'company'): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(values ?? {})) {
      const attribute = this.attributes.get(`${model}:${name}`);
      if (!attribute) throw new WorkspaceError(400, 'parameter_invalid', `Custom attribute '${name}' does not exist`);
      if (value !== null && !fits(value, attribute.data_type)) throw new WorkspaceError(400, 'parameter_invalid', `Custom attribute '${name}' must be of type ${attribute.data_type}`);
      out[name] = value;
    }
    return out;
  }

  /**
   * The contact a create (or an update's new external_id) collides with, as Intercom answers it: 409 naming it,
   * with a message of its own when that contact is archived. Intercom identifies a contact by its id, then its
   * external_id, then its email, and does not fall back to the email when an external_id is given: two users with
   * one email and different external_ids are two contacts
   * (https://www.intercom.com/help/en/articles/5053685-why-do-i-have-duplicate-users,
   * https://www.intercom.com/help/en/articles/268-what-is-user_id-and-why-would-i-want-to-use-it). Leads are
   * never matched by email: each create makes a lead (intercom/intercom-node#266, segmentio/action-destinations#627).
   * The archived case is the "archived duplicate" 409 example of intercom/Intercom-OpenAPI#543 ("An archived
   * contact matching those details already exists with id=…", code conflict), the live one its "live duplicate".
   */
  #conflict(role: 'user' | 'lead', externalId: string | null | undefined, email: string | null | undefined, except?: string): void {
    for (const contact of this.contacts.values()) {
      if (contact.id === except) continue;
      const sameExternal = Boolean(externalId) && contact.external_id === externalId;
      const sameUserEmail = !externalId && Boolean(email) && role === 'user' && contact.role === 'user' && contact.email?.toLowerCase() === email!.toLowerCase();
      if (!sameExternal && !sameUserEmail) continue;
      throw new WorkspaceError(409, 'conflict', `${contact.archived ? 'An archived contact' : 'A contact'} matching those details already exists with id=${contact.id}`);
    }
  }

  createContact(body: Record<string, unknown>): SimContact {
    const role = body.role === 'lead' ? 'lead' : 'user';
    const externalId = (body.external_id as string | undefined) ?? null;
    const email = (body.email as string | undefined) ?? null;
    this.#conflict(role, externalId, email);
    const now = this.#seconds();
    const contact: SimContact = {
      id: id(),
      role,
      external_id: externalId,
      email,
      phone: (body.phone as string | null | undefined) ?? null,
      name: (body.name as string | null | undefined) ?? null,
      signed_up_at: (body.signed_up_at as number | null | undefined) ?? null,
      last_seen_at: (body.last_seen_at as number | null | undefined) ?? null,
      custom_attributes: this.#checkCustomAttributes(body.custom_attributes as Record<string, unknown> | undefined, 'contact'),
      tags: [],
      companies: [],
      created_at: now,
      updated_at: now,
      archived: false,
      searchableAt: this.options.now() + this.options.searchLagMs,
    };
    this.contacts.set(contact.id, contact);
    return contact;
  }

  contact(contactId: string): SimContact {
    const contact = this.contacts.get(contactId);
    if (!contact || contact.archived) throw new WorkspaceError(404, 'not_found', 'User Not Found');
    return contact;
  }

  updateContact(contactId: string, body: Record<string, unknown>): SimContact {
    const contact = this.contact(contactId);
    const role = body.role === 'user' || body.role === 'lead' ? body.role : contact.role;
    // Only a new external_id can collide: an email may be shared.
    if (typeof body.external_id === 'string' && body.external_id !== contact.external_id) this.#conflict(role, body.external_id, undefined, contact.id);
    const custom = body.custom_attributes === undefined ? undefined : this.#checkCustomAttributes(body.custom_attributes as Record<string, unknown> | null, 'contact');
    for (const key of ['external_id', 'email', 'phone', 'name', 'signed_up_at', 'last_seen_at'] as const) {
      if (body[key] !== undefined) (contact as unknown as Record<string, unknown>)[key] = body[key];
    }
    contact.role = role;
    if (custom) contact.custom_attributes = { ...contact.custom_attributes, ...custom };
    contact.updated_at = this.#seconds();
    return contact;
  }

  findByExternalId(externalId: string): SimContact {
    for (const contact of this.contacts.values()) if (contact.external_id === externalId && !contact.archived) return contact;
    throw new WorkspaceError(404, 'not_found', 'User Not Found');
  }

  /** Contacts matching a search query the index already sees. */
  search(query: Record<string, unknown>): SimContact[] {
    const now = this.options.now();
    return [...this.contacts.values()].filter((contact) => !contact.archived && contact.searchableAt <= now && matches(contact, query));
  }

  mergeContacts(from: string, into: string): SimContact {
    const lead = this.contact(from);
    const user = this.contact(into);
    if (lead.role !== 'lead') throw new WorkspaceError(400, 'parameter_invalid', 'from must be a lead');
    if (user.role !== 'user') throw new WorkspaceError(400, 'parameter_invalid', 'into must be a user');
    for (const event of this.events) if (event.contactId === lead.id) event.contactId = user.id;
    user.tags = [...new Set([...user.tags, ...lead.tags])];
    user.companies = [...new Set([...user.companies, ...lead.companies])];
    user.custom_attributes = { ...lead.custom_attributes, ...user.custom_attributes };
    user.updated_at = this.#seconds();
    this.contacts.delete(lead.id);
    return user;
  }

  archiveContact(contactId: string): SimContact {
    const contact = this.contact(contactId);
    contact.archived = true;
    return contact;
  }

  /**
   * Brings an archived contact back (POST /contacts/{id}/unarchive); a contact that is not archived stays as it is.
   * An unknown id is a 404 "Contact Not Found"
   * (https://developers.intercom.com/docs/references/2.6/rest-api/contacts/unarchive-a-contact).
   */
  unarchiveContact(contactId: string): SimContact {
    const contact = this.contacts.get(contactId);
    if (!contact) throw new WorkspaceError(404, 'not_found', 'Contact Not Found');
    contact.archived = false;
    contact.updated_at = this.#seconds();
    return contact;
  }

  /** Deletes a contact, archived or not (Intercom deletes archived contacts too: intercom/intercom-node#333). */
  deleteContact(contactId: string): SimContact {
    const contact = this.contacts.get(contactId);
    if (!contact) throw new WorkspaceError(404, 'not_found', 'User Not Found');
    this.contacts.delete(contactId);
    return contact;
  }

  createAttribute(body: Record<string, unknown>): SimAttribute {
    const model = body.model as 'contact' | 'company';
    const name = body.name as string;
    if (this.attributes.has(`${model}:${name}`)) throw new WorkspaceError(400, 'parameter_invalid', `You already have '${name}' in your workspace. Please choose a different name.`);
    if (!/^[A-Za-z0-9_ -]{1,190}$/.test(name)) throw new WorkspaceError(400, 'parameter_invalid', `Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens`);
    const attribute: SimAttribute = { id: (this.#attributeIds += 1), name, model, data_type: body.data_type as SimAttribute['data_type'], description: (body.description as string | undefined) ?? '', created_at: this.#seconds() };
    this.attributes.set(`${model}:${name}`, attribute);
    return attribute;
  }

  /**
   * Records a data event as Intercom's "Submit a data event" describes it (spec/intercom, createDataEvent;
   * https://developers.intercom.com/docs/references/unstable/rest-api/api.intercom.io/Data-Events/createDataEvent/):
   * an event with the same name, contact and created_at as one already stored is answered 202 and not stored
   * ("Event de-duplication"); only the first 10 metadata keys, in the order sent, are kept and the rest ignored
   * without an error ("Metadata behaviour"); and each kept value is stored with its metadata type (eventMetadataType).
   */
  createEvent(body: Record<string, unknown>): void {
    const contact = this.#eventContact(body);
    const key = `${String(body.event_name)}\u0000${contact.id}\u0000${String(body.created_at)}`;
    if (this.#eventKeys.has(key)) return;
    const metadata: Record<string, unknown> = {};
    const metadataTypes: Record<string, EventMetadataType> = {};
    for (const [name, value] of Object.entries((body.metadata ?? {}) as Record<string, unknown>).slice(0, MAX_METADATA_KEYS)) {
      metadata[name] = value;
      metadataTypes[name] = eventMetadataType(name, value);
    }
    this.#eventKeys.add(key);
    this.events.push({ event_name: body.event_name as string, created_at: body.created_at as number, contactId: contact.id, metadata, metadataTypes });
  }

  #eventContact(body: Record<string, unknown>): SimContact {
    if (typeof body.id === 'string') return this.contact(body.id);
    if (typeof body.user_id === 'string') return this.findByExternalId(body.user_id);
    const email = typeof body.email === 'string' ? body.email.toLowerCase() : undefined;
    const found = [...this.contacts.values()].find((contact) => !contact.archived && contact.email?.toLowerCase() === email);
    if (!found) throw new WorkspaceError(404, 'not_found', 'User Not Found');
    return found;
  }

  /** A note on a contact, by the workspace's admin (admin_id, when given, must be theirs). */
  createNote(contactId: string, body: Record<string, unknown>): SimNote {
    const contact = this.contact(contactId);
    // The description's own example sends admin_id as a number.
    const adminId = typeof body.admin_id === 'number' ? String(body.admin_id) : body.admin_id;
    if (adminId !== undefined && adminId !== SIM_ADMIN.id) throw new WorkspaceError(404, 'not_found', 'Resource Not Found');
    if (typeof body.body !== 'string' || body.body.trim() === '') throw new WorkspaceError(400, 'parameter_invalid', 'Note body is required');
    const note = { id: String((this.#noteIds += 1)), contactId: contact.id, body: body.body, created_at: this.#seconds() };
    this.notes.push(note);
    return note;
  }

  /** A contact's notes, newest first. */
  notesOf(contactId: string): SimNote[] {
    const contact = this.contact(contactId);
    return this.notes.filter((note) => note.contactId === contact.id).reverse();
  }

  createTag(name: string): { id: string; name: string } {
    for (const tag of this.tags.values()) if (tag.name === name) return tag;
    const tag = { id: String((this.#tagIds += 1)), name };
    this.tags.set(tag.id, tag);
    return tag;
  }

  tagContact(contactId: string, tagId: string, attach: boolean): { id: string; name: string } {
    const contact = this.contact(contactId);
    const tag = this.tags.get(tagId);
    if (!tag) throw new WorkspaceError(404, 'tag_not_found', 'Tag not found');
    contact.tags = attach ? [...new Set([...contact.tags, tag.id])] : contact.tags.filter((t) => t !== tag.id);
    return tag;
  }

  upsertCompany(body: Record<string, unknown>): SimCompany {
    const companyId = body.company_id as string | undefined;
    if (!companyId) throw new WorkspaceError(400, 'parameter_invalid', 'company_id is required');
    const existing = [...this.companies.values()].find((company) => company.company_id === companyId);
    const now = this.#seconds();
    const custom = this.#checkCustomAttributes(body.custom_attributes as Record<string, unknown> | undefined, 'company');
    if (existing) {
      if (body.name !== undefined) existing.name = body.name as string;
      existing.custom_attributes = { ...existing.custom_attributes, ...custom };
      existing.updated_at = now;
      return existing;
    }
    const company: SimCompany = { id: id(), company_id: companyId, name: (body.name as string | undefined) ?? null, custom_attributes: custom, created_at: now, updated_at: now };
    this.companies.set(company.id, company);
    return company;
  }

  attachCompany(contactId: string, companyId: string): SimCompany {
    const contact = this.contact(contactId);
    const company = this.companies.get(companyId);
    if (!company) throw new WorkspaceError(404, 'company_not_found', 'Company Not Found');
    contact.companies = [...new Set([...contact.companies, company.id])];
    return company;
  }

  /**
   * Detaches a contact from a company (DELETE /contacts/{contact_id}/companies/{company_id}): the description's
   * 404s are an unknown contact ("User Not Found") and an unknown company (company_not_found); it names none for
   * a contact that is not attached, so that answers the company as it is.
   */
  detachCompany(contactId: string, companyId: string): SimCompany {
    const contact = this.contact(contactId);
    const company = this.companies.get(companyId);
    if (!company) throw new WorkspaceError(404, 'company_not_found', 'Company Not Found');
    contact.companies = contact.companies.filter((id) => id !== company.id);
    return company;
  }
}

function fits(value: unknown, type: SimAttribute['data_type']): boolean {
  switch (type) {
    case 'string':
    case 'options':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'date':
    case 'datetime':
      return typeof value === 'number' && Number.isInteger(value);
  }
}

/** Intercom's search: a single filter or an AND/OR of filters, on the fields ctbridge searches by. */
function matches(contact: SimContact, query: Record<string, unknown>): boolean {
  const operator = query.operator as string;
  if (Array.isArray(query.value) && (operator === 'AND' || operator === 'OR')) {
    const parts = (query.value as Array<Record<string, unknown>>).map((part) => matches(contact, part));
    return operator === 'AND' ? parts.every(Boolean) : parts.some(Boolean);
  }
  const field = query.field as string;
  const actual = field === 'id' ? contact.id : (contact as unknown as Record<string, unknown>)[field];
  const expected = query.value;
  const equal = typeof actual === 'string' && typeof expected === 'string' ? actual.toLowerCase() === expected.toLowerCase() : actual === expected;
  if (operator === '=') return equal;
  if (operator === '!=') return !equal;
  throw new WorkspaceError(400, 'parameter_invalid', `operator ${operator} is not supported by this simulator for ${field}`);
}
