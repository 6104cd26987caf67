// A destination's rate limit, shared by every worker of every process using the store: several ctbridge processes
// on one PostgreSQL must together stay under the destination's limit, and a 429 one of them gets pauses all.
// The state is one row per destination (rate_limits): a generic cell rate algorithm's "theoretical arrival time"
// (instead of a token count) and a pause. A process reserves slots with one atomic upsert — as many as callers
// are waiting, at most a quarter of a second's worth — and spaces its calls within them itself. Reserving more
// than the waiting callers would use wastes the surplus: slots that pass unused cannot be given back.
import { sql, type Kysely } from 'kysely';
import { RateLimitedError } from '../destinations/kit/errors.ts';
import type { Database } from '../store/schema.ts';

export interface RateLimiter {
  /** Resolves when one more call may be made; rejects (RateLimitedError) when that is further off than a call waits. */
  acquire(): Promise<void>;
  /** No call may start before `until` (ms since epoch). */
  pauseUntil(until: number): void;
  /** Changes the allowed rate (a connector declares its own once created). */
  setRate(rate: RateOptions | undefined): void;
}

export interface RateOptions {
  requestsPerSecond?: number | undefined;
  burst?: number | undefined;
}

const RESERVE_MS = 250;
const MAX_SLOTS_PER_RESERVATION = 50;
// Without a rate, calls need no reservation; a pause another process recorded is read at most this often.
const PAUSE_REFRESH_MS = 1_000;
/**
 * The longest pause a call waits out holding its slot (and its batch its items). Beyond it (a daily limit, a long
 * Retry-After) the call fails at once as rate-limited with the pause's end as its retry time: its items go back to
 * the queue, due then, and a stopping process has nothing to wait for. (A destination's answer may also name a
 * wait longer than a timer can: Node fires those at once.)
 */
const LONGEST_HELD_PAUSE_MS = 65_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const later = (a: ReturnType<typeof sql>, b: ReturnType<typeof sql>) => sql`case when ${a} > ${b} then ${a} else ${b} end`;

export function createRateLimiter(db: Kysely<Database>, destination: string, now = Date.now): RateLimiter {
  let interval = 0;
  let tolerance = 0;
  // The slots reserved and not used yet: `remaining` of them, from `next` on, `interval` apart.
  let next = 0;
  let remaining = 0;
  let reserving: Promise<void> | undefined;
  /** Callers inside acquire(): how many slots a reservation should take. */
  let waiting = 0;
  let pausedUntil = 0;
  let pauseReadAt = 0;

  async function reserve(): Promise<void> {
    const count = Math.min(MAX_SLOTS_PER_RESERVATION, Math.max(1, Math.round(RESERVE_MS / interval)), Math.max(1, waiting));
    const span = Math.ceil(count * interval);
    const current = now();
    // The block starts at the latest of: the shared arrival time, now, and the shared pause.
    const start = later(later(sql`rate_limits.theoretical_arrival`, sql`${current}`), sql`rate_limits.paused_until`);
    const { rows } = await sql<{ start: number; paused_until: number }>`
      insert into rate_limits (destination, theoretical_arrival, paused_until) values (${destination}, ${current + span}, 0)
      on conflict (destination) do update set theoretical_arrival = ${start} + ${span}
      returning theoretical_arrival - ${span} as start, paused_until`.execute(db);
    const row = rows[0]!;
    // A round trip longer than a slot returns a block that starts in the past (it began at `current`, read before
    // the query). Its slots are still this process's: the shared arrival time has moved past them. They are spaced
    // from now — late, never early, and at most one block's worth beside the next holder's — never thrown away as
    // stale: throwing them away would reserve again, and with every round trip that slow no call would ever go out
    // while each reservation pushed the other processes' slots further out.
    next = Math.max(Number(row.start), now());
    remaining = count;
    pausedUntil = Math.max(pausedUntil, Number(row.paused_until));
  }

  async function readPause(): Promise<void> {
    const row = await db.selectFrom('rate_limits').select('paused_until').where('destination', '=', destination).executeTakeFirst();
    if (row) pausedUntil = Math.max(pausedUntil, Number(row.paused_until));
  }

  async function acquire(): Promise<void> {
    // A caller counts as waiting until it holds a slot.
    let counted = true;
    waiting += 1;
    const holdsSlot = () => {
      if (counted) waiting -= 1;
      counted = false;
    };
    try {
      await takeSlot(holdsSlot);
    } finally {
      holdsSlot();
    }
  }

  async function takeSlot(holdsSlot: () => void): Promise<void> {
    for (;;) {
      const current = now();
      if (current < pausedUntil) {
        if (pausedUntil - current > LONGEST_HELD_PAUSE_MS) {
          throw new RateLimitedError(`the destination's limit is spent until ${new Date(pausedUntil).toISOString()}`, { status: 429, retryAfterMs: pausedUntil - current });
        }
        await sleep(pausedUntil - current);
        continue;
      }
      if (interval === 0) {
        if (current - pauseReadAt < PAUSE_REFRESH_MS) return;
        pauseReadAt = current;
        await readPause();
        if (now() >= pausedUntil) return;
        continue;
      }
      // Slots left over from a reservation made before an idle spell are in the past; other processes have
      // been given the slots after them, so using them now would exceed the limit together.
      if (remaining > 0 && next < current - interval - tolerance) remaining = 0;
      if (remaining === 0) {
        reserving ??= reserve().finally(() => (reserving = undefined));
        await reserving;
        continue;
      }
      const slot = next;
      next += interval;
      remaining -= 1;
      holdsSlot();
      const wait = slot - tolerance - now();
      if (wait > 0) await sleep(wait);
      return;
    }
  }

  return {
    acquire,
    pauseUntil(until) {
      pausedUntil = Math.max(pausedUntil, until);
      remaining = 0;
      // The other processes learn of the pause at their next reservation. If recording it fails (the store is
      // briefly away), this process still pauses; the others find out from their own 429s.
      void sql`
        insert into rate_limits (destination, theoretical_arrival, paused_until) values (${destination}, 0, ${until})
        on conflict (destination) do update set paused_until = ${later(sql`rate_limits.paused_until`, sql`${until}`)}`
        .execute(db)
        .catch(() => undefined);
    },
    setRate(rate: RateOptions | undefined) {
      interval = rate?.requestsPerSecond ? 1000 / rate.requestsPerSecond : 0;
      tolerance = interval * Math.max(0, (rate?.burst ?? 1) - 1);
      remaining = 0;
    },
  };
}
