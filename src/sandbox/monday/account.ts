// The state of a simulated monday.com account and the rules monday applies to it: boards with their columns and
// groups, items and subitems (a board's subitems live on a subitems board of their own, as in monday), and column
// values in monday's own JSON formats, validated per column type the way monday's API does it — an unknown column
// is InvalidColumnIdException, a value a column cannot take (a phone number that is not valid for its country, a
// status label the column does not have unless labels may be created, an unknown country code, a linked item that
// does not exist) is ColumnValueException with the column's type in error_data. The GraphQL side (simulator.ts)
// checks every operation against the schema; this module checks what only state can tell.
// Sources: developer.monday.com api-reference "Column types reference" (each type's JSON), "Error handling"
// (ColumnValueException, InvalidColumnIdException, InvalidBoardIdException, InvalidItemIdException, error_data),
// changelog "Column value exception error column_type update" and the 2022 validation changes (phone numbers
// checked against their country, country names, long text at most 2,000 characters, dropdown labels case-sensitive).
import { createRequire } from 'node:module';
import type Countries from 'i18n-iso-countries';
import type { CountryCode, isValidPhoneNumber as IsValidPhoneNumber } from 'libphonenumber-js/max';

const requireModule = createRequire(import.meta.url);
const countries = requireModule('i18n-iso-countries') as typeof Countries;
countries.registerLocale(requireModule('i18n-iso-countries/langs/en.json') as Countries.LocaleData);
const { isValidPhoneNumber } = requireModule('libphonenumber-js/max') as { isValidPhoneNumber: typeof IsValidPhoneNumber };

/** The column types the simulator stores values of; any other type exists on boards but cannot be written. */
export const WRITABLE_TYPES = ['text', 'long_text', 'email', 'phone', 'status', 'date', 'numbers', 'link', 'checkbox', 'dropdown', 'country', 'board_relation'] as const;
export type WritableType = (typeof WRITABLE_TYPES)[number];

export interface SimColumn {
  id: string;
  title: string;
  /** monday's ColumnType (text, status, board_relation, formula, subtasks…). */
  type: string;
  /** status: index → label; dropdown: the labels by id; board_relation: the boards it may link to. */
  labels?: Map<number, string>;
  boardIds?: string[];
}

export interface SimGroup {
  id: string;
  title: string;
}

export interface SimBoard {
  id: string;
  name: string;
  columns: SimColumn[];
  groups: SimGroup[];
  /** The board holding this board's subitems (created with the first subitem, as monday does). */
  subitemsBoardId?: string;
  /** The parent board, for a subitems board. */
  parentBoardId?: string;
}

export interface SimValue {
  /** What monday stores and returns as `value` (a JSON text), and its text representation. */
  value: string;
  text: string;
}

export interface SimItem {
  id: string;
  boardId: string;
  groupId: string;
  name: string;
  values: Map<string, SimValue>;
  parentId?: string;
  subitemIds: string[];
  state: 'active' | 'archived';
  createdAt: number;
  updatedAt: number;
}

/** A column value changed on an existing item: by a person in monday (`hand`) or through the API (`api`). */
export interface ColumnChange {
  item: SimItem;
  column: SimColumn;
  value: SimValue | undefined;
  previous: SimValue | undefined;
  by: 'hand' | 'api';
  at: number;
}

/** An application-level error, answered inside a 200 with its code, status_code and error_data (monday's shape). */
export class MondayApiError extends Error {
  readonly code: string;
  readonly errorData: Record<string, unknown>;
  readonly statusCode: number;
  constructor(message: string, code: string, errorData: Record<string, unknown> = {}, statusCode = 200) {
    super(message);
    this.code = code;
    this.errorData = errorData;
    this.statusCode = statusCode;
  }
}

const COLUMN_VALUE_HINT = 'Please check our API documentation for the correct data structure for this column. https://developer.monday.com/api-reference/docs/change-column-values';

