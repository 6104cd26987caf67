// Builds the engine from a validated configuration: routes, the commercetools client it reads resources with
// (unless one is injected), its connectors and hooks, on a store the caller opened. The in-process runtime
// (runtime.ts) and the engine thread (threads/engine-thread.ts) both build it here, so they run the same engine.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Connector } from '../destinations/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/store.ts';
import { createEngine, type Engine } from './engine.ts';
import type { EngineHooks } from './hooks.ts';
import type { ResourceFetcher } from './record-sync.ts';
import { compileRoutes } from './routes.ts';
import type { CommercetoolsWriter } from '../commercetools/writeback.ts';

export interface EngineFromConfigOptions {
  config: Config;
  store: Store;
  metrics: Metrics;
  logger: Logger;
  hooks?: EngineHooks | undefined;
  /** Replaces the commercetools API client (tests). */
  fetcher?: ResourceFetcher | undefined;
  /** Connectors by destination name, replacing the configured ones (tests). */
  connectors?: Record<string, Connector> | undefined;
  /** Replaces the commercetools writer of two-way sync (tests). */
  writer?: CommercetoolsWriter | undefined;
  /** Wraps it (tests inject concurrent edits). */
  wrapWriter?: ((writer: CommercetoolsWriter) => CommercetoolsWriter) | undefined;
}

export interface EngineFromConfig {
  engine: Engine;
  /** Stops the engine, then closes the commercetools client opened for it (the store stays the caller's). */
  stop: () => Promise<void>;
}

export async function engineFromConfig(options: EngineFromConfigOptions): Promise<EngineFromConfig> {
  const { config, store, metrics, logger, hooks, connectors } = options;
  let fetcher = options.fetcher;
  let closeCommercetools: (() => Promise<void>) | undefined;
  let writer = options.writer;
  if (!fetcher) {
    // Loaded only where it is used: the HTTP thread of `ctbridge start` never reads commercetools.
    const client = await import('../commercetools/client.ts');
    const commercetools = client.createCommercetoolsClient(config.commercetools);
    closeCommercetools = () => commercetools.close();
    fetcher = client.resourceFetcher(commercetools);
    // Two-way sync writes through the same authenticated client.
    writer ??= (await import('../commercetools/writeback.ts')).commercetoolsWriter(commercetools);
  }
  const engine = createEngine({ config, routes: compileRoutes(config), store, fetcher, metrics, logger, ...(hooks && { hooks }), ...(connectors && { connectors }), writer: writer && options.wrapWriter ? options.wrapWriter(writer) : writer });
  return {
    engine,
    stop: async () => {
      await engine.stop();
      await closeCommercetools?.();
    },
  };
}
