// Upserting rows (items or subitems) on monday boards, many per GraphQL request: first the ones ctbridge has no
// item id for are looked up by their external-id column (items_page_by_column_values, one alias per board), then
// each becomes a create_item / create_subitem (all its columns) or a change_multiple_column_values (only the
// columns given, nothing when none changed), as aliases of as few requests as the complexity budget and
// `maxMutationsPerRequest` allow. A mutation that fails inside a request fails its row alone; a failure of the whole
// request fails its rows. Each failure names monday's error and the GraphQL mutation that was sent (its
// variables come from the mapped record, so personal values are in the form the destination's PII policy allows,
// and the kit's error class removes any e-mail or phone number left in the text).
import { PermanentError, RateLimitedError, RetryableError, type DeliveryError } from '../kit/index.ts';
import { redact } from '../../observability/redact.ts';
import { errorOfField, type GraphQLAnswer, type MondayClient, type MondayError } from './client.ts';

export interface Row {
  /** `${what}` in messages: `order o-1`, `order o-1 line item li-2`. */
  what: string;
  boardId: string;
  groupId?: string | undefined;
  externalIdColumn: string;
  externalId: string;
  /** The item id, when ctbridge knows it (the destination-id table). */
  knownId?: string | undefined;
  name: string;
  /** Every column, for a new item. */
  createValues: Record<string, unknown>;
  /** The columns to change on an existing item (only what changed; may hold `name`). */
  updateValues: Record<string, unknown>;
  /** Create it as a subitem of this item. */
  parentItemId?: string | undefined;
  /** The mapped field each column id holds (names the values in a failure's snapshot, where redaction knows them). */
  columnFields?: Record<string, string> | undefined;
}

export type RowResult = { ok: true; id: string; created: boolean } | { ok: false; error: DeliveryError };

const COMPLEXITY = 'complexity { before after query reset_in_x_seconds }';
/** What a lookup alias costs at most, per item it may return (for sizing against the budget). */
const LOOKUP_COST_PER_ITEM = 5;

/** The item ids of external ids on boards: `${boardId}:${externalIdColumn}:${externalId}` → id; not found: absent. */
export async function lookUp(client: MondayClient, wanted: Array<{ boardId: string; column: string; externalId: string }>): Promise<{ found: Map<string, string>; failed: Map<string, DeliveryError> }> {
  const found = new Map<string, string>();
  const failed = new Map<string, DeliveryError>();
  const groups = new Map<string, { boardId: string; column: string; ids: Set<string> }>();
  for (const want of wanted) {
    const cached = client.knownItems.get(`${want.boardId}:${want.externalId}`);
    if (cached) {
      found.set(lookupKey(want.boardId, want.column, want.externalId), cached);
      continue;
    }
    const key = `${want.boardId}:${want.column}`;
    const group = groups.get(key) ?? { boardId: want.boardId, column: want.column, ids: new Set<string>() };
    group.ids.add(want.externalId);
    groups.set(key, group);
  }
  // items_page_by_column_values returns at most 500 items: larger sets go in several aliases.
  const aliases: Array<{ boardId: string; column: string; ids: string[] }> = [];
  for (const group of groups.values()) {
    const ids = [...group.ids];
    for (let i = 0; i < ids.length; i += 400) aliases.push({ boardId: group.boardId, column: group.column, ids: ids.slice(i, i + 400) });
  }
  const perRequest = client.settings.maxMutationsPerRequest;
  for (let start = 0; start < aliases.length; start += perRequest) {
    const chunk = aliases.slice(start, start + perRequest);
    const variables: Record<string, unknown> = {};
    const declarations: string[] = [];
    const fields: string[] = [];
    let cost = 10;
    chunk.forEach((alias, i) => {
      const limit = Math.min(500, alias.ids.length + 10);
      variables[`b${i}`] = alias.boardId;
      variables[`q${i}`] = [{ column_id: alias.column, column_values: alias.ids }];
      variables[`c${i}`] = [alias.column];
      declarations.push(`$b${i}: ID!, $q${i}: [ItemsPageByColumnValuesQuery!], $c${i}: [String!]`);
      fields.push(`l${i}: items_page_by_column_values(board_id: $b${i}, columns: $q${i}, limit: ${limit}) { items { id column_values(ids: $c${i}) { text } } }`);
      cost += limit * LOOKUP_COST_PER_ITEM;
    });
    const query = `query ctbridgeLookUp(${declarations.join(', ')}) {\n  ${COMPLEXITY}\n  ${fields.join('\n  ')}\n}`;
    let answer: GraphQLAnswer;
    try {
      answer = await client.request(`looking up ${chunk.reduce((n, a) => n + a.ids.length, 0)} items by their commercetools ids`, query, variables, cost);
    } catch (error) {
      for (const alias of chunk) for (const id of alias.ids) failed.set(lookupKey(alias.boardId, alias.column, id), error as DeliveryError);
      continue;
    }
    chunk.forEach((alias, i) => {
      const fieldError = answer.fieldErrors.find((e) => e.path === `l${i}`);
      if (fieldError) {
        const error = errorOfField(`looking up items on board ${alias.boardId}: monday answered ${describeError(fieldError)}`, fieldError);
        for (const id of alias.ids) failed.set(lookupKey(alias.boardId, alias.column, id), error);
        return;
      }
      const page = answer.data[`l${i}`] as { items: Array<{ id: string; column_values: Array<{ text: string | null }> }> } | null;
      for (const item of page?.items ?? []) {
        const externalId = item.column_values[0]?.text ?? '';
        // The oldest item wins when two hold the same id (someone copied one by hand): monday lists them in order.
        const key = lookupKey(alias.boardId, alias.column, externalId);
        if (alias.ids.includes(externalId) && !found.has(key)) {
          found.set(key, String(item.id));
          client.knownItems.set(`${alias.boardId}:${externalId}`, String(item.id));
        }
      }
    });
  }
  return { found, failed };
}

