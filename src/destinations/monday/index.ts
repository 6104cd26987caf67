// monday CRM destination (`type: monday`): commercetools customers, business units and orders as items on monday
// boards (records.ts), many per GraphQL request (rows.ts), column values in monday's formats (columns.ts), the
// boards' columns and groups checked at start-up (boards.ts), through the official SDK with monday's limits and
// HTTP-200 errors (client.ts). Which board, group and columns a record goes to is configuration (settings.ts); a
// `when:` block can route it to another board or group. monday-owned columns are written only when ctbridge
// creates the item, so sales keep owner, stage and notes; writing those back to commercetools is left to a
// two-way sync that reads them from the same boards. This file is the definition: settings, limits, field checks
// and which operation handles which item.
import { defineDestination, type FieldProblem } from '../kit/index.ts';
import { readBoards } from './boards.ts';
import { createMondayClient } from './client.ts';
import { mondayInbound, pollActivityLogs } from './inbound.ts';
import { readItem } from './read.ts';
import { removeItems, upsertItems } from './records.ts';
import { mondaySettings, mondayTarget } from './settings.ts';

/** The share of the account's minute limit the shared limiter paces calls at (clocks and window edges differ). */
const PACE = 0.97;

export const mondayDestination = defineDestination({
  type: 'monday',
  description: 'monday CRM boards: customers, business units and orders as items, through the official SDK',
  settings: mondaySettings,
  target: mondayTarget,
  // A batch becomes a few GraphQL requests of many aliased mutations each (rows.ts).
  limits: (settings) => ({ maxBatchSize: 100, rateLimit: { requestsPerSecond: (settings.requestsPerMinute / 60) * PACE, burst: Math.max(1, Math.floor(settings.requestsPerMinute / 600)) } }),
  delta: 'changed',
  checkFields(settings, mapped) {
    const problems: FieldProblem[] = [];
    for (const [mapping, fields] of Object.entries(mapped.records)) {
      const spec = settings.boards[mapping];
      if (!spec) {
        problems.push({ block: 'records', mapping, field: '', message: `monday needs the board records of "${mapping}" go to: add boards.${mapping} (board, externalIdColumn, columns)` });
        continue;
      }
      for (const field of fields) {
        if (Object.hasOwn(spec.columns, field) || field === spec.itemName || field === spec.lineItems?.field) continue;
        problems.push({ block: 'records', mapping, field, message: `"${field}" has no monday column: add it to boards.${mapping}.columns (${field}: <column id>), or name the item with it (itemName)` });
      }
      for (const owned of spec.mondayOwned) {
        if (!fields.includes(owned)) problems.push({ block: 'records', mapping, field: owned, message: `boards.${mapping}.mondayOwned names "${owned}", which the mapping does not map` });
      }
    }
    for (const mapping of Object.keys(mapped.events)) {
      problems.push({ block: 'events', mapping, field: '', message: 'monday takes records (items on boards), not events: map what the event says into a record instead' });
    }
    return problems;
  },
  client: createMondayClient,
  prepare: readBoards,
  records: (item) => (item.operation === 'delete' ? removeItems : upsertItems),
  events: {
    name: 'no events',
    performBatch: (_client, items) => Promise.resolve(items.map(() => ({ ok: true as const }))),
  },
  // Column changes made in monday, for fields it owns or shares (two-way sync).
  inbound: mondayInbound,
  // Items read back for reconciliation (read.ts).
  readBack: readItem,
  // Or, where monday cannot call ctbridge, its boards' activity logs (inbound.poll).
  pollInbound: pollActivityLogs,
});
