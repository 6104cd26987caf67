// The shape of ctbridge.yaml, as zod schemas. The same schema validates the file at start-up and is printed as
// JSON Schema by `ctbridge config schema` for editor completion. Destination entries are a union over the
// registered destination types, each contributing its own connection settings.
import { z } from 'zod';
import { destinationDefinitions, findDestinationDefinition } from '../destinations/registry.ts';
import type { MappedFieldNames } from '../destinations/types.ts';
import { compileField, fieldSpecSchema } from '../mapping/field.ts';
import { MATCH_KEYS } from '../mapping/record-mapping.ts';
import { piiPolicySchema } from '../pii/classes.ts';
import { isStorefrontEventType, STOREFRONT_EVENT_TYPES } from '../ingest/storefront-events.ts';
import { apiSchema } from '../server/api-clients.ts';
import { actionsSchema } from '../actions/config.ts';
import { inboundSchema, ownershipProblems, ownershipSchema, type InboundConfig } from './ownership.ts';
import { syncSchema, type SyncConfig } from './sync.ts';
import { reconcileScheduleSchema, type ReconcileSchedule } from '../reconcile/config.ts';

const durationMs = z.number().int().positive();

// Secrets are checked where they are configured (see configSchema); here only whether the field compiles.
const VALIDATION_SECRETS = { hashKey: 'validation-only' };

/** A mapped field, reported where it is written when it does not compile (a bad path, an unknown transform). */
const fieldSpec = fieldSpecSchema.superRefine((spec, ctx) => {
  try {
    compileField(spec, VALIDATION_SECRETS);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const fieldMap = z.record(z.string(), fieldSpec).refine((f) => Object.keys(f).length > 0, 'map at least one field');

export const commercetoolsSchema = z
  .strictObject({
    projectKey: z.string().min(1),
    region: z.string().min(1).optional().describe('e.g. europe-west1.gcp; sets authUrl and apiUrl'),
    authUrl: z.url().optional(),
    apiUrl: z.url().optional(),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1),
    scopes: z.array(z.string().min(1)).default([]),
  })
  .superRefine(
    (value, ctx) => {
      if (!value.region && !(value.authUrl && value.apiUrl)) {
        ctx.addIssue({ code: 'custom', message: 'set either region or both authUrl and apiUrl' });
      }
    },
    // Also when other keys of the block are wrong, so that every problem is reported in one go.
    { when: (payload) => isPlainObject(payload.value) },
  );

export const ingestAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('bearer'), token: z.string().min(16, 'bearer token must be at least 16 characters') }),
  z.strictObject({
    type: z.literal('hmac'),
    secret: z.string().min(16, 'HMAC secret must be at least 16 characters'),
    header: z.string().min(1).default('X-Ctbridge-Signature'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    prefix: z.string().default('sha256='),
    timestampHeader: z
      .string()
      .min(1)
      .optional()
      .describe('when set, this header must carry the send time in Unix seconds, and the signature covers `${timestamp}.${body}`: a captured request cannot be replayed after toleranceSeconds'),
    toleranceSeconds: z.number().int().positive().max(86_400).default(300).describe('how far the signed timestamp may be from now, either way'),
  }),
  z
    .strictObject({
      type: z.literal('oidc'),
      jwksUrl: z.url(),
      audience: z.string().min(1),
      issuers: z.array(z.string()).default(['https://accounts.google.com', 'accounts.google.com']),
      email: z.string().min(1).optional().describe('the push subscription\'s service account: only its tokens are accepted'),
      allowAnyIdentity: z.boolean().default(false).describe('accept a token of any Google identity for the audience (instead of email)'),
    })
    .superRefine((auth, ctx) => {
      // Any Google account can mint a token for any audience: without the service account, the audience alone
      // lets anyone in.
      if (auth.email === undefined && !auth.allowAnyIdentity) {
        ctx.addIssue({ code: 'custom', path: ['email'], message: 'set email to the push subscription\'s service account (or allowAnyIdentity: true to accept any Google identity)' });
      }
      if (auth.email !== undefined && auth.allowAnyIdentity) {
        ctx.addIssue({ code: 'custom', path: ['allowAnyIdentity'], message: 'allowAnyIdentity: true accepts any identity, so email would not be checked: set one or the other' });
      }
    }),
  z
    .strictObject({
      type: z.literal('sns'),
      topicArns: z
        .array(z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}(\.fifo)?$/, 'an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:commercetools'))
        .min(1)
        .optional()
        .describe('when set, only messages of these topics are accepted'),
    })
    .describe('Amazon SNS message signatures (SignatureVersion 1 or 2), checked against the certificate SNS signs with'),
  z.strictObject({ type: z.literal('none') }).describe('no ingest authentication: local development only'),
]);

