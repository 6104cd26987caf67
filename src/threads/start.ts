// Starting one of ctbridge's own threads (the engine, ingest) with its heap limits, and watching it: the thread
// says `ready` or `failed` once it has opened what it needs (channel.ts runThread); a thread that dies afterwards
// is reported through `onFailure`, because the process cannot ingest or sync without it (everything acknowledged
// is in the store, so the caller should exit and be restarted). The main thread's own heap settings are made by
// bin/ctbridge.js, before the process starts.
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import type { Lifecycle, StopRequest } from './channel.ts';

export type ThreadName = 'engine' | 'ingest';

const HEAP_LIMITS: Record<ThreadName, ResourceLimits> = {
  // A small young generation keeps the engine thread's share of the process's memory down (its garbage is
  // short-lived batch data that a scavenge clears cheaply), and a bounded old generation makes V8 collect instead
  // of growing: the thread's live data is a few batches, well under the bound.
  engine: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 96 },
  // The ingest thread's live data is the bodies being read (one at a time) and those waiting for one commit,
  // which are bytes outside the heap.
  ingest: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
};

export interface StartedThread<To> {
  /** Posts a message to the thread, moving what `transfer` lists instead of copying it. */
  send(message: To, transfer?: readonly TransferListItem[]): void;
  /** True once the thread has exited, for whatever reason. */
  exited(): boolean;
  heapStatistics(): Promise<{ used_heap_size: number; total_heap_size: number }>;
  /** Sends `{ type: 'stop' }`, waits for the thread's `stopped` (it finishes its work first), and ends it. */
  stop(): Promise<void>;
}

/**
 * Starts the thread `name` from `url` with `workerData` (transferring `transferList`); resolves once it is ready,
 * rejects if it fails to start. `onMessage` gets every message besides the lifecycle ones.
 */
export async function startThread<To extends { type: string }, From extends { type: string }>(
  name: ThreadName,
  url: URL,
  start: { workerData: unknown; transferList: TransferListItem[] },
  onMessage: (message: Exclude<From, Lifecycle>) => void,
  onFailure: (error: Error) => void,
): Promise<StartedThread<To>> {
  const worker = new Worker(url, { name, ...start, resourceLimits: HEAP_LIMITS[name] });
  let started = false;
  let exited = false;
  let stopping = false;
  let lastError: Error | undefined;
  let stopped: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    worker.on('error', (error: Error) => {
      lastError = error;
      if (!started) reject(error);
    });
    worker.on('message', (message: From | Lifecycle) => {
      const lifecycle = message as Lifecycle;
      if (lifecycle.type === 'ready') {
        started = true;
        resolve();
      } else if (lifecycle.type === 'failed') reject(new Error(`the ${name} thread could not start: ${lifecycle.message ?? 'unknown error'}`));
      else if (lifecycle.type === 'stopped') stopped?.();
      else onMessage(message as Exclude<From, Lifecycle>);
    });
    worker.once('exit', (code) => {
      if (!started) reject(lastError ?? new Error(`the ${name} thread exited during start-up (code ${code})`));
    });
  });
  worker.on('exit', (code) => {
    exited = true;
    stopped?.();
    if (!stopping) onFailure(lastError ?? new Error(`the ${name} thread exited unexpectedly (code ${code})`));
  });
  return {
    send: (message, transfer) => worker.postMessage(message, transfer),
    exited: () => exited,
    heapStatistics: () => worker.getHeapStatistics(),
    async stop() {
      if (exited) return;
      await new Promise<void>((resolve) => {
        stopped = resolve;
        worker.postMessage({ type: 'stop' } satisfies StopRequest);
      });
      stopping = true;
      await worker.terminate();
    },
  };
}
