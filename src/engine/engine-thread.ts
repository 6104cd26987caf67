// The engine on its own thread: `ctbridge start` runs the inbox writer, the router and the destination workers
// here, with their own store connection and commercetools client, so the main thread's event loop only answers
// HTTP. Every hot write happens on this thread: with SQLite, two writing threads would make each wait (blocked,
// node:sqlite is synchronous) for the other's lock. The main thread talks to it through the messages below (see
// engine/thread-proxy.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { createCommercetoolsClient, resourceFetcher } from '../commercetools/client.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { InboxRow } from '../store/inbox.ts';
import { openStore } from '../store/store.ts';
import { createEngine } from './engine.ts';
import { compileRoutes } from './routes.ts';

export type ToEngine =
  | { type: 'append'; id: number; rows: InboxRow[] }
  | { type: 'notify'; destinations: string[] | undefined } | { type: 'metrics'; id: number } | { type: 'stop' };
export type FromEngine =
  | { type: 'ready' }
  | { type: 'appended'; id: number; error?: string }
  | { type: 'metrics'; id: number; metrics: unknown } | { type: 'stopped' } | { type: 'failed'; message: string };

const port = parentPort!;
const config = (workerData as { config: Config }).config;

try {
  const logger = createLogger().child({ thread: 'engine' });
  const store = openStore(config.store);
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
  engine.start();
  port.on('message', (message: ToEngine) => {
    if (message.type === 'append') {
      const { id } = message;
      engine.writer.append(message.rows).then(
        () => port.postMessage({ type: 'appended', id } satisfies FromEngine),
        (error: unknown) => port.postMessage({ type: 'appended', id, error: error instanceof Error ? error.message : String(error) } satisfies FromEngine),
      );
    } else if (message.type === 'notify') engine.notify(message.destinations);
    else if (message.type === 'metrics') void metrics.registry.getMetricsAsJSON().then((json) => port.postMessage({ type: 'metrics', id: message.id, metrics: json } satisfies FromEngine));
    else if (message.type === 'stop') {
      void (async () => {
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