export const serverSchema = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().default('0.0.0.0'),
    // Reading a JSON body takes up to ~30 times its size on the heap (a body of nested empty arrays or objects); at
    // 1 MiB that fits the ingest and engine threads' heap limits (threads/start.ts).
    bodyLimit: z
      .number()
      .int()
      .positive()
      .max(1024 * 1024, 'at most 1048576 (1 MiB): a larger body could exhaust the memory of the threads that read it')
      .default(1024 * 1024)
      .describe('largest accepted ingest body in bytes, at most 1 MiB'),
    maxItemsPerBody: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(1_000)
      .describe('notifications (or other parts) one ingest body may hold; a body with more is refused with 413 before anything is stored (an Event Grid subscription\'s maxEventsPerBatch must not exceed it)'),
    maxInFlightBytes: z
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024)
      .describe('authenticated ingest bodies being received or committed at once, in bytes; beyond it ingest answers 503 with Retry-After so senders back off instead of the process running out of memory'),
    maxUnverifiedBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024)
      .describe('with hmac or sns auth (whose credential covers the body): body bytes received but not yet verified, at once; beyond it the request is answered 503 and its connection closed'),
    requestTimeoutMs: durationMs.default(30_000).describe('a request (headers and body) must arrive within this time; otherwise 408 and the connection is closed'),
    headersTimeoutMs: durationMs.default(10_000).describe('the request headers must arrive within this time; otherwise 408 and the connection is closed'),
    keepAliveTimeoutMs: durationMs.default(65_000).describe('an idle keep-alive connection is closed after this time (above the idle timeout of a load balancer in front)'),
    maxConnections: z.number().int().positive().default(1000).describe('open connections at most; further ones are closed at once'),
    ingest: z.strictObject({ auth: ingestAuthSchema }),
    adminToken: z.string().min(16, 'admin token must be at least 16 characters').optional().describe('protects /v1/dead-letters; without it those routes answer 403'),
  })
  .superRefine(
    (server, ctx) => {
      if (typeof server.headersTimeoutMs === 'number' && typeof server.requestTimeoutMs === 'number' && server.headersTimeoutMs > server.requestTimeoutMs) {
        ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: `the headers are part of the request: at most requestTimeoutMs (${server.requestTimeoutMs})` });
      }
    },
    { when: (payload) => isPlainObject(payload.value) },
  );

export const engineSchema = z.strictObject({
  leaseMs: durationMs.default(30_000),
  maxAttempts: z.number().int().min(1).default(12),
  maxAgeMs: durationMs.default(24 * 3600 * 1000),
  backoffBaseMs: durationMs.default(500),
  backoffMaxMs: durationMs.default(5 * 60 * 1000),
  concurrency: z.number().int().min(1).max(64).default(4).describe('batches in flight per destination'),
  pollIntervalMs: durationMs.default(200),
  lingerMs: z.number().int().min(0).max(1000).default(5).describe('wait this long to gather work into batches when not backlogged'),
  dedupeWindowMs: durationMs.default(14 * 24 * 3600 * 1000).describe('how long a notification id is remembered for dedupe'),
  referenceCacheMs: durationMs.default(5 * 60 * 1000).describe('how long referenced objects a mapping reads (customer groups, stores, channels, states) are cached'),
  versionJumpConfirm: z
    .number()
    .int()
    .min(1)
    .default(10)
    .describe('a version a notification announces or carries more than this far ahead of the last synced one is confirmed with commercetools before anything is sent (commercetools has the last word)'),
});

const vaultKey = z
  .string()
  .refine((text) => Buffer.from(text, 'base64').length === 32 && /^[A-Za-z0-9+/]+={0,2}$/.test(text), 'a vault key is 32 random bytes in base64 (openssl rand -base64 32)');

