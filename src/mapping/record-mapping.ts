// Turns a commercetools resource (or message) into the flat record a destination receives, from the field
// mapping in the configuration. Compiled once; `apply` is on the hot path of every sync.
import { isPersonalKey } from '../observability/redact.ts';
import { compilePath, readPath, type PathStep } from './path.ts';

export interface CompiledMapping {
  fieldNames: readonly string[];
  /** Fields whose source path passes through personal data (e.g. `addresses[0].firstName`): redacted when stored. */
  personalFields: ReadonlySet<string>;
  apply(source: unknown): Record<string, unknown>;
}

/**
 * Compiles `{ destinationField: 'source.path' }`. Throws an Error whose message starts with the offending field
 * name, so the config loader can report it at its exact location.
 */
export function compileFieldMapping(fields: Readonly<Record<string, string>>): CompiledMapping {
  const compiled: Array<[string, PathStep[]]> = [];
  for (const [name, expression] of Object.entries(fields)) {
    compiled.push([name, compilePath(expression)]);
  }
  const personalFields = new Set(
    compiled.filter(([name, steps]) => isPersonalKey(name) || steps.some((step) => typeof step === 'string' && isPersonalKey(step))).map(([name]) => name),
  );
  return {
    fieldNames: compiled.map(([name]) => name),
    personalFields,
    apply(source) {
      const out: Record<string, unknown> = {};
      for (const [name, steps] of compiled) {
        const value = readPath(source, steps);
        // Absent source values are sent as null so that a field that disappears is cleared at the destination.
        out[name] = value === undefined ? null : value;
      }
      return out;
    },
  };
}