export const lookupKey = (boardId: string, column: string, externalId: string): string => `${boardId}:${column}:${externalId}`;

/** Upserts the rows: one result per row, in order. */
export async function upsertRows(client: MondayClient, rows: Row[]): Promise<RowResult[]> {
  const results: RowResult[] = new Array<RowResult>(rows.length);
  const ids: Array<string | undefined> = rows.map((row) => row.knownId);
  const unknown = rows.map((row, index) => ({ row, index })).filter(({ index }) => ids[index] === undefined);
  if (unknown.length > 0) {
    const { found, failed } = await lookUp(client, unknown.map(({ row }) => ({ boardId: row.boardId, column: row.externalIdColumn, externalId: row.externalId })));
    for (const { row, index } of unknown) {
      const key = lookupKey(row.boardId, row.externalIdColumn, row.externalId);
      const error = failed.get(key);
      if (error) results[index] = { ok: false, error };
      else ids[index] = found.get(key);
    }
  }
  const pending = rows.map((row, index) => ({ row, index, id: ids[index] })).filter(({ index }) => results[index] === undefined);
  const gone = await mutate(client, pending, results);
  // Updates of items deleted in monday meanwhile: created again (looked up first, in case they were recreated).
  if (gone.length > 0) {
    for (const { row } of gone) client.knownItems.delete(`${row.boardId}:${row.externalId}`);
    const again = await upsertRows(client, gone.map(({ row }) => ({ ...row, knownId: undefined })));
    gone.forEach(({ index }, at) => (results[index] = again[at]!));
  }
  return results;
}

interface Pending {
  row: Row;
  index: number;
  id: string | undefined;
}

/** Sends the mutations, filling results; returns the updates whose item no longer exists. */
async function mutate(client: MondayClient, pending: Pending[], results: RowResult[]): Promise<Pending[]> {
  const gone: Pending[] = [];
  const work = pending.filter(({ row, index, id }) => {
    // Nothing changed on a known item: nothing to send.
    if (id !== undefined && Object.keys(row.updateValues).length === 0) {
      results[index] = { ok: true, id, created: false };
      return false;
    }
    return true;
  });
  let start = 0;
  while (start < work.length) {
    const size = Math.max(1, Math.min(client.settings.maxMutationsPerRequest, client.mutationsThatFit(client.costPerMutation.value)));
    const chunk = work.slice(start, start + size);
    const { query, variables, snapshots } = mutationRequest(client, chunk);
    let answer: GraphQLAnswer;
    try {
      answer = await client.request(`upserting ${chunk.length} items`, query, variables, chunk.length * client.costPerMutation.value + 10, chunk.length);
    } catch (error) {
      chunk.forEach(({ index }, i) => (results[index] = { ok: false, error: withRequest(error as DeliveryError, snapshots[i]!) }));
      start += chunk.length;
      continue;
    }
    const complexity = answer.data.complexity as { query?: number } | undefined;
    // What monday charged, per mutation: the figure the next requests are sized by.
    if (typeof complexity?.query === 'number' && chunk.length > 0) client.costPerMutation.value = Math.max(1, Math.ceil(complexity.query / chunk.length));
    chunk.forEach((entry, i) => {
      const alias = `m${i}`;
      const fieldError = answer.fieldErrors.find((e) => e.path === alias);
      const item = answer.data[alias] as { id: string } | null | undefined;
      if (fieldError) {
        if (entry.id !== undefined && fieldError.code === 'InvalidItemIdException') {
          gone.push(entry);
          return;
        }
        results[entry.index] = { ok: false, error: withRequest(errorOfField(`${entry.row.what}: monday answered ${describeError(fieldError)}`, fieldError), snapshots[i]!) };
        return;
      }
      if (!item?.id) {
        results[entry.index] = { ok: false, error: new RetryableError(`${entry.row.what}: monday answered no item and no error`) };
        return;
      }
      const id = String(item.id);
      if (entry.id === undefined) client.knownItems.set(`${entry.row.boardId}:${entry.row.externalId}`, id);
      results[entry.index] = { ok: true, id, created: entry.id === undefined };
    });
    start += chunk.length;
  }
  return gone;
}

