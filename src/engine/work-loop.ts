// The claim-process loop every destination worker runs (one for record sync, one for event delivery): claim a
// batch of leased work, process it, keep up to `concurrency` batches in flight, sleep when there is nothing to
// do until woken by ingest or the poll interval. stop() stops claiming and waits for the batches in flight.
import type { Logger } from 'pino';

export interface WorkLoopOptions<T> {
  name: string;
  concurrency: number;
  batchSize: number;
  pollIntervalMs: number;
  /**
   * When the last claim did not fill a batch, wait this long before the next one so that work arriving close
   * together is claimed (and sent, and committed) together: a few milliseconds of latency for far less work per
   * item at moderate rates. A full batch is followed by the next claim at once.
   */
  lingerMs?: number;
  /** Resolves when the loop may claim: it waits while higher-priority work (ingest's commits) is under way. */
  yieldTo?: () => Promise<void>;
  claim(limit: number): Promise<T[]>;
  process(items: T[]): Promise<void>;
  logger: Logger;
}

export class WorkLoop<T> {
  readonly #options: WorkLoopOptions<T>;
  #running = false;
  #inFlight = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;

  constructor(options: WorkLoopOptions<T>) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** New work may be there: claim now instead of at the next poll. */
  notify(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.notify();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #run(): Promise<void> {
    const { concurrency, batchSize, pollIntervalMs, logger, name, lingerMs = 0 } = this.#options;
    let backlogged = false;
    while (this.#running) {
      if (this.#inFlight.size >= concurrency) {
        // Wait for a slot. (#sleep would return at once while #woken is set: a microtask spin that starves the
        // event loop, so the batches in flight and the HTTP server never progress again.)
        await Promise.race(this.#inFlight);
        continue;
      }
      // Every round goes through the event loop. With SQLite (synchronous) and a destination that fails without
      // I/O, a backlogged loop would otherwise run claim after claim in one job: nothing else on the thread
      // (ingest commits, timers) would run, and V8 keeps objects the job touched through WeakRefs alive until it
      // ends, so memory grew until the thread ran out.
      if (!backlogged && lingerMs > 0) await new Promise((resolve) => setTimeout(resolve, lingerMs));
      else await new Promise((resolve) => setImmediate(resolve));
      if (this.#options.yieldTo) await this.#options.yieldTo();
      this.#woken = false;
      let items: T[];
      try {
        items = await this.#options.claim(batchSize);
        backlogged = items.length >= batchSize;
      } catch (error) {
        logger.error({ err: error, loop: name }, 'claiming work failed; retrying after the poll interval');
        await this.#sleep(pollIntervalMs);
        continue;
      }
      if (items.length === 0) {
        if (!this.#woken) await this.#sleep(pollIntervalMs);
        continue;
      }
      const batch = this.#options
        .process(items)
        .catch((error: unknown) => logger.error({ err: error, loop: name }, 'processing a batch failed; its leases expire and it is retried'))
        .finally(() => {
          this.#inFlight.delete(batch);
          this.notify();
        });
      this.#inFlight.add(batch);
    }
  }

  #sleep(ms: number): Promise<void> {
    // Not once stopped: stop()'s wake-up may have been spent by a round that was already past the running check.
    if (this.#woken || !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
