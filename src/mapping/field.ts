// One mapped field: where its value comes from and what it goes through on the way. In ctbridge.yaml a field is
//   email: email                                        a path (the short form)
//   city: { path: "addresses[?id=defaultShippingAddressId].city" }
//   name: { template: "{{firstName}} {{lastName}}" }     text with paths in {{ }}
//   source: { value: commercetools }                     a literal
//   phone: { first: [mobile, phone, "addresses[0].phone"], pipe: [e164] }   the first non-empty of several
//   quantity: { path: "lineItems[*].quantity", pipe: [sum] }   [*] reads every element of a list
//   lines: { list: lineItems, fields: { sku: variant.sku, qty: quantity } }   a list of objects, one per element
//   items: { jsonata: "$sum(lineItems.quantity)" }       a JSONata expression, for what the others cannot say
//   market: $store                                       the record's context (see MAPPING_CONTEXT)
//   orders: { path: "$orders[*]", pipe: [count] }        a customer's orders, oldest first (customer mappings)
//   total: $subject.totalPrice.centAmount                the order or cart an event's message is about (event mappings)
// and any of these may carry `pipe: [transform, { transform: args }]` (transforms.ts). Compiled once; reading a
// field is a walk over compiled steps. Only JSONata is asynchronous (its evaluate returns a promise), so a field
// reads synchronously unless it, or a fallback in it, is a JSONata expression.
import { createRequire } from 'node:module';
import type jsonataModule from 'jsonata';
import { z } from 'zod';
import type { CompiledField } from './compiled-field.ts';
import { jsonataReferences } from './jsonata-references.ts';
import { compilePath, EACH, pathNames, readPath, type PathStep } from './path.ts';
import { CUSTOM_OBJECTS_STEP } from './references.ts';
import { compilePipeline, type TransformContext, type TransformFunction, type TransformSecrets } from './transforms.ts';
import { PII_CLASSES, type PiiClass, type PiiPolicy } from '../pii/classes.ts';
import { applyPiiPolicy, tokenizing } from '../pii/policy.ts';
import { carriedByMessage } from '../ingest/message.ts';

export type { CompiledField } from './compiled-field.ts';

/** Every object form may say `pii:` which class of personal data it carries (`none`: it is not personal). */
interface Common {
  pipe?: unknown[];
  pii?: PiiClass | 'none';
}

export type FieldSpec =
  | string
  | ({ path: string } & Common)
  | ({ template: string } & Common)
  | ({ value: unknown } & Common)
  | ({ jsonata: string } & Common)
  | ({ list: string; fields: Record<string, FieldSpec> } & Common)
  | ({ first: FieldSpec[] } & Common);

/**
 * Names a path may start with to read the record's context instead of the resource: `$store`, `$locale`…, and
 * `$orders`, a customer's orders (read from commercetools for the mappings that use it).
 */
export const MAPPING_CONTEXT = ['locale', 'country', 'currency', 'store', 'channel', 'projectKey', 'orders', 'subject'] as const satisfies ReadonlyArray<keyof TransformContext>;

export class FieldSpecError extends Error {
  override readonly name = 'FieldSpecError';
}

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/**
 * Compiles a field; throws FieldSpecError saying what is wrong (a bad path, an unknown transform…). The PII
 * policy is applied by whoever names the field (the mapping, a list to its elements' fields).
 */
export function compileField(spec: FieldSpec, secrets: TransformSecrets = {}, policy: PiiPolicy = {}): CompiledField {
  if (typeof spec === 'string') return fromPath(spec);
  const { pipe: steps = [] } = spec;
  // tokenize stores the value in the vault (asynchronous, see pii/vault.ts): only as the last step.
  const tokenizeAt = steps.findIndex((step) => step === 'tokenize');
  if (tokenizeAt !== -1 && tokenizeAt !== steps.length - 1) throw new FieldSpecError(`pipe[${tokenizeAt}]: tokenize must be the last step (a token cannot be transformed further)`);
  if (tokenizeAt !== -1) return tokenizing(compileField({ ...spec, pipe: steps.slice(0, -1) }, secrets, policy));
  const pipe = steps;
  const base = baseOf(spec, secrets, policy);
  if (pipe.length === 0) return base;
  let pipeline: TransformFunction;
  try {
    pipeline = compilePipeline(pipe, secrets);
  } catch (error) {
    throw new FieldSpecError((error as Error).message);
  }
  // Every compiled field is built with the same properties in the same order, so reading one stays monomorphic.
  return {
    read: base.async
      ? async (source, context) => pipeline(await base.read(source, context), context)
      : (source, context) => pipeline(base.read(source, context), context),
    async: base.async,
    usesContext: true,
    references: base.references,
    subjectReferences: base.subjectReferences,
    unexpandedReferences: base.unexpandedReferences,
    readsOrders: base.readsOrders,
    sourceNames: base.sourceNames,
    sourceLeaves: base.sourceLeaves,
    transforms: [...base.transforms, ...pipe.map((step) => (typeof step === 'string' ? step : Object.keys(step as object)[0] ?? ''))],
  };
}

