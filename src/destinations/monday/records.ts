// Records as items on their board (boards.<record mapping> or a when: block's target), a whole batch at a time:
// the item is the one ctbridge created (the destination-id table), else the one whose external-id column holds the
// commercetools id, else a new one (create_item with every mapped column, in the configured or routed group); an
// existing item gets change_multiple_column_values with only the columns whose fields changed, never a column monday
// owns (written only on create) and never a column no field maps. Board-relation columns link the items of the
// commercetools ids they map (an order's customer): one not on monday yet fails the record for a retry, so an order
// synced before its customer is linked once the customer's item exists. Line items become subitems, lines of a
// long-text column, or items of a connected board (settings.lineItems); the items of line items an order no longer
// has are archived (or deleted). An existing item whose group is another now (routing) is moved there. A delete
// archives (or deletes) the item.
import { PermanentError, RetryableError, type BatchOperation, type DeliveryError, type ItemOutcome, type RecordItem } from '../kit/index.ts';
import { errorOfField, type MondayClient, type MondayError } from './client.ts';
import { columnValue, lineItemsText, textOf } from './columns.ts';
import { lookUp, lookupKey, upsertRows, type Row } from './rows.ts';
import { columnIdOf, type BoardSpec, type MondayTarget } from './settings.ts';

interface Plan {
  item: RecordItem;
  index: number;
  what: string;
  spec: BoardSpec;
  groupId: string | undefined;
  /** Board-relation values still to resolve: column id → the linked board's entry and the commercetools ids. */
  links: Array<{ field: string; column: string; board: BoardSpec; ids: string[]; changed: boolean }>;
  createValues: Record<string, unknown>;
  updateValues: Record<string, unknown>;
  name: string;
  lineItems: { rows: Row[]; changed: boolean; board: string; externalIdColumn: string; removed: string[] } | undefined;
}

