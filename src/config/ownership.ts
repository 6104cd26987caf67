// Two-way sync in ctbridge.yaml: who owns each mapped field (`ownership:` of a record mapping), where a field that
// flows back lands in commercetools (`writeBack:`), and how a destination's webhooks reach ctbridge (`inbound:` of
// a destination). The checks `config check` runs on them (ownership that cannot work, named by location) and the
// least-privilege warnings (scopes the configuration does not use) live here too.
import { z } from 'zod';
import { DURATION_MESSAGE, parseDuration } from './schedule.ts';
import { compileInverse } from '../mapping/inverse.ts';
import { compileField, type FieldSpec } from '../mapping/field.ts';
import type { ConflictRule } from '../engine/field-state.ts';

const side = z.enum(['commercetools', 'destination']);
/** A custom object's container or key (commercetools' CustomObjectDraft). */
export const CUSTOM_OBJECT_NAME = /^[-_~.a-zA-Z0-9]+$/;

/** Where a written-back field lands in commercetools. */
export const writeBackSchema = z.union([
  z.strictObject({
    customField: z.string().regex(/^[A-Za-z0-9_-]{2,36}$/, 'a custom field name: 2-36 letters, digits, _ or -').describe('a custom field of the customer or order'),
    type: z.string().regex(/^[A-Za-z0-9_-]{2,256}$/, 'a Type key').describe('the key of the custom Type that has the field (ctbridge setup creates it)'),
    fieldType: z.enum(['String', 'Number', 'Boolean']).default('String').describe('the field\'s type in that Type'),
  }),
  z.strictObject({ standard: z.string().min(1).describe('a field commercetools lets an update action set, e.g. customerGroup (by key)') }),
  z.strictObject({
    customObject: z
      .strictObject({
        // commercetools' CustomObjectDraft: container and key match ^[-_~.a-zA-Z0-9]+$ (spec/commercetools).
        container: z.string().regex(CUSTOM_OBJECT_NAME, 'a custom object container: letters, digits, - _ ~ or .').max(256),
        key: z.string().min(1).describe('a template of the record\'s resource giving the object\'s key, e.g. "{{id}}" (the customer id)'),
        path: z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a dotted path into the object\'s value, e.g. stage or monday.stage').describe('where in the object\'s value the field lands'),
      })
      .describe('a custom object, created or updated (its other values kept)'),
  }),
]);
export type WriteBack = z.infer<typeof writeBackSchema>;

const conflictSchema = z
  .union([
    z.literal('lastWriteWins'),
    z.strictObject({ sourceOfTruth: side }),
    z.strictObject({ lastWriteWins: z.literal(true), sourceOfTruth: side.default('commercetools').describe('who wins a tie') }),
  ])
  .transform((value): ConflictRule => (value === 'lastWriteWins' ? { rule: 'lastWriteWins', sourceOfTruth: 'commercetools' } : 'lastWriteWins' in value ? { rule: 'lastWriteWins', sourceOfTruth: value.sourceOfTruth } : { rule: 'sourceOfTruth', sourceOfTruth: value.sourceOfTruth }));

export const fieldOwnershipSchema = z.strictObject({
  owner: z.enum(['commercetools', 'destination', 'shared']).describe('commercetools: always written from commercetools; destination: written at most on create, never overwritten; shared: both write, conflict decides'),
  conflict: conflictSchema.optional().describe('shared fields: { sourceOfTruth: commercetools|destination } or lastWriteWins (ties to sourceOfTruth, default commercetools)'),
  writeBack: writeBackSchema.optional().describe('where the destination\'s value lands in commercetools'),
});
export type FieldOwnership = z.infer<typeof fieldOwnershipSchema>;

export const ownershipSchema = z.record(z.string(), fieldOwnershipSchema).optional().describe('per mapped field: who owns it (default commercetools)');

export const inboundAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('monday'),
    signingSecret: z.string().min(16).describe('the monday app\'s Signing Secret: webhooks carry Authorization: <JWT> signed with it (HS256)'),
    audience: z.url().optional().describe('the URL monday calls (the JWT\'s aud); checked when set'),
  }),
  z.strictObject({
    type: z.literal('hmac'),
    secret: z.string().min(16, 'HMAC secret must be at least 16 characters'),
    header: z.string().min(1).default('X-Signature'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    prefix: z.string().default('sha256='),
  }),
  z.strictObject({
    type: z.literal('momentis'),
    secret: z.string().min(16, 'the webhook signing secret must be at least 16 characters'),
    header: z.string().min(1).default('Momentis-Signature'),
    toleranceSeconds: z.number().int().min(1).max(3600).default(300).describe('a signature older (or further in the future) than this is refused'),
  }),
  z.strictObject({
    type: z.literal('sharedSecret'),
    secret: z.string().min(16, 'the shared secret must be at least 16 characters'),
    header: z.string().min(1).default('X-Ctbridge-Secret'),
  }),
]);
export type InboundAuth = z.infer<typeof inboundAuthSchema>;

