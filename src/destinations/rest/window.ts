// The batching window of scheduled events ("every N minutes"): an event is held in the connector's state — in
// the store, shared by every process — under a key that sorts by the end of its window (windows are aligned to
// the clock: an event held at t is due at the next multiple of N minutes), then by when it happened; a timer
// looks for due events and sends them in that order, one call each, by the same operation an unscheduled event
// would use. The clock is the injected one (`deps.now`), so tests move time instead of waiting for it.
//
// Nothing held is lost, and two processes neither send an event twice nor overtake each other's events of one
// resource: a sender marks a resource's due events as its own (`sending:<owner>:<resource>`, with what it has left
// to send), takes them in one statement (all, or none when another process was first), sends them in order and
// drops its mark; a resource another process has marked waits for the next look. A mark older than LEASE_MS (its
// process died mid-send) is turned back into held events: what it had left is sent again (at least once, with the
// same Idempotency-Key). A retryable failure holds the rest again for the next look; a permanent one becomes a
// dead letter through `reportLateFailures` (the engine's delivery row is gone by then, so it cannot be replayed:
// the message says what failed).
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

/** What a process is sending of one resource: the events it has left (with their held keys), since when. */
interface Mark {
  resource: string;
  entries: Array<{ key: string; held: Held }>;
  markedAt: number;
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

  /** Sends one held event; a retryable failure is thrown, a permanent one reported as a late failure. */
  const sendOne = async ({ item }: Held): Promise<void> => {
    const operation = client.settings.operations.events[item.eventType];
    try {
      if (operation === undefined) throw new PermanentError(`no operation is configured for events of "${item.eventType}" any more`);
      await withPayloadContext([{ kind: 'event', type: item.eventType, resourceId: item.resource?.id, correlationId: item.correlationId }], () =>
        client.call(operation.send, eventContext(item), { idempotencyKey: item.idempotencyKey, correlationId: item.correlationId, defaultBody: item.payload }),
      );
    } catch (error) {
      const failure = toDeliveryError(error);
      if (failure.retryable) throw failure;
      await client.reportLateFailures?.([{ kind: 'event', eventType: item.eventType, dedupeKey: item.idempotencyKey, correlationId: item.correlationId, error: `held for its window, then: ${failure.message}`, sentAt: client.now() }]);
    }
  };

  /**
   * Sends the due events of one resource, in order: marks them as this process's (`sending:<owner>:<resource>`,
   * what is left to send), takes them in one statement (all or, when another process was first, none of them),
   * sends them one by one, and keeps the mark up to date. A retryable failure holds the rest again; how many went.
   */
  const sendGroup = async (resource: string, entries: Array<{ key: string; held: Held }>): Promise<number> => {
    const mark = `${SENDING}${owner}:${resource}`;
    const subject = subjectOf(entries[0]!.held.item);
    const remember = (left: Array<{ key: string; held: Held }>) => state().put([{ key: mark, value: { resource, entries: left, markedAt: client.now() } satisfies Mark, subject }]);
    await remember(entries);
    const taken = new Set(await state().take(entries.map((entry) => entry.key)));
    const mine = entries.filter((entry) => taken.has(entry.key));
    let sent = 0;
    try {
      for (let i = 0; i < mine.length; i += 1) {
        await sendOne(mine[i]!.held);
        sent += 1;
        if (i + 1 < mine.length) await remember(mine.slice(i + 1));
      }
    } catch (error) {
      // Held again under their own keys: the next look sends them, still in their places in the order.
      const left = mine.slice(sent);
      await state().put(left.map((entry) => ({ key: entry.key, value: entry.held, subject: subjectOf(entry.held.item) })));
      await state().take([mark]);
      throw error;
    }
    await state().take([mark, ...mine.map((entry) => `${INDEX}${entry.held.item.idempotencyKey}`)]);
    return sent;
  };

  /** Marks of processes that died mid-send: what they had left is held again. */
  const recover = async (): Promise<Set<string>> => {
    const cutoff = client.now() - LEASE_MS;
    const busy = new Set<string>();
    for (const { key, value } of await state().list(SENDING, { limit: LIST_PAGE })) {
      const marked = value as Mark;
      if (marked.markedAt > cutoff) {
        busy.add(marked.resource);
        continue;
      }
      const [taken] = await state().take([key]);
      if (taken === undefined) continue;
      await state().put(marked.entries.map((entry) => ({ key: entry.key, value: entry.held, subject: subjectOf(entry.held.item) })));
    }
    return busy;
  };

  const flushOnce = async (): Promise<number> => {
    // Resources another process is sending now wait for the next look, so their events never overtake each other.
    const busy = await recover();
    const now = client.now();
    const due = new Map<string, Array<{ key: string; held: Held }>>();
    let after: string | undefined;
    for (let more = true; more; ) {
      const page = await state().list(HELD, { limit: LIST_PAGE, ...(after !== undefined && { after }) });
      for (const { key, value } of page) {
        // Keys sort by due time: nothing after this one is due either.
        if (Number(key.slice(HELD.length, HELD.length + 15)) > now) {
          more = false;
          break;
        }
        const held = value as Held;
        const resource = held.item.resource ? `${held.item.resource.typeId}/${held.item.resource.id}` : `event/${held.item.idempotencyKey}`;
        if (busy.has(resource)) continue;
        (due.get(resource) ?? due.set(resource, []).get(resource)!).push({ key, held });
      }
      if (page.length < LIST_PAGE) more = false;
      after = page.at(-1)?.key;
    }
    // Held keys sort by due time, then by when the event happened: within a resource, that is the order to send.
    const outcomes = await Promise.allSettled([...due].map(([resource, entries]) => sendGroup(resource, entries)));
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    return outcomes.reduce((sum, outcome) => sum + (outcome.status === 'fulfilled' ? outcome.value : 0), 0);
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
