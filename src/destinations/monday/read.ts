// Reading an item back from monday (reconciliation): `items(ids:)` with the item's name, state and the columns its
// mapped fields go to, in the mapping's terms. Only columns whose value reads back to exactly what the mapping
// produced are returned — text, long text, e-mail, status (its label, the value's `text`) and numbers — besides
// the item's name; a date, link, phone, dropdown, country or board relation is written in a form that does not read
// back to the mapped value, and a column monday owns (mondayOwned) is monday's to change: those are left out,
// never compared. An archived or deleted item is one monday does not hold (`state` other than active, or absent:
// developer.monday.com/api-reference/reference/items, the Item type's `state`).
import type { RecordReadItem, RecordReadOutcome } from '../kit/index.ts';
import type { MondayClient } from './client.ts';
import { columnIdOf, type MondayTarget } from './settings.ts';

const QUERY = 'query ctbridgeRead($ids: [ID!], $columns: [String!]) {\n  complexity { before after query reset_in_x_seconds }\n  items(ids: $ids) { id name state column_values(ids: $columns) { id type value text } }\n}';

interface ReadColumn {
  id: string;
  type: string;
  value: string | null;
  text: string | null;
}

export const readItem = {
  async read(client: MondayClient, item: RecordReadItem): Promise<RecordReadOutcome> {
    const spec = client.settings.boards[(item.target as MondayTarget | undefined)?.board ?? item.recordType];
    if (!spec || item.destinationId === undefined) return { found: true, fields: {} };
    const wanted = item.fields.filter((field) => !spec.mondayOwned.includes(field) && field !== spec.lineItems?.field && (field === spec.itemName || Object.hasOwn(spec.columns, field)));
    const columnOf = (field: string) => columnIdOf(spec.columns[field]!);
    const columns = [...new Set(wanted.filter((field) => field !== spec.itemName).map(columnOf))];
    const answer = await client.request(`reading item ${item.destinationId}`, QUERY, { ids: [item.destinationId], columns }, 1 + columns.length);
    const found = ((answer.data.items as Array<{ id: string; name: string; state: string | null; column_values: ReadColumn[] } | null> | null) ?? [])[0];
    if (!found || (found.state !== null && found.state !== 'active')) return { found: false };
    const fields: Record<string, unknown> = {};
    for (const field of wanted) {
      if (field === spec.itemName) {
        fields[field] = found.name;
        continue;
      }
      const column = found.column_values.find((c) => c.id === columnOf(field));
      const value = column ? mappedValue(column) : UNREADABLE;
      if (value !== UNREADABLE) fields[field] = value;
    }
    return { found: true, fields };
  },
};

const UNREADABLE = Symbol('unreadable');

/** A column's value as the mapping produced it (the reverse of columns.ts), or UNREADABLE for a type that does not read back exactly. */
function mappedValue(column: ReadColumn): unknown {
  const parsed = parse(column.value);
  switch (column.type) {
    case 'text':
    case 'status':
      return column.text === null || column.text === '' ? null : column.text;
    case 'long_text':
      return typeof parsed?.text === 'string' && parsed.text !== '' ? parsed.text : null;
    case 'email':
      return typeof parsed?.email === 'string' && parsed.email !== '' ? parsed.email : null;
    case 'numbers': {
      const number = column.text === null || column.text === '' ? Number.NaN : Number(column.text);
      return Number.isFinite(number) ? number : null;
    }
    default:
      return UNREADABLE;
  }
}

function parse(value: string | null): Record<string, unknown> | undefined {
  if (value === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
