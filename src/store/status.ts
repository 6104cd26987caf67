// The operator's view of the queues: per destination, how much waits, how much is in flight, how old the
// oldest waiting item is, and how many dead letters are unreplayed.
import { sql } from 'kysely';
import { pendingInboxItems } from './inbox.ts';
import type { Store } from './store.ts';

export interface DestinationStatus {
  destination: string;
  pendingRecords: number;
  pendingEvents: number;
  inFlight: number;
  oldestPendingAgeMs: number | null;
  deadLetters: number;
}

export interface Status {
  /** Items (notifications, mostly) of accepted bodies not yet routed into work. */
  inbox: number;
  destinations: DestinationStatus[];
  quarantined: number;
  notices: number;
}

export async function readStatus(store: Store, destinations: readonly string[], now = Date.now()): Promise<Status> {
  const { db } = store;
  const inbox = await pendingInboxItems(store);
  const records = await db
    .selectFrom('records')
    .select(['destination'])
    .select((eb) => [
      eb.fn.countAll<number>().as('pending'),
      eb.fn.sum<number>(sql`case when lease_until is not null and lease_until >= ${now} then 1 else 0 end`).as('in_flight'),
      eb.fn.min<number>('dirtied_at').as('oldest'),
    ])
    .where(sql<boolean>`dirty_seq > processed_seq`)
    .groupBy('destination')
    .execute();
  const events = await db
    .selectFrom('events')
    .select(['destination'])
    .select((eb) => [
      eb.fn.countAll<number>().as('pending'),
      eb.fn.sum<number>(sql`case when lease_until is not null and lease_until >= ${now} then 1 else 0 end`).as('in_flight'),
      eb.fn.min<number>('created_at').as('oldest'),
    ])
    .where('dead', '=', 0)
    .groupBy('destination')
    .execute();
  const dead = await db
    .selectFrom('dead_letters')
    .select(['destination', (eb) => eb.fn.countAll<number>().as('count')])
    .where('replayed_at', 'is', null)
    .groupBy('destination')
    .execute();
  const notices = await db.selectFrom('transport_notices').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirst();

  const names = [...new Set([...destinations, ...records.map((r) => r.destination), ...events.map((e) => e.destination)])];
  return {
    inbox,
    destinations: names.map((destination) => {
      const r = records.find((row) => row.destination === destination);
      const e = events.find((row) => row.destination === destination);
      const oldest = [r?.oldest, e?.oldest].filter((v): v is number => v !== null && v !== undefined).map(Number);
      return {
        destination,
        pendingRecords: Number(r?.pending ?? 0),
        pendingEvents: Number(e?.pending ?? 0),
        inFlight: Number(r?.in_flight ?? 0) + Number(e?.in_flight ?? 0),
        oldestPendingAgeMs: oldest.length > 0 ? Math.max(0, now - Math.min(...oldest)) : null,
        deadLetters: Number(dead.find((row) => row.destination === destination)?.count ?? 0),
      };
    }),
    quarantined: Number(dead.find((row) => row.destination === null)?.count ?? 0),
    notices: Number(notices?.count ?? 0),
  };
}
