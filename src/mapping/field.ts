// One mapped field: where its value comes from and what it goes through on the way. In ctbridge.yaml a field is
//   email: email                                        a path (the short form)
//   city: { path: "addresses[?id=defaultShippingAddressId].city" }
//   name: { template: "{{firstName}} {{lastName}}" }     text with paths in {{ }}
//   source: { value: commercetools }                     a literal
//   phone: { first: [mobile, phone, "addresses[0].phone"], pipe: [e164] }   the first non-empty of several
// and any of these may carry `pipe: [transform, { transform: args }]` (transforms.ts). Compiled once; reading a
// field is a walk over compiled steps.
import { z } from 'zod';
import { compilePath, pathNames, readPath } from './path.ts';
import { compilePipeline, type TransformContext, type TransformFunction, type TransformSecrets } from './transforms.ts';

export type FieldSpec = string | { path: string; pipe?: unknown[] } | { template: string; pipe?: unknown[] } | { value: unknown; pipe?: unknown[] } | { first: FieldSpec[]; pipe?: unknown[] };

export interface CompiledField {
  read(source: unknown, context: TransformContext): unknown;
  /** The names of the source fields it reads, for telling whether it carries personal data. */
  sourceNames: readonly string[];
  /** Transforms it uses, by name (the configuration checks their secrets are set). */
  transforms: readonly string[];
}

export class FieldSpecError extends Error {
  override readonly name = 'FieldSpecError';
}

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** Compiles a field; throws FieldSpecError saying what is wrong (a bad path, an unknown transform…). */
export function compileField(spec: FieldSpec, secrets: TransformSecrets = {}): CompiledField {
  if (typeof spec === 'string') return fromPath(spec);
  const { pipe = [] } = spec;
  const base = baseOf(spec, secrets);
  if (pipe.length === 0) return base;
  let pipeline: TransformFunction;
  try {
    pipeline = compilePipeline(pipe, secrets);
  } catch (error) {
    throw new FieldSpecError((error as Error).message);
  }
  return {
    read: (source, context) => pipeline(base.read(source, context), context),
    sourceNames: base.sourceNames,
    transforms: [...base.transforms, ...pipe.map((step) => (typeof step === 'string' ? step : Object.keys(step as object)[0] ?? ''))],
  };
}

function baseOf(spec: Exclude<FieldSpec, string>, secrets: TransformSecrets): CompiledField {
  const kinds = (['path', 'template', 'value', 'first'] as const).filter((kind) => Object.hasOwn(spec, kind));
  if (kinds.length !== 1) throw new FieldSpecError(`a field has exactly one of path, template, value or first (found ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  if ('path' in spec) return fromPath(spec.path);
  if ('template' in spec) return fromTemplate(spec.template);
  if ('first' in spec) return fromFallbacks(spec.first, secrets);
  const literal = spec.value;
  return { read: () => literal, sourceNames: [], transforms: [] };
}

function fromPath(expression: string): CompiledField {
  let steps;
  try {
    steps = compilePath(expression);
  } catch (error) {
    throw new FieldSpecError((error as Error).message);
  }
  return { read: (source) => readPath(source, steps), sourceNames: pathNames(steps), transforms: [] };
}

function fromTemplate(template: string): CompiledField {
  const parts: Array<string | ReturnType<typeof compilePath>> = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, match.index));
    try {
      parts.push(compilePath(match[1]!));
    } catch (error) {
      throw new FieldSpecError(`template placeholder {{${match[1]}}}: ${(error as Error).message}`);
    }
    last = match.index + match[0].length;
  }
  parts.push(template.slice(last));
  const paths = parts.filter((part) => typeof part !== 'string');
  if (paths.length === 0) throw new FieldSpecError('a template needs at least one {{path}} (for fixed text, use value)');
  return {
    read(source) {
      let text = '';
      let filled = false;
      for (const part of parts) {
        if (typeof part === 'string') {
          text += part;
          continue;
        }
        const value = readPath(source, part);
        if (value === null || value === undefined || value === '') continue;
        filled = true;
        text += typeof value === 'string' ? value : JSON.stringify(value);
      }
      // "{{firstName}} {{lastName}}" of someone with no last name is "Anna", and of no one at all, nothing.
      return filled ? text.trim().replace(/\s{2,}/g, ' ') : null;
    },
    sourceNames: paths.flatMap((steps) => pathNames(steps)),
    transforms: [],
  };
}

function fromFallbacks(specs: FieldSpec[], secrets: TransformSecrets): CompiledField {
  if (specs.length === 0) throw new FieldSpecError('first needs at least one source');
  const compiled = specs.map((spec, index) => {
    try {
      return compileField(spec, secrets);
    } catch (error) {
      throw new FieldSpecError(`first[${index}]: ${(error as Error).message}`);
    }
  });
  return {
    read(source, context) {
      for (const field of compiled) {
        const value = field.read(source, context);
        if (value !== null && value !== undefined && value !== '') return value;
      }
      return null;
    },
    sourceNames: compiled.flatMap((field) => field.sourceNames),
    transforms: compiled.flatMap((field) => field.transforms),
  };
}

/**
 * The context transforms see, from the resource itself: its locale, its country (the resource's own, else the
 * shipping or first address's) and its currency (an order's total, a payment's planned amount).
 */
export function recordContext(resource: unknown): TransformContext {
  if (resource === null || typeof resource !== 'object') return {};
  const r = resource as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const field = (value: unknown, key: string) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined);
  const addresses = Array.isArray(r.addresses) ? (r.addresses as unknown[]) : [];
  const defaultShipping = addresses.find((address) => field(address, 'id') !== undefined && field(address, 'id') === r.defaultShippingAddressId);
  return {
    locale: text(r.locale),
    country: text(r.country) ?? text(field(r.shippingAddress, 'country')) ?? text(field(defaultShipping, 'country')) ?? text(field(addresses[0], 'country')),
    currency: text(field(r.totalPrice, 'currencyCode')) ?? text(field(r.amountPlanned, 'currencyCode')),
  };
}

const pipeSchema = z.array(z.union([z.string(), z.record(z.string(), z.unknown())])).optional().describe('transforms, in order: a name, or { name: arguments }');

/** The field spec's shape; what compileField would refuse is reported at the field itself (see config/schema.ts). */
export const fieldSpecSchema: z.ZodType<FieldSpec> = z.lazy(() =>
  z.union([
    z.string().describe('a path into the resource'),
    z.strictObject({ path: z.string(), pipe: pipeSchema }),
    z.strictObject({ template: z.string().describe('text with {{path}} placeholders'), pipe: pipeSchema }),
    z.strictObject({ value: z.unknown().describe('a fixed value'), pipe: pipeSchema }),
    z.strictObject({ first: z.array(fieldSpecSchema).min(1).describe('the first non-empty of these'), pipe: pipeSchema }),
  ]),
);
