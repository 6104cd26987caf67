// What a user configures for a generic HTTP destination (`type: http`), and where a `when:` block may send a
// record or event instead.
import { z } from 'zod';

const auth = z.union([
  z.strictObject({ bearer: z.string().min(1) }),
  z.strictObject({ basic: z.strictObject({ username: z.string().min(1), password: z.string() }) }),
  z.strictObject({ header: z.strictObject({ name: z.string().min(1), value: z.string().min(1) }) }),
]);

export const httpSettings = z.object({
  url: z.url().describe('where records and events are sent'),
  eventsUrl: z.url().optional().describe('where events are sent; defaults to url'),
  method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
  deleteMethod: z.enum(['DELETE', 'POST']).default('DELETE').describe('DELETE calls url/{recordType}/{id}; POST sends {operation: "delete"}'),
  batchSize: z.number().int().min(1).max(1000).default(1).describe('above 1, bodies are JSON arrays of up to this many items'),
  timeoutMs: z.number().int().positive().default(10_000),
  signingSecret: z.string().min(16, 'signing secret must be at least 16 characters').optional(),
  auth: auth.optional(),
  headers: z.record(z.string(), z.string()).default({}),
  rateLimit: z.strictObject({ requestsPerSecond: z.number().positive(), burst: z.number().int().positive().optional() }).optional(),
  read: z
    .strictObject({
      url: z.string().regex(/^https?:\/\/\S+$/, 'an http(s) URL template such as https://crm.example.com/records/{recordType}/{id}').describe('GET this URL ({recordType}, {id}: the commercetools id, {destinationId}) for what the receiver holds of a record: 200 with JSON, 404 when it has none'),
      fieldsAt: z.string().regex(/^(\/.*)?$/, 'a JSON pointer such as /fields ("" is the whole answer)').default('').describe('where the record\'s mapped fields are in the answer'),
    })
    .optional()
    .describe('how the receiver answers for a record it holds, so `ctbridge reconcile` can compare it with what was sent'),
  accepts: z
    .strictObject({ records: z.record(z.string(), z.array(z.string().min(1))).default({}), events: z.record(z.string(), z.array(z.string().min(1))).default({}) })
    .optional()
    .describe('the fields the receiver knows, per record or event mapping: a mapped field outside them is a start-up error'),
});

/** A `when:` block's routing for this type: another endpoint for the matching records or events. */
export const httpTarget = z.strictObject({
  url: z.url().describe('where matching records (and, without eventsUrl, events) are sent instead'),
  eventsUrl: z.url().optional().describe('where matching events are sent instead'),
});

export type HttpSettings = z.infer<typeof httpSettings>;
export type HttpTarget = z.infer<typeof httpTarget>;