export const piiSchema = z.strictObject({
  hashKey: z.string().min(16, 'use at least 16 characters').optional().describe('HMAC-SHA256 key of the hash transform and the hash policy; from the environment'),
  vault: z
    .strictObject({
      keys: z.record(z.string().regex(/^[a-z0-9-]{1,32}$/, 'key ids are lowercase letters, digits and -'), vaultKey).refine((keys) => Object.keys(keys).length > 0, 'give at least one key'),
      activeKey: z.string().describe('the key new tokens are encrypted with; `ctbridge tokens rotate` re-encrypts older ones with it'),
    })
    .superRefine((vault, ctx) => {
      if (!Object.hasOwn(vault.keys, vault.activeKey)) ctx.addIssue({ code: 'custom', path: ['activeKey'], message: `"${vault.activeKey}" is not one of the keys (${Object.keys(vault.keys).join(', ')})` });
    })
    .optional()
    .describe('AES-256-GCM keys of the token vault (the tokenize policy); from the environment'),
});

const oneOrMore = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** `when:` blocks of a mapping; `target` is the destination type's own routing settings. */
function whenSchema(target: z.ZodType<Record<string, unknown>>) {
  return z
    .array(
      z.strictObject({
        match: z
          .strictObject(Object.fromEntries(MATCH_KEYS.map((key) => [key, oneOrMore.optional()])) as Record<(typeof MATCH_KEYS)[number], z.ZodOptional<typeof oneOrMore>>)
          .describe('the record\'s context: every key given must match one of its values'),
        fields: z.record(z.string(), fieldSpec).optional().describe('fields added or replacing the mapping\'s own'),
        omit: z.array(z.string().min(1)).optional().describe('fields of the mapping left out'),
        target: target.optional().describe('where matching records go instead (the destination type\'s routing settings)'),
        skip: z.boolean().optional().describe('matching records are not sent to this destination'),
      }),
    )
    .optional()
    .describe('overrides by store, channel, country, currency or locale, applied in order');
}

const recordMappingShape = (target: z.ZodType<Record<string, unknown>>) => ({
  source: z.enum(['customer', 'order', 'payment', 'cart', 'product', 'business-unit']).optional().describe('commercetools resource type; defaults to the record name'),
  fields: fieldMap,
  when: whenSchema(target),
  onDelete: z.enum(['delete', 'ignore']).default('delete'),
  ownership: ownershipSchema,
  sync: syncSchema.optional().describe('this record type\'s own sync mode, replacing the destination\'s'),
});

const eventMappingShape = (target: z.ZodType<Record<string, unknown>>) => ({
  on: z
    .array(
      z
        .string()
        .min(1)
        .refine((type) => !isStorefrontEventType(type) || STOREFRONT_EVENT_TYPES.includes(type), { message: `not a storefront event type; they are ${STOREFRONT_EVENT_TYPES.join(', ')}` }),
    )
    .min(1)
    .describe(`commercetools message types, e.g. OrderCreated, or storefront events: ${STOREFRONT_EVENT_TYPES.join(', ')}`),
  fields: fieldMap,
  when: whenSchema(target),
});

/** A `when:` block may only leave out fields the mapping has. */
// Runs on partially valid input too (see OTHER_PROBLEMS_TOO), so the mapping is read defensively.
function checkOmitted(mapping: { fields: unknown; when?: unknown }, ctx: z.RefinementCtx): void {
  const { fields, when } = mapping;
  if (!isPlainObject(fields) || !Array.isArray(when)) return;
  when.forEach((block: unknown, index) => {
    const omit = isPlainObject(block) && Array.isArray(block.omit) ? (block.omit as unknown[]) : [];
    omit.forEach((name, at) => {
      if (typeof name === 'string' && !Object.hasOwn(fields, name)) {
        ctx.addIssue({ code: 'custom', path: ['when', index, 'omit', at], message: `"${name}" is not a field of this mapping (it has ${Object.keys(fields).join(', ')})` });
      }
    });
  });
}

