// The monday simulator's board webhooks, sent as monday sends them: registering one POSTs `{"challenge": "…"}` to
// the URL and requires the same JSON back (developer.monday.com/api-reference/docs/webhooks, "URL verification");
// afterwards every column value changed on an item of the board — by a person or through the API, ctbridge's own
// writes included, as monday does — is POSTed as `{"event": {…}}` with type "update_column_value" (the type the
// change_column_value and change_status_column_value subscriptions deliver; support.monday.com article
// 360003540679 "Webhook integration", sample payloads), `pulseId`, `columnId`, `columnType` ("color" for a status
// column, as in those samples), `value` and `previousValue` in the column's webhook JSON (a status as
// `{label: {index, text, style}, post_id}`), `changedAt` in Unix seconds with a fraction, `triggerTime`,
// `triggerUuid` and `userId`, with `Authorization: <JWT>` signed HS256 with the app's Signing Secret (claims
// accountId, userId, aud, exp, iat, shortLivedToken: developer.monday.com/apps/docs/authorization-header). A
// delivery answered other than 2xx is retried, as monday retries (once a minute for 30 minutes), here on `flush()`.
// Deliveries can be held and released in any order, so tests can interleave them with other work.
import { randomBytes, randomUUID } from 'node:crypto';
import { signMondayJwt } from '../../server/inbound-auth.ts';
import type { ColumnChange, MondayAccount, SimValue } from './account.ts';

export interface MondayWebhookOptions {
  url: string;
  /** The app's Signing Secret; without it no Authorization header is sent (a webhook made with a personal token). */
  signingSecret?: string;
  boardId: string;
  /** Who ctbridge's API token acts as, in `userId` of its own writes. */
  apiUserId?: number;
  /** Who edits by hand. */
  handUserId?: number;
  /** Keep deliveries until release() (tests order them). */
  hold?: boolean;
  now?: () => number;
}

export interface PendingDelivery {
  body: Record<string, unknown>;
  by: 'hand' | 'api';
}

export interface MondayWebhooks {
  /** The challenge handshake; rejects when the endpoint does not echo it. */
  register(): Promise<void>;
  /** Deliveries not yet answered 2xx (held ones and failed ones). */
  readonly pending: PendingDelivery[];
  /** Every delivery answered 2xx. */
  readonly delivered: PendingDelivery[];
  /** Sends the pending deliveries (those `pick` chooses, default all), in order; failed ones stay pending. */
  release(pick?: (delivery: PendingDelivery, index: number) => boolean): Promise<void>;
  /** Waits for the deliveries in flight. */
  flush(): Promise<void>;
  stop(): void;
}

const ACCOUNT_ID = 4_242_424;
const STATUS_STYLE = { color: '#00c875', border: '#00B461', var_name: 'green-shadow' };

/** A stored column value in the JSON form webhooks carry it in. */
export function webhookValue(type: string, stored: SimValue | undefined): unknown {
  if (!stored) return null;
  const parsed = JSON.parse(stored.value) as Record<string, unknown>;
  switch (type) {
    case 'status':
      return { label: { index: parsed.index ?? null, text: stored.text, style: STATUS_STYLE, is_done: false }, post_id: null };
    case 'text':
      return { value: stored.text };
    case 'numbers':
      return { value: stored.text === '' ? null : Number(stored.text), unit: null };
    default:
      return parsed;
  }
}

export function mondayWebhooks(account: MondayAccount, options: MondayWebhookOptions): MondayWebhooks {
  const now = options.now ?? Date.now;
  const pending: PendingDelivery[] = [];
  const delivered: PendingDelivery[] = [];
  const inFlight = new Set<Promise<void>>();
  const subscriptionId = 70_000_000 + Math.floor(Math.random() * 1_000_000);
  const headers = (userId: number): Record<string, string> => {
    const base: Record<string, string> = { 'content-type': 'application/json' };
    if (!options.signingSecret) return base;
    const iat = Math.floor(now() / 1000);
    base.authorization = signMondayJwt({ accountId: ACCOUNT_ID, userId, aud: options.url, exp: iat + 300, iat, shortLivedToken: randomBytes(16).toString('hex') }, options.signingSecret);
    return base;
  };
  const post = async (delivery: PendingDelivery): Promise<boolean> => {
    const userId = delivery.body.event && typeof (delivery.body.event as { userId?: unknown }).userId === 'number' ? ((delivery.body.event as { userId: number }).userId) : 0;
    try {
      const response = await fetch(options.url, { method: 'POST', headers: headers(userId), body: JSON.stringify(delivery.body) });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  };
  const send = (deliveries: PendingDelivery[]): Promise<void> => {
    const run = (async () => {
      for (const delivery of deliveries) {
        if (await post(delivery)) delivered.push(delivery);
        else pending.push(delivery);
      }
    })();
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
    return run;
  };
  const listener = (change: ColumnChange) => {
    if (change.item.boardId !== options.boardId) return;
    const at = change.at;
    const userId = change.by === 'api' ? (options.apiUserId ?? 1) : (options.handUserId ?? 2);
    const event = {
      app: 'monday',
      type: 'update_column_value',
      triggerTime: new Date(at).toISOString(),
      subscriptionId,
      userId,
      originalTriggerUuid: null,
      boardId: Number(change.item.boardId),
      groupId: change.item.groupId,
      pulseId: Number(change.item.id),
      pulseName: change.item.name,
      columnId: change.column.id,
      columnType: change.column.type === 'status' ? 'color' : change.column.type,
      columnTitle: change.column.title,
      value: webhookValue(change.column.type, change.value),
      previousValue: webhookValue(change.column.type, change.previous),
      changedAt: at / 1000,
      isTopGroup: true,
      triggerUuid: randomUUID().replaceAll('-', ''),
    };
    const delivery: PendingDelivery = { body: { event }, by: change.by };
    if (options.hold) pending.push(delivery);
    else void send([delivery]);
  };
  account.columnListeners.push(listener);
  return {
    async register() {
      const challenge = randomBytes(36).toString('base64url');
      const response = await fetch(options.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge }) });
      const answer = (await response.json().catch(() => null)) as { challenge?: unknown } | null;
      if (!response.ok || answer?.challenge !== challenge) throw new Error(`monday: the webhook URL ${options.url} did not echo the challenge (HTTP ${response.status})`);
    },
    pending,
    delivered,
    async release(pick = () => true) {
      const chosen: PendingDelivery[] = [];
      for (let i = 0; i < pending.length; ) {
        if (pick(pending[i]!, i)) chosen.push(...pending.splice(i, 1));
        else i += 1;
      }
      await send(chosen);
    },
    async flush() {
      await Promise.all([...inFlight]);
    },
    stop() {
      const at = account.columnListeners.indexOf(listener);
      if (at >= 0) account.columnListeners.splice(at, 1);
    },
  };
}
