// Personal data inside whatever a mapped field produces, treated as the destination's PII policy says for its
// class (see policy.ts): e-mail addresses (also URL-encoded) and international phone numbers wherever they are —
// a whole value, inside text, inside JSON text (`$string($)`), as an object key — and the values under keys that
// name a class (`{ firstName: … }` inside a whole customer). `drop` removes them (a property goes, a list element
// or a field becomes null, a part of a text is cut out), `mask`, `hash` and `tokenize` replace them.
// Built only for a policy that does something: with none (or `pass` for every class) a field is read as before.
import type { CompiledField } from '../mapping/compiled-field.ts';
import { compileTransform, type TransformContext, type TransformFunction, type TransformSecrets } from '../mapping/transforms.ts';
import { classOfName, type PiiClass, type PiiPolicy, type PiiTreatment } from './classes.ts';
import { emailSpans, internationalPhoneSpans, isEmailAddress, isInternationalPhone, looksLikeJson, type TextSpan } from './detectors.ts';

/** What the policy does to each class it does not pass. */
export interface InnerRules {
  classes: ReadonlyMap<PiiClass, { treatment: PiiTreatment; transform: TransformFunction | undefined }>;
  /** Some class is tokenized: reading goes through the (asynchronous) vault. */
  tokenizes: boolean;
  /** E-mail addresses / phone numbers are looked for (their class is not passed). */
  email: boolean;
  phone: boolean;
}

/**
 * The rules of `policy`, or undefined when it passes every class (payment data is the guard's, never here). With
 * `dropOnly` (the field's own class is masked, hashed or tokenized, which every leaf of it goes through anyway),
 * only the classes the policy drops.
 */
export function innerRules(policy: PiiPolicy, secrets: TransformSecrets, dropOnly = false): InnerRules | undefined {
  const classes = new Map<PiiClass, { treatment: PiiTreatment; transform: TransformFunction | undefined }>();
  for (const [piiClass, treatment] of Object.entries(policy) as Array<[PiiClass, PiiTreatment | undefined]>) {
    if (treatment === undefined || treatment === 'pass' || piiClass === 'payment' || (dropOnly && treatment !== 'drop')) continue;
    const transform =
      treatment === 'hash' ? compileTransform('hash', secrets)
      : treatment === 'mask' ? compileTransform({ mask: { kind: piiClass === 'email' ? 'email' : piiClass === 'phone' ? 'phone' : 'text' } }, secrets)
      : undefined;
    classes.set(piiClass, { treatment, transform });
  }
  if (classes.size === 0) return undefined;
  return { classes, tokenizes: [...classes.values()].some((rule) => rule.treatment === 'tokenize'), email: classes.has('email'), phone: classes.has('phone') };
}

/** `field` with personal data inside its value treated by `rules` (before any treatment of its own class). */
export function scanningInner(name: string, field: CompiledField, rules: InnerRules): CompiledField {
  const scanner = (value: unknown, context: TransformContext) => treatInner(name, value, rules, context);
  const read = field.async || rules.tokenizes
    ? async (source: unknown, context: TransformContext) => scanner(await field.read(source, context), context)
    : (source: unknown, context: TransformContext) => scanner(field.read(source, context), context);
  return { ...field, read, async: field.async || rules.tokenizes, usesContext: field.usesContext || rules.tokenizes };
}

/** Removed, for drop: a property goes, a list element or a whole value becomes null, a part of a text is cut out. */
const DROP = Symbol('drop');

const MAX_DEPTH = 64;

/**
 * A walk that replaces what it finds. Vault tokens are asynchronous, so a tokenizing policy walks twice: once to
 * collect the texts to tokenize (in `pending`), then, once the vault answered, with their tokens.
 */
interface Walk {
  field: string;
  rules: InnerRules;
  context: TransformContext;
  pending: Set<string> | undefined;
  tokens: Map<string, string> | undefined;
}

function treatInner(field: string, value: unknown, rules: InnerRules, context: TransformContext): unknown {
  // Most values are plain text or numbers: done without a walk.
  if (typeof value === 'string' ? isPlainText(value, rules) : value === null || typeof value !== 'object') return value;
  if (!rules.tokenizes) return orNull(walk(value, { field, rules, context, pending: undefined, tokens: undefined }, 0));
  const pending = new Set<string>();
  const first = walk(value, { field, rules, context, pending, tokens: undefined }, 0);
  if (pending.size === 0) return orNull(first);
  const vault = context.tokens;
  if (vault === undefined) throw new Error('this field holds personal data the PII policy tokenizes, but no token vault is available');
  const texts = [...pending];
  return Promise.all(texts.map((text) => vault.tokenize(text))).then((tokenList) => {
    const tokens = new Map(texts.map((text, index) => [text, tokenList[index]!]));
    return orNull(walk(value, { field, rules, context, pending: undefined, tokens }, 0));
  });
}