/** `$orders` is a customer's orders: only customer record mappings can read it. */
function checkOrdersReads(mappings: Record<string, unknown>, block: 'records' | 'events', ctx: z.RefinementCtx): void {
  for (const [name, mapping] of Object.entries(mappings)) {
    if (!isPlainObject(mapping)) continue;
    const source = typeof mapping.source === 'string' ? mapping.source : name;
    if (block === 'records' && source === 'customer') continue;
    for (const { spec, at } of mappingFields(mapping)) {
      let readsOrders: boolean;
      try {
        readsOrders = compileField(spec as never, VALIDATION_SECRETS).readsOrders;
      } catch {
        continue; // reported at the field
      }
      if (readsOrders) ctx.addIssue({ code: 'custom', path: [name, ...at], message: `$orders is a customer's orders: only a record mapping of customers (source: customer) can read it, not ${block === 'events' ? 'an event mapping' : `one of ${source}`}` });
    }
  }
}

/** Every field of a (possibly partly invalid) mapping, with where it is written: fields.x, or when[i].fields.x. */
function mappingFields(mapping: Record<string, unknown>): Array<{ name: string; spec: unknown; at: Array<string | number> }> {
  const when = Array.isArray(mapping.when) ? (mapping.when as unknown[]) : [];
  const fieldMaps: Array<[unknown, Array<string | number>]> = [
    [mapping.fields, ['fields']],
    ...when.map((override, i): [unknown, Array<string | number>] => [isPlainObject(override) ? override.fields : undefined, ['when', i, 'fields']]),
  ];
  return fieldMaps.flatMap(([fields, at]) => (isPlainObject(fields) ? Object.entries(fields).map(([name, spec]) => ({ name, spec, at: [...at, name] })) : []));
}

/** Refinements that also run when other keys of the block are wrong, so that every problem is reported in one go. */
const OTHER_PROBLEMS_TOO = { when: (payload: { value: unknown }) => isPlainObject(payload.value) };

/** The mapping blocks of a destination type whose connector routes by `target` (the generic shape when it has none). */
function destinationCommon(target: z.ZodType<Record<string, unknown>>) {
  return {
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lowercase letters, digits, - and _'),
    pii: piiPolicySchema.default({}),
    payloadLog: payloadLogSchema.optional(),
    records: z
      .record(z.string().regex(/^[^$]/, 'names starting with $ are ctbridge\'s own'), z.strictObject(recordMappingShape(target)).superRefine(checkOmitted, OTHER_PROBLEMS_TOO))
      .superRefine((records, ctx) => checkOrdersReads(records, 'records', ctx), OTHER_PROBLEMS_TOO)
      .default({}),
    events: z
      .record(z.string(), z.strictObject(eventMappingShape(target)).superRefine(checkOmitted, OTHER_PROBLEMS_TOO))
      .superRefine((events, ctx) => checkOrdersReads(events, 'events', ctx), OTHER_PROBLEMS_TOO)
      .default({}),
    inbound: inboundSchema,
    sync: syncSchema.optional(),
    reconcile: reconcileScheduleSchema,
  };
}

/** Keeping each call's request and response bodies for tracing (observability/payload-log.ts). */
export const payloadLogSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    retentionDays: z.number().int().min(1).max(3650).default(14).describe('calls older than this are deleted (hourly)'),
  })
  .describe('keep the request and response bodies of each call, personal values as the PII policy lets them leave (never in clear), secrets and auth headers never: `ctbridge payloads --record ID`');

const NO_TARGET = z.never().describe('this destination type has no routing settings') as unknown as z.ZodType<Record<string, unknown>>;
const domains = z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'a lower-case domain such as gmail.com')).default([]);
export const identitySchema = z.strictObject({
  foldDots: domains.describe('domains whose mailboxes ignore dots in the local part (a.b@gmail.com is ab@gmail.com)'),
  foldPlus: domains.describe('domains whose mailboxes ignore a +tag (ab+shop@gmail.com is ab@gmail.com)'),
});

const retentionDays = z.number().int().min(1).max(36_500);
export const retentionSchema = z.strictObject({
  days: retentionDays.optional().describe('snapshots and dead-letter payloads older than this are purged (every store not listed below); unset: kept'),
  stores: z.record(z.string().min(1), retentionDays).default({}).describe('days per store key (market), e.g. { uk-store: 90 }'),
  auditDays: retentionDays.default(365).describe('audit-log entries older than this are deleted, in every store (default 365)'),
});

