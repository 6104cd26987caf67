// The seconds events were sent at, per destination and scope (the `event_seconds` table), for a destination that
// deduplicates events on their time in seconds: Intercom takes a data event with the same name, contact and
// created_at as one it has for a duplicate, answers 202 and does not store it (createDataEvent's description,
// "Event de-duplication", spec/intercom). Each event claims a second of its scope here, shared by every process on
// the store: its own time when free, else the first free second after it, so two orders of one customer placed in
// the same second are two events, one second apart, in their order. A redelivered event finds the second it
// claimed before, so the destination still sees (and drops) a duplicate. Rows go after KEPT_DAYS, and with an
// erasure of their person.
import type { Kysely } from 'kysely';
import type { EventSeconds } from '../destinations/types.ts';
import type { Database } from './schema.ts';

/** How long a claimed second is remembered: an event arriving later than this after one of its scope may collide. */
export const EVENT_SECONDS_KEPT_DAYS = 90;

/** Attempts when other processes keep taking the free second first (each one taken moves the next free on). */
const MAX_ATTEMPTS = 16;

export function createEventSeconds(db: Kysely<Database>, destination: string, now: () => number = Date.now): EventSeconds {
  // One message can be several events (two mappings on OrderCreated): an event is its key within its scope.
  const own = (scope: string, eventKey: string) => db.selectFrom('event_seconds').select('second').where('destination', '=', destination).where('scope', '=', scope).where('event_key', '=', eventKey).executeTakeFirst();
  return {
    async claim({ scope, eventKey, second, person }) {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const before = await own(scope, eventKey);
        if (before) return Number(before.second);
        const taken = await db
          .selectFrom('event_seconds')
          .select('second')
          .where('destination', '=', destination)
          .where('scope', '=', scope)
          .where('second', '>=', second)
          .orderBy('second')
          .execute();
        let free = second;
        for (const row of taken) {
          if (Number(row.second) !== free) break;
          free += 1;
        }
        // Taken meanwhile by another process (that second, or this event itself): look again.
        const inserted = await db
          .insertInto('event_seconds')
          .values({ destination, scope, second: free, event_key: eventKey, person: person ?? null, claimed_at: now() })
          .onConflict((conflict) => conflict.doNothing())
          .returning('second')
          .executeTakeFirst();
        if (inserted) return free;
      }
      throw new Error(`no free second found for an event of ${destination} after ${MAX_ATTEMPTS} attempts: others keep taking them`);
    },
  };
}

/** Forgets seconds claimed longer ago than EVENT_SECONDS_KEPT_DAYS; how many went. */
export async function purgeEventSeconds(db: Kysely<Database>, now: number): Promise<number> {
  const result = await db.deleteFrom('event_seconds').where('claimed_at', '<', now - EVENT_SECONDS_KEPT_DAYS * 24 * 3600 * 1000).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Forgets the seconds of a person's events (an erasure), in the caller's transaction. */
export async function eraseEventSeconds(db: Kysely<Database>, person: string): Promise<number> {
  const result = await db.deleteFrom('event_seconds').where('person', '=', person).executeTakeFirst();
  return Number(result.numDeletedRows);
}
