// Start-up (the definition's prepare): reads every configured board's columns and groups in one query and stops
// `ctbridge start` with a precise message (a PermanentError) when a board, group or mapped column is missing, when
// a column has another type than declared or one ctbridge cannot write (a formula, a mirror), when the
// external-id column is not a text column, or when a board-relation column does not connect the board it should.
// What it learns (column types, groups, subitems boards) is what the operations build column values from. An
// unreachable monday only postpones it to the first record send.
import { PermanentError } from '../kit/index.ts';
import type { BoardInfo, MondayClient } from './client.ts';
import { COLUMN_TYPES, columnIdOf, type BoardSpec, type ColumnSpec } from './settings.ts';

const BOARDS_QUERY = `query ctbridgeBoards($ids: [ID!]) {
  complexity { before after query reset_in_x_seconds }
  boards(ids: $ids, limit: 100) { id name columns { id title type settings_str } groups { id title } }
}`;

export async function readBoards(client: MondayClient): Promise<void> {
  const specs = Object.entries(client.settings.boards);
  const ids = [...new Set(specs.flatMap(([, spec]) => [spec.board, ...(spec.lineItems?.board ? [spec.lineItems.board] : [])]))];
  const answer = await client.request('reading the boards', BOARDS_QUERY, { ids }, 1_000);
  const found = new Map<string, BoardInfo>();
  for (const board of (answer.data.boards as Array<{ id: string; name: string; columns: Array<{ id: string; title: string; type: string; settings_str: string }>; groups: Array<{ id: string }> }> | null) ?? []) {
    const columns = new Map(board.columns.map((c) => [c.id, { type: c.type, title: c.title, settings: parseSettings(c.settings_str) }]));
    const subtasks = board.columns.find((c) => c.type === 'subtasks');
    const subitemsBoardId = subtasks ? (columns.get(subtasks.id)!.settings.boardIds as unknown[] | undefined)?.map(String)[0] : undefined;
    found.set(String(board.id), { id: String(board.id), name: board.name, columns, groups: new Set(board.groups.map((g) => g.id)), subitemsBoardId });
  }
  // Subitems boards are boards of their own: read the ones the configuration needs.
  const subitemBoards = [...new Set(specs.filter(([, spec]) => spec.lineItems?.mode === 'subitems').map(([, spec]) => found.get(spec.board)?.subitemsBoardId).filter((id): id is string => id !== undefined && !found.has(id)))];
  if (subitemBoards.length > 0) {
    const more = await client.request('reading the subitems boards', BOARDS_QUERY, { ids: subitemBoards }, 1_000);
    for (const board of (more.data.boards as Array<{ id: string; name: string; columns: Array<{ id: string; title: string; type: string; settings_str: string }>; groups: Array<{ id: string }> }> | null) ?? []) {
      found.set(String(board.id), { id: String(board.id), name: board.name, columns: new Map(board.columns.map((c) => [c.id, { type: c.type, title: c.title, settings: parseSettings(c.settings_str) }])), groups: new Set(board.groups.map((g) => g.id)), subitemsBoardId: undefined });
    }
  }

  const problems: string[] = [];
  for (const [name, spec] of specs) problems.push(...checkBoard(name, spec, found, client.settings.boards));
  if (problems.length > 0) throw new PermanentError(`the monday boards do not match the configuration:\n  - ${problems.join('\n  - ')}`);
  client.boards.clear();
  for (const [id, board] of found) client.boards.set(id, board);
}

