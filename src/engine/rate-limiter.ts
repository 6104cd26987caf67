// A per-destination rate limiter shared by every worker of the process (generic cell rate algorithm: one
// "theoretical arrival time" instead of a token count, so each caller can compute its own wait without a queue).
// A 429 pauses the whole destination until the time the destination named.

export interface RateLimiter {
  /** Resolves when one more call may be made. */
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createRateLimiter(options: RateOptions = {}, now = Date.now): RateLimiter {
  let interval = 0;
  let tolerance = 0;
  const setRate = (rate: RateOptions | undefined) => {
    interval = rate?.requestsPerSecond ? 1000 / rate.requestsPerSecond : 0;
    tolerance = interval * Math.max(0, (rate?.burst ?? 1) - 1);
  };
  setRate(options);
  let theoreticalArrival = 0;
  let pausedUntil = 0;
  return {
    async acquire() {
      for (;;) {
        const current = now();
        if (current < pausedUntil) {
          await sleep(pausedUntil - current);
          continue;
        }
        if (interval === 0) return;
        const arrival = Math.max(theoreticalArrival, current);
        const wait = arrival - tolerance - current;
        theoreticalArrival = arrival + interval;
        if (wait > 0) await sleep(wait);
        return;
      }
    },
    pauseUntil(until) {
      pausedUntil = Math.max(pausedUntil, until);
    },
    setRate,
  };
}
