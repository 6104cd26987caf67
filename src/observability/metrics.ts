// Prometheus metrics, all labelled by destination where one applies. One instance per process (or per test),
// created explicitly and passed to the parts that count things — no global registry.
import { getHeapStatistics } from 'node:v8';
import { isMainThread, threadId, threadName } from 'node:worker_threads';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HeapSizes {
  used_heap_size: number;
  total_heap_size: number;
}

export interface Metrics {
  registry: Registry;
  /** Reports another thread's heap in ctbridge_thread_heap_bytes (one that has no registry of its own). */
  watchThreadHeap(name: string, read: () => Promise<HeapSizes>): void;
  ingested: Counter<'source'>;
  duplicates: Counter;
  quarantined: Counter;
  refusals: Counter;
  queued: Counter<'destination' | 'kind'>;
  inFlight: Gauge<'destination' | 'kind'>;
  succeeded: Counter<'destination' | 'kind'>;
  unchanged: Counter<'destination'>;
  staleSkipped: Counter<'destination'>;
  paymentDataBlocked: Counter<'destination' | 'kind'>;
  retried: Counter<'destination' | 'kind'>;
  deadLettered: Counter<'destination' | 'kind'>;
  leaseLost: Counter<'destination' | 'kind'>;
  endToEndLag: Histogram<'destination' | 'kind'>;
  destinationLatency: Histogram<'destination' | 'operation'>;
  destinationCalls: Counter<'destination' | 'operation'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'ctbridge_' });
  const registers = [registry];
  // Per thread, so that the merged exposition of `ctbridge start` shows where the process's memory goes. A thread
  // without a registry of its own (the ingest thread) is watched from here.
  const thread = isMainThread ? 'main' : threadName || `worker-${threadId}`;
  const watched = new Map<string, () => Promise<HeapSizes>>();
  new Gauge({
    name: 'ctbridge_thread_heap_bytes',
    help: "This thread's V8 heap: bytes used, and bytes the heap holds from the system (total)",
    labelNames: ['thread', 'kind'],
    registers,
    async collect() {
      const heaps: Array<{ name: string; heap: HeapSizes }> = [{ name: thread, heap: getHeapStatistics() }];
      for (const [name, read] of watched) heaps.push({ name, heap: await read().catch(() => ({ used_heap_size: 0, total_heap_size: 0 })) });
      for (const { name, heap } of heaps) {
        this.set({ thread: name, kind: 'used' }, heap.used_heap_size);
        this.set({ thread: name, kind: 'total' }, heap.total_heap_size);
      }
    },
  });
  return {
    registry,
    watchThreadHeap: (name, read) => void watched.set(name, read),
    ingested: new Counter({ name: 'ctbridge_ingested_total', help: 'Notifications accepted and durably stored', labelNames: ['source'], registers }),
    duplicates: new Counter({ name: 'ctbridge_duplicates_total', help: 'Notifications acknowledged as already seen', registers }),
    refusals: new Counter({
      name: 'ctbridge_http_refusals_total',
      help: 'Requests refused: 401 (no or a wrong credential or signature), 403 (origin, role or scope not allowed), 429 (over a rate limit), by route',
      labelNames: ['route', 'status'],
      registers,
    }),
    quarantined: new Counter({ name: 'ctbridge_quarantined_total', help: 'Unrecognisable payloads acknowledged and kept as dead letters', registers }),
    queued: new Counter({ name: 'ctbridge_queued_total', help: 'Record keys marked dirty and events queued', labelNames: ['destination', 'kind'], registers }),
    inFlight: new Gauge({ name: 'ctbridge_in_flight', help: 'Items claimed by a worker and not yet finished', labelNames: ['destination', 'kind'], registers }),
    succeeded: new Counter({ name: 'ctbridge_succeeded_total', help: 'Items delivered to the destination', labelNames: ['destination', 'kind'], registers }),
    unchanged: new Counter({ name: 'ctbridge_unchanged_total', help: 'Record syncs with an empty diff (nothing sent)', labelNames: ['destination'], registers }),
    paymentDataBlocked: new Counter({ name: 'ctbridge_payment_data_blocked_total', help: 'Sends blocked because the payload held a card number, an IBAN or a card security code (dead-lettered)', labelNames: ['destination', 'kind'], registers }),
    staleSkipped: new Counter({ name: 'ctbridge_stale_skipped_total', help: 'Record states older than the last synced version (never sent)', labelNames: ['destination'], registers }),
    retried: new Counter({ name: 'ctbridge_retried_total', help: 'Failed attempts scheduled for retry', labelNames: ['destination', 'kind'], registers }),
    deadLettered: new Counter({ name: 'ctbridge_dead_lettered_total', help: 'Items moved to dead letters', labelNames: ['destination', 'kind'], registers }),
    leaseLost: new Counter({ name: 'ctbridge_lease_lost_total', help: 'Items whose lease was lost while in flight: their finish was refused and their outcome discarded', labelNames: ['destination', 'kind'], registers }),
    endToEndLag: new Histogram({
      name: 'ctbridge_end_to_end_lag_seconds',
      help: 'From ingest (the key becoming dirty) to the destination acknowledging',
      labelNames: ['destination', 'kind'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    destinationLatency: new Histogram({
      name: 'ctbridge_destination_latency_seconds',
      help: 'Duration of one connector call',
      labelNames: ['destination', 'operation'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    destinationCalls: new Counter({ name: 'ctbridge_destination_calls_total', help: 'HTTP calls made to the destination', labelNames: ['destination', 'operation'], registers }),
  };
}