function baseOf(spec: Exclude<FieldSpec, string>, secrets: TransformSecrets, policy: PiiPolicy): CompiledField {
  const kinds = (['path', 'template', 'value', 'jsonata', 'list', 'first'] as const).filter((kind) => Object.hasOwn(spec, kind));
  if (kinds.length !== 1) throw new FieldSpecError(`a field has exactly one of path, template, value, jsonata, list or first (found ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  if ('list' in spec) return fromList(spec.list, spec.fields, secrets, policy);
  if ('path' in spec) return fromPath(spec.path);
  if ('template' in spec) return fromTemplate(spec.template);
  if ('first' in spec) return fromFallbacks(spec.first, secrets);
  if ('jsonata' in spec) return fromJsonata(spec.jsonata);
  const literal = spec.value;
  return { read: () => literal, async: false, usesContext: false, references: [], subjectReferences: [], unexpandedReferences: [], readsOrders: false, sourceNames: [], sourceLeaves: [], transforms: [] };
}

/** A compiled path, reading the resource, or the context when it starts with `$name`. */
interface Reader {
  steps: PathStep[];
  fromContext: keyof TransformContext | undefined;
  /** The path as written. */
  written: string;
}

function compileReader(expression: string): Reader {
  const steps = compilePath(expression);
  const head = steps[0];
  if (typeof head !== 'string' || !head.startsWith('$')) return { steps, fromContext: undefined, written: expression };
  const name = head.slice(1) as keyof TransformContext;
  if (!(MAPPING_CONTEXT as readonly string[]).includes(name)) {
    throw new FieldSpecError(`"${head}" is not part of the record's context (it has ${MAPPING_CONTEXT.map((n) => `$${n}`).join(', ')})`);
  }
  return { steps: steps.slice(1), fromContext: name, written: expression };
}

/** It reads commercetools data (the resource, the customer's orders, the event's subject), which may be personal. */
const readsData = (reader: Reader): boolean => reader.fromContext === undefined || reader.fromContext === 'orders' || reader.fromContext === 'subject';

function readWith(reader: Reader, source: unknown, context: TransformContext): unknown {
  return reader.fromContext === undefined ? readPath(source, reader.steps) : readPath(context[reader.fromContext], reader.steps);
}

function fromPath(expression: string): CompiledField {
  let reader: Reader;
  try {
    reader = compileReader(expression);
  } catch (error) {
    throw new FieldSpecError((error as Error).message);
  }
  const { steps } = reader;
  const { references, subjectReferences, unexpandedReferences } = referencesIn([reader]);
  return {
    read: reader.fromContext === undefined ? (source) => readPath(source, steps) : (source, context) => readWith(reader, source, context),
    async: false,
    usesContext: reader.fromContext !== undefined,
    references,
    subjectReferences,
    unexpandedReferences,
    readsOrders: reader.fromContext === 'orders',
    sourceNames: readsData(reader) ? pathNames(steps) : [],
    sourceLeaves: leavesOf([reader]),
    transforms: [],
  };
}

// JSONata is loaded the first time a mapping uses it, not in every thread that reads the configuration.
const requireModule = createRequire(import.meta.url);
let jsonataLibrary: typeof jsonataModule | undefined;

function fromJsonata(text: string): CompiledField {
  let expression: jsonataModule.Expression;
  try {
    jsonataLibrary ??= requireModule('jsonata') as typeof jsonataModule;
    expression = jsonataLibrary(text);
  } catch (error) {
    const { message, position } = error as { message: string; position?: number };
    throw new FieldSpecError(`JSONata syntax error${position === undefined ? '' : ` at character ${position}`}: ${message}`);
  }
  const references = jsonataReferences(expression.ast());
  return {
    async read(source, context) {
      // The context is bound as variables: $locale, $store, $projectKey…
      const value: unknown = await expression.evaluate(source, context);
      // JSONata marks the arrays it builds (`sequence`); a plain copy compares equal to the stored snapshot.
      return value !== null && typeof value === 'object' ? (JSON.parse(JSON.stringify(value)) as unknown) : value;
    },
    async: true,
    usesContext: true,
    references: references.resource,
    subjectReferences: references.subject,
    unexpandedReferences: references.unexpanded,
    readsOrders: jsonataReadsOrders(expression.ast()),
    sourceNames: jsonataNames(expression.ast()),
    // Which name ends a path is not worked out for JSONata: every name it mentions counts.
    sourceLeaves: jsonataNames(expression.ast()),
    transforms: [],
  };
}