export const upsertItems: BatchOperation<MondayClient, RecordItem> = {
  name: 'upsert items',
  async performBatch(client, items) {
    const outcomes = new Array<ItemOutcome>(items.length);
    const fail = (index: number, error: unknown) => (outcomes[index] ??= { ok: false, error: error as DeliveryError });
    const plans: Plan[] = [];
    items.forEach((item, index) => {
      try {
        plans.push(plan(client, item, index));
      } catch (error) {
        fail(index, error);
      }
    });

    // The items board-relation columns point at (an order's customer), for every record at once.
    const wanted = plans.flatMap((p) => p.links.flatMap((link) => link.ids.map((externalId) => ({ boardId: link.board.board, column: link.board.externalIdColumn, externalId }))));
    const linked = wanted.length > 0 ? await lookUp(client, wanted) : { found: new Map<string, string>(), failed: new Map<string, DeliveryError>() };
    for (const p of plans) {
      for (const link of p.links) {
        const values: number[] = [];
        for (const id of link.ids) {
          const key = lookupKey(link.board.board, link.board.externalIdColumn, id);
          const failure = linked.failed.get(key);
          if (failure) fail(p.index, failure);
          const itemId = linked.found.get(key);
          if (itemId === undefined) fail(p.index, new RetryableError(`${p.what}: ${link.field} links ${id}, which is not on monday board ${link.board.board} yet; the link is made once its item exists`));
          else values.push(Number(itemId));
        }
        const value = { item_ids: values };
        if (values.length > 0 || link.ids.length === 0) p.createValues[link.column] = value;
        if (link.changed) p.updateValues[link.column] = value;
      }
    }

    // Line items on a board of their own come first: the order's relation column names their items.
    const relationPlans = plans.filter((p) => outcomes[p.index] === undefined && p.spec.lineItems?.mode === 'board_relation' && p.lineItems?.changed);
    if (relationPlans.length > 0) {
      const rows = relationPlans.flatMap((p) => p.lineItems!.rows);
      const results = await upsertRows(client, rows);
      let at = 0;
      for (const p of relationPlans) {
        const own = results.slice(at, at + p.lineItems!.rows.length);
        at += p.lineItems!.rows.length;
        const failure = own.find((r) => !r.ok);
        if (failure && !failure.ok) fail(p.index, failure.error);
        const value = { item_ids: own.flatMap((r) => (r.ok ? [Number(r.id)] : [])) };
        p.createValues[p.spec.lineItems!.column!] = value;
        p.updateValues[p.spec.lineItems!.column!] = value;
      }
    }

    const ready = plans.filter((p) => outcomes[p.index] === undefined);
    const results = await upsertRows(
      client,
      ready.map((p) => ({
        what: p.what,
        boardId: p.spec.board,
        groupId: p.groupId,
        externalIdColumn: p.spec.externalIdColumn,
        externalId: p.item.resourceId,
        knownId: p.item.destinationId,
        name: p.name,
        createValues: p.createValues,
        updateValues: p.updateValues,
        columnFields: Object.fromEntries(Object.entries(p.spec.columns).map(([field, spec]) => [columnIdOf(spec), field])),
      })),
    );

    // Subitems go under their order's item, once it exists.
    const withSubitems: Array<{ p: Plan; parentId: string }> = [];
    ready.forEach((p, i) => {
      const result = results[i]!;
      if (!result.ok) return fail(p.index, result.error);
      outcomes[p.index] = { ok: true, destinationId: result.id, ...(p.item.resourceType === 'customer' && { personId: result.id }) };
      if (p.spec.lineItems?.mode === 'subitems' && (p.lineItems?.changed || result.created)) withSubitems.push({ p, parentId: result.id });
    });
    // An item that was already there and whose (routed) group is another now moves there.
    const placed = ready.flatMap((p, i) => {
      const result = results[i]!;
      return result.ok && !result.created && p.groupId !== undefined ? [{ p, id: result.id, groupId: p.groupId }] : [];
    });
    if (placed.length > 0) {
      const moveErrors = await moveToGroups(client, placed);
      placed.forEach(({ p }, i) => {
        const error = moveErrors[i];
        if (error) outcomes[p.index] = { ok: false, error };
      });
    }
    if (withSubitems.length > 0) {
      const rows = withSubitems.flatMap(({ p, parentId }) => p.lineItems!.rows.map((row) => ({ ...row, parentItemId: parentId })));
      const subResults = await upsertRows(client, rows);
      let at = 0;
      for (const { p } of withSubitems) {
        const own = subResults.slice(at, at + p.lineItems!.rows.length);
        at += p.lineItems!.rows.length;
        const failure = own.find((r) => !r.ok);
        // The order's item is there (its id kept); its subitems are tried again with the record.
        if (failure && !failure.ok) outcomes[p.index] = { ok: false, error: failure.error };
      }
    }

    // Line items the order no longer has: their subitems (or items of the connected board) archived or deleted.
    const withRemoved = plans.filter((p) => outcomes[p.index]?.ok === true && (p.lineItems?.removed.length ?? 0) > 0);
    if (withRemoved.length > 0) {
      const wantedLines = withRemoved.flatMap((p) => p.lineItems!.removed.map((externalId) => ({ boardId: p.lineItems!.board, column: p.lineItems!.externalIdColumn, externalId })));
      const { found, failed } = await lookUp(client, wantedLines);
      const toRemove: Array<{ p: Plan; id: string; board: string; externalId: string }> = [];
      for (const p of withRemoved) {
        for (const externalId of p.lineItems!.removed) {
          const key = lookupKey(p.lineItems!.board, p.lineItems!.externalIdColumn, externalId);
          const failure = failed.get(key);
          if (failure) outcomes[p.index] = { ok: false, error: failure };
          const id = found.get(key);
          if (id) toRemove.push({ p, id, board: p.lineItems!.board, externalId });
        }
      }
      const errors = await removeItemIds(client, toRemove.map(({ id }) => id));
      toRemove.forEach(({ p, id, board, externalId }, i) => {
        const error = errors[i];
        if (error) outcomes[p.index] = { ok: false, error: error instanceof Error ? error : new PermanentError(`${p.what} line item ${externalId}: ${removalMutation(client)} ${id}: monday answered ${error.code ?? ''} ${error.message}`) };
        else client.knownItems.delete(`${board}:${externalId}`);
      });
    }
    return outcomes;
  },
};