/** One request of aliased mutations (m0, m1…), with the JSON of each as a snapshot for its failure. */
function mutationRequest(client: MondayClient, chunk: Pending[]): { query: string; variables: Record<string, unknown>; snapshots: string[] } {
  const variables: Record<string, unknown> = { labels: client.settings.createLabelsIfMissing };
  const declarations = ['$labels: Boolean'];
  const fields: string[] = [];
  const snapshots: string[] = [];
  chunk.forEach(({ row, id }, i) => {
    if (id !== undefined) {
      Object.assign(variables, { [`b${i}`]: row.boardId, [`i${i}`]: id, [`v${i}`]: JSON.stringify(row.updateValues) });
      declarations.push(`$b${i}: ID!, $i${i}: ID, $v${i}: JSON!`);
      fields.push(`m${i}: change_multiple_column_values(board_id: $b${i}, item_id: $i${i}, column_values: $v${i}, create_labels_if_missing: $labels) { id }`);
      snapshots.push(snapshot('change_multiple_column_values', row, { board_id: row.boardId, item_id: id }, row.updateValues));
    } else if (row.parentItemId !== undefined) {
      Object.assign(variables, { [`p${i}`]: row.parentItemId, [`n${i}`]: row.name, [`v${i}`]: JSON.stringify(row.createValues) });
      declarations.push(`$p${i}: ID!, $n${i}: String!, $v${i}: JSON`);
      fields.push(`m${i}: create_subitem(parent_item_id: $p${i}, item_name: $n${i}, column_values: $v${i}, create_labels_if_missing: $labels) { id }`);
      snapshots.push(snapshot('create_subitem', row, { parent_item_id: row.parentItemId, name: row.name }, row.createValues));
    } else {
      Object.assign(variables, { [`b${i}`]: row.boardId, [`n${i}`]: row.name, [`v${i}`]: JSON.stringify(row.createValues), ...(row.groupId !== undefined && { [`g${i}`]: row.groupId }) });
      declarations.push(`$b${i}: ID!, $n${i}: String!, $v${i}: JSON${row.groupId !== undefined ? `, $g${i}: String` : ''}`);
      fields.push(`m${i}: create_item(board_id: $b${i}, item_name: $n${i}, column_values: $v${i}${row.groupId !== undefined ? `, group_id: $g${i}` : ''}, create_labels_if_missing: $labels) { id }`);
      snapshots.push(snapshot('create_item', row, { board_id: row.boardId, ...(row.groupId !== undefined && { group_id: row.groupId }), name: row.name }, row.createValues));
    }
  });
  return { query: `mutation ctbridgeUpsert(${declarations.join(', ')}) {\n  ${COMPLEXITY}\n  ${fields.join('\n  ')}\n}`, variables, snapshots };
}

/** The failure with the GraphQL mutation that was sent, for the dead letter (bounded). */
function withRequest(error: DeliveryError, sent: string): DeliveryError {
  const message = `${error.message}\nsent: ${sent}`;
  const status = error.status !== undefined ? { status: error.status } : {};
  if (error instanceof RateLimitedError) return new RateLimitedError(message, { ...status, retryAfterMs: error.retryAfterMs });
  if (error instanceof RetryableError) return new RetryableError(message, { ...status, retryAfterMs: error.retryAfterMs });
  return new PermanentError(message, status);
}

/**
 * The mutation as sent, for the dead letter: its values under the names of the fields they were mapped from (the
 * item name as `name`), then redacted by those names as every dead letter is (a name, e-mail, phone or address
 * becomes [redacted]); `columns` says which column each field went to.
 */
function snapshot(mutation: string, row: Row, args: Record<string, unknown>, values: Record<string, unknown>): string {
  const fieldOf = (column: string): string => (column === 'name' ? 'name' : (row.columnFields?.[column] ?? column));
  const named: Record<string, unknown> = {};
  // As `field=column` text: redaction would take a map keyed by personal field names for personal values.
  const columns: string[] = [];
  for (const [column, value] of Object.entries(values)) {
    const field = fieldOf(column);
    named[field] = value;
    if (field !== column) columns.push(`${field}=${column}`);
  }
  const text = `${mutation}(${JSON.stringify(redact({ ...args, column_values: named, ...(columns.length > 0 && { columns }) }))})`;
  return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;
}

export function describeError(error: MondayError): string {
  const data = error.errorData && Object.keys(error.errorData).length > 0 ? ` ${JSON.stringify(error.errorData)}` : '';
  return `${error.code ? `${error.code}: ` : ''}${error.message}${data}`;
}
