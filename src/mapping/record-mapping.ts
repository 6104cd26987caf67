// Turns a commercetools resource (or message) into the flat record a destination receives, from the field
// mapping in the configuration (field.ts: paths, templates, literals, fallbacks, transforms). Compiled once;
// `apply` is on the hot path of every sync.
import { isPersonalKey } from '../observability/redact.ts';
import { compileField, recordContext, type CompiledField, type FieldSpec } from './field.ts';
import type { TransformContext, TransformSecrets } from './transforms.ts';

const NO_CONTEXT: TransformContext = {};

export interface MappedFieldInfo {
  name: string;
  /** Its name or a source it reads is personal data. */
  personal: boolean;
  /** The transforms it goes through, in order (e.g. hash, mask). */
  transforms: readonly string[];
}

export interface CompiledMapping {
  fields: readonly MappedFieldInfo[];
  /** Fields whose source passes through personal data (e.g. `addresses[0].firstName`): redacted when stored. */
  personalFields: ReadonlySet<string>;
  apply(source: unknown): Record<string, unknown>;
}

/**
 * Compiles `{ destinationField: spec }`. Throws an Error whose message starts with the offending field name, so
 * the config loader can report it at its exact location.
 */
export function compileFieldMapping(fields: Readonly<Record<string, FieldSpec>>, secrets: TransformSecrets = {}): CompiledMapping {
  const compiled: Array<[string, CompiledField]> = [];
  for (const [name, spec] of Object.entries(fields)) {
    try {
      compiled.push([name, compileField(spec, secrets)]);
    } catch (error) {
      throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
    }
  }
  const personalFields = new Set(compiled.filter(([name, field]) => isPersonalKey(name) || field.sourceNames.some(isPersonalKey)).map(([name]) => name));
  // Only transforms read the record's context (a phone's country, a name's locale): without any, skip working it out.
  const needsContext = compiled.some(([, field]) => field.transforms.length > 0);
  return {
    fields: compiled.map(([name, field]) => ({ name, personal: personalFields.has(name), transforms: field.transforms })),
    personalFields,
    apply(source) {
      const context = needsContext ? recordContext(source) : NO_CONTEXT;
      const out: Record<string, unknown> = {};
      for (const [name, field] of compiled) {
        const value = field.read(source, context);
        // Absent source values are sent as null so that a field that disappears is cleared at the destination.
        out[name] = value === undefined ? null : value;
      }
      return out;
    },
  };
}
