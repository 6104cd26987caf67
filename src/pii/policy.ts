// Applies a destination's PII policy to a compiled field: by the field's class (classes.ts), what leaves is the
// value as is, masked, an HMAC-SHA256 of it, a vault token for it (reversible, see vault.ts), or nothing at all.
// Objects and lists (a whole address) are treated leaf by leaf, so no part of them passes untreated.
//
// A field's class says what it is meant to carry, not what it may hold: `custom.fields`, `$string($)` or a
// `$lookup` can produce an e-mail address in a field of no class. So, first, whatever a field produces is looked
// through (inner.ts): e-mail addresses and international phone numbers wherever they are (inside text and JSON
// text, as object keys), and the values under keys that name a class (`firstName` inside a whole customer), are
// treated as the policy says for their class. Only a field that says `pii: none` is left as it is.
import type { CompiledField } from '../mapping/compiled-field.ts';
import { compileTransform, type TransformContext, type TransformFunction, type TransformSecrets } from '../mapping/transforms.ts';
import { classOfField, type PiiClass, type PiiPolicy, type PiiTreatment } from './classes.ts';
import { innerRules, scanningInner } from './inner.ts';

export interface PolicyOutcome {
  /** undefined when the policy drops the field. */
  field: CompiledField | undefined;
  piiClass: PiiClass | undefined;
  treatment: PiiTreatment;
}

export function applyPiiPolicy(
  name: string,
  field: CompiledField,
  explicit: PiiClass | 'none' | undefined,
  policy: PiiPolicy,
  secrets: TransformSecrets,
): PolicyOutcome {
  const piiClass = classOfField(name, field.sourceLeaves, explicit);
  const treatment: PiiTreatment = piiClass === undefined ? 'pass' : (policy[piiClass] ?? 'pass');
  if (treatment === 'drop') return { field: undefined, piiClass, treatment };
  const rules = explicit === 'none' ? undefined : innerRules(policy, secrets, treatment !== 'pass');
  if (rules !== undefined && !field.partsTreated) field = scanningInner(name, field, rules);
  if (treatment === 'pass') return { field, piiClass, treatment };
  if (treatment === 'tokenize') return { field: tokenizing(field), piiClass, treatment };
  const transform: TransformFunction =
    treatment === 'hash' ? compileTransform('hash', secrets) : compileTransform({ mask: { kind: piiClass === 'email' ? 'email' : piiClass === 'phone' ? 'phone' : 'text' } }, secrets);
  const treat = (value: unknown, context: TransformContext) => mapLeaves(value, (leaf) => transform(leaf, context));
  const read = field.async
    ? async (source: unknown, context: TransformContext) => treat(await field.read(source, context), context)
    : (source: unknown, context: TransformContext) => treat(field.read(source, context), context);
  return { field: { ...field, read, transforms: [...field.transforms, treatment] }, piiClass, treatment };
}

/** The field with its value (each leaf of it) replaced by vault tokens: the `tokenize` policy and transform. */
export function tokenizing(field: CompiledField): CompiledField {
  const read = async (source: unknown, context: TransformContext): Promise<unknown> => {
    const vault = context.tokens;
    if (vault === undefined) throw new Error('this field is tokenized, but no token vault is available');
    return mapLeavesAsync(await field.read(source, context), (text) => vault.tokenize(text));
  };
  return { ...field, read, async: true, usesContext: true, transforms: [...field.transforms, 'tokenize'] };
}

function mapLeaves(value: unknown, fn: (leaf: string | number) => unknown): unknown {
  if (typeof value === 'string' || typeof value === 'number') return fn(value);
  if (Array.isArray(value)) return value.map((item) => mapLeaves(item, fn));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapLeaves(item, fn)]));
  return value;
}

async function mapLeavesAsync(value: unknown, fn: (leaf: string) => Promise<string>): Promise<unknown> {
  if (typeof value === 'string' || typeof value === 'number') return value === '' ? value : fn(String(value));
  if (Array.isArray(value)) return Promise.all(value.map((item) => mapLeavesAsync(item, fn)));
  if (value !== null && typeof value === 'object') {
    const entries = await Promise.all(Object.entries(value).map(async ([key, item]) => [key, await mapLeavesAsync(item, fn)] as const));
    return Object.fromEntries(entries);
  }
  return value;
}