const orNull = (value: unknown) => (value === DROP ? null : value);

/** A leaf of class `piiClass` as the policy says: DROP, or what replaces it. */
function treatLeaf(piiClass: PiiClass, text: string, state: Walk): string | typeof DROP {
  const rule = state.rules.classes.get(piiClass)!;
  state.context.onInnerPii?.(state.field, piiClass, rule.treatment);
  if (rule.treatment === 'drop') return DROP;
  if (rule.treatment === 'tokenize') {
    if (state.pending) {
      if (text !== '') state.pending.add(text);
      return text;
    }
    // Every text to tokenize was collected by the first walk; should one be missing, it is not sent as it is.
    return state.tokens?.get(text) ?? DROP;
  }
  return String(rule.transform!(text, state.context));
}

function walk(value: unknown, state: Walk, depth: number): unknown {
  if (typeof value === 'string') return walkText(value, state, depth);
  if (value === null || typeof value !== 'object') return value;
  // Deeper than any commercetools resource: not looked through, so not sent either.
  if (depth >= MAX_DEPTH) return DROP;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      const treated = walk(item, state, depth + 1);
      if (treated !== item) (out ??= value.slice())[i] = orNull(treated);
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  for (let i = 0; i < entries.length; i += 1) {
    const [key, item] = entries[i]!;
    const keyClass = classOfName(key);
    const treated = keyClass !== undefined && state.rules.classes.has(keyClass) ? treatAll(keyClass, item, state, depth + 1) : walk(item, state, depth + 1);
    const newKey = walkText(key, state, depth, true);
    if (treated === item && newKey === key) {
      if (out) out[key] = item;
      continue;
    }
    if (!out) {
      out = {};
      for (let j = 0; j < i; j += 1) out[entries[j]![0]] = entries[j]![1];
    }
    if (treated !== DROP && newKey !== DROP && newKey !== '') out[newKey] = treated;
  }
  return out ?? value;
}

/** Every leaf of a value under a key that names `piiClass`. */
function treatAll(piiClass: PiiClass, value: unknown, state: Walk, depth: number): unknown {
  if (value === null || value === undefined || value === '' || typeof value === 'boolean') return value;
  if (typeof value === 'string' || typeof value === 'number') return treatLeaf(piiClass, String(value), state);
  if (state.rules.classes.get(piiClass)!.treatment === 'drop' || depth >= MAX_DEPTH) {
    state.context.onInnerPii?.(state.field, piiClass, 'drop');
    return DROP;
  }
  if (Array.isArray(value)) return value.map((item) => orNull(treatAll(piiClass, item, state, depth + 1)));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, orNull(treatAll(piiClass, item, state, depth + 1))]));
}

// What any finding needs: an `@` (or `%40`), a `+`, or JSON. Fixed-length alternatives: no backtracking.
const SUSPECT = /[@%+]|^\s*[{[]/;

/** Text in which the rules can find nothing. */
function isPlainText(text: string, rules: InnerRules): boolean {
  return !SUSPECT.test(text) || (!(rules.email && (text.includes('@') || text.includes('%40'))) && !(rules.phone && text.includes('+')) && !looksLikeJson(text));
}

/** A text as the policy says: JSON in it (unless it is a key) walked as JSON, else what the detectors find in it. */
function walkText(text: string, state: Walk, depth: number, key = false): string | typeof DROP {
  if (!key && looksLikeJson(text)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) {
      const treated = walk(parsed, state, depth + 1);
      return treated === parsed ? text : JSON.stringify(orNull(treated));
    }
  }
  const { rules } = state;
  const email = rules.email && (text.includes('@') || text.includes('%40'));
  const phone = rules.phone && text.includes('+');
  if (!email && !phone) return text;
  if (email && isEmailAddress(text)) return treatLeaf('email', text.trim(), state);
  if (phone && isInternationalPhone(text)) return treatLeaf('phone', text.trim(), state);
  let out = text;
  if (email) out = replaceSpans(out, emailSpans(out), 'email', state);
  if (phone) out = replaceSpans(out, internationalPhoneSpans(out), 'phone', state);
  return out;
}

function replaceSpans(text: string, spans: readonly TextSpan[], piiClass: PiiClass, state: Walk): string {
  if (spans.length === 0) return text;
  let out = '';
  let last = 0;
  for (const { start, end } of spans) {
    const treated = treatLeaf(piiClass, text.slice(start, end), state);
    out += text.slice(last, start) + (treated === DROP ? '' : treated);
    last = end;
  }
  return out + text.slice(last);
}
