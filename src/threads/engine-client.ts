// What the main thread holds of the engine thread (engine-thread.ts): the same Engine interface the in-process
// engine has, and its metrics, which /metrics merges with the main thread's own.
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { Engine } from '../engine/engine.ts';
import { PendingRequests } from './channel.ts';
import type { EngineThreadData, FromEngine, ToEngine } from './engine-thread.ts';
import { startThread } from './start.ts';

export interface EngineClient extends Engine {
  metrics(): Promise<object[]>;
}

/**
 * Starts the engine thread; `commits` (transferred to it) is where the ingest thread tells it about commits.
 * `onFailure` is called if the thread dies after it started (out of memory, a bug).
 */
export async function startEngineThread(config: Config, commits: MessagePort, onFailure: (error: Error) => void): Promise<EngineClient> {
  const metricsRequests = new PendingRequests<object[]>();
  const thread = await startThread<ToEngine, FromEngine>(
    'engine',
    new URL('./engine-thread.ts', import.meta.url),
    { workerData: { config, commits } satisfies EngineThreadData, transferList: [commits] },
    (message) => {
      if (message.type === 'metrics') metricsRequests.settle(message.id, { value: message.metrics as object[] });
    },
    (error) => {
      metricsRequests.settleAll({ value: [] });
      onFailure(error);
    },
  );

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
    notify: (destinations) => thread.send({ type: 'notify', destinations: destinations ? [...destinations] : undefined }),
    metrics() {
      if (thread.exited()) return Promise.resolve([]);
      const { id, answer } = metricsRequests.add();
      thread.send({ type: 'metrics', id });
      return answer;
    },
    stop: () => thread.stop(),
  };
}
