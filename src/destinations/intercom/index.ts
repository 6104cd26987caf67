// Intercom destination (`type: intercom`): customer records become users (external_id = the commercetools
// customer id) with their order context read from `$orders` in the customer mapping (contacts.ts, tags.ts);
// business units become companies with their associates' contacts attached (companies.ts); events become data
// events, a guest's on a lead created by email (events.ts); a guest who registers is merged into the user
// (merge.ts). Mapped fields named like Intercom's own contact fields go there; the others are custom attributes,
// declared with their type in `attributes` and created at start-up when missing (attributes.ts). The SDK, its
// pacing and its errors are client.ts. This file is the definition: settings, limits, field checks and which
// operation handles which item.
import { defineDestination, type FieldProblem } from '../kit/index.ts';
import { ensureAttributes } from './attributes.ts';
import { createIntercomClient } from './client.ts';
import { upsertCompany } from './companies.ts';
import { removeContact, upsertContact } from './contacts.ts';
import { createEvent } from './events.ts';
import { COMPANY_FIELDS, MAX_METADATA_KEYS, NOT_METADATA, RECORD_SOURCES, STANDARD_FIELDS, TAGS_FIELD } from './fields.ts';
import { mergeLeadIntoUser } from './merge.ts';
import { readContact } from './read.ts';
import { intercomSettings } from './settings.ts';

/**
 * The share of the workspace's limit the shared limiter paces calls at: what Intercom counts in a window and what
 * the limiter schedules differ by a little (clocks, window edges); the rest of the budget absorbs that without a 429.
 */
const PACE = 0.97;

export const intercomDestination = defineDestination({
  type: 'intercom',
  description: 'Intercom contacts (users and leads) and data events, through the official SDK',
  settings: intercomSettings,
  // Each call carries one contact or event; batches only bound what one worker has in flight.
  limits: (settings) => ({ maxBatchSize: 20, rateLimit: { requestsPerSecond: (settings.limitPerMinute / 60) * PACE, burst: Math.max(1, Math.floor(settings.limitPerMinute / 600)) } }),
  delta: 'changed',
  checkFields(settings, mapped) {
    const problems: FieldProblem[] = [];
    const declared = Object.keys(settings.attributes);
    for (const [mapping, fields] of Object.entries(mapped.records)) {
      const source = mapped.recordSources[mapping];
      if (source !== undefined && !RECORD_SOURCES.has(source)) {
        problems.push({ block: 'records', mapping, field: '', message: `Intercom has contacts and companies, no place for records of ${source}: map customers or business units (for order context on the contact, read $orders in the customer mapping, e.g. last_order_number: { path: "$orders[*].orderNumber", pipe: [last] })` });
        continue;
      }
      for (const field of fields) {
        if (STANDARD_FIELDS.has(field) || COMPANY_FIELDS.has(field) || field === TAGS_FIELD || Object.hasOwn(settings.attributes, field)) continue;
        // An object-valued field (a total per currency) is sent as the attributes its keys name.
        if (declared.some((name) => name.startsWith(`${field}_`))) continue;
        problems.push({ block: 'records', mapping, field, message: `"${field}" is neither an Intercom contact field (${[...STANDARD_FIELDS].join(', ')}) nor declared under attributes with its data type (an object-valued field: declare ${field}_<key>, e.g. ${field}_EUR)` });
      }
    }
    // Intercom keeps an event's first 10 metadata keys and ignores the rest without an error (createDataEvent's
    // "Metadata behaviour"), so a mapping with more is refused here; the order link, when configured, takes one.
    // (An object-valued field that is neither a monetary amount nor a rich link flattens into several keys at
    // run time: what then does not fit is left out, last first, and logged.)
    const room = MAX_METADATA_KEYS - (settings.orderLink ? 1 : 0);
    for (const [mapping, fields] of Object.entries(mapped.events)) {
      const metadata = fields.filter((field) => !NOT_METADATA.has(field));
      if (metadata.length > room) problems.push({ block: 'events', mapping, field: metadata[room]!, message: `an Intercom event keeps at most ${MAX_METADATA_KEYS} metadata keys and ignores the rest${settings.orderLink ? ' (one is the order link)' : ''}: this mapping has ${metadata.length}; leave out ${metadata.slice(room).join(', ')}` });
    }
    return problems;
  },
  client: createIntercomClient,
  prepare: ensureAttributes,
  records: (item) => (item.resourceType === 'business-unit' ? upsertCompany : item.operation === 'delete' ? removeContact : upsertContact),
  events: createEvent,
  merges: mergeLeadIntoUser,
  // Contacts read back for reconciliation (read.ts).
  readBack: readContact,
});