/** The class a field says it carries (`pii:`), if it says. */
export function explicitClass(spec: FieldSpec): PiiClass | 'none' | undefined {
  return typeof spec === 'string' ? undefined : spec.pii;
}

/** One object per element of the list at `path`, each mapped by `fields` with the element as its source. */
function fromList(path: string, fields: Record<string, FieldSpec>, secrets: TransformSecrets, policy: PiiPolicy): CompiledField {
  const list = fromPath(path);
  const { steps: listSteps, fromContext: listFrom } = compileReader(path);
  const entries = Object.entries(fields ?? {});
  if (entries.length === 0) throw new FieldSpecError('a list needs fields: { name: path-in-each-element, … }');
  const compiled = entries.flatMap(([name, spec]): Array<[string, CompiledField]> => {
    let field: CompiledField | undefined;
    try {
      field = applyPiiPolicy(name, compileField(spec, secrets, policy), explicitClass(spec), policy, secrets).field;
    } catch (error) {
      throw new FieldSpecError(`fields.${name}: ${(error as Error).message}`);
    }
    return field === undefined ? [] : [[name, field]];
  });
  const async = compiled.some(([, field]) => field.async);
  const { references, subjectReferences, unexpandedReferences } = elementReferences(list, listSteps, listFrom, compiled.map(([, field]) => field));
  const mapElement = (element: unknown, context: TransformContext): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [name, field] of compiled) {
      const value = field.read(element, context);
      out[name] = value === undefined ? null : value;
    }
    return out;
  };
  const mapElementAsync = async (element: unknown, context: TransformContext): Promise<Record<string, unknown>> => {
    const out: Record<string, unknown> = {};
    for (const [name, field] of compiled) {
      const value: unknown = await field.read(element, context);
      out[name] = value === undefined ? null : value;
    }
    return out;
  };
  return {
    read(source, context) {
      const elements = list.read(source, context);
      if (!Array.isArray(elements)) return elements === undefined ? null : elements;
      return async ? Promise.all(elements.map((element) => mapElementAsync(element, context))) : elements.map((element) => mapElement(element, context));
    },
    async,
    usesContext: list.usesContext || compiled.some(([, field]) => field.usesContext),
    // Paths inside the elements are relative to them: each element's, where the list is.
    references,
    subjectReferences,
    unexpandedReferences,
    readsOrders: list.readsOrders || compiled.some(([, field]) => field.readsOrders),
    sourceNames: [...list.sourceNames, ...compiled.flatMap(([, field]) => field.sourceNames)],
    // Its elements' fields are classified (and treated by the PII policy) one by one.
    sourceLeaves: [],
    transforms: compiled.flatMap(([, field]) => field.transforms),
    partsTreated: true,
  };
}

function leavesOf(readers: readonly Reader[]): string[] {
  return readers.flatMap((reader) => {
    const leaf = reader.steps.findLast((step) => typeof step === 'string');
    return readsData(reader) && leaf !== undefined ? [leaf] : [];
  });
}

type FieldReferences = Pick<CompiledField, 'references' | 'subjectReferences' | 'unexpandedReferences'>;

/**
 * The references paths expand: the steps before their `obj` (`store` in `store.obj.name`; through a list,
 * `discountCodes[*].discountCode` in `discountCodes[*].discountCode.obj.code`, each element's), on the resource or
 * on `$subject`. The customer's `$orders` are read after expansion: theirs are not expanded, nor is a reference
 * inside an expanded object.
 */
function referencesIn(readers: readonly Reader[]): FieldReferences {
  const out = { references: [] as PathStep[][], subjectReferences: [] as PathStep[][], unexpandedReferences: [] as string[] };
  for (const { steps, fromContext, written } of readers) {
    const at = steps.indexOf('obj');
    if (at <= 0) continue;
    // A reference inside the expanded object is not expanded (a category's ancestors come expanded with it).
    const inner = steps.indexOf('obj', at + 1);
    if (fromContext === 'orders' || (inner !== -1 && steps[inner - 1] !== 'ancestors')) out.unexpandedReferences.push(written);
    if (fromContext === undefined) out.references.push(steps.slice(0, at));
    else if (fromContext === 'subject') out.subjectReferences.push(steps.slice(0, at));
  }
  return out;
}