/** A browser origin as the Origin header sends it: scheme, host and port only. */
const originSchema = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}, 'an origin as browsers send it: scheme://host[:port], lower-case, no path or trailing slash (e.g. https://www.example.com)');

export const storefrontSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lowercase letters, digits, - and _').describe('the storefront\'s name: event mappings read it as `storefront`, and event ids are unique per storefront'),
  key: z
    .string()
    .min(16, 'at least 16 characters')
    .max(256)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .describe('the publishable key its pages send (X-Storefront-Key header, or ?key=): public, but it identifies the storefront; e.g. ${STOREFRONT_KEY_WEB}'),
  allowedOrigins: z.array(originSchema).min(1).describe('origins whose pages may send events with this key (the Origin header, checked on every request and answered to CORS preflights)'),
  allowMissingOrigin: z.boolean().default(false).describe('accept requests without an Origin header (a server of yours sending events, not a browser)'),
  rateLimit: z
    .strictObject({
      requestsPerSecond: z.number().positive().max(100_000).default(50).describe('requests per second under this key, sustained (per ctbridge process)'),
      burst: z.number().int().min(1).max(1_000_000).default(200).describe('requests above the sustained rate allowed at once'),
    })
    .default({ requestsPerSecond: 50, burst: 200 })
    .describe('beyond it requests are answered 429 with Retry-After'),
});

export const recordMappingSchema = z.strictObject(recordMappingShape(z.record(z.string(), z.unknown())));
export const eventMappingSchema = z.strictObject(eventMappingShape(z.record(z.string(), z.unknown())));


/** What every destination entry has, whatever its type; the rest are the type's connection settings. */
export interface DestinationConfig {
  name: string;
  type: string;
  pii: z.infer<typeof piiPolicySchema>;
  payloadLog?: z.infer<typeof payloadLogSchema> | undefined;
  records: Record<string, z.infer<typeof recordMappingSchema>>;
  events: Record<string, z.infer<typeof eventMappingSchema>>;
  inbound?: InboundConfig | undefined;
  sync?: SyncConfig | undefined;
  reconcile?: ReconcileSchedule | undefined;
  [setting: string]: unknown;
}

export const destinationSchema = z.discriminatedUnion(
  'type',
  destinationDefinitions.map((definition) =>
    z.strictObject({ ...destinationCommon((definition.target as z.ZodType<Record<string, unknown>> | undefined) ?? NO_TARGET), type: z.literal(definition.type), ...definition.settings.shape }),
  ) as unknown as [z.ZodObject, ...z.ZodObject[]],
) as unknown as z.ZodType<DestinationConfig>;

