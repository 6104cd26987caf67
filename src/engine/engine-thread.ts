// The engine on its own thread: `ctbridge start` runs the router and the destination workers here, with their
// own store connection and commercetools client, at a lower CPU priority than the threads that answer and commit
// ingest requests (thread-priority.ts): sync work takes the CPU those leave. The ingest thread tells it
// about each commit through the `commits` port; the main thread talks to it through the messages below (see
// engine/thread-proxy.ts).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { createCommercetoolsClient, resourceFetcher } from '../commercetools/client.ts';
import type { Config } from '../config/schema.ts';
import type { CommitNotice } from '../ingest/ingest-thread.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { openStore } from '../store/store.ts';
import { createEngine } from './engine.ts';
import { compileRoutes } from './routes.ts';
import { lowerThreadPriority } from './thread-priority.ts';

export type ToEngine = { type: 'notify'; destinations: string[] | undefined } | { type: 'metrics'; id: number } | { type: 'stop' };
export type FromEngine = { type: 'ready' } | { type: 'metrics'; id: number; metrics: unknown } | { type: 'stopped' } | { type: 'failed'; message: string };

const port = parentPort!;
const { config, commits } = workerData as { config: Config; commits: MessagePort };

try {
  lowerThreadPriority();
  const logger = createLogger().child({ thread: 'engine' });
  // The WAL checkpoints run here: a pause on this thread holds up sync work only, never an acknowledgement.
  const store = openStore(config.store, { checkpoints: 'periodic' });
  const metrics = createMetrics();
  const commercetools = createCommercetoolsClient(config.commercetools);
  const engine = createEngine({
    config,
    routes: compileRoutes(config),
    store,
    metrics,
    logger,
    fetcher: resourceFetcher(commercetools),
  });
  // A destination that cannot work at all (an attribute Intercom has with another type) fails the start.
  await engine.prepare();
  engine.start();
  commits.on('message', (notice: CommitNotice) => engine.inboxCommitted(notice.items));
  port.on('message', (message: ToEngine) => {
    if (message.type === 'notify') engine.notify(message.destinations);
    else if (message.type === 'metrics') void metrics.registry.getMetricsAsJSON().then((json) => port.postMessage({ type: 'metrics', id: message.id, metrics: json } satisfies FromEngine));
    else if (message.type === 'stop') {
      void (async () => {
        commits.close();
        await engine.stop();
        await commercetools.close();
        await store.close();
        port.postMessage({ type: 'stopped' } satisfies FromEngine);
      })();
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromEngine);
} catch (error) {
  port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies FromEngine);
}