/** What one record becomes: its board, group, name, columns (for a new item, and the changed ones) and links. */
function plan(client: MondayClient, item: RecordItem, index: number): Plan {
  const what = `${item.recordType} ${item.resourceId}`;
  const target = item.target as MondayTarget | undefined;
  const key = target?.board ?? item.recordType;
  const spec = client.settings.boards[key];
  if (!spec) throw new PermanentError(`${what}: no monday board is configured for "${key}" (boards.${key})`);
  const board = client.boards.get(spec.board);
  if (!board) throw new RetryableError(`${what}: board ${spec.board} has not been read yet`);
  const record = item.record;
  const changed = new Set(Object.keys(item.fields));
  const owned = new Set(spec.mondayOwned);
  const createValues: Record<string, unknown> = { [spec.externalIdColumn]: item.resourceId };
  const updateValues: Record<string, unknown> = {};
  const links: Plan['links'] = [];

  for (const [field, columnSpec] of Object.entries(spec.columns)) {
    const column = columnIdOf(columnSpec);
    const type = board.columns.get(column)?.type;
    if (!type) throw new PermanentError(`${what}: board ${spec.board} has no column "${column}" for ${field}`);
    const value = record[field];
    const sendUpdate = changed.has(field) && !owned.has(field);
    if (type === 'board_relation') {
      const links_ = typeof columnSpec === 'string' ? undefined : columnSpec.links;
      const linkedBoard = links_ ? client.settings.boards[links_] : undefined;
      if (!linkedBoard) throw new PermanentError(`${what}: ${field} is a board-relation column; say whose items it links with links:`);
      const ids = (Array.isArray(value) ? value : value === null || value === undefined || value === '' ? [] : [value]).map((id) => textOf(id));
      // Resolved when it goes out: on a change, or for an item that may be new.
      if (value !== undefined && (sendUpdate || !item.destinationId)) links.push({ field, column, board: linkedBoard, ids, changed: sendUpdate });
      continue;
    }
    const context = { what, field, column };
    const built = columnValue(type, value, context);
    if (built === undefined) continue;
    // A new item gets what has a value; an empty value clears a column only when it changed to empty.
    if (value !== null && value !== '') createValues[column] = built;
    if (sendUpdate) updateValues[column] = built;
  }

  const nameValue = record[spec.itemName];
  const name = typeof nameValue === 'string' && nameValue.trim() !== '' ? nameValue : typeof nameValue === 'number' ? String(nameValue) : item.resourceId;
  if (changed.has(spec.itemName) && !owned.has(spec.itemName)) updateValues.name = name;

  let lineItems: Plan['lineItems'];
  const lines = spec.lineItems;
  if (lines) {
    const list = record[lines.field];
    const lineChanged = changed.has(lines.field);
    if (lines.mode === 'long_text') {
      const value = columnValue('long_text', lineItemsText(list), { what, field: lines.field, column: lines.column! });
      createValues[lines.column!] = value;
      if (lineChanged) updateValues[lines.column!] = value;
    } else {
      const itemsBoardId = lines.mode === 'subitems' ? board.subitemsBoardId : lines.board;
      const itemsBoard = itemsBoardId ? client.boards.get(itemsBoardId) : undefined;
      if (!itemsBoardId || !itemsBoard) throw new PermanentError(`${what}: the line items board of boards.${key} has not been read`);
      const before = new Map(asLines(item.previous?.[lines.field]).map((line) => [textOf(line.id), line]));
      const rows = asLines(list).map((line, at): Row => {
        const lineId = line.id === undefined || line.id === null ? `${item.resourceId}-${at}` : textOf(line.id);
        const lineWhat = `${what} line item ${lineId}`;
        const previous = before.get(lineId);
        const create: Record<string, unknown> = { [lines.externalIdColumn!]: lineId };
        const update: Record<string, unknown> = {};
        for (const [lineField, columnSpec] of Object.entries(lines.columns)) {
          const column = columnIdOf(columnSpec);
          const type = itemsBoard.columns.get(column)?.type ?? 'text';
          const built = columnValue(type, line[lineField], { what: lineWhat, field: lineField, column });
          if (built === undefined) continue;
          if (line[lineField] !== null && line[lineField] !== '') create[column] = built;
          if (!previous || JSON.stringify(previous[lineField]) !== JSON.stringify(line[lineField])) update[column] = built;
        }
        const lineName = typeof line.name === 'string' && line.name !== '' ? line.name : lineId;
        if (previous && previous.name !== line.name) update.name = lineName;
        const columnFields = Object.fromEntries(Object.entries(lines.columns).map(([lineField, spec]) => [columnIdOf(spec), lineField]));
        return { what: lineWhat, boardId: itemsBoardId, externalIdColumn: lines.externalIdColumn!, externalId: lineId, name: lineName, createValues: create, updateValues: update, columnFields };
      });
      // Lines the previous version had and this one has not: their items go as a deleted record's do.
      const kept = new Set(rows.map((row) => row.externalId));
      const removed = lineChanged ? [...before.keys()].filter((lineId) => !kept.has(lineId)) : [];
      lineItems = { rows, changed: lineChanged, board: itemsBoardId, externalIdColumn: lines.externalIdColumn!, removed };
    }
  }
  return { item, index, what, spec, groupId: target?.group ?? spec.group, links, createValues, updateValues, name, lineItems };
}