export interface BoardSpec {
  name: string;
  groups?: Array<{ id: string; title: string }>;
  columns: Array<{ id: string; title?: string; type: string; labels?: string[]; boardIds?: string[] }>;
  /** Columns of the subitems board (besides name), when the board has subitems. */
  subitemColumns?: Array<{ id: string; title?: string; type: string; labels?: string[] }>;
}

export class MondayAccount {
  readonly boards = new Map<string, SimBoard>();
  readonly items = new Map<string, SimItem>();
  private nextId = 1_000_000_000;
  private readonly now: () => number;
  /** Told of every column value changed on an existing item, by the API or by hand (webhooks.ts sends them on). */
  readonly columnListeners: Array<(change: ColumnChange) => void> = [];

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  private id(): string {
    this.nextId += 1;
    return String(this.nextId);
  }

  /** A board as an account admin sets it up (tests and the sandbox; ctbridge never creates boards). */
  createBoard(spec: BoardSpec): SimBoard {
    const board: SimBoard = {
      id: this.id(),
      name: spec.name,
      groups: spec.groups ?? [{ id: 'topics', title: 'Group Title' }],
      columns: [{ id: 'name', title: 'Name', type: 'name' }, ...spec.columns.map((c) => column(c))],
    };
    this.boards.set(board.id, board);
    if (spec.subitemColumns) {
      const sub: SimBoard = { id: this.id(), name: `Subitems of ${spec.name}`, groups: [{ id: 'topics', title: 'Subitems' }], columns: [{ id: 'name', title: 'Name', type: 'name' }, ...spec.subitemColumns.map((c) => column(c))], parentBoardId: board.id };
      this.boards.set(sub.id, sub);
      board.subitemsBoardId = sub.id;
      board.columns.push({ id: 'subitems', title: 'Subitems', type: 'subtasks', boardIds: [sub.id] });
    }
    return board;
  }

  board(boardId: string): SimBoard {
    const board = this.boards.get(String(boardId));
    if (!board) throw new MondayApiError('The board does not exist. Please check your board ID and try again', 'InvalidBoardIdException', { board_id: Number(boardId) });
    return board;
  }

  item(itemId: string): SimItem {
    const item = this.items.get(String(itemId));
    if (!item) throw new MondayApiError('Item not found in board', 'InvalidItemIdException', { item_id: Number(itemId) });
    return item;
  }

  createItem(boardId: string, groupId: string | undefined, name: string, columnValues: unknown, createLabels: boolean, parentId?: string): SimItem {
    const board = this.board(boardId);
    const group = groupId === undefined ? board.groups[0] : board.groups.find((g) => g.id === groupId);
    if (!group) throw new MondayApiError('Group not found', 'InvalidGroupIdException', { group_id: groupId, board_id: Number(boardId) });
    const values = this.validate(board, parseColumnValues(columnValues), createLabels);
    const at = this.now();
    const item: SimItem = { id: this.id(), boardId: board.id, groupId: group.id, name, values: new Map(), subitemIds: [], state: 'active', createdAt: at, updatedAt: at, ...(parentId && { parentId }) };
    applyValues(item, values);
    this.items.set(item.id, item);
    return item;
  }

  createSubitem(parentId: string, name: string, columnValues: unknown, createLabels: boolean): SimItem {
    const parent = this.item(parentId);
    const board = this.board(parent.boardId);
    if (!board.subitemsBoardId) throw new MondayApiError('This board has no subitems column', 'InvalidBoardIdException', { board_id: Number(board.id) });
    const sub = this.createItem(board.subitemsBoardId, undefined, name, columnValues, createLabels, parent.id);
    parent.subitemIds.push(sub.id);
    return sub;
  }

