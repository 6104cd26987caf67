// One sender per record type and destination in this process, fed by every batch in flight: Ometria's budget is
// requests (4 a second), not records, so a push should carry as many of the 100 records a body may hold as are
// waiting. Batches hand their records to the sender of their type and wait for each record's result; the sender
// takes up to 100 at a time, waits up to `gatherMs` (less than one request's share of a second) for a body to fill
// when fewer wait, and pushes — two pushes in flight per type, so the next body already waits at the rate limiter
// when a slot frees (one in flight would leave each slot idle for a round trip). A key is never in two bodies at
// once (the engine processes a key in one batch at a time), so two in flight cannot reorder a record's states.
// A body Ometria refuses as a whole (400) is sent again record by record, so only the bad records fail.
import { PermanentError, currentPayloadSubjects, toDeliveryError, withPayloadContext, type DeliveryError, type PayloadSubject } from '../kit/index.ts';
import type { OmetriaClient } from './client.ts';
import type { OmetriaRecord, OmetriaType } from './records.ts';

export const MAX_RECORDS_PER_PUSH = 100;
/** Pushes of one type in flight at once: one sending, one waiting for its rate-limit slot. */
const PUSHES_IN_FLIGHT = 2;

export type PushResult = { ok: true } | { ok: false; error: DeliveryError };

interface Waiting {
  record: OmetriaRecord;
  /** The items of the batch that handed it over: a push is filed under them in the payload log. */
  subjects: readonly PayloadSubject[];
  since: number;
  done: (result: PushResult) => void;
}

export interface Pusher {
  /** Pushes the records (all of one type) with whatever else waits; resolves with one result per record. */
  push(type: OmetriaType, records: readonly OmetriaRecord[]): Promise<PushResult[]>;
  /** Whether records wait or pushes are in flight: the request budget is in use. */
  busy(): boolean;
  close(): void;
}

export function createPusher(client: OmetriaClient, options: { gatherMs: number }): Pusher {
  const queues = new Map<OmetriaType, Waiting[]>();
  const running = new Set<OmetriaType>();
  let closed = false;

  let inFlight = 0;

  async function send(type: OmetriaType): Promise<void> {
    running.add(type);
    const pushing = new Set<Promise<void>>();
    try {
      const queue = queues.get(type)!;
      while (queue.length > 0) {
        if (pushing.size >= PUSHES_IN_FLIGHT) {
          await Promise.race(pushing);
          continue;
        }
        // A body not full yet: wait (a little, counted from the oldest record) for more to come.
        const waitMs = options.gatherMs - (Date.now() - queue[0]!.since);
        if (queue.length < MAX_RECORDS_PER_PUSH && waitMs > 0 && !closed) {
          await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
          continue;
        }
        const body = queue.splice(0, MAX_RECORDS_PER_PUSH);
        inFlight += 1;
        const push: Promise<void> = pushBody(body).finally(() => {
          inFlight -= 1;
          pushing.delete(push);
        });
        pushing.add(push);
      }
      await Promise.all(pushing);
    } finally {
      running.delete(type);
    }
    // Records that came while the last pushes were finishing.
    if ((queues.get(type)?.length ?? 0) > 0 && !running.has(type)) void send(type);
  }

  async function pushBody(body: Waiting[]): Promise<void> {
    try {
      // A push carries records of several batches: the payload log files it under the items of each.
      const subjects = [...new Set(body.flatMap((entry) => entry.subjects))];
      await withPayloadContext(subjects, () => client.push(body.map((entry) => entry.record)));
      for (const entry of body) entry.done({ ok: true });
    } catch (error) {
      const failure = toDeliveryError(error);
      if (failure instanceof PermanentError && failure.status === 400 && body.length > 1) {
        // Refused as a whole: each record alone, so only the bad ones fail.
        await Promise.all(body.map((entry) => pushBody([entry])));
        return;
      }
      for (const entry of body) entry.done({ ok: false, error: failure });
    }
  }

  return {
    push(type, records) {
      if (records.length === 0) return Promise.resolve([]);
      const queue = queues.get(type) ?? [];
      queues.set(type, queue);
      const since = Date.now();
      const subjects = currentPayloadSubjects();
      const results = Promise.all(records.map((record) => new Promise<PushResult>((done) => queue.push({ record, subjects, since, done }))));
      if (!running.has(type)) void send(type);
      return results;
    },
    busy: () => inFlight > 0 || [...queues.values()].some((queue) => queue.length > 0),
    close() {
      closed = true;
    },
  };
}
