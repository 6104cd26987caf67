// Turns a commercetools resource (or message) into the flat record a destination receives, from the mapping in
// the configuration: its fields (field.ts: paths, templates, literals, JSONata, fallbacks, transforms) and its
// `when:` blocks, which by store, channel, country, currency or locale change fields, leave records out, or route
// them to another target of the same destination (another board, collection or URL). Compiled once; `apply` is on
// the hot path of every sync.
import { isPersonalKey } from '../observability/redact.ts';
import type { PiiClass, PiiPolicy, PiiTreatment } from '../pii/classes.ts';
import { applyPiiPolicy } from '../pii/policy.ts';
import { compileField, explicitClass, recordContext, type CompiledField, type FieldSpec } from './field.ts';
import type { PathStep } from './path.ts';
import type { Tokenizer, TransformContext, TransformSecrets } from './transforms.ts';

/** The context keys a `when:` block can match on. */
export const MATCH_KEYS = ['store', 'channel', 'country', 'currency', 'locale'] as const;
export type MatchKey = (typeof MATCH_KEYS)[number];

export interface WhenBlock {
  /** Every key given must match (a value, or one of a list); an empty match matches everything. */
  match: Partial<Record<MatchKey, string | string[]>>;
  /** Fields added or replacing the base mapping's. */
  fields?: Record<string, FieldSpec> | undefined;
  /** Base fields left out. */
  omit?: string[] | undefined;
  /** The connector's own routing settings (e.g. another board); the last matching block's wins. */
  target?: Record<string, unknown> | undefined;
  /** Matching records are not sent to this destination at all. */
  skip?: boolean | undefined;
}

export interface MappingSpec {
  fields: Readonly<Record<string, FieldSpec>>;
  when?: readonly WhenBlock[] | undefined;
}

export interface MappingOptions {
  secrets?: TransformSecrets | undefined;
  /** The commercetools project key, part of every record's context ($projectKey). */
  projectKey?: string | undefined;
  /** The destination's PII policy: what it receives of each class of personal data. */
  policy?: PiiPolicy | undefined;
}

export interface ApplyOptions {
  /** Replaces parts of the record's context (the preview's --store). */
  context?: Partial<TransformContext> | undefined;
  /** The token vault, for fields the policy tokenizes. */
  tokens?: Tokenizer | undefined;
  /** The customer's orders, oldest first, for a mapping that reads `$orders` (none given: an empty list). */
  orders?: readonly unknown[] | undefined;
}

export interface MappedFieldInfo {
  name: string;
  /** Its name or a source it reads is personal data. */
  personal: boolean;
  /** The transforms it goes through, in order (e.g. hash, mask), the PII policy's last. */
  transforms: readonly string[];
  /** Where it is defined: `fields`, or `when[i]` for an override. */
  definedIn: string;
  /** The class of personal data it carries, if any, and what the PII policy does with it. */
  piiClass: PiiClass | undefined;
  treatment: PiiTreatment;
}

export type Mapped =
  | { skip: false; payload: Record<string, unknown>; target: Record<string, unknown> | undefined }
  /** A `when:` block leaves this record out of the destination. */
  | { skip: true };

export interface CompiledMapping {
  fields: readonly MappedFieldInfo[];
  /** Fields that carry personal data (e.g. from `addresses[0].firstName`): digested in snapshots, redacted in dead letters. */
  personalFields: ReadonlySet<string>;
  /** Paths of the References whose expanded object (`.obj`) a field reads: expand these before `apply`. */
  references: readonly (readonly PathStep[])[];
  /** The same on `$subject` (event mappings): expand these on the subject before `apply`. */
  subjectReferences: readonly (readonly PathStep[])[];
  /** The `.obj` reads no expansion serves (`$c.obj` in JSONata), by field (`when[0].fields.x` for an override). */
  unexpandedReferences: ReadonlyArray<{ field: string; reads: string }>;
  /** A field reads `$orders`: fetch the customer's orders and pass them to `apply`. */
  readsOrders: boolean;
  /** Rejects with a MappingError when a field cannot be computed (a JSONata expression failing on this input). */
  apply(source: unknown, options?: ApplyOptions): Promise<Mapped>;
}

/** A field could not be computed for this input: permanent for this version of the resource. */
export class MappingError extends Error {
  override readonly name = 'MappingError';
}

interface CompiledBlock {
  matchers: Array<[MatchKey, ReadonlySet<string>]>;
  fields: Array<[string, CompiledField]>;
  omit: ReadonlySet<string>;
  target: Record<string, unknown> | undefined;
  skip: boolean;
}

type FieldList = ReadonlyArray<readonly [string, CompiledField]>;

/**
 * Compiles a mapping. Throws an Error whose message starts with where the offending field is (`email: …`,
 * `when[1].fields.email: …`), so the config loader can report it at its exact location.
 */
