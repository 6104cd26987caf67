// The main thread's handle on the engine thread (engine-thread.ts): the same Engine interface the in-process
// engine has, and its metrics, which /metrics merges with the main thread's own.
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { Engine } from './engine.ts';
import type { FromEngine, ToEngine } from './engine-thread.ts';
import { startWorker } from './worker-start.ts';

export interface ThreadEngine extends Engine {
  metrics(): Promise<object[]>;
}

// A small young generation keeps the engine thread's share of the process's memory down (its garbage is
// short-lived batch data that a scavenge clears cheaply), and a bounded old generation makes V8 collect instead
// of growing: the thread's live data is a few batches, well under the bound.
const ENGINE_HEAP_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 96 };

/**
 * Starts the engine thread; `commits` (transferred to it) is where the ingest thread tells it about commits.
 * `onFailure` is called if the thread dies after it started (out of memory, a bug).
 */
export async function startEngineThread(config: Config, commits: MessagePort, onFailure: (error: Error) => void): Promise<ThreadEngine> {
  const waiting = new Map<number, (metrics: object[]) => void>();
  let nextId = 0;
  const thread = await startWorker<FromEngine>(
    'engine',
    new URL('./engine-thread.ts', import.meta.url),
    { workerData: { config, commits }, transferList: [commits], resourceLimits: ENGINE_HEAP_LIMITS },
    (message) => {
      if (message.type === 'metrics') {
        waiting.get(message.id)?.(message.metrics as object[]);
        waiting.delete(message.id);
      }
    },
    (error) => {
      for (const resolve of waiting.values()) resolve([]);
      onFailure(error);
    },
  );
  const send = (message: ToEngine) => thread.worker.postMessage(message);

  return {
    prepare() {
      // The thread prepares its connectors before it says it is ready (a failure fails startEngineThread).
      return Promise.resolve();
    },
    start() {
      // The thread starts its workers as soon as it is up.
    },
    inboxCommitted() {
      // The ingest thread tells the engine thread itself, through the commits port.
    },
    notify: (destinations) => send({ type: 'notify', destinations: destinations ? [...destinations] : undefined }),
    metrics() {
      if (thread.exited()) return Promise.resolve([]);
      const id = nextId++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        send({ type: 'metrics', id });
      });
    },
    stop: () => thread.stop(),
  };
}
