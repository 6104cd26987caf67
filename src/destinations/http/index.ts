// Generic HTTP destination (`type: http`): sends each mapped record or event as JSON to a URL, one per call or
// as array bodies of up to `batchSize` items (client.ts: the call, its headers and signature; send.ts: the
// envelopes and chunks). This file is the definition: settings, limits, field checks and which operation sends what.
import { defineDestination, type FieldProblem } from '../kit/index.ts';
import { createHttpDestinationClient } from './client.ts';
import { genericInbound } from './inbound.ts';
import { readRecord } from './read.ts';
import { sendEvents, sendMerges, sendRecords } from './send.ts';
import { httpSettings, httpTarget } from './settings.ts';

export const httpDestination = defineDestination({
  type: 'http',
  description: 'POST/PUT/PATCH mapped records and events as JSON to any HTTP endpoint',
  settings: httpSettings,
  target: httpTarget,
  // Up to eight calls' worth per batch, so a worker keeps several calls in flight.
  limits: (settings) => ({ maxBatchSize: Math.max(settings.batchSize, 1) * 8, rateLimit: settings.rateLimit }),
  delta: 'changed',
  checkFields(settings, mapped) {
    if (!settings.accepts) return [];
    const problems: FieldProblem[] = [];
    for (const block of ['records', 'events'] as const) {
      for (const [mapping, fields] of Object.entries(mapped[block])) {
        const accepted = settings.accepts[block][mapping];
        if (accepted === undefined) continue;
        for (const field of fields) {
          if (!accepted.includes(field)) problems.push({ block, mapping, field, message: `the receiver has no field "${field}" (accepts.${block}.${mapping}: ${accepted.join(', ')})` });
        }
      }
    }
    return problems;
  },
  client: createHttpDestinationClient,
  records: sendRecords,
  events: sendEvents,
  merges: sendMerges,
  // The generic signed change contract (inbound.ts), for two-way sync with any HTTP system.
  inbound: genericInbound,
  // With a read URL in its settings, what the receiver holds can be compared with what was sent (reconciliation).
  readBack: readRecord,
});