/**
 * A list's references and its elements': an element's paths are relative to it, so each is expanded in every
 * element of the list, where the list is (`lineItems[*].distributionChannel` for a field `distributionChannel.obj.key`
 * of a list of `lineItems`). A custom object is named from the resource, never from an element: not expanded.
 */
function elementReferences(list: CompiledField, listSteps: readonly PathStep[], listFrom: Reader['fromContext'], elements: readonly CompiledField[]): FieldReferences {
  const out = { references: [...list.references], subjectReferences: [...list.subjectReferences], unexpandedReferences: [...list.unexpandedReferences] };
  const within = (path: readonly PathStep[]): PathStep[] => [...listSteps, EACH, ...path];
  for (const element of elements) {
    for (const path of element.references) {
      if (path[0] === CUSTOM_OBJECTS_STEP) out.unexpandedReferences.push(`${pathText(path)}.obj (in a list)`);
      else if (listFrom === undefined) out.references.push(within(path));
      else if (listFrom === 'subject') out.subjectReferences.push(within(path));
      else out.unexpandedReferences.push(`${pathText(path)}.obj (in a list of $${listFrom})`);
    }
    // `$subject` means the same inside an element.
    out.subjectReferences.push(...element.subjectReferences);
    out.unexpandedReferences.push(...element.unexpandedReferences);
  }
  return out;
}

/** A derived path as text, for saying which one is not expanded. */
function pathText(path: readonly PathStep[]): string {
  return path.flatMap((step) => (typeof step === 'string' ? [step] : typeof step === 'number' ? [`[${step}]`] : [])).join('.');
}

/** Calls `visit` with every node of a JSONata syntax tree. */
function walkJsonata(node: unknown, visit: (node: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walkJsonata(item, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  visit(record);
  for (const child of Object.values(record)) if (child !== null && typeof child === 'object') walkJsonata(child, visit);
}

/** The expression reads the `$orders` variable. */
function jsonataReadsOrders(ast: unknown): boolean {
  let reads = false;
  walkJsonata(ast, (node) => {
    if (node.type === 'variable' && node.value === 'orders') reads = true;
  });
  return reads;
}

/** Every field name an expression mentions (`email`, `addresses.phone`), for telling whether it reads personal data. */
function jsonataNames(ast: unknown): string[] {
  const names: string[] = [];
  walkJsonata(ast, (node) => {
    if (node.type === 'name' && typeof node.value === 'string') names.push(node.value);
  });
  return names;
}

function fromTemplate(template: string): CompiledField {
  const parts: Array<string | Reader> = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, match.index));
    try {
      parts.push(compileReader(match[1]!));
    } catch (error) {
      throw new FieldSpecError(`template placeholder {{${match[1]}}}: ${(error as Error).message}`);
    }
    last = match.index + match[0].length;
  }
  parts.push(template.slice(last));
  const paths = parts.filter((part) => typeof part !== 'string');
  if (paths.length === 0) throw new FieldSpecError('a template needs at least one {{path}} (for fixed text, use value)');
  const { references, subjectReferences, unexpandedReferences } = referencesIn(paths);
  return {
    read(source, context) {
      let text = '';
      let filled = false;
      for (const part of parts) {
        if (typeof part === 'string') {
          text += part;
          continue;
        }
        const value = readWith(part, source, context);
        if (value === null || value === undefined || value === '') continue;
        filled = true;
        text += typeof value === 'string' ? value : JSON.stringify(value);
      }
      // "{{firstName}} {{lastName}}" of someone with no last name is "Anna", and of no one at all, nothing.
      return filled ? text.trim().replace(/\s{2,}/g, ' ') : null;
    },
    async: false,
    usesContext: paths.some((reader) => reader.fromContext !== undefined),
    references,
    subjectReferences,
    unexpandedReferences,
    readsOrders: paths.some((reader) => reader.fromContext === 'orders'),
    sourceNames: paths.flatMap((reader) => (readsData(reader) ? pathNames(reader.steps) : [])),
    sourceLeaves: leavesOf(paths),
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
  const filled = (value: unknown) => value !== null && value !== undefined && value !== '';
  return {
    read: compiled.some((field) => field.async)
      ? async (source, context) => {
          for (const field of compiled) {
            const value: unknown = await field.read(source, context);
            if (filled(value)) return value;
          }
          return null;
        }
      : (source, context) => {
          for (const field of compiled) {
            const value = field.read(source, context);
            if (filled(value)) return value;
          }
          return null;
        },
    async: compiled.some((field) => field.async),
    usesContext: compiled.some((field) => field.usesContext),
    references: compiled.flatMap((field) => field.references),
    subjectReferences: compiled.flatMap((field) => field.subjectReferences),
    unexpandedReferences: compiled.flatMap((field) => field.unexpandedReferences),
    readsOrders: compiled.some((field) => field.readsOrders),
    sourceNames: compiled.flatMap((field) => field.sourceNames),
    sourceLeaves: compiled.flatMap((field) => field.sourceLeaves),
    transforms: compiled.flatMap((field) => field.transforms),
  };
}

