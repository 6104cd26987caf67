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
import type { InboundChange, InboundDefinition, InboundPage } from '../types.ts';
import type { MondayClient } from './client.ts';
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
    const event = isRecord(body) && isRecord(body.activity_log) ? eventOfLog(body.activity_log) : isRecord(body) ? body.event : undefined;
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

/**
 * An activity log entry (polling, below) as the webhook event it corresponds to: `data` is a JSON string with
 * board_id, pulse_id, column_id, column_type, value and previous_value in the webhook's forms; `created_at` is
 * 17-digit Unix time (tenths of microseconds) as a string; `user_id` who made the change.
 */
function eventOfLog(entry: Record<string, unknown>): Record<string, unknown> {
  let data: unknown;
  try {
    data = typeof entry.data === 'string' ? JSON.parse(entry.data) : entry.data;
  } catch {
    throw new PermanentError(`monday activity log ${idText(entry.id)}: its data is not JSON`);
  }
  if (!isRecord(data)) throw new PermanentError(`monday activity log ${idText(entry.id)} without data`);
  const createdAt = Number(entry.created_at);
  return {
    type: entry.event,
    boardId: data.board_id,
    pulseId: data.pulse_id,
    columnId: data.column_id,
    columnType: data.column_type,
    value: data.value,
    ...(Number.isFinite(createdAt) && createdAt > 0 && { changedAt: createdAt / 1e7 }),
    userId: entry.user_id,
  };
}

/** Logs may be written a little after the change they record: each poll reads back this far before its cursor. */
const POLL_OVERLAP_MS = 60_000;
/** Logs per page, and the most pages one poll reads (monday returns at most 10,000 logs). */
const LOGS_PER_PAGE = 100;
const MAX_PAGES = 100;

const ACTIVITY_LOGS = `query ($board: [ID!], $from: ISO8601DateTime, $columns: [String], $limit: Int, $page: Int) {
  complexity { before after query reset_in_x_seconds }
  boards(ids: $board) { id activity_logs(from: $from, column_ids: $columns, limit: $limit, page: $page) { id event entity data created_at user_id account_id } }
}`;

/**
 * Polling instead of webhooks: each configured board's activity logs (developer.monday.com/api-reference/docs/
 * activity-logs: `boards { activity_logs(from, to, column_ids, limit, page) }`, newest first, `id` a UUID) of the
 * mapped columns, from the cursor (read back by POLL_OVERLAP_MS) on. Each column change is one delivery under its
 * log id. The cursor is monday's time, not ours: the first answer's Date header (logs' created_at follow monday's
 * clock), so that a clock of ours ahead of monday's by more than the overlap loses no change. Without an upper
 * bound, a log written while the pages are read shifts the newest-first pages by one: a log seen twice (its id
 * dedupes it), never one missed.
 */
export async function pollActivityLogs(client: MondayClient, cursor: string | undefined, now: number): Promise<InboundPage> {
  let to: number | undefined;
  // Only the first poll starts from our clock: what changed before it is not for it to catch.
  const from = (cursor !== undefined && Number.isFinite(Number(cursor)) ? Number(cursor) : now) - POLL_OVERLAP_MS;
  const deliveries: InboundPage['deliveries'] = [];
  const boards = new Map<string, Set<string>>();
  for (const spec of Object.values(client.settings.boards)) {
    const columns = boards.get(spec.board) ?? new Set<string>();
    for (const column of Object.values(spec.columns)) columns.add(columnIdOf(column));
    boards.set(spec.board, columns);
  }
  for (const [board, columns] of boards) {
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const variables = { board: [board], from: new Date(from).toISOString(), columns: [...columns], limit: LOGS_PER_PAGE, page };
      const answer = await client.request(`reading the activity logs of board ${board}`, ACTIVITY_LOGS, variables, 10 + LOGS_PER_PAGE * 8);
      to ??= answer.answeredAt ?? now;
      const logs = ((answer.data.boards as Array<{ activity_logs?: unknown[] | null }> | null | undefined)?.[0]?.activity_logs ?? []).filter(isRecord);
      for (const log of logs) {
        if (typeof log.id !== 'string' || !COLUMN_EVENTS.has(String(log.event))) continue;
        deliveries.push({ dedupeKey: `monday-log:${log.id}`, body: { activity_log: log } });
      }
      if (logs.length < LOGS_PER_PAGE) break;
    }
  }
  // Oldest first, so that the changes are worked in the order they were made.
  deliveries.reverse();
  return { deliveries, cursor: String(to ?? now) };
}
