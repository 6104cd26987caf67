// The main thread's handle on the engine thread (engine-thread.ts): the same Engine interface the in-process
// engine has, plus its metrics, which /metrics merges with the main thread's own.
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { Engine } from './engine.ts';
import type { FromEngine, ToEngine } from './engine-thread.ts';

export interface ThreadEngine extends Engine {
  metrics(): Promise<object[]>;
}

export async function startEngineThread(config: Config): Promise<ThreadEngine> {
  // A small young generation keeps the engine thread's share of the process's memory down; its garbage is
  // short-lived batch data that a scavenge clears cheaply.
  const worker = new Worker(new URL('./engine-thread.ts', import.meta.url), { workerData: { config }, resourceLimits: { maxYoungGenerationSizeMb: 12 } });
  const send = (message: ToEngine) => worker.postMessage(message);
  const waiting = new Map<number, (metrics: object[]) => void>();
  let nextId = 0;
  let stopped: (() => void) | undefined;
  let exited = false;

  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (message: FromEngine) => {
      if (message.type === 'ready') resolve();
      else if (message.type === 'failed') reject(new Error(`the engine thread could not start: ${message.message}`));
      else if (message.type === 'metrics') {
        waiting.get(message.id)?.(message.metrics as object[]);
        waiting.delete(message.id);
      } else if (message.type === 'stopped') stopped?.();
    });
  });
  worker.on('exit', () => {
    exited = true;
    for (const resolve of waiting.values()) resolve([]);
    stopped?.();
  });

  return {
    start() {
      // The thread starts its workers as soon as it is up.
    },
    inboxChanged: () => send({ type: 'inbox' }),
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