/** How often to poll: a duration ("30s", "2m", "1h": config/schedule.ts) or milliseconds. */
const pollSchema = z
  .union([z.number().int(), z.string()])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? value : parseDuration(value);
    if (ms === undefined) ctx.addIssue({ code: 'custom', message: DURATION_MESSAGE });
    return ms ?? z.NEVER;
  })
  .refine((ms) => ms >= 100, 'poll at most every 100 ms');

export const inboundSchema = z
  .strictObject({
    auth: inboundAuthSchema.optional().describe('how the destination\'s webhooks authenticate (without it, webhooks are refused)'),
    poll: pollSchema.optional().describe('for a destination that cannot push: how often its changes are listed (e.g. 2m), where its API can list them'),
    maxAttempts: z.number().int().min(1).default(8).describe('a change that keeps failing becomes a dead letter after this many attempts'),
  })
  .optional()
  .describe('how the destination\'s changes reach ctbridge, for the fields it owns or shares: its webhooks at POST /v1/inbound/<name>, or polling');
export type InboundConfig = NonNullable<z.infer<typeof inboundSchema>>;

/** Standard fields an update action can set from one value, per resource type. */
export const WRITABLE_STANDARD: Record<string, Record<string, string>> = {
  customer: { customerGroup: 'setCustomerGroup', firstName: 'setFirstName', lastName: 'setLastName', companyName: 'setCompanyName', locale: 'setLocale', externalId: 'setExternalId' },
  order: { orderState: 'changeOrderState', shipmentState: 'changeShipmentState', paymentState: 'changePaymentState' },
};
/** Resource types whose custom fields ctbridge writes back. */
export const CUSTOM_FIELD_TYPES = new Set(['customer', 'order']);

export interface Problem {
  path: Array<string | number>;
  message: string;
}

/** Ownership that cannot work, per destination entry (read defensively: the entry may be partly invalid). */
export function ownershipProblems(destination: Record<string, unknown>, options: { sendsSnapshots?: boolean } = {}): Problem[] {
  const problems: Problem[] = [];
  const records = isPlainObject(destination.records) ? destination.records : {};
  let writesBack = false;
  for (const [name, mapping] of Object.entries(records)) {
    if (!isPlainObject(mapping) || !isPlainObject(mapping.ownership)) continue;
    const source = typeof mapping.source === 'string' ? mapping.source : name;
    const fields = isPlainObject(mapping.fields) ? mapping.fields : {};
    for (const [field, raw] of Object.entries(mapping.ownership)) {
      if (!isPlainObject(raw)) continue;
      const at = ['records', name, 'ownership', field];
      if (!Object.hasOwn(fields, field)) {
        problems.push({ path: at, message: `"${field}" is not a mapped field of ${name} (it maps ${Object.keys(fields).join(', ')})` });
        continue;
      }
      if (raw.owner === 'shared' && raw.conflict === undefined) problems.push({ path: [...at, 'conflict'], message: 'a shared field needs a conflict rule: { sourceOfTruth: commercetools|destination } or lastWriteWins' });
      if (raw.owner !== 'shared' && raw.conflict !== undefined) problems.push({ path: [...at, 'conflict'], message: 'only a shared field has a conflict rule' });
      if (raw.owner === 'shared' && raw.writeBack === undefined) problems.push({ path: [...at, 'writeBack'], message: 'a shared field flows back: name where it lands in commercetools (writeBack: { customField, type }, { standard } or { customObject })' });
      if (raw.owner === 'commercetools' && raw.writeBack !== undefined) problems.push({ path: [...at, 'writeBack'], message: 'a commercetools-owned field is never written back' });
      if (!isPlainObject(raw.writeBack)) continue;
      writesBack = true;
      const writeBack = raw.writeBack;
      if (typeof writeBack.customField === 'string' && !CUSTOM_FIELD_TYPES.has(source)) {
        problems.push({ path: [...at, 'writeBack', 'customField'], message: `${source} custom fields are not written back (customers' and orders' are)` });
      }
      if (typeof writeBack.standard === 'string' && !Object.hasOwn(WRITABLE_STANDARD[source] ?? {}, writeBack.standard)) {
        problems.push({ path: [...at, 'writeBack', 'standard'], message: `"${writeBack.standard}" of a ${source} is not writable by ctbridge (writable: ${Object.keys(WRITABLE_STANDARD[source] ?? {}).join(', ') || 'none'})` });
      }
      if (isPlainObject(writeBack.customObject)) problems.push(...customObjectProblems(writeBack.customObject, source, fields[field], at));
      try {
        compileInverse(fields[field] as FieldSpec);
      } catch (error) {
        problems.push({ path: ['records', name, 'fields', field], message: `written back (ownership.${field}), so it needs an inverse: ${(error as Error).message}` });
      }
    }
  }
  if (isPlainObject(destination.inbound) && destination.inbound.auth === undefined && destination.inbound.poll === undefined) problems.push({ path: ['inbound'], message: 'inbound needs auth (the destination pushes webhooks) or poll (ctbridge lists its changes)' });
  // A destination sending snapshots of its own fields (Momentis) writes them without any mapped field.
  if (isPlainObject(destination.inbound) && !writesBack && options.sendsSnapshots !== true) problems.push({ path: ['inbound'], message: 'inbound webhooks need a field written back: give one a writeBack in ownership' });
  if (writesBack && !isPlainObject(destination.inbound)) problems.push({ path: ['inbound'], message: 'fields are written back: configure inbound (auth or poll) so the destination\'s changes can reach ctbridge' });
  return problems;
}

