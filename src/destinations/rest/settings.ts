// What a user configures for a configurable REST destination (`type: rest`): where the API is, how ctbridge
// authenticates (OAuth2 client credentials or password grant with a token endpoint, a bearer token, basic auth or
// an API-key header), the media type every call speaks, where an error body keeps its message, and, per record and
// event mapping, the operations — method, path template, headers, body template and where the destination's id is
// in the answer — with an optional batching window for events ("every N minutes").
import { z } from 'zod';

/** A JSON pointer (RFC 6901): `/id`, `/data/0/id`, or '' for the whole answer. */
export const jsonPointer = z
  .string()
  .regex(/^(\/([^~/]|~[01])*)*$/, 'a JSON pointer such as /id or /data/0/id (RFC 6901)')
  .describe('a JSON pointer into the answer (RFC 6901), e.g. /id');

const pathTemplate = z
  .string()
  .min(1)
  .refine((path) => path.startsWith('/') || /^https?:\/\//.test(path), 'a path starting with / (below baseUrl) or an absolute http(s) URL')
  .refine((path) => /^([^{}]|\{[A-Za-z_$][\w$]*(\.[\w$-]+)*\})*$/.test(path), 'placeholders are {name} or {name.inner}, e.g. /customers/{destinationId}')
  .describe('a path template below baseUrl: {id}, {destinationId}, {fields.orderNumber}… are replaced (URL-encoded)');

export const restOperation = z.strictObject({
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: pathTemplate,
  headers: z.record(z.string(), z.string()).optional().describe('headers of this operation only (beside the destination\'s)'),
  body: z
    .unknown()
    .optional()
    .describe('a body template: any JSON, where a text that is exactly {{path}} becomes that value and {{path}} inside a text is replaced; without it, the mapped fields'),
  idPointer: jsonPointer.optional().describe('where the destination\'s id of the record is in the answer (create, find)'),
});

export type RestOperation = z.infer<typeof restOperation>;

export const recordOperations = z
  .strictObject({
    create: restOperation.optional().describe('a record the destination does not have yet (its id is read from the answer at idPointer)'),
    update: restOperation.optional().describe('a record whose destination id is known ({destinationId} in the path)'),
    delete: restOperation.optional().describe('a deleted record (404 and 410 count as done); without it deletes are not sent'),
    find: restOperation.extend({ idPointer: jsonPointer }).optional().describe('looks a record up before creating it (e.g. by its commercetools id); no id at idPointer: not there'),
  })
  .refine((ops) => ops.create !== undefined || ops.update !== undefined, 'give create or update (or both)');

export const eventOperation = z.strictObject({
  send: restOperation.describe('the call each event becomes'),
  schedule: z
    .strictObject({
      everyMinutes: z.number().positive().max(24 * 60).describe('events are held and sent together at the end of each window of this many minutes (aligned to the clock)'),
    })
    .optional()
    .describe('batch these events instead of sending each at once, where the channel\'s latency allows'),
});

export type EventOperation = z.infer<typeof eventOperation>;

export const oauth2Auth = z
  .strictObject({
    tokenUrl: z.string().min(1).describe('the token endpoint: a path below baseUrl or an absolute URL'),
    grant: z.enum(['client_credentials', 'password']).describe('the OAuth2 grant (RFC 6749 4.4 client credentials, 4.3 password)'),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).optional().describe('from the environment; absent for a public client'),
    username: z.string().min(1).optional().describe('the password grant\'s user'),
    password: z.string().min(1).optional().describe('the password grant\'s password, from the environment'),
    scope: z.string().min(1).optional(),
    clientAuthentication: z.enum(['body', 'basic']).default('body').describe('client id and secret in the form body, or as HTTP Basic (RFC 6749 2.3.1)'),
    refreshBeforeSeconds: z.number().int().min(0).default(30).describe('a token is replaced this long before it expires'),
  })
  .superRefine((auth, ctx) => {
    if (auth.grant !== 'password') return;
    if (auth.username === undefined) ctx.addIssue({ code: 'custom', path: ['username'], message: 'the password grant needs username' });
    if (auth.password === undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: 'the password grant needs password' });
  });

export const restAuth = z.union([
  z.strictObject({ oauth2: oauth2Auth }),
  z.strictObject({ bearer: z.string().min(1) }),
  z.strictObject({ basic: z.strictObject({ username: z.string().min(1), password: z.string() }) }),
  z.strictObject({ apiKey: z.strictObject({ header: z.string().min(1), value: z.string().min(1) }) }),
]);

export type RestAuth = z.infer<typeof restAuth>;
export type OAuth2Auth = z.infer<typeof oauth2Auth>;

export const restSettingsShape = {
  baseUrl: z.url().describe('the API\'s base URL (paths are below it)'),
  auth: restAuth.optional(),
  mediaType: z.string().min(1).default('application/json').describe('Accept and Content-Type of every call, e.g. application/vnd.novomind.iagent-v2+json'),
  headers: z.record(z.string(), z.string()).default({}),
  errorMessage: jsonPointer.optional().describe('where an error answer keeps its message, e.g. /message; without it, the start of the body'),
  timeoutMs: z.number().int().positive().default(10_000),
  rateLimit: z.strictObject({ requestsPerSecond: z.number().positive(), burst: z.number().int().positive().optional() }).optional(),
  concurrency: z.number().int().min(1).max(64).default(8).describe('items sent at once per batch'),
  scheduleCheckMs: z.number().int().min(10).max(60_000).optional().describe('how often held (scheduled) events are looked at; default a tenth of the shortest window, 50 ms to 30 s'),
  operations: z
    .strictObject({
      records: z.record(z.string(), recordOperations).default({}).describe('per record mapping: its operations'),
      events: z.record(z.string(), eventOperation).default({}).describe('per event mapping: its operation'),
    })
    .default({ records: {}, events: {} }),
};

export const restSettings = z.object(restSettingsShape);

type DefaultOperations = { records: Record<string, object>; events: Record<string, object> };

/**
 * The `operations` setting of a preset (novomind, Momentis): what is given over the preset's defaults, a
 * mapping's operations key by key (create, update…) over its defaults; anything not an object is left for the
 * schema to refuse.
 */
export function presetOperations(defaults: DefaultOperations) {
  const merge = (base: Record<string, object>, over: unknown): unknown => {
    if (over !== undefined && (over === null || typeof over !== 'object' || Array.isArray(over))) return over;
    const out: Record<string, unknown> = { ...base };
    for (const [name, ops] of Object.entries((over ?? {}) as Record<string, unknown>)) {
      const preset = base[name];
      out[name] = preset && ops !== null && typeof ops === 'object' && !Array.isArray(ops) ? { ...preset, ...ops } : ops;
    }
    return out;
  };
  const withDefaults = (value: unknown): unknown => {
    if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) return value;
    const given = (value ?? {}) as { records?: unknown; events?: unknown };
    return { ...given, records: merge(defaults.records, given.records), events: merge(defaults.events, given.events) };
  };
  return z.preprocess(withDefaults, z.strictObject({ records: z.record(z.string(), recordOperations), events: z.record(z.string(), eventOperation) }));
}

export type RestSettings = z.infer<typeof restSettings>;
