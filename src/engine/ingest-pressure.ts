// Ingest goes first during a burst. The engine hears of every inbox commit (with how many items it held); while
// commits arrive faster than BUSY_ITEMS_PER_SECOND, routing and sync wait between rounds — at most a bounded time,
// so they cannot starve — and catch up right after, in bigger batches. At ordinary rates they never wait, so
// latency is unaffected. Once the inbox holds MAX_BACKLOG items, they stop waiting: a sustained overload must not
// grow the backlog for ever, and then ingest and sync share the machine. (The engine thread's low CPU priority
// covers the CPU; this covers what priority cannot: the garbage collector's helper threads and the inbox file's
// lock, which the router's deletes take.)

/** Above this commit rate, measured over the last WINDOW_MS, the engine gives way. */
const BUSY_ITEMS_PER_SECOND = 5_000;
const WINDOW_MS = 200;
/** A pause in commits this long ends the burst early. */
const QUIET_MS = 10;
/** Items committed and not yet routed beyond which the engine no longer gives way. */
const MAX_BACKLOG = 50_000;

export class IngestPressure {
  #bucketStart = 0;
  #bucketItems = 0;
  #previousItems = 0;
  #lastCommitAt = Number.NEGATIVE_INFINITY;
  /** Committed by this process and not yet routed, as far as this process knows. */
  #backlog = 0;
  readonly #clock: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#clock = options.now ?? Date.now;
  }

  committed(items: number, now = this.#clock()): void {
    this.#roll(now);
    this.#bucketItems += items;
    this.#lastCommitAt = now;
    this.#backlog += items;
  }

  routed(items: number): void {
    this.#backlog = Math.max(0, this.#backlog - items);
  }

  /** Whether commits are arriving in a burst right now. */
  busy(now = this.#clock()): boolean {
    if (now - this.#lastCommitAt >= QUIET_MS || this.#backlog >= MAX_BACKLOG) return false;
    this.#roll(now);
    return this.#previousItems + this.#bucketItems >= (BUSY_ITEMS_PER_SECOND * WINDOW_MS) / 1000;
  }

  /** Resolves once the burst is over, or after `maxWaitMs` at the latest. */
  async idle(maxWaitMs: number): Promise<void> {
    const deadline = this.#clock() + maxWaitMs;
    for (let now = this.#clock(); now < deadline && this.busy(now); now = this.#clock()) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(QUIET_MS, deadline - now)));
    }
  }

  // Two half-window buckets: the current one and the one before it.
  #roll(now: number): void {
    const half = WINDOW_MS / 2;
    if (now - this.#bucketStart < half) return;
    this.#previousItems = now - this.#bucketStart < 2 * half ? this.#bucketItems : 0;
    this.#bucketItems = 0;
    this.#bucketStart = now;
  }
}