  changeColumnValues(boardId: string, itemId: string, columnValues: unknown, createLabels: boolean): SimItem {
    const board = this.board(boardId);
    const item = this.item(itemId);
    if (item.boardId !== board.id) throw new MondayApiError('Item not found in board', 'InvalidItemIdException', { item_id: Number(itemId), board_id: Number(boardId) });
    const parsed = parseColumnValues(columnValues);
    // The name is a column too in change_multiple_column_values.
    const name = parsed.get('name');
    parsed.delete('name');
    const values = this.validate(board, parsed, createLabels);
    if (typeof name === 'string') item.name = name;
    this.changed(item, values, 'api');
    item.updatedAt = this.now();
    return item;
  }

  /** Applies values to an existing item and tells the listeners of each that changed. */
  private changed(item: SimItem, values: Map<string, SimValue | undefined>, by: ColumnChange['by']): void {
    const before = new Map([...values.keys()].map((id) => [id, item.values.get(id)]));
    applyValues(item, values);
    for (const [columnId, value] of values) {
      const previous = before.get(columnId);
      if (previous?.value === value?.value) continue;
      const column = this.board(item.boardId).columns.find((c) => c.id === columnId)!;
      for (const listener of this.columnListeners) listener({ item, column, value, previous, by, at: this.now() });
    }
  }

  /** Items of a board whose column holds one of the values (its text), as items_page_by_column_values finds them. */
  itemsByColumnValues(boardId: string, rules: Array<{ column_id: string; column_values: Array<string | null> }>): SimItem[] {
    const board = this.board(boardId);
    for (const rule of rules) {
      if (!board.columns.some((c) => c.id === rule.column_id)) throw new MondayApiError(`Column ${rule.column_id} not found`, 'InvalidColumnIdException', { column_id: rule.column_id });
    }
    return [...this.items.values()].filter(
      (item) => item.boardId === board.id && item.state === 'active' && rules.every((rule) => rule.column_values.some((wanted) => (rule.column_id === 'name' ? item.name : (item.values.get(rule.column_id)?.text ?? '')) === (wanted ?? ''))),
    );
  }

  archiveItem(itemId: string): SimItem {
    const item = this.item(itemId);
    item.state = 'archived';
    item.updatedAt = this.now();
    return item;
  }

  deleteItem(itemId: string): SimItem {
    const item = this.item(itemId);
    this.items.delete(item.id);
    for (const id of item.subitemIds) this.items.delete(id);
    return item;
  }

  /** What a person does in monday: sets a column by hand (the value in monday's format). */
  setByHand(itemId: string, columnId: string, value: unknown): void {
    const item = this.item(itemId);
    const values = this.validate(this.board(item.boardId), new Map([[columnId, value]]), true);
    this.changed(item, values, 'hand');
    item.updatedAt = this.now();
  }

  /** The stored value of a column, parsed (undefined when empty). */
  valueOf(itemId: string, columnId: string): unknown {
    const stored = this.items.get(itemId)?.values.get(columnId);
    return stored ? JSON.parse(stored.value) : undefined;
  }

  itemsOf(boardId: string): SimItem[] {
    return [...this.items.values()].filter((item) => item.boardId === boardId);
  }

  /** Checks each value against its column (monday's rules), giving what to store; nothing is stored on any error. */
  private validate(board: SimBoard, values: Map<string, unknown>, createLabels: boolean): Map<string, SimValue | undefined> {
    const out = new Map<string, SimValue | undefined>();
    for (const [columnId, raw] of values) {
      const col = board.columns.find((c) => c.id === columnId);
      if (!col) throw new MondayApiError('This column ID doesn\'t exist for the board', 'InvalidColumnIdException', { column_id: columnId, board_id: Number(board.id) });
      out.set(columnId, this.columnValue(col, raw, createLabels));
    }
    return out;
  }