function asLines(value: unknown): Array<Record<string, unknown>> {
  return Array.isArray(value) ? value.filter((line): line is Record<string, unknown> => line !== null && typeof line === 'object') : [];
}

/** A deleted (or erased) record: its item archived, or deleted (settings.onDelete); one never on monday: nothing. */
export const removeItems: BatchOperation<MondayClient, RecordItem> = {
  name: 'archive or delete items',
  async performBatch(client, items) {
    const outcomes = new Array<ItemOutcome>(items.length);
    const specs = items.map((item) => client.settings.boards[(item.target as MondayTarget | undefined)?.board ?? item.recordType]);
    const unknown = items.map((item, index) => ({ item, index, spec: specs[index] })).filter(({ item, spec }) => !item.destinationId && spec);
    const { found, failed } = unknown.length > 0 ? await lookUp(client, unknown.map(({ item, spec }) => ({ boardId: spec!.board, column: spec!.externalIdColumn, externalId: item.resourceId }))) : { found: new Map<string, string>(), failed: new Map<string, DeliveryError>() };
    const toRemove: Array<{ index: number; id: string }> = [];
    items.forEach((item, index) => {
      const spec = specs[index];
      if (!spec) return (outcomes[index] = { ok: false, error: new PermanentError(`${item.recordType} ${item.resourceId}: no monday board is configured for it`) });
      const key = lookupKey(spec.board, spec.externalIdColumn, item.resourceId);
      const failure = failed.get(key);
      if (failure) return (outcomes[index] = { ok: false, error: failure });
      const id = item.destinationId ?? found.get(key);
      if (!id) return (outcomes[index] = { ok: true });
      toRemove.push({ index, id });
    });
    const errors = await removeItemIds(client, toRemove.map(({ id }) => id));
    toRemove.forEach(({ index, id }, i) => {
      const error = errors[i];
      if (!error) client.knownItems.delete(`${specs[index]!.board}:${items[index]!.resourceId}`);
      outcomes[index] = !error ? { ok: true } : { ok: false, error: error instanceof Error ? error : new PermanentError(`${items[index]!.recordType} ${items[index]!.resourceId}: ${removalMutation(client)} ${id}: monday answered ${error.code ?? ''} ${error.message}`) };
    });
    return outcomes;
  },
};

const removalMutation = (client: MondayClient) => (client.settings.onDelete === 'delete' ? 'delete_item' : 'archive_item');

/**
 * Archives (or deletes, settings.onDelete) items by id, as many per request as allowed. For each id: nothing when
 * it is gone (an item monday no longer has counts as gone, what a removal wants), monday's error for that one
 * mutation, or the failure of its whole request.
 */
