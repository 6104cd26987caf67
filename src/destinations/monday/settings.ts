// What a user configures for a monday destination (`type: monday`): the token and the pinned API version, and per
// record mapping the board its records become items of — the board by id, the group, the text column holding the
// commercetools id, which mapped field goes to which column (and, optionally, the column type it must have), the
// columns monday owns, and how an order's line items appear (subitems, one long-text column, or items of a
// connected board). A `when:` block's `target` names another of these boards, or another group.
import { z } from 'zod';

/** monday's API versions are quarterly: 2025-01, 2025-04, 2025-07, 2025-10… */
export const API_VERSION = /^\d{4}-(01|04|07|10)$/;
/** The version the connector's queries are written against (the vendored schema's). */
export const DEFAULT_API_VERSION = '2025-04';

/** The column types the connector writes, each in monday's own JSON format (columns.ts). */
export const COLUMN_TYPES = ['text', 'long_text', 'email', 'phone', 'status', 'date', 'numbers', 'link', 'checkbox', 'dropdown', 'country', 'board_relation'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

const boardId = z.union([z.string().regex(/^\d+$/, 'a monday board id is a number'), z.number().int().positive()]).transform(String);

const columnSpec = z.union([
  z.string().min(1),
  z.strictObject({
    column: z.string().min(1).describe('the column id (shown in the column\'s menu in monday)'),
    type: z.enum(COLUMN_TYPES).optional().describe('the type the column must have: start-up stops when it has another'),
    links: z.string().min(1).optional().describe('board_relation: the entry of `boards` whose items the mapped commercetools ids are (e.g. customer)'),
  }),
]);
export type ColumnSpec = z.infer<typeof columnSpec>;

const lineItemsSpec = z.strictObject({
  field: z.string().min(1).describe('the mapped field holding the line items: a list of objects, each with an id (e.g. { list: lineItems, fields: { id: id, name: name.en, quantity: quantity } })'),
  mode: z.enum(['subitems', 'long_text', 'board_relation']).describe('subitems of the order item, one long-text column, or items of a connected board'),
  column: z.string().min(1).optional().describe('long_text: the long-text column; board_relation: the order board\'s connect-boards column'),
  board: boardId.optional().describe('board_relation: the board holding the line items'),
  externalIdColumn: z.string().min(1).optional().describe('subitems and board_relation: the text column holding the line item id'),
  columns: z.record(z.string(), columnSpec).default({}).describe('subitems and board_relation: which key of a line item goes to which column'),
});
export type LineItemsSpec = z.infer<typeof lineItemsSpec>;

export const boardSpec = z.strictObject({
  board: boardId,
  group: z.string().min(1).optional().describe('the group new items go to (default: the board\'s first group)'),
  externalIdColumn: z.string().min(1).describe('a text column holding the commercetools id: how ctbridge finds an item it did not create or no longer knows'),
  itemName: z.string().min(1).default('name').describe('the mapped field that names the item'),
  columns: z.record(z.string(), columnSpec).default({}).describe('mapped field → column id (or { column, type, links })'),
  mondayOwned: z.array(z.string().min(1)).default([]).describe('mapped fields whose columns monday owns (owner, stage, notes): written when ctbridge creates the item, never afterwards'),
  lineItems: lineItemsSpec.optional(),
});
export type BoardSpec = z.infer<typeof boardSpec>;

export const mondaySettings = z.object({
  token: z.string().min(1).describe('a monday API token, from the environment (${MONDAY_TOKEN}); sent as it is, without Bearer'),
  apiVersion: z.string().regex(API_VERSION, 'an API version is YYYY-01, -04, -07 or -10').default(DEFAULT_API_VERSION).describe('the API-Version every call pins'),
  endpoint: z.url().optional().describe('instead of https://api.monday.com/v2: another endpoint (a simulator)'),
  timeoutMs: z.number().int().positive().default(30_000),
  requestsPerMinute: z.number().int().positive().default(5_000).describe('the account\'s minute limit on calls; calls are paced under it'),
  maxMutationsPerRequest: z.number().int().min(1).max(100).default(25).describe('most mutations (aliases) one GraphQL request carries; fewer when the complexity budget says so'),
  onDelete: z.enum(['archive', 'delete']).default('archive').describe('what a deleted (or erased) commercetools resource\'s item becomes'),
  apiUserId: z
    .union([z.string().regex(/^\d+$/), z.number().int().positive()])
    .transform(String)
    .optional()
    .describe('two-way sync: the monday user the token acts as (a dedicated integration user); webhooks of its changes are ctbridge\'s own writes coming back'),
  createLabelsIfMissing: z.boolean().default(false).describe('a status or dropdown label the column lacks is created, instead of failing the item'),
  boards: z.record(z.string(), boardSpec).refine((boards) => Object.keys(boards).length > 0, 'name at least one board').describe('per record mapping name (and any other name a when: block\'s target uses): the board its records become items of'),
});
export type MondaySettings = z.infer<typeof mondaySettings>;

/** A `when:` block's routing: another entry of `boards`, and/or another group. */
export const mondayTarget = z.strictObject({
  board: z.string().min(1).optional().describe('an entry of boards (its board, columns and external-id column)'),
  group: z.string().min(1).optional().describe('the group the item goes to'),
});
export type MondayTarget = z.infer<typeof mondayTarget>;

/** The column id a mapped field goes to. */
export const columnIdOf = (spec: ColumnSpec): string => (typeof spec === 'string' ? spec : spec.column);
