// The inverse of a mapped field: how a value the destination holds becomes the value commercetools stores, for
// fields written back (two-way sync). Only what has one: a path (the value as it is), through transforms that can
// be undone — trim, lower, upper, default and e164 (an E.164 number is a valid commercetools phone) as they are,
// country back to its alpha-2 code, money `as: object` back to Money, a one-to-one `map` table read backwards.
// Templates, literals, lists, fallbacks and JSONata expressions have none: `config check` refuses writing them back.
import { FieldSpecError, type FieldSpec } from './field.ts';
import { transforms } from './transforms.ts';

export type Inverse = (value: unknown) => unknown;

/** The inverse of a field, or throws FieldSpecError saying why it has none. */
export function compileInverse(spec: FieldSpec): Inverse {
  if (typeof spec === 'string') {
    if (spec.startsWith('$')) throw new FieldSpecError(`"${spec}" reads the record's context, not the resource: nothing to write back to`);
    return (value) => value;
  }
  if (!('path' in spec)) {
    const form = 'template' in spec ? 'a template' : 'value' in spec ? 'a literal' : 'jsonata' in spec ? 'a JSONata expression' : 'list' in spec ? 'a list' : 'a fallback (first)';
    throw new FieldSpecError(`${form} has no inverse: map the field from a path to write it back`);
  }
  const steps = (spec.pipe ?? []).map((step, index) => inverseStep(step, index));
  return (value) => steps.reduceRight((current, step) => step(current), value);
}

function inverseStep(step: unknown, index: number): Inverse {
  const [name, args] = typeof step === 'string' ? [step, undefined] : (Object.entries(step as Record<string, unknown>)[0] ?? ['', undefined]);
  switch (name) {
    case 'trim':
    case 'lower':
    case 'upper':
    case 'default':
    case 'e164':
      return (value) => value;
    case 'country': {
      const toAlpha2 = transforms.country.create({ as: 'alpha2' }, {});
      return (value) => (typeof value === 'string' ? toAlpha2(value, {}) : value);
    }
    case 'money': {
      if ((args as { as?: string } | undefined)?.as !== 'object') throw new FieldSpecError(`pipe[${index}]: money has an inverse only as: object (the currency must come back with the amount)`);
      return (value) => {
        const money = value as { amount?: unknown; currency?: unknown } | null;
        if (typeof money?.amount !== 'number' || typeof money.currency !== 'string') return value;
        return { type: 'centPrecision', currencyCode: money.currency, centAmount: money.amount, fractionDigits: 2 };
      };
    }
    case 'map': {
      const table = (args as { table: Record<string, unknown> }).table;
      const backwards = new Map<string, string>();
      for (const [from, to] of Object.entries(table)) {
        const key = JSON.stringify(to);
        if (backwards.has(key)) throw new FieldSpecError(`pipe[${index}]: map has no inverse: "${backwards.get(key)}" and "${from}" both become ${key}`);
        backwards.set(key, from);
      }
      return (value) => backwards.get(JSON.stringify(value)) ?? value;
    }
    default:
      throw new FieldSpecError(`pipe[${index}]: ${name} has no inverse: a value it produced cannot be turned back into commercetools' value`);
  }
}
