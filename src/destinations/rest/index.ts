// Configurable REST destination (`type: rest`), for APIs that have no SDK and differ per installation: per record
// and event mapping, the operations — method, path template, headers, body template, where the id is in the
// answer (settings.ts) — with OAuth2 (client credentials or password grant, token cached and refreshed), bearer,
// basic or API-key authentication (auth.ts), the installation's media type and error shape (client.ts), records
// created, found, updated and deleted (records.ts), events sent one call each, at once or batched per window
// (events.ts, window.ts). `restDestinationType` makes a preset of it: another type with its own defaults
// (destinations/novomind/).
import type { z } from 'zod';
import { defineDestination, type FieldProblem, type MappedFieldNames } from '../kit/index.ts';
import type { DestinationDefinition } from '../types.ts';
import { createRestClient } from './client.ts';
import { sendEvent, type RestConnection } from './events.ts';
import { sendRecord } from './records.ts';
import { restSettings, type RestSettings } from './settings.ts';
import { createEventWindow } from './window.ts';

/** Mapped records and events the settings have no operations for, as start-up errors. */
export function checkOperations(settings: RestSettings, mapped: MappedFieldNames): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const mapping of Object.keys(mapped.records)) {
    if (settings.operations.records[mapping] === undefined) problems.push({ block: 'records', mapping, field: '', message: `no operations for records of "${mapping}": add operations.records.${mapping} (create, update, delete, find)` });
  }
  for (const mapping of Object.keys(mapped.events)) {
    if (settings.operations.events[mapping] === undefined) problems.push({ block: 'events', mapping, field: '', message: `no operation for events of "${mapping}": add operations.events.${mapping}.send` });
  }
  return problems;
}

/**
 * A destination type over the REST connector: `rest` itself, or a preset whose settings schema fills in an
 * installation's defaults (and may give default mappings), parsing to the REST settings.
 */
export function restDestinationType<Settings extends z.ZodObject>(options: {
  type: string;
  description: string;
  settings: Settings;
  toRest?: (settings: z.infer<Settings>) => RestSettings;
  defaultMappings?: (settings: z.infer<Settings>) => { records: Record<string, unknown>; events: Record<string, unknown> };
}): DestinationDefinition<Settings> {
  const toRest = options.toRest ?? ((settings: z.infer<Settings>) => settings as unknown as RestSettings);
  return defineDestination({
    type: options.type,
    description: options.description,
    settings: options.settings,
    // Items go out concurrently, one call each; the shared limiter paces them.
    limits: (settings) => ({ maxBatchSize: toRest(settings).concurrency, rateLimit: toRest(settings).rateLimit }),
    // A PUT replaces the whole resource: whenever something changed, the whole mapped record goes.
    delta: 'full',
    checkFields: (settings, mapped) => checkOperations(toRest(settings), mapped),
    ...(options.defaultMappings && { defaultMappings: options.defaultMappings }),
    client(settings, deps): RestConnection {
      const client = createRestClient(toRest(settings), deps);
      return { client, window: createEventWindow(client) };
    },
    records: {
      name: sendRecord.name,
      perform: (connection: RestConnection, item) => sendRecord.perform(connection.client, item),
    },
    events: sendEvent,
    close(connection) {
      connection.client.close();
      return Promise.resolve();
    },
  });
}

export const restDestination = restDestinationType({
  type: 'rest',
  description: 'any REST API: per record and event mapping, method, path template, body template and id pointer; OAuth2, bearer, basic or API-key auth',
  settings: restSettings,
});