export function compileMapping(spec: MappingSpec, options: MappingOptions = {}): CompiledMapping {
  const secrets = options.secrets ?? {};
  const policy = options.policy ?? {};
  const info: MappedFieldInfo[] = [];
  const personalFields = new Set<string>();
  const unexpandedReferences: Array<{ field: string; reads: string }> = [];
  const compileAll = (fields: Readonly<Record<string, FieldSpec>>, prefix: string, definedIn: string): Array<[string, CompiledField]> => {
    const out: Array<[string, CompiledField]> = [];
    for (const [name, raw] of compileFields(fields, secrets, policy, prefix)) {
      const { field, piiClass, treatment } = applyPiiPolicy(name, raw, explicitClass(fields[name]!), policy, secrets);
      // Its class (from its name or the names its paths end in), or a name that redaction treats as personal.
      const personal = piiClass !== undefined || isPersonalKey(name);
      if (personal) personalFields.add(name);
      info.push({ name, personal, transforms: field?.transforms ?? raw.transforms, definedIn, piiClass, treatment });
      // A field the policy drops never leaves: it is not computed at all.
      if (field === undefined) continue;
      out.push([name, field]);
      for (const reads of field.unexpandedReferences) unexpandedReferences.push({ field: `${prefix === '' ? 'fields.' : prefix}${name}`, reads });
    }
    return out;
  };
  const base = compileAll(spec.fields, '', 'fields');
  const blocks: CompiledBlock[] = (spec.when ?? []).map((block, index) => ({
    matchers: MATCH_KEYS.filter((key) => block.match[key] !== undefined).map((key) => [key, new Set([block.match[key]!].flat())] as [MatchKey, ReadonlySet<string>]),
    fields: compileAll(block.fields ?? {}, `when[${index}].fields.`, `when[${index}]`),
    omit: new Set(block.omit ?? []),
    target: block.target,
    skip: block.skip ?? false,
  }));

  const all = [base, ...blocks.map((block) => block.fields)].flat();
  const references = uniquePaths(all.flatMap(([, field]) => field.references));
  const subjectReferences = uniquePaths(all.flatMap(([, field]) => field.subjectReferences));
  const readsOrders = all.some(([, field]) => field.readsOrders);
  const needsContext = blocks.length > 0 || all.some(([, field]) => field.usesContext);
  const projectKey = options.projectKey;
  const noContext: TransformContext = { projectKey };

  // The field list of each combination of matching blocks, worked out once per combination seen.
  const plans = new Map<string, { fields: FieldList; target: Record<string, unknown> | undefined; skip: boolean; async: boolean }>();
  const planFor = (context: TransformContext) => {
    let key = '';
    for (let i = 0; i < blocks.length; i += 1) if (matches(blocks[i]!, context)) key += `${i},`;
    let plan = plans.get(key);
    if (plan === undefined) {
      const chosen = key === '' ? [] : key.slice(0, -1).split(',').map((i) => blocks[Number(i)]!);
      const fields = new Map<string, CompiledField>(base);
      for (const block of chosen) {
        for (const name of block.omit) fields.delete(name);
        for (const [name, field] of block.fields) fields.set(name, field);
      }
      const list = [...fields];
      plan = {
        fields: list,
        target: chosen.reduce<Record<string, unknown> | undefined>((target, block) => block.target ?? target, undefined),
        skip: chosen.some((block) => block.skip),
        async: list.some(([, field]) => field.async),
      };
      plans.set(key, plan);
    }
    return plan;
  };
  const plain = planFor({});

  return {
    fields: info,
    personalFields,
    references,
    subjectReferences,
    unexpandedReferences,
    readsOrders,
    async apply(source, applyOptions) {
      const overrides = applyOptions?.context;
      const derived = needsContext || overrides ? recordContext(source, projectKey) : noContext;
      const context = overrides || applyOptions?.tokens || readsOrders ? { ...derived, ...overrides, tokens: applyOptions?.tokens, orders: readsOrders ? (applyOptions?.orders ?? []) : undefined } : derived;
      const plan = blocks.length === 0 ? plain : planFor(context);
      if (plan.skip) return { skip: true };
      const payload: Record<string, unknown> = {};
      let current = '';
      try {
        for (const [name, field] of plan.fields) {
          current = name;
          const value = plan.async && field.async ? await field.read(source, context) : field.read(source, context);
          // Absent source values are sent as null so that a field that disappears is cleared at the destination.
          payload[name] = value === undefined ? null : value;
        }
      } catch (error) {
        throw new MappingError(`field "${current}": ${(error as Error).message}`, { cause: error });
      }
      return { skip: false, payload, target: plan.target };
    },
  };
}

function compileFields(fields: Readonly<Record<string, FieldSpec>>, secrets: TransformSecrets, policy: PiiPolicy, prefix: string): Array<[string, CompiledField]> {
  return Object.entries(fields).map(([name, spec]) => {
    try {
      return [name, compileField(spec, secrets, policy)];
    } catch (error) {
      throw new Error(`${prefix}${name}: ${(error as Error).message}`, { cause: error });
    }
  });
}

function matches(block: CompiledBlock, context: TransformContext): boolean {
  for (const [key, values] of block.matchers) {
    const value = context[key];
    if (value === undefined || !values.has(value)) return false;
  }
  return true;
}

function uniquePaths(paths: ReadonlyArray<readonly PathStep[]>): PathStep[][] {
  const seen = new Map<string, PathStep[]>();
  for (const path of paths) seen.set(JSON.stringify(path), [...path]);
  return [...seen.values()];
}
