// The main thread's handle on the engine thread (engine-thread.ts): the same Engine interface the in-process
// engine has, the inbox writer that lives there (appends made in one tick travel as one message), and its
// metrics, which /metrics merges with the main thread's own.
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { InboxRow } from '../store/inbox.ts';
import type { Engine } from './engine.ts';
import type { FromEngine, ToEngine } from './engine-thread.ts';

export interface ThreadEngine extends Engine {
  metrics(): Promise<object[]>;
}

interface Settle {
  resolve: () => void;
  reject: (error: unknown) => void;
}

// A small young generation keeps the engine thread's share of the process's memory down (its garbage is
// short-lived batch data that a scavenge clears cheaply), and a bounded old generation makes V8 collect instead
// of growing: the thread's live data is a few batches, well under the bound.
const ENGINE_HEAP_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 96 };

/**
 * Starts the engine thread. `onFailure` is called if the thread dies after it started (out of memory, a bug):
 * the process cannot ingest or sync without it, so the caller should exit and be restarted; everything
 * acknowledged is in the store.
 */
export async function startEngineThread(config: Config, onFailure: (error: Error) => void): Promise<ThreadEngine> {
  const worker = new Worker(new URL('./engine-thread.ts', import.meta.url), { workerData: { config }, resourceLimits: ENGINE_HEAP_LIMITS });
  const send = (message: ToEngine) => worker.postMessage(message);
  const waiting = new Map<number, (metrics: object[]) => void>();
  let nextId = 0;
  let stopped: (() => void) | undefined;
  let exited = false;
  const appending = new Map<number, Settle[]>();
  let nextAppend: { rows: InboxRow[]; waiting: Settle[] } | undefined;

  function sendAppend(): void {
    const { rows, waiting } = nextAppend!;
    nextAppend = undefined;
    if (exited) {
      for (const settle of waiting) settle.reject(new Error('the engine thread has stopped; nothing was stored'));
      return;
    }
    const id = nextId++;
    appending.set(id, waiting);
    send({ type: 'append', id, rows });
  }

  let started = false;
  let lastError: Error | undefined;
  await new Promise<void>((resolve, reject) => {
    worker.on('error', (error: Error) => {
      lastError = error;
      if (!started) reject(error);
    });
    worker.on('message', (message: FromEngine) => {
      if (message.type === 'ready') {
        started = true;
        resolve();
      } else if (message.type === 'failed') reject(new Error(`the engine thread could not start: ${message.message}`));
      else if (message.type === 'metrics') {
        waiting.get(message.id)?.(message.metrics as object[]);
        waiting.delete(message.id);
      } else if (message.type === 'appended') {
        const waiting = appending.get(message.id) ?? [];
        appending.delete(message.id);
        const failure = message.error === undefined ? undefined : new Error(`the inbox append failed: ${message.error}`);
        for (const settle of waiting) {
          if (failure) settle.reject(failure);
          else settle.resolve();
        }
      } else if (message.type === 'stopped') stopped?.();
    });
  });
  worker.on('exit', (code) => {
    exited = true;
    if (!stopped) onFailure(lastError ?? new Error(`the engine thread exited unexpectedly (code ${code})`));
    for (const resolve of waiting.values()) resolve([]);
    for (const settles of appending.values()) for (const settle of settles) settle.reject(new Error('the engine thread stopped before the append was committed'));
    appending.clear();
    stopped?.();
  });

  return {
    start() {
      // The thread starts its workers as soon as it is up.
    },
    writer: {
      append(rows) {
        return new Promise((resolve, reject) => {
          if (!nextAppend) {
            nextAppend = { rows: [], waiting: [] };
            setImmediate(sendAppend);
          }
          for (const row of rows) nextAppend.rows.push(row);
          nextAppend.waiting.push({ resolve, reject });
        });
      },
    },
    notify: (destinations) => send({ type: 'notify', destinations: destinations ? [...destinations] : undefined }),
    metrics() {
      if (exited) return Promise.resolve([]);
      const id = nextId++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        send({ type: 'metrics', id });
      });
    },
    async stop() {
      if (exited) return;
      await new Promise<void>((resolve) => {
        stopped = resolve;
        send({ type: 'stop' });
      });
      await worker.terminate();
    },
  };
}