function checkBoard(name: string, spec: BoardSpec, found: Map<string, BoardInfo>, all: Record<string, BoardSpec>): string[] {
  const where = `boards.${name}`;
  const board = found.get(spec.board);
  if (!board) return [`${where}: board ${spec.board} does not exist, or the token cannot see it`];
  const problems: string[] = [];
  const has = (b: BoardInfo) => [...b.columns.keys()].filter((id) => id !== 'name').join(', ');
  if (spec.group && !board.groups.has(spec.group)) problems.push(`${where}.group: board ${board.id} (${board.name}) has no group "${spec.group}" (it has ${[...board.groups].join(', ')})`);
  const external = board.columns.get(spec.externalIdColumn);
  if (!external) problems.push(`${where}.externalIdColumn: board ${board.id} (${board.name}) has no column "${spec.externalIdColumn}" (it has ${has(board)})`);
  else if (external.type !== 'text') problems.push(`${where}.externalIdColumn: column "${spec.externalIdColumn}" is a ${external.type} column; the commercetools id needs a text column`);
  for (const [field, column] of Object.entries(spec.columns)) problems.push(...checkColumn(`${where}.columns.${field}`, column, board, found, all));
  const lineItems = spec.lineItems;
  if (lineItems) {
    const at = `${where}.lineItems`;
    if (lineItems.mode === 'long_text') {
      if (!lineItems.column) problems.push(`${at}.column: long_text needs the long-text column the line items are written to`);
      else problems.push(...checkColumn(`${at}.column`, { column: lineItems.column, type: 'long_text' }, board, found, all));
    } else {
      const itemsBoard = lineItems.mode === 'subitems' ? (board.subitemsBoardId ? found.get(board.subitemsBoardId) : undefined) : lineItems.board ? found.get(lineItems.board) : undefined;
      if (lineItems.mode === 'subitems' && !board.subitemsBoardId) problems.push(`${at}: board ${board.id} (${board.name}) has no subitems column; add subitems to the board in monday first`);
      else if (lineItems.mode === 'board_relation' && !lineItems.board) problems.push(`${at}.board: board_relation needs the board holding the line items`);
      else if (!itemsBoard) problems.push(`${at}: the line items board ${lineItems.board ?? board.subitemsBoardId ?? ''} does not exist, or the token cannot see it`);
      if (lineItems.mode === 'board_relation') {
        if (!lineItems.column) problems.push(`${at}.column: board_relation needs the order board's connect-boards column`);
        else {
          const relation = board.columns.get(lineItems.column);
          if (!relation) problems.push(`${at}.column: board ${board.id} (${board.name}) has no column "${lineItems.column}" (it has ${has(board)})`);
          else if (relation.type !== 'board_relation') problems.push(`${at}.column: column "${lineItems.column}" is a ${relation.type} column, not a board_relation`);
          else if (lineItems.board && !connects(relation.settings, lineItems.board)) problems.push(`${at}.column: column "${lineItems.column}" does not connect board ${lineItems.board}`);
        }
      }
      if (itemsBoard) {
        if (!lineItems.externalIdColumn) problems.push(`${at}.externalIdColumn: ${lineItems.mode} needs the text column holding the line item id`);
        else if (itemsBoard.columns.get(lineItems.externalIdColumn)?.type !== 'text') problems.push(`${at}.externalIdColumn: the line items board ${itemsBoard.id} has no text column "${lineItems.externalIdColumn}" (it has ${has(itemsBoard)})`);
        for (const [key, column] of Object.entries(lineItems.columns)) problems.push(...checkColumn(`${at}.columns.${key}`, column, itemsBoard, found, all));
      }
    }
  }
  return problems;
}

function checkColumn(where: string, spec: ColumnSpec, board: BoardInfo, found: Map<string, BoardInfo>, all: Record<string, BoardSpec>): string[] {
  const id = columnIdOf(spec);
  const column = board.columns.get(id);
  if (!column) return [`${where}: board ${board.id} (${board.name}) has no column "${id}" (it has ${[...board.columns.keys()].filter((c) => c !== 'name').join(', ')})`];
  const declared = typeof spec === 'string' ? undefined : spec.type;
  if (declared && column.type !== declared) return [`${where}: column "${id}" is a ${column.type} column, but the configuration says ${declared}`];
  if (!(COLUMN_TYPES as readonly string[]).includes(column.type)) return [`${where}: column "${id}" is a ${column.type} column, which monday computes or the API cannot write (ctbridge writes ${COLUMN_TYPES.join(', ')})`];
  if (column.type === 'board_relation') {
    const links = typeof spec === 'string' ? undefined : spec.links;
    if (!links) return [`${where}: column "${id}" connects boards: say whose items the mapped ids are with links: <an entry of boards>`];
    const linked = all[links];
    if (!linked) return [`${where}.links: "${links}" is not an entry of boards (there are ${Object.keys(all).join(', ')})`];
    if (!connects(column.settings, linked.board)) return [`${where}: column "${id}" does not connect board ${linked.board} (boards.${links})`];
    if (!found.has(linked.board)) return [];
  }
  return [];
}

function connects(settings: Record<string, unknown>, boardId: string): boolean {
  const ids = settings.boardIds;
  return Array.isArray(ids) && ids.map(String).includes(boardId);
}

function parseSettings(text: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