export const configSchema = z
  .strictObject({
    commercetools: commercetoolsSchema,
    server: serverSchema,
    store: z
      .string()
      .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'expected sqlite:PATH or a postgres:// URL')
      .default('sqlite:.ctbridge/ctbridge.db'),
    engine: engineSchema.default(engineSchema.parse({})),
    pii: piiSchema.default({}),
    retention: retentionSchema.default({ stores: {}, auditDays: 365 }),
    identity: identitySchema.default({ foldDots: [], foldPlus: [] }).describe('how guests (orders without a customer) are matched to registered customers by email'),
    destinations: z.preprocess(withDefaultMappings, z.array(destinationSchema)).default([]),
    storefronts: z.array(storefrontSchema).default([]).describe('storefronts that send behaviour events to POST /v1/events/storefront, each with its publishable key'),
    api: apiSchema.default({ clients: [], roles: {} }).describe('clients and roles of the agent-facing APIs (support view, agent actions)'),
    actions: actionsSchema.optional().describe('agent actions on orders (refunds, item cancellations, state changes): off unless configured'),
  })
  .superRefine(
    (config, ctx) => {
      // Runs on partially valid input too (see `when`), so entries are checked defensively.
      const destinations: unknown = config.destinations;
      if (!Array.isArray(destinations)) return;
      const seen = new Set<string>();
      destinations.forEach((destination: unknown, index) => {
        const name = isPlainObject(destination) ? destination.name : undefined;
        if (typeof name !== 'string') return;
        if (seen.has(name)) {
          ctx.addIssue({ code: 'custom', path: ['destinations', index, 'name'], message: `duplicate destination name "${name}"` });
        }
        seen.add(name);
      });
      // Storefronts are told apart by name (event ids) and by key.
      const storefronts: unknown = config.storefronts;
      if (Array.isArray(storefronts)) {
        for (const field of ['name', 'key'] as const) {
          const taken = new Set<string>();
          storefronts.forEach((storefront: unknown, index) => {
            const value = isPlainObject(storefront) ? storefront[field] : undefined;
            if (typeof value !== 'string') return;
            // Never the key itself in the message: the configuration's errors are printed.
            if (taken.has(value)) ctx.addIssue({ code: 'custom', path: ['storefronts', index, field], message: field === 'key' ? 'another storefront has this key' : `duplicate storefront name "${value}"` });
            taken.add(value);
          });
        }
      }
      // Settings that contradict each other, and mapped fields the destination does not have (as far as its
      // definition can tell without calling it).
      destinations.forEach((destination: unknown, index) => {
        if (!isPlainObject(destination) || typeof destination.type !== 'string') return;
        const definition = findDestinationDefinition(destination.type);
        const parsed = definition?.checkFields || definition?.checkSettings ? definition.settings.safeParse(destination) : undefined;
        if (!definition || !parsed?.success) return;
        for (const problem of definition.checkSettings?.(parsed.data) ?? []) ctx.addIssue({ code: 'custom', path: ['destinations', index, ...problem.path], message: problem.message });
        if (!definition.checkFields) return;
        for (const problem of definition.checkFields(parsed.data, mappedFieldNames(destination))) {
          for (const at of fieldLocations(destination, problem.block, problem.mapping, problem.field)) {
            ctx.addIssue({ code: 'custom', path: ['destinations', index, problem.block, problem.mapping, ...at], message: problem.message });
          }
        }
      });
      // Ownership that cannot work (two-way sync: config/ownership.ts).
      destinations.forEach((destination: unknown, index) => {
        if (!isPlainObject(destination)) return;
        const sendsSnapshots = typeof destination.type === 'string' && findDestinationDefinition(destination.type)?.inbound?.snapshot !== undefined;
        for (const problem of ownershipProblems(destination, { sendsSnapshots })) ctx.addIssue({ code: 'custom', path: ['destinations', index, ...problem.path], message: problem.message });
        // The connector says which webhook authentication its destination can send.
        const auth = isPlainObject(destination.inbound) && isPlainObject(destination.inbound.auth) ? destination.inbound.auth.type : undefined;
        const inbound = typeof destination.type === 'string' ? findDestinationDefinition(destination.type)?.inbound : undefined;
        if (typeof auth === 'string' && !inbound) ctx.addIssue({ code: 'custom', path: ['destinations', index, 'inbound'], message: `a ${String(destination.type)} destination sends no webhooks ctbridge reads` });
        else if (typeof auth === 'string' && inbound && !inbound.auth.includes(auth as never)) ctx.addIssue({ code: 'custom', path: ['destinations', index, 'inbound', 'auth', 'type'], message: `a ${String(destination.type)} destination authenticates its webhooks with ${inbound.auth.join(' or ')}` });
        if (isPlainObject(destination.inbound) && destination.inbound.poll !== undefined && !inbound?.polls) ctx.addIssue({ code: 'custom', path: ['destinations', index, 'inbound', 'poll'], message: `ctbridge cannot list the changes of a ${String(destination.type)} destination: it must push them (inbound.auth)` });
      });
      // A policy that hashes or tokenizes needs its key.
      const hashKey = isPlainObject(config.pii) ? config.pii.hashKey : undefined;
      const vault = isPlainObject(config.pii) ? config.pii.vault : undefined;
      destinations.forEach((destination: unknown, index) => {
        const policy = isPlainObject(destination) && isPlainObject(destination.pii) ? destination.pii : {};
        for (const [piiClass, treatment] of Object.entries(policy)) {
          if (treatment === 'hash' && hashKey === undefined) ctx.addIssue({ code: 'custom', path: ['destinations', index, 'pii', piiClass], message: 'hashing needs pii.hashKey (e.g. hashKey: ${CTBRIDGE_HASH_KEY})' });
          if (treatment === 'tokenize' && vault === undefined) ctx.addIssue({ code: 'custom', path: ['destinations', index, 'pii', piiClass], message: 'tokenizing needs pii.vault (keys: { k1: ${CTBRIDGE_VAULT_KEY_1} }, activeKey: k1)' });
        }
      });
      // A field that hashes or tokenizes needs the key to do it with.
      if (hashKey !== undefined && vault !== undefined) return;
      destinations.forEach((destination: unknown, index) => {
        if (!isPlainObject(destination)) return;
        for (const block of ['records', 'events'] as const) {
          const mappings = destination[block];
          if (!isPlainObject(mappings)) continue;
          for (const [mappingName, mapping] of Object.entries(mappings)) {
            if (!isPlainObject(mapping)) continue;
            for (const { spec, at } of mappingFields(mapping)) {
              let uses: readonly string[];
              try {
                uses = compileField(spec as never, VALIDATION_SECRETS).transforms;
              } catch {
                continue; // reported at the field
              }
              if (uses.includes('hash') && hashKey === undefined) {
                ctx.addIssue({ code: 'custom', path: ['destinations', index, block, mappingName, ...at], message: 'the hash transform needs pii.hashKey (e.g. hashKey: ${CTBRIDGE_HASH_KEY})' });
              }
              if (uses.includes('tokenize') && vault === undefined) {
                ctx.addIssue({ code: 'custom', path: ['destinations', index, block, mappingName, ...at], message: 'the tokenize transform needs pii.vault (keys: { k1: ${CTBRIDGE_VAULT_KEY_1} }, activeKey: k1)' });
              }
            }
          }
        }
      });
    },
    // Also when a destination is otherwise invalid, so that every problem is reported in one go.
    { when: (payload) => isPlainObject(payload.value) },
  );

