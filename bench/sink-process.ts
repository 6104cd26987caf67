// The destination both ctbridge and the naive handler deliver to: the sandbox sink (src/sandbox/sink.ts) in its own
// process, so that receiving is never competing with the bench's bookkeeping. Besides what the sink keeps, it
// notes when each correlation id first arrived (for latency), when a wanted number of records or versions was
// reached, and how much CPU it used (to show it is not the bottleneck).
import { startSink, type Sink, type SinkRequest } from '../src/sandbox/sink.ts';
import { epochNow, serve } from './ipc.ts';

export interface SinkStats {
  requests: number;
  items: number;
  records: number;
  /** When the last request arrived (ms since the epoch; NaN when none did). */
  lastArrivalAt: number;
  cpuMs: number;
  wallMs: number;
}

type Waiter = { done(): boolean; resolve(at: number): void };

let sink: Sink | undefined;
let arrivals = new Map<string, number>();
let items = 0;
let lastArrivalAt = Number.NaN;
let cpuBase = process.cpuUsage();
let wallBase = epochNow();
let waiters: Waiter[] = [];

function observe(request: SinkRequest): undefined {
  const at = epochNow();
  lastArrivalAt = at;
  const body = request.body;
  items += Array.isArray(body) ? body.length : 1;
  for (const id of (request.headers['x-correlation-id'] ?? '').split(',')) {
    if (id && !arrivals.has(id)) arrivals.set(id, at);
  }
  // The sink applies the request right after asking for a fault, synchronously; check the waiters after that.
  if (waiters.length > 0) {
    queueMicrotask(() => {
      waiters = waiters.filter((waiter) => {
        if (!waiter.done()) return true;
        waiter.resolve(at);
        return false;
      });
    });
  }
  return undefined;
}

/** Resolves with the time `done` became true, null on timeout, NaN when the sink was reset first. */
function waitFor(done: () => boolean, timeoutMs: number): Promise<number | null> {
  if (done()) return Promise.resolve(epochNow());
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiters = waiters.filter((w) => w !== waiter);
      resolve(null);
    }, timeoutMs);
    const waiter: Waiter = {
      done,
      resolve(at) {
        clearTimeout(timer);
        resolve(at);
      },
    };
    waiters.push(waiter);
  });
}

serve({
  async start(): Promise<string> {
    sink = await startSink();
    sink.faultFor = observe;
    return sink.url;
  },
  reset(): void {
    const s = sink!;
    s.requests.length = 0;
    s.applied.length = 0;
    s.deliveries.clear();
    s.records.clear();
    s.versions.clear();
    arrivals = new Map();
    items = 0;
    lastArrivalAt = Number.NaN;
    // Whoever still waits (a time-capped naive run never reaches its target) gets its answer now.
    for (const waiter of waiters) waiter.resolve(Number.NaN);
    waiters = [];
    cpuBase = process.cpuUsage();
    wallBase = epochNow();
  },
  stats(): SinkStats {
    const used = process.cpuUsage(cpuBase);
    return { requests: sink!.requests.length, items, records: sink!.records.size, lastArrivalAt, cpuMs: (used.user + used.system) / 1000, wallMs: epochNow() - wallBase };
  },
  /** Resolves with the arrival time of the request that made the sink hold `count` records (null on timeout). */
  waitRecords(args: { count: number; timeoutMs: number }): Promise<number | null> {
    return waitFor(() => sink!.records.size >= args.count, args.timeoutMs);
  },
  /** Resolves once every `customer/{id}` record reached at least the given version. */
  waitVersions(args: { versions: Record<string, number>; timeoutMs: number }): Promise<number | null> {
    const wanted = Object.entries(args.versions).map(([id, version]) => [`customer/${id}`, version] as const);
    return waitFor(() => wanted.every(([key, version]) => Math.max(...(sink!.versions.get(key) ?? [-1])) >= version), args.timeoutMs);
  },
  /** How many of the customers with these ids the sink holds. */
  countIds(args: { ids: string[] }): number {
    return args.ids.filter((id) => sink!.records.has(`customer/${id}`)).length;
  },
  /** Resolves once the sink holds at least `count` of the customers with these ids (null on timeout). */
  waitIds(args: { ids: string[]; count: number; timeoutMs: number }): Promise<number | null> {
    const keys = args.ids.map((id) => `customer/${id}`);
    return waitFor(() => keys.filter((key) => sink!.records.has(key)).length >= args.count, args.timeoutMs);
  },
  arrivals(): Map<string, number> {
    return arrivals;
  },
});