/**
 * The record's context, from the resource itself (or, for a Message, the resource it carries): its locale, its
 * country (the resource's own, else the shipping or first address's), its currency (an order's total, a payment's
 * planned amount, a storefront event's own), its store key (an order's store, a store-scoped customer's first store, a
 * storefront event's own) and its channel (the
 * resource's own, else its first line item's distribution or supply channel, by key when known).
 */
export function recordContext(resource: unknown, projectKey?: string): TransformContext {
  if (resource === null || typeof resource !== 'object') return { projectKey };
  // A Message's context is its resource's.
  const r = carriedByMessage(resource as Record<string, unknown>)?.resource ?? (resource as Record<string, unknown>);
  const addresses = Array.isArray(r.addresses) ? (r.addresses as unknown[]) : [];
  const defaultShipping = addresses.find((address) => field(address, 'id') !== undefined && field(address, 'id') === r.defaultShippingAddressId);
  const stores = Array.isArray(r.stores) ? (r.stores as unknown[]) : [];
  const lineItem = Array.isArray(r.lineItems) ? (r.lineItems as unknown[])[0] : undefined;
  return {
    locale: text(r.locale),
    country: text(r.country) ?? text(field(r.shippingAddress, 'country')) ?? text(field(defaultShipping, 'country')) ?? text(field(addresses[0], 'country')),
    // A storefront event names its store and currency as plain text (ingest/storefront-events.ts).
    currency: text(field(r.totalPrice, 'currencyCode')) ?? text(field(r.amountPlanned, 'currencyCode')) ?? text(r.currency),
    store: referenceKey(r.store) ?? referenceKey(stores[0]) ?? text(r.store),
    channel: referenceKey(r.channel) ?? referenceKey(field(lineItem, 'distributionChannel')) ?? referenceKey(field(lineItem, 'supplyChannel')),
    projectKey,
  };
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
const field = (value: unknown, key: string) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined);

/** A reference's key: its own (a KeyReference), its expanded object's, or else its id. */
function referenceKey(reference: unknown): string | undefined {
  return text(field(reference, 'key')) ?? text(field(field(reference, 'obj'), 'key')) ?? text(field(reference, 'id'));
}

const piiSchema = z.enum([...PII_CLASSES, 'none']).optional().describe('the class of personal data this field carries, when its name does not tell (none: not personal)');
const pipeSchema = z.array(z.union([z.string(), z.record(z.string(), z.unknown())])).optional().describe('transforms, in order: a name, or { name: arguments }');

/** The field spec's shape; what compileField would refuse is reported at the field itself (see config/schema.ts). */
export const fieldSpecSchema: z.ZodType<FieldSpec> = z.lazy(() =>
  z.union([
    z.string().describe('a path into the resource'),
    z.strictObject({ path: z.string(), pipe: pipeSchema, pii: piiSchema }),
    z.strictObject({ template: z.string().describe('text with {{path}} placeholders'), pipe: pipeSchema, pii: piiSchema }),
    z.strictObject({ value: z.unknown().describe('a fixed value'), pipe: pipeSchema, pii: piiSchema }),
    z.strictObject({ jsonata: z.string().describe('a JSONata expression over the resource; the context is bound as $locale, $store…'), pipe: pipeSchema, pii: piiSchema }),
    z.strictObject({ list: z.string().describe('a path to a list'), fields: z.record(z.string(), fieldSpecSchema).describe('fields of each element, read from it'), pipe: pipeSchema, pii: piiSchema }),
    z.strictObject({ first: z.array(fieldSpecSchema).min(1).describe('the first non-empty of these'), pipe: pipeSchema, pii: piiSchema }),
  ]),
);