async function removeItemIds(client: MondayClient, ids: string[]): Promise<Array<MondayError | DeliveryError | undefined>> {
  const mutation = removalMutation(client);
  const results = new Array<MondayError | DeliveryError | undefined>(ids.length);
  for (let start = 0; start < ids.length; start += client.settings.maxMutationsPerRequest) {
    const chunk = ids.slice(start, start + client.settings.maxMutationsPerRequest);
    const query = `mutation ctbridgeRemove(${chunk.map((_, i) => `$i${i}: ID`).join(', ')}) {\n  complexity { before after query reset_in_x_seconds }\n  ${chunk.map((_, i) => `m${i}: ${mutation}(item_id: $i${i}) { id }`).join('\n  ')}\n}`;
    try {
      const answer = await client.request(`${mutation === 'delete_item' ? 'deleting' : 'archiving'} ${chunk.length} items`, query, Object.fromEntries(chunk.map((id, i) => [`i${i}`, id])), chunk.length * client.costPerMutation.value);
      chunk.forEach((_, i) => {
        const error = answer.fieldErrors.find((e) => e.path === `m${i}`);
        results[start + i] = error && error.code !== 'InvalidItemIdException' ? error : undefined;
      });
    } catch (error) {
      chunk.forEach((_, i) => (results[start + i] = error as DeliveryError));
    }
  }
  return results;
}

/**
 * Moves existing items into the group they belong in now (a when: block routed them elsewhere, or the board's
 * group changed): their groups are read (one query per 100 items), and those elsewhere get move_item_to_group,
 * as aliases of as few requests as allowed. For each item: nothing, or why it could not be moved.
 */
async function moveToGroups(client: MondayClient, placed: Array<{ p: Plan; id: string; groupId: string }>): Promise<Array<DeliveryError | undefined>> {
  const errors = new Array<DeliveryError | undefined>(placed.length);
  const current = new Map<string, string>();
  for (let start = 0; start < placed.length; start += 100) {
    const chunk = placed.slice(start, start + 100);
    try {
      const answer = await client.request(`reading the groups of ${chunk.length} items`, 'query ctbridgeGroups($ids: [ID!], $limit: Int) {\n  complexity { before after query reset_in_x_seconds }\n  items(ids: $ids, limit: $limit) { id group { id } }\n}', { ids: chunk.map(({ id }) => id), limit: chunk.length }, chunk.length * 3);
      for (const item of (answer.data.items as Array<{ id: string; group: { id: string } | null } | null> | null) ?? []) if (item?.group) current.set(String(item.id), item.group.id);
    } catch (error) {
      chunk.forEach((_, i) => (errors[start + i] = error as DeliveryError));
    }
  }
  const moves = placed.map((entry, at) => ({ ...entry, at })).filter(({ id, groupId, at }) => errors[at] === undefined && current.has(id) && current.get(id) !== groupId);
  for (let start = 0; start < moves.length; start += client.settings.maxMutationsPerRequest) {
    const chunk = moves.slice(start, start + client.settings.maxMutationsPerRequest);
    const query = `mutation ctbridgeMove(${chunk.map((_, i) => `$i${i}: ID, $g${i}: String!`).join(', ')}) {\n  complexity { before after query reset_in_x_seconds }\n  ${chunk.map((_, i) => `m${i}: move_item_to_group(item_id: $i${i}, group_id: $g${i}) { id }`).join('\n  ')}\n}`;
    try {
      const answer = await client.request(`moving ${chunk.length} items to their groups`, query, Object.fromEntries(chunk.flatMap(({ id, groupId }, i) => [[`i${i}`, id], [`g${i}`, groupId]])), chunk.length * client.costPerMutation.value, chunk.length);
      chunk.forEach(({ p, id, groupId, at }, i) => {
        const error = answer.fieldErrors.find((e) => e.path === `m${i}`);
        if (error) errors[at] = errorOfField(`${p.what}: move_item_to_group ${id} to ${groupId}: monday answered ${error.code ?? ''} ${error.message}`, error);
      });
    } catch (error) {
      for (const { at } of chunk) errors[at] = error as DeliveryError;
    }
  }
  return errors;
}
