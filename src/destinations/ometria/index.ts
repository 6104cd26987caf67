// Ometria destination (`type: ometria`): customers become contacts (id = the customer id, never an e-mail) with
// their consent decided at send time against what Ometria has (consent.ts), orders become orders linked to the
// contact's customer_id (a guest's to a guest contact Ometria stitches on registration), products become products
// with their variants as children, events become custom events keyed by the source event id (records.ts). Records
// go out in Push API bodies of one type and at most 100 (push.ts), 4 requests a second shared by every process, and
// are followed up on Ometria's asynchronous validation (validation.ts). Default mappings for all four (defaults.ts)
// apply when a destination maps nothing itself. The HTTP calls and Ometria's backlog headers are client.ts.
import { defineDestination, memoryConnectorState, type ConnectorDeps, type FieldProblem } from '../kit/index.ts';
import { createOmetriaClient } from './client.ts';
import { defaultMappings } from './defaults.ts';
import { pushEvents, pushRecords, type OmetriaConnection } from './push.ts';
import { createPusher, MAX_RECORDS_PER_PUSH } from './pusher.ts';
import { ometriaSettings, type OmetriaSettings } from './settings.ts';
import { createValidationWatcher } from './validation.ts';
import { z } from 'zod';

/**
 * The share of the account's limit the shared limiter paces calls at: what Ometria counts in a second and what the
 * limiter schedules differ by a little (network jitter); the rest, and Ometria's allowance of a second's requests
 * at once, absorb that without a 429.
 */
const PACE = 0.99;
const RECORD_SOURCES = new Set(['customer', 'order', 'product']);

/** The API client and the validation follow-up over it, once per destination. */
export function createOmetriaConnection(settings: OmetriaSettings, deps: ConnectorDeps): OmetriaConnection {
  // Without a store (connector tests, previews) what the connector keeps lives in memory.
  const client = createOmetriaClient(settings, { ...deps, state: deps.state ?? memoryConnectorState(), reportLateFailures: deps.reportLateFailures ?? (() => Promise.resolve()) });
  const pusher = createPusher(client, { gatherMs: settings.gatherMs });
  return { client, validation: createValidationWatcher(client, { busy: () => pusher.busy() }), pusher };
}

export const ometriaTarget = z.strictObject({ collection: z.string().min(1).describe('the @collection matching contacts go to instead (e.g. a brand of its own)') });

export const ometriaDestination = defineDestination({
  type: 'ometria',
  description: 'Ometria contacts with consent, orders, products and custom events, through the Push API',
  settings: ometriaSettings,
  target: ometriaTarget,
  // Ten bodies' worth per claim: a backlog keeps the sender's next body full while this batch is mapped.
  limits: (settings) => ({ maxBatchSize: MAX_RECORDS_PER_PUSH * 10, rateLimit: { requestsPerSecond: settings.requestsPerSecond * PACE, burst: 1 } }),
  // Ometria merges what it is sent into the record it has (a partial update): only what changed goes.
  delta: 'changed',
  checkFields(_settings, mapped) {
    const problems: FieldProblem[] = [];
    for (const [mapping, source] of Object.entries(mapped.recordSources)) {
      if (!RECORD_SOURCES.has(source)) problems.push({ block: 'records', mapping, field: '', message: `Ometria has contacts, orders and products, no place for records of ${source}: map customers, orders or products` });
    }
    return problems;
  },
  defaultMappings: (settings) => defaultMappings(settings) as { records: Record<string, unknown>; events: Record<string, unknown> },
  client: createOmetriaConnection,
  // Records a previous process left waiting for validation are followed up from start-up on.
  prepare: (connection) => Promise.resolve(connection.validation.wake()),
  records: pushRecords,
  events: pushEvents,
  close(connection) {
    connection.validation.close();
    connection.pusher.close();
    return Promise.resolve();
  },
});