  private columnValue(col: SimColumn, raw: unknown, createLabels: boolean): SimValue | undefined {
    const invalid: (why: string) => never = (why) => {
      throw new MondayApiError(`invalid value - ${why}. ${COLUMN_VALUE_HINT}`, 'ColumnValueException', { column_type: col.type, column_id: col.id });
    };
    // "" or {} (or null) clears a column, whatever its type.
    if (raw === null || raw === '' || (isObject(raw) && Object.keys(raw).length === 0)) return undefined;
    switch (col.type) {
      case 'text': {
        if (typeof raw !== 'string' && typeof raw !== 'number') invalid('a text column takes a string');
        const text = String(raw);
        return { value: JSON.stringify(text), text };
      }
      case 'long_text': {
        const text = typeof raw === 'string' ? raw : isObject(raw) && typeof raw.text === 'string' ? raw.text : invalid('a long text column takes {"text": "…"}');
        if (text.length > 2000) invalid('long text is limited to 2,000 characters');
        return { value: JSON.stringify({ text }), text };
      }
      case 'email': {
        if (!isObject(raw) || typeof raw.email !== 'string') invalid('an email column takes {"email": "…", "text": "…"}');
        const { email, text } = raw as { email: string; text?: unknown };
        if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) invalid('the email address is not valid');
        const shown = typeof text === 'string' && text !== '' ? text : email;
        return { value: JSON.stringify({ email, text: shown }), text: email };
      }
      case 'phone': {
        if (!isObject(raw) || typeof raw.phone !== 'string' || typeof raw.countryShortName !== 'string') invalid('a phone column takes {"phone": "…", "countryShortName": "XX"}');
        const { phone, countryShortName } = raw as { phone: string; countryShortName: string };
        if (!/^[A-Z]{2}$/.test(countryShortName) || !countries.isValid(countryShortName)) invalid(`${countryShortName} is not a two-letter country code`);
        if (!isValidPhoneNumber(phone, countryShortName as CountryCode)) invalid('phone number is not valid for the country');
        return { value: JSON.stringify({ phone, countryShortName }), text: phone };
      }
      case 'status': {
        const labels = col.labels ?? new Map<number, string>();
        if (isObject(raw) && typeof raw.index === 'number') {
          const label = labels.get(raw.index);
          if (label === undefined) invalid('index does not exist in column');
          return { value: JSON.stringify({ index: raw.index }), text: label };
        }
        const label = isObject(raw) && typeof raw.label === 'string' ? raw.label : typeof raw === 'string' ? raw : invalid('a status column takes {"label": "…"} or {"index": n}');
        let index = [...labels].find(([, l]) => l === label)?.[0];
        if (index === undefined) {
          if (!createLabels) invalid('label does not exist in column');
          index = Math.max(-1, ...labels.keys()) + 1;
          labels.set(index, label);
          col.labels = labels;
        }
        return { value: JSON.stringify({ index }), text: label };
      }
      case 'date': {
        if (!isObject(raw) || typeof raw.date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(raw.date) || Number.isNaN(Date.parse(raw.date))) invalid('a date column takes {"date": "YYYY-MM-DD", "time": "HH:MM:SS"}');
        const { date, time } = raw as { date: string; time?: unknown };
        if (time !== undefined && (typeof time !== 'string' || !/^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/.test(time))) invalid('time must be HH:MM:SS');
        return { value: JSON.stringify({ date, ...(time !== undefined && { time }) }), text: time ? `${date} ${time}` : date };
      }
      case 'numbers': {
        const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : invalid('a numbers column takes a number as a string');
        if (!/^-?\d+(\.\d+)?$/.test(text)) invalid(`${text} is not a number`);
        return { value: JSON.stringify(text), text };
      }
      case 'link': {
        if (!isObject(raw) || typeof raw.url !== 'string') invalid('a link column takes {"url": "…", "text": "…"}');
        const { url, text } = raw as { url: string; text?: unknown };
        if (!/^https?:\/\/\S+$/.test(url)) invalid('the URL is not valid');
        const shown = typeof text === 'string' && text !== '' ? text : url;
        return { value: JSON.stringify({ url, text: shown }), text: `${shown} - ${url}` };
      }
      case 'checkbox': {
        if (!isObject(raw) || !('checked' in raw)) invalid('a checkbox column takes {"checked": "true"}');
        const checked = String(raw.checked) === 'true';
        return checked ? { value: JSON.stringify({ checked: 'true' }), text: 'v' } : undefined;
      }
      case 'dropdown': {
        const labels = col.labels ?? new Map<number, string>();
        if (!isObject(raw) || !Array.isArray(raw.labels) || !raw.labels.every((l) => typeof l === 'string')) invalid('a dropdown column takes {"labels": ["…"]}');
        const ids: number[] = [];
        for (const label of (raw as { labels: string[] }).labels) {
          let id = [...labels].find(([, l]) => l === label)?.[0];
          if (id === undefined) {
            if (!createLabels) invalid(`The dropdown label ${label} does not exist`);
            id = Math.max(0, ...labels.keys()) + 1;
            labels.set(id, label);
            col.labels = labels;
          }
          ids.push(id);
        }
        return { value: JSON.stringify({ ids }), text: ids.map((id) => labels.get(id)).join(', ') };
      }
      case 'country': {
        if (!isObject(raw) || typeof raw.countryCode !== 'string' || typeof raw.countryName !== 'string') invalid('a country column takes {"countryCode": "XX", "countryName": "…"}');
        const { countryCode, countryName } = raw as { countryCode: string; countryName: string };
        if (!countries.isValid(countryCode) || countries.getName(countryCode, 'en') === undefined) invalid(`${countryCode} is not a country code`);
        if (countries.getAlpha2Code(countryName, 'en') !== countryCode.toUpperCase()) invalid(`${countryName} is not the name of ${countryCode}`);
        return { value: JSON.stringify({ countryCode, countryName }), text: countryName };
      }
      case 'board_relation': {
        if (!isObject(raw) || !Array.isArray(raw.item_ids)) invalid('a board relation column takes {"item_ids": [1, 2]}');
        const ids = (raw as { item_ids: unknown[] }).item_ids.map(String);
        for (const id of ids) {
          const linked = this.items.get(id);
          if (!linked || (col.boardIds && !col.boardIds.includes(linked.boardId))) invalid(`item ${id} is not on a board this column connects`);
        }
        const linkedPulseIds = ids.map((id) => ({ linkedPulseId: Number(id) }));
        return { value: JSON.stringify({ linkedPulseIds }), text: ids.map((id) => this.items.get(id)!.name).join(', ') };
      }
      default:
        return invalid(`a ${col.type} column cannot be changed through the API`);
    }
  }
}

