// Runs inside the engine thread: `ctbridge start` runs the router and the destination workers here, with their
// own store connection and commercetools client, at a lower CPU priority than the threads that answer and commit
// ingest requests (priority.ts): sync work takes the CPU those leave. The engine is built as the in-process
// runtime builds it (engine/from-config.ts). The ingest thread tells it about each commit through the `commits`
// port; the main thread holds it through engine-client.ts and the messages below.
import { workerData, type MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import { engineFromConfig } from '../engine/from-config.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { openStore } from '../store/store.ts';
import { runThread } from './channel.ts';
import type { CommitNotice } from './ingest-thread.ts';
import { lowerThreadPriority } from './priority.ts';

export type ToEngine = { type: 'notify'; destinations: string[] | undefined } | { type: 'metrics'; id: number };
export type FromEngine = { type: 'metrics'; id: number; metrics: unknown };
/** What the main thread starts this thread with (see engine-client.ts). */
export interface EngineThreadData {
  config: Config;
  commits: MessagePort;
}

const { config, commits } = workerData as EngineThreadData;

await runThread<ToEngine, FromEngine>(async (reply) => {
  lowerThreadPriority();
  const logger = createLogger().child({ thread: 'engine' });
  // The WAL checkpoints run here: a pause on this thread holds up sync work only, never an acknowledgement.
  const store = openStore(config.store, { checkpoints: 'periodic' });
  const metrics = createMetrics();
  const { engine, stop } = await engineFromConfig({ config, store, metrics, logger });
  // A destination that cannot work at all (an attribute Intercom has with another type) fails the start.
  await engine.prepare();
  engine.start();
  commits.on('message', (notice: CommitNotice) => engine.inboxCommitted(notice.items));
  return {
    onMessage(message) {
      if (message.type === 'notify') engine.notify(message.destinations);
      else void metrics.registry.getMetricsAsJSON().then((json) => reply({ type: 'metrics', id: message.id, metrics: json }));
    },
    async stop() {
      commits.close();
      await stop();
      await store.close();
    },
  };
});