/** The field names of each mapping of a (possibly partly invalid) destination entry, when: blocks included. */
function mappedFieldNames(destination: Record<string, unknown>): MappedFieldNames {
  const mappings = (block: unknown) => Object.entries(isPlainObject(block) ? block : {}).filter((entry): entry is [string, Record<string, unknown>] => isPlainObject(entry[1]));
  const names = (block: unknown): Record<string, string[]> => Object.fromEntries(mappings(block).map(([mapping, spec]) => [mapping, [...new Set(mappingFields(spec).map((field) => field.name))]]));
  return {
    records: names(destination.records),
    events: names(destination.events),
    recordSources: Object.fromEntries(mappings(destination.records).map(([mapping, spec]) => [mapping, typeof spec.source === 'string' ? spec.source : mapping])),
  };
}

/** Where a field is written in a mapping: its own fields, and each when: block that sets it. */
function fieldLocations(destination: Record<string, unknown>, block: 'records' | 'events', mapping: string, field: string): Array<Array<string | number>> {
  const spec = isPlainObject(destination[block]) ? (destination[block])[mapping] : undefined;
  if (!isPlainObject(spec)) return [];
  // A problem with the mapping as a whole (its source) is reported at the mapping.
  if (field === '') return [[]];
  return mappingFields(spec).filter((f) => f.name === field).map((f) => f.at);
}

/**
 * Destinations that map nothing themselves (no `records:`, no `events:`) get their type's default mappings, when it
 * has some and the destination's settings are valid (otherwise the settings' errors are what is reported).
 */
function withDefaultMappings(destinations: unknown): unknown {
  if (!Array.isArray(destinations)) return destinations;
  return destinations.map((destination: unknown) => {
    if (!isPlainObject(destination) || typeof destination.type !== 'string' || destination.records !== undefined || destination.events !== undefined) return destination;
    const definition = findDestinationDefinition(destination.type);
    const settings = definition?.defaultMappings ? definition.settings.safeParse(destination) : undefined;
    if (!definition?.defaultMappings || !settings?.success) return destination;
    return { ...destination, ...definition.defaultMappings(settings.data) };
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export type Config = z.infer<typeof configSchema>;
export type RecordMappingConfig = z.infer<typeof recordMappingSchema>;
export type EventMappingConfig = z.infer<typeof eventMappingSchema>;
export type EngineConfig = z.infer<typeof engineSchema>;
export type IngestAuthConfig = z.infer<typeof ingestAuthSchema>;
export type StorefrontConfig = z.infer<typeof storefrontSchema>;
