// monday's board webhooks for two-way sync: the URL verification challenge, the delivery id to deduplicate on, and
// a column value change read back into the mapped field it came from (board → the record mappings on it, column →
// the field mapped to it, monday's column JSON → the value in the mapping's terms).
//
// What monday sends (developer.monday.com/api-reference/docs/webhooks, "URL verification"; support.monday.com
// article 360003540679 "Webhook integration", its sample payloads): registration POSTs `{"challenge": "…"}` and
// expects the same JSON back; each event is `{"event": {…}}` with `type` "update_column_value" for the "When a
// column changes" / "When a status changes" recipes (change_column_value / change_status_column_value
// subscriptions), `boardId`, `pulseId` (the item), `columnId`, `columnType`, `value` (the column's new value in its
// JSON form; a status as `{label: {index, text, style}, post_id}`), `previousValue`, `changedAt` (Unix seconds with
// a fraction), `triggerTime` (ISO 8601), `triggerUuid` (one per event: the delivery's id; monday retries a failed
// delivery with the same body) and `userId`. Authentication is the JWT in Authorization (../../server/inbound-auth.ts).
import { PermanentError } from '../kit/index.ts';
import type { InboundChange, InboundDefinition } from '../types.ts';
import { columnIdOf, type MondaySettings } from './settings.ts';

const COLUMN_EVENTS = new Set(['update_column_value', 'change_column_value', 'change_status_column_value', 'change_specific_column_value']);

/** An id monday sends as a number or a string; anything else is no id. */
const idText = (value: unknown): string => (typeof value === 'number' || typeof value === 'string' ? String(value) : '');

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A column's webhook value as the mapped field holds it (the reverse of columns.ts). */
export function valueFromColumn(columnType: string | undefined, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (!isRecord(value)) return value;
  switch (columnType) {
    case 'color':
    case 'status':
      return isRecord(value.label) ? (value.label.text ?? null) : null;
    case 'long_text':
      return value.text ?? null;
    case 'email':
      return value.email ?? null;
    case 'phone':
      return value.phone ?? null;
    case 'numeric':
    case 'numbers': {
      const number = Number(value.value);
      return value.value === undefined || value.value === '' || Number.isNaN(number) ? null : number;
    }
    case 'checkbox':
      return value.checked === true || value.checked === 'true';
    case 'date':
      return value.date ?? null;
    case 'link':
      return value.url ?? null;
    case 'country':
      return value.countryCode ?? null;
    default:
      return 'value' in value ? value.value : 'text' in value ? value.text : value;
  }
}

export const mondayInbound: InboundDefinition<MondaySettings> = {
  auth: ['monday', 'sharedSecret'],
  challenge: (body) => (isRecord(body) && typeof body.challenge === 'string' && !('event' in body) ? { challenge: body.challenge } : undefined),
  dedupeKey: (body) => {
    const event = isRecord(body) ? body.event : undefined;
    return isRecord(event) && typeof event.triggerUuid === 'string' ? `monday:${event.triggerUuid}` : undefined;
  },
  changes(settings, body): InboundChange[] {
    const event = isRecord(body) ? body.event : undefined;
    if (!isRecord(event)) throw new PermanentError('not a monday webhook: the body has no event object');
    if (typeof event.type !== 'string' || !COLUMN_EVENTS.has(event.type)) return [];
    const boardId = idText(event.boardId);
    const itemId = idText(event.pulseId ?? event.itemId);
    if (itemId === '') throw new PermanentError(`monday ${event.type} without pulseId`);
    const columnId = idText(event.columnId);
    const changedAt = typeof event.changedAt === 'number' ? Math.round(event.changedAt * 1000) : typeof event.triggerTime === 'string' ? Date.parse(event.triggerTime) : Number.NaN;
    if (!Number.isFinite(changedAt)) throw new PermanentError(`monday ${event.type} of item ${itemId} without changedAt or triggerTime`);
    // The mapped field behind the column, per record mapping on that board.
    const byField = new Map<string, string[]>();
    for (const [recordType, spec] of Object.entries(settings.boards)) {
      if (spec.board !== boardId) continue;
      for (const [field, column] of Object.entries(spec.columns)) {
        if (columnIdOf(column) !== columnId) continue;
        byField.set(field, [...(byField.get(field) ?? []), recordType]);
      }
    }
    const value = valueFromColumn(typeof event.columnType === 'string' ? event.columnType : undefined, event.value);
    // ctbridge's own writes come back too (monday fires for API changes): told apart by the token's user.
    const byUs = settings.apiUserId !== undefined && String(event.userId) === settings.apiUserId;
    return [...byField].map(([field, recordTypes]) => ({ recordTypes, destinationId: itemId, field, value, at: changedAt, byUs }));
  },
};
