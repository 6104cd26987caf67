// The monday simulator's board activity logs, recorded and served as monday does
// (developer.monday.com/api-reference/docs/activity-logs; the ActivityLogType and `activity_logs` arguments of
// spec/monday/schema.graphql): every column value changed on an item — by a person or through the API, ctbridge's
// own writes included — is an entry with `id` (a UUID), `event` "update_column_value", `entity` "pulse", `data` (a
// JSON string: board_id, group_id, pulse_id, pulse_name, column_id, column_type — "color" for a status —,
// column_title, value and previous_value in the webhook's forms, is_top_group), `created_at` (17-digit Unix time,
// in tenths of microseconds, as a string), `user_id` and `account_id`. A query filters by from/to (ISO 8601),
// column_ids, item_ids, group_ids and user_ids and answers newest first, `limit` (default 25) per `page` (from 1),
// at most 10,000 logs in all.
import { randomUUID } from 'node:crypto';
import type { ColumnChange, MondayAccount } from './account.ts';
import { webhookValue } from './webhooks.ts';

export interface SimActivityLog {
  id: string;
  event: string;
  entity: string;
  data: string;
  created_at: string;
  user_id: string;
  account_id: string;
  /** Kept beside the entry for filtering; not part of what is served. */
  boardId: string;
  itemId: string;
  groupId: string;
  columnId: string;
  at: number;
}

export interface ActivityLogQuery {
  from?: string | null;
  to?: string | null;
  column_ids?: Array<string | null> | null;
  item_ids?: Array<string | number> | null;
  group_ids?: Array<string | null> | null;
  user_ids?: Array<string | number> | null;
  limit?: number | null;
  page?: number | null;
}

export interface ActivityLogs {
  readonly entries: SimActivityLog[];
  query(boardId: string, args: ActivityLogQuery): Array<Omit<SimActivityLog, 'boardId' | 'itemId' | 'groupId' | 'columnId' | 'at'>>;
}

const MAX_LOGS = 10_000;

/** Records the account's column changes from now on; `users` says who the API's and a person's changes are by. */
export function recordActivityLogs(account: MondayAccount, users: { api: number; hand: number; accountId: number }): ActivityLogs {
  const entries: SimActivityLog[] = [];
  account.columnListeners.push((change: ColumnChange) => {
    const data = {
      board_id: Number(change.item.boardId),
      group_id: change.item.groupId,
      is_top_group: true,
      pulse_id: Number(change.item.id),
      pulse_name: change.item.name,
      column_id: change.column.id,
      column_type: change.column.type === 'status' ? 'color' : change.column.type,
      column_title: change.column.title,
      value: webhookValue(change.column.type, change.value),
      previous_value: webhookValue(change.column.type, change.previous),
      is_column_with_hide_permissions: false,
    };
    entries.push({
      id: randomUUID(),
      event: 'update_column_value',
      entity: 'pulse',
      data: JSON.stringify(data),
      created_at: `${change.at}0000`,
      user_id: String(change.by === 'api' ? users.api : users.hand),
      account_id: String(users.accountId),
      boardId: change.item.boardId,
      itemId: change.item.id,
      groupId: change.item.groupId,
      columnId: change.column.id,
      at: change.at,
    });
  });
  return {
    entries,
    query(boardId, args) {
      const from = args.from ? Date.parse(args.from) : Number.NEGATIVE_INFINITY;
      const to = args.to ? Date.parse(args.to) : Number.POSITIVE_INFINITY;
      const within = (list: ReadonlyArray<unknown> | null | undefined, value: string) => !list || list.length === 0 || list.some((entry) => String(entry) === value);
      const found = entries
        .filter((e) => e.boardId === boardId && e.at >= from && e.at <= to && within(args.column_ids, e.columnId) && within(args.item_ids, e.itemId) && within(args.group_ids, e.groupId) && within(args.user_ids, e.user_id))
        .reverse()
        .slice(0, MAX_LOGS);
      const limit = args.limit ?? 25;
      const page = Math.max(1, args.page ?? 1);
      return found.slice((page - 1) * limit, page * limit).map(({ id, event, entity, data, created_at, user_id, account_id }) => ({ id, event, entity, data, created_at, user_id, account_id }));
    },
  };
}
