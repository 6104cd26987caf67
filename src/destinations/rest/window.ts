// The batching window of scheduled events ("every N minutes"): an event is held in the connector's state — in
// the store, shared by every process — under a key that sorts by the end of its window (windows are aligned to
// the clock: an event held at t is due at the next multiple of N minutes), then by when it happened; a timer
// looks for due events and sends them in that order, one call each, by the same operation an unscheduled event
// would use. The clock is the injected one (`deps.now`), so tests move time instead of waiting for it.
//
// Nothing held is lost and nothing sent twice by two processes: a sender first marks an event as its own
// (`sending:<owner>:…`), then takes the held entry (`take` tells it whether it got it; if not, it drops its mark),
// sends, and drops its mark. A mark older than LEASE_MS (its process died mid-send) is turned back into a held
// event. A retryable failure leaves the event held for the next look; a permanent one becomes a dead letter
// through `reportLateFailures` (the engine's delivery row is gone by then, so it cannot be replayed: the
// message says what failed).
import { randomUUID } from 'node:crypto';
import { PermanentError, toDeliveryError, withPayloadContext, type EventItem } from '../kit/index.ts';
import type { RestClient } from './client.ts';
import { eventContext } from './events.ts';

export interface EventWindow {
  /** Holds the event until the end of its window of `windowMs`. */
  hold(item: EventItem, windowMs: number): Promise<void>;
  /** Sends every held event whose window has ended (by the client's clock), in order; how many were sent. */
  flush(): Promise<number>;
}

interface Held {
  item: EventItem;
  heldAt: number;
}

const HELD = 'held:';
const SENDING = 'sending:';
/** Which held key an event has (by its idempotency key), until it is sent. */
const INDEX = 'heldkey:';
/** A send mark older than this belongs to a process that died mid-send. */
const LEASE_MS = 5 * 60_000;
const LIST_PAGE = 200;

const pad = (n: number) => String(Math.max(0, Math.floor(n))).padStart(15, '0');

export function createEventWindow(client: RestClient): EventWindow {
  const owner = randomUUID();
  const state = () => {
    if (client.state === undefined) throw new PermanentError('scheduled events need the store (connector state), which this connector was built without');
    return client.state;
  };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  const start = () => {
    if (timer !== undefined) return;
    const schedules = Object.values(client.settings.operations.events).flatMap((operation) => (operation.schedule ? [operation.schedule.everyMinutes * 60_000] : []));
    if (schedules.length === 0) return;
    // A look at least ten times a window (between 50 ms and 30 s): a due event waits a tenth of its window at most.
    const every = client.settings.scheduleCheckMs ?? Math.min(30_000, Math.max(50, Math.min(...schedules) / 10));
    timer = setInterval(() => void window.flush().catch((error: unknown) => client.logger.warn({ err: error }, 'sending the held events failed; tried again at the next look')), every);
    timer.unref();
    client.onClose(() => clearInterval(timer));
  };

  const send = async (key: string, held: Held): Promise<boolean> => {
    const mark = `${SENDING}${owner}:${key.slice(HELD.length)}`;
    await state().put([{ key: mark, value: { ...held, markedAt: client.now() }, subject: subjectOf(held.item) }]);
    const [taken] = await state().take([key]);
    if (taken === undefined) {
      // Another process took it first.
      await state().take([mark]);
      return false;
    }
    const { item } = held;
    const operation = client.settings.operations.events[item.eventType];
    try {
      if (operation === undefined) throw new PermanentError(`no operation is configured for events of "${item.eventType}" any more`);
      await withPayloadContext([{ kind: 'event', type: item.eventType, resourceId: item.resource?.id, correlationId: item.correlationId }], () =>
        client.call(operation.send, eventContext(item), { idempotencyKey: item.idempotencyKey, correlationId: item.correlationId, defaultBody: item.payload }),
      );
    } catch (error) {
      const failure = toDeliveryError(error);
      if (failure.retryable) {
        // Held again under its own key: the next look sends it, still in its place in the order.
        await state().put([{ key, value: held, subject: subjectOf(item) }]);
        await state().take([mark]);
        throw failure;
      }
      await client.reportLateFailures?.([{ kind: 'event', eventType: item.eventType, dedupeKey: item.idempotencyKey, correlationId: item.correlationId, error: `held for its window, then: ${failure.message}`, sentAt: client.now() }]);
    }
    await state().take([mark, `${INDEX}${item.idempotencyKey}`]);
    return true;
  };

  /** Marks of processes that died mid-send become held events again. */
  const recover = async () => {
    const cutoff = client.now() - LEASE_MS;
    for (const { key, value } of await state().list(SENDING, { limit: LIST_PAGE })) {
      const marked = value as Held & { markedAt: number };
      if (marked.markedAt > cutoff) continue;
      const [taken] = await state().take([key]);
      if (taken === undefined) continue;
      const rest = key.slice(SENDING.length).split(':').slice(1).join(':');
      await state().put([{ key: `${HELD}${rest}`, value: { item: marked.item, heldAt: marked.heldAt }, subject: subjectOf(marked.item) }]);
    }
  };

  const flushOnce = async (): Promise<number> => {
    await recover();
    let sent = 0;
    const now = client.now();
    let after: string | undefined;
    for (;;) {
      const page = await state().list(HELD, { limit: LIST_PAGE, ...(after !== undefined && { after }) });
      if (page.length === 0) return sent;
      for (const { key, value } of page) {
        const dueAt = Number(key.slice(HELD.length, HELD.length + 15));
        // Keys sort by due time: nothing after this one is due either.
        if (dueAt > now) return sent;
        if (await send(key, value as Held)) sent += 1;
      }
      after = page.at(-1)!.key;
    }
  };

  const window: EventWindow = {
    async hold(item, windowMs) {
      start();
      // Handed over again (the engine's finish was lost to a crash): it is held already, once.
      const index = `${INDEX}${item.idempotencyKey}`;
      if ((await state().get([index])).has(index)) return;
      const now = client.now();
      const dueAt = Math.ceil((now + 1) / windowMs) * windowMs;
      const occurred = item.occurredAt ?? now;
      // Due time, then when it happened, then the key.
      const key = `${HELD}${pad(dueAt)}:${pad(occurred)}:${item.idempotencyKey}`;
      const subject = subjectOf(item);
      await state().put([
        { key, value: { item, heldAt: now } satisfies Held, subject },
        { key: index, value: key, subject },
      ]);
    },
    flush() {
      // One look at a time in this process; a look that fails stops at the failed event, which keeps its place.
      running ??= flushOnce().finally(() => (running = undefined));
      return running;
    },
  };
  if (Object.values(client.settings.operations.events).some((operation) => operation.schedule)) start();
  return window;
}

/** A customer's held events go with an erasure of that customer. */
function subjectOf(item: EventItem): string | undefined {
  const person = item.person?.key;
  return person?.startsWith('customer:') ? person.slice('customer:'.length) : undefined;
}
