// The leases one work queue (records or events) of one destination holds in this process. Each claim gets an
// owner token of its own, so the finish of a batch whose lease was lost (expired and claimed again, here or by
// another process) matches no row and is refused. While a batch is in flight its leases are renewed every third
// of `leaseMs` (renewedWhile, which inbound work uses too), so a slow destination or a long Retry-After pause
// never lets them expire under it. And a key this process has in flight is never worked on twice at once, even
// when its row's lease did expire (a renewal held up by a busy store): a claim that takes such a key hands it back
// to the batch that has it and leaves it out. A claim is bounded in bytes as well as in rows: what the rows carry
// (a resource, a message, up to an ingest body's size each) is parsed into many times its size on the heap, so a
// claim keeps rows up to `maxBytes` (at least one) and gives the rest back at once.
import type { Logger } from 'pino';
import type { WorkQueue } from './work-queue.ts';

/** The part of a work queue (work-queue.ts) that leases use. */
export type LeaseQueue<Row> = Pick<WorkQueue<Row, unknown>, 'claim' | 'renew' | 'handBack' | 'giveUp' | 'keyOf' | 'sizeOf'>;

export interface LeasesOptions<Row> {
  /** This process: every token starts with it (see tokenPrefix). */
  prefix: string;
  leaseMs: number;
  queue: LeaseQueue<Row>;
  /** A claim keeps rows while their sizes add up to at most this (and always its first row). */
  maxBytes: number;
  logger: Logger;
  now?: () => number;
}

/** Owner tokens of a process are `<prefix>/<n>`: what a shutdown gives back is found by the prefix. */
export function tokenPattern(prefix: string): string {
  if (!/^[\w.:-]+$/.test(prefix) || prefix.includes('_')) throw new Error(`a lease owner prefix is letters, digits, '.', ':' and '-' (got "${prefix}")`);
  return `${prefix}/%`;
}

export class Leases<Row> {
  readonly #options: LeasesOptions<Row>;
  readonly #now: () => number;
  /** Keys in flight in this process, and the token of the batch that has each. */
  readonly #inFlight = new Map<string, string>();
  #claims = 0;

  constructor(options: LeasesOptions<Row>) {
    tokenPattern(options.prefix);
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Claims up to `limit` items under a new token; keys already in flight here are handed back and left out. */
  async claim(limit: number): Promise<Row[]> {
    const { queue, leaseMs, prefix } = this.#options;
    this.#claims += 1;
    const token = `${prefix}/${this.#claims}`;
    const now = this.#now();
    const rows = await queue.claim(token, limit, now + leaseMs, now);
    const fresh: Row[] = [];
    let bytes = 0;
    for (const row of rows) {
      const size = queue.sizeOf(row);
      if (fresh.length > 0 && bytes + size > this.#options.maxBytes) {
        // Over the claim's byte budget: left for the next claim, due at once. If that fails, its lease expires.
        await queue.giveUp(row, token, now).catch((error: unknown) => this.#options.logger.warn({ err: error }, 'giving a claimed row back failed; its lease expires'));
        continue;
      }
      const key = queue.keyOf(row);
      const holder = this.#inFlight.get(key);
      if (holder === undefined) {
        this.#inFlight.set(key, token);
        fresh.push(row);
        bytes += size;
        continue;
      }
      this.#options.logger.warn({ key }, 'a key in flight here was claimed again (its lease had expired): handed back to the batch that has it');
      // If that fails, the lease this claim took expires unused; the batch's finish is then refused, which is safe.
      await queue.handBack(row, token, holder, this.#now() + leaseMs).catch((error: unknown) => this.#options.logger.warn({ err: error, key }, 'handing a lease back failed'));
    }
    return fresh;
  }

  /** Runs `work` on claimed rows, renewing their leases until it settles; then they are no longer in flight here. */
  async hold<T>(rows: readonly Row[], token: string | null, work: () => Promise<T>): Promise<T> {
    const { queue, leaseMs, logger } = this.#options;
    try {
      return token === null ? await work() : await renewedWhile({ leaseMs, logger, now: this.#now, renew: (leaseUntil) => queue.renew(token, rows, leaseUntil) }, work);
    } finally {
      for (const row of rows) {
        const key = queue.keyOf(row);
        if (this.#inFlight.get(key) === token) this.#inFlight.delete(key);
      }
    }
  }
}

export interface RenewalOptions {
  leaseMs: number;
  logger: Logger;
  now: () => number;
  /** Moves every lease the work holds on to `leaseUntil` (called with what it holds at that moment). */
  renew: (leaseUntil: number) => Promise<void>;
}

/**
 * Runs `work` while its leases are renewed every third of `leaseMs`; the renewals stop when it settles, however it
 * settles, and the last one has ended by the time this returns. A renewal is fenced by the lease's owner: one that
 * lands after the work gave a lease back changes nothing. The engine's one renewal mechanism: claimed batches
 * (Leases.hold) and inbound work (inbound-work.ts) use it.
 */
export async function renewedWhile<T>(options: RenewalOptions, work: () => Promise<T>): Promise<T> {
  const { leaseMs, logger, now, renew } = options;
  let renewing: Promise<void> | undefined;
  const timer = setInterval(
    () => {
      // One renewal at a time: a slow store must not pile them up.
      renewing ??= renew(now() + leaseMs)
        .catch((error: unknown) => logger.warn({ err: error }, 'renewing leases failed; tried again shortly'))
        .finally(() => (renewing = undefined));
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  try {
    return await work();
  } finally {
    clearInterval(timer);
    await renewing;
  }
}
