// A connector's keyed state (ConnectorState, destinations/types.ts) in memory: what a connector built without a
// store uses (connector tests, `mapping preview`). The engine gives connectors the store's (store/connector-state.ts).
import type { ConnectorState } from '../types.ts';

export function memoryConnectorState(): ConnectorState & { readonly entries: Map<string, { value: unknown; subject: string | undefined }> } {
  const entries = new Map<string, { value: unknown; subject: string | undefined }>();
  return {
    entries,
    get: (keys) => Promise.resolve(new Map(keys.filter((key) => entries.has(key)).map((key) => [key, structuredClone(entries.get(key)!.value)]))),
    put(list) {
      for (const entry of list) entries.set(entry.key, { value: structuredClone(entry.value), subject: entry.subject });
      return Promise.resolve();
    },
    add(entry) {
      if (entries.has(entry.key)) return Promise.resolve(false);
      entries.set(entry.key, { value: structuredClone(entry.value), subject: entry.subject });
      return Promise.resolve(true);
    },
    take: (keys) => Promise.resolve(keys.filter((key) => entries.delete(key))),
    list(prefix, options = {}) {
      const keys = [...entries.keys()].filter((key) => key.startsWith(prefix) && (options.after === undefined || key > options.after)).sort();
      return Promise.resolve(keys.slice(0, options.limit ?? 1_000).map((key) => ({ key, value: structuredClone(entries.get(key)!.value) })));
    },
  };
}