/**
 * A custom object target that cannot work: a key template that does not compile, a record whose resource the
 * engine cannot read for the key, or a field mapped from another custom object than the one written (record sync
 * would then compare what the destination holds with another value, and send it back for ever).
 */
function customObjectProblems(target: Record<string, unknown>, source: string, spec: unknown, at: Array<string | number>): Problem[] {
  const problems: Problem[] = [];
  const where = [...at, 'writeBack', 'customObject'];
  if (!CUSTOM_FIELD_TYPES.has(source)) problems.push({ path: where, message: `the key of a custom object comes from the record's ${source}, which ctbridge does not read for write-back (customers and orders)` });
  if (typeof target.key === 'string') {
    try {
      compileField({ template: target.key });
    } catch (error) {
      problems.push({ path: [...where, 'key'], message: (error as Error).message });
    }
  }
  const path = typeof spec === 'string' ? spec : isPlainObject(spec) && typeof spec.path === 'string' ? spec.path : undefined;
  if (path?.startsWith('customObjects.') && typeof target.container === 'string' && typeof target.path === 'string') {
    const [, container, , ...rest] = path.split('.');
    if (container !== target.container || rest.join('.') !== `obj.value.${target.path}`) {
      problems.push({ path: where, message: `the field reads ${path}, but is written to ${target.container} at value.${target.path}: read it from customObjects.${target.container}.<key field>.obj.value.${target.path}` });
    }
  }
  return problems;
}

/** The commercetools resource types the configuration writes back to. */
export function writeBackTypes(destinations: readonly Record<string, unknown>[]): Set<string> {
  const types = new Set<string>();
  for (const destination of destinations) {
    const records = isPlainObject(destination.records) ? destination.records : {};
    for (const [name, mapping] of Object.entries(records)) {
      if (!isPlainObject(mapping) || !isPlainObject(mapping.ownership)) continue;
      for (const owned of Object.values(mapping.ownership)) {
        if (!isPlainObject(owned) || owned.writeBack === undefined) continue;
        types.add(isPlainObject(owned.writeBack) && 'customObject' in owned.writeBack ? 'key-value-document' : typeof mapping.source === 'string' ? mapping.source : name);
      }
    }
  }
  return types;
}

const MANAGE_SCOPE: Record<string, string> = { customer: 'manage_customers', order: 'manage_orders', 'key-value-document': 'manage_key_value_documents' };

/**
 * Least privilege: a write scope the configuration never uses, a project-wide scope, or a write-back without
 * its scope. Warnings, not errors (the client may need a scope for something outside ctbridge's view).
 */
export function scopeWarnings(scopes: readonly string[], destinations: readonly Record<string, unknown>[]): string[] {
  if (scopes.length === 0) return [];
  const names = scopes.map((scope) => scope.split(':')[0]!);
  const types = writeBackTypes(destinations);
  const used = new Set([...types].map((type) => MANAGE_SCOPE[type]).filter((s): s is string => s !== undefined));
  const warnings: string[] = [];
  for (const name of names) {
    if (name === 'manage_project') warnings.push('commercetools.scopes: manage_project grants every write; ctbridge needs view_* scopes' + (used.size > 0 ? ` and ${[...used].join(', ')} for write-back` : ''));
    else if (name.startsWith('manage_') && !used.has(name)) warnings.push(`commercetools.scopes: ${name} is not used (no write-back to ${name.slice('manage_'.length)} is configured); drop it`);
  }
  for (const scope of used) if (!names.includes(scope) && !names.includes('manage_project')) warnings.push(`commercetools.scopes: write-back needs ${scope}, which the scopes lack`);
  return warnings;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