function column(spec: { id: string; title?: string; type: string; labels?: string[]; boardIds?: string[] }): SimColumn {
  return {
    id: spec.id,
    title: spec.title ?? spec.id,
    type: spec.type,
    ...(spec.labels && { labels: new Map(spec.labels.map((label, index) => [spec.type === 'dropdown' ? index + 1 : index, label])) }),
    ...(spec.boardIds && { boardIds: spec.boardIds }),
  };
}

/** `column_values` as monday takes it: a JSON text of an object (an object is taken too). */
function parseColumnValues(columnValues: unknown): Map<string, unknown> {
  if (columnValues === undefined || columnValues === null) return new Map();
  let parsed: unknown = columnValues;
  if (typeof columnValues === 'string') {
    try {
      parsed = JSON.parse(columnValues);
    } catch {
      throw new MondayApiError('column_values is not valid JSON', 'JsonParseException', { column_values: columnValues.slice(0, 100) });
    }
  }
  if (!isObject(parsed)) throw new MondayApiError('column_values must be a JSON object of column ids to values', 'ColumnValueException', {});
  return new Map(Object.entries(parsed));
}

function applyValues(item: SimItem, values: Map<string, SimValue | undefined>): void {
  for (const [columnId, value] of values) {
    if (value === undefined) item.values.delete(columnId);
    else item.values.set(columnId, value);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
