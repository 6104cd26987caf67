// The named transforms a mapping field can pipe its value through (`pipe: [trim, lower]`,
// `pipe: [{ money: { as: minor } }]`). Each is one declarative definition: its arguments (a zod schema, checked
// once when the mapping is compiled, so a wrong argument is a start-up error with its location) and a pure
// function of the value, the arguments and the record's context (locale, country, secrets). Every transform
// passes null and undefined through untouched, except `default`, whose job is to replace them; a value of the
// wrong kind (a number where text is expected) passes through unchanged rather than turning into a guess.
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import type Countries from 'i18n-iso-countries';
import type { CountryCode, parsePhoneNumberFromString as ParsePhoneNumber } from 'libphonenumber-js/max';
import { z } from 'zod';
import type { PiiClass, PiiTreatment } from '../pii/classes.ts';

/** What a transform may know about the record it works on (see the mapping compiler). */
export interface TransformContext {
  /** The record's locale (`de-DE`), from its store or the resource itself. */
  locale?: string | undefined;
  /** The record's country (ISO 3166 alpha-2), e.g. of its address: the default region for phone numbers. */
  country?: string | undefined;
  currency?: string | undefined;
  /** The store key (an order's store, a store-scoped customer's store). */
  store?: string | undefined;
  /** The channel key (or id) the resource belongs to. */
  channel?: string | undefined;
  /** The commercetools project key from the configuration. */
  projectKey?: string | undefined;
  /** The token vault, for fields the PII policy tokenizes (set by the engine for each apply). */
  tokens?: Tokenizer | undefined;
  /**
   * A customer's orders (every store), oldest first: `$orders` in a customer mapping. The engine reads them from
   * commercetools when the mapping does, so totals and "last order" fields are computed, never accumulated.
   */
  orders?: readonly unknown[] | undefined;
  /**
   * What an event's message is about — its order or cart (for a payment, the order it belongs to) as the message
   * carries it or commercetools has it: `$subject` in an event mapping (an order's total for a payment message).
   */
  subject?: Record<string, unknown> | undefined;
  /** Told of personal data the PII policy found inside a field's value and treated (the mapping preview lists it). */
  onInnerPii?: ((field: string, piiClass: PiiClass, treatment: PiiTreatment) => void) | undefined;
}

/** Turns a value into a vault token; calls made together are answered by one store round trip. */
export interface Tokenizer {
  tokenize(value: string): Promise<string>;
}

/** Secrets some transforms need, from the configuration (never from the record). */
export interface TransformSecrets {
  /** HMAC-SHA256 key of `hash`: the same value hashes alike in every system that holds the key. */
  hashKey?: string | undefined;
}

export type TransformFunction = (value: unknown, context: TransformContext) => unknown;

interface TransformDefinition<A extends z.ZodType> {
  /** What the transform does, for error messages and the JSON Schema. */
  description: string;
  args: A;
  create(args: z.output<A>, secrets: TransformSecrets): TransformFunction;
}

function define<A extends z.ZodType>(definition: TransformDefinition<A>): TransformDefinition<A> {
  return definition;
}

const noArgs = z.undefined().or(z.null()).or(z.object({}).strict());

const present = (value: unknown): boolean => value !== null && value !== undefined;

/** Applies `fn` to strings only; anything else passes through. */
function onText(fn: (text: string, context: TransformContext) => unknown): TransformFunction {
  return (value, context) => (typeof value === 'string' ? fn(value, context) : value);
}

// The phone and country libraries (about 4 MB of heap together) are loaded the first time a mapping uses them,
// not in every thread that loads the configuration.
const requireModule = createRequire(import.meta.url);
let phoneLibrary: { parsePhoneNumberFromString: typeof ParsePhoneNumber } | undefined;
const phone = () => (phoneLibrary ??= requireModule('libphonenumber-js/max') as { parsePhoneNumberFromString: typeof ParsePhoneNumber });

// i18n-iso-countries ships its names per language as JSON; English is always there, others on demand.
let countryLibrary: typeof Countries | undefined;
const registeredLanguages = new Set<string>();
function countryData(): typeof Countries {
  if (!countryLibrary) {
    countryLibrary = requireModule('i18n-iso-countries') as typeof Countries;
    countryNames('en');
  }
  return countryLibrary;
}
function countryNames(language: string): boolean {
  if (registeredLanguages.has(language)) return true;
  try {
    countryData().registerLocale(requireModule(`i18n-iso-countries/langs/${language}.json`) as Countries.LocaleData);
    registeredLanguages.add(language);
    return true;
  } catch {
    return false;
  }
}

/** The alpha-2 code of a country given as alpha-2, alpha-3 or an English (or `language`) name. */
function toAlpha2(text: string, language: string): string | undefined {
  const countries = countryData();
  const trimmed = text.trim();
  if (/^[A-Za-z]{2}$/.test(trimmed) && countries.isValid(trimmed.toUpperCase())) return trimmed.toUpperCase();
  if (/^[A-Za-z]{3}$/.test(trimmed)) {
    const alpha2 = countries.alpha3ToAlpha2(trimmed.toUpperCase());
    if (alpha2) return alpha2;
  }
  return countries.getAlpha2Code(trimmed, 'en') ?? (language === 'en' ? undefined : countries.getAlpha2Code(trimmed, language));
}

const languages = new Map<string, string>();
/** `de` for `de-AT` or `de_AT`; remembered, since every localized field of every record asks. */
function languageOf(locale: string | undefined): string | undefined {
  if (locale === undefined) return undefined;
  let language = languages.get(locale);
  if (language === undefined) {
    language = locale.split(/[-_]/)[0]!.toLowerCase();
    if (languages.size < 1_000) languages.set(locale, language);
  }
  return language;
}

/** commercetools Money (TypedMoney): centPrecision, or highPrecision with its preciseAmount. */
interface Money {
  currencyCode: string;
  centAmount: number;
  fractionDigits?: number | undefined;
  type?: 'centPrecision' | 'highPrecision' | undefined;
}

/** The value as Money, or undefined when it is not one. Checked by hand: it runs for every amount of every order. */
function asMoney(value: unknown): Money | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { currencyCode, centAmount, fractionDigits, type } = value as Record<string, unknown>;
  if (typeof currencyCode !== 'string' || !Number.isSafeInteger(centAmount)) return undefined;
  if (fractionDigits !== undefined && !(Number.isInteger(fractionDigits) && (fractionDigits as number) >= 0 && (fractionDigits as number) <= 20)) return undefined;
  if (type !== undefined && type !== 'centPrecision' && type !== 'highPrecision') return undefined;
  return value as Money;
}

/** The fraction digits of a Money's centAmount: high-precision money's centAmount is rounded to cent precision. */
function centDigitsOf(money: Money): number {
  return money.type === 'highPrecision' ? centDigits(money.currencyCode) : (money.fractionDigits ?? centDigits(money.currencyCode));
}

/** Minor units as money's `as` says: a decimal string, that decimal as a number, or the minor units themselves. */
function amountAs(cents: number, digits: number, as: 'decimal' | 'number' | 'minor'): string | number {
  if (as === 'minor') return cents;
  const decimal = decimalString(cents, digits);
  return as === 'number' ? Number(decimal) : decimal;
}

/** `amount` minor units at `digits` fraction digits as a decimal string, without floating-point rounding. */
function decimalString(amount: number, digits: number): string {
  const negative = amount < 0;
  const text = Math.abs(amount).toString().padStart(digits + 1, '0');
  const whole = digits === 0 ? text : text.slice(0, -digits);
  const fraction = digits === 0 ? '' : `.${text.slice(-digits)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Seconds since the epoch, or an ISO 8601 / RFC 2822 date text, as a Date; undefined when it is neither. */
function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value === 'number') return Number.isFinite(value) ? new Date(value * 1000) : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function maskEmail(text: string): string {
  const at = text.lastIndexOf('@');
  if (at <= 0) return maskText(text);
  return `${text[0]}***${text.slice(at)}`;
}

function maskText(text: string): string {
  const chars = [...text];
  if (chars.length <= 1) return '*'.repeat(chars.length);
  return `${chars[0]}${'*'.repeat(Math.min(chars.length - 1, 8))}`;
}

/** A phone number with all but its last `keep` digits masked; separators kept so it still reads as a number. */
function maskPhone(text: string, keep: number): string {
  const digits = text.replace(/\D/g, '').length;
  let seen = 0;
  return text.replace(/\d/g, (digit) => (++seen > digits - keep ? digit : '*'));
}

export const transforms = {
  trim: define({ description: 'removes leading and trailing white space', args: noArgs, create: () => onText((text) => text.trim()) }),
  lower: define({ description: 'lower case (locale-independent)', args: noArgs, create: () => onText((text) => text.toLowerCase()) }),
  upper: define({ description: 'upper case (locale-independent)', args: noArgs, create: () => onText((text) => text.toUpperCase()) }),

  e164: define({
    description: 'a phone number in E.164 (+4930123456); a national number is read in the record\'s country, or `region`; null when it is not a valid number',
    args: z.object({ region: z.string().length(2).optional() }).strict().optional().nullable(),
    create: (args) =>
      onText((text, context) => {
        const region = (args?.region ?? context.country)?.toUpperCase() as CountryCode | undefined;
        const parsed = phone().parsePhoneNumberFromString(text, region ? { defaultCountry: region } : {});
        return parsed?.isValid() ? parsed.number : null;
      }),
  }),

  country: define({
    description: 'a country given as ISO 3166 alpha-2, alpha-3 or its English name, as `alpha2` (default), `alpha3` or its `name` in `language` (default: the record\'s); null when it is no country',
    args: z.object({ as: z.enum(['alpha2', 'alpha3', 'name']).default('alpha2'), language: z.string().min(2).max(3).optional() }).strict().optional().nullable(),
    create: (args) => {
      const as = args?.as ?? 'alpha2';
      if (args?.language && !countryNames(args.language.toLowerCase())) throw new Error(`country: no country names in language "${args.language}"`);
      const countries = countryData();
      return onText((text, context) => {
        const language = args?.language?.toLowerCase() ?? languageOf(context.locale) ?? 'en';
        const alpha2 = toAlpha2(text, countryNames(language) ? language : 'en');
        if (!alpha2) return null;
        if (as === 'alpha2') return alpha2;
        if (as === 'alpha3') return countries.alpha2ToAlpha3(alpha2) ?? null;
        return countries.getName(alpha2, countryNames(language) ? language : 'en') ?? countries.getName(alpha2, 'en') ?? null;
      });
    },
  }),

  money: define({
    description: 'commercetools Money as a `decimal` string (default: "12.34"), a `number` (12.34), `minor` units (1234) or an `object` { amount, currency } in minor units; for high-precision money, its centAmount (commercetools rounds the precise amount to the currency\'s cent precision)',
    args: z.object({ as: z.enum(['decimal', 'number', 'minor', 'object']).default('decimal') }).strict().optional().nullable(),
    create: (args) => {
      const as = args?.as ?? 'decimal';
      return (value) => {
        const parsed = asMoney(value);
        if (parsed === undefined) return value;
        if (as === 'object') return { amount: parsed.centAmount, currency: parsed.currencyCode };
        return amountAs(parsed.centAmount, centDigitsOf(parsed), as);
      };
    },
  }),
  sumByCurrency: define({
    description: 'the sum of a list of commercetools Money per currency, { EUR: "120.50", USD: "9.99" } (`as`: decimal, number or minor, like money); items that are not Money are ignored, an empty list gives {}',
    args: z.object({ as: z.enum(['decimal', 'number', 'minor']).default('decimal') }).strict().optional().nullable(),
    create: (args) => {
      const as = args?.as ?? 'decimal';
      return (value) => {
        if (!Array.isArray(value)) return value;
        const totals = new Map<string, { cents: number; digits: number }>();
        for (const item of value) {
          const money = asMoney(item);
          if (money === undefined) continue;
          const total = totals.get(money.currencyCode);
          if (total) total.cents += money.centAmount;
          else totals.set(money.currencyCode, { cents: money.centAmount, digits: centDigitsOf(money) });
        }
        const out: Record<string, string | number> = {};
        for (const [currency, { cents, digits }] of [...totals].sort(([a], [b]) => (a < b ? -1 : 1))) out[currency] = amountAs(cents, digits, as);
        return out;
      };
    },
  }),

  richLink: define({
    description: 'a link with its text, { url, value }: `url` with {value} where the value goes (URL-encoded), the value as the text (Intercom event metadata shows it as a rich link)',
    args: z.object({ url: z.string().regex(/^https?:\/\/\S*\{value\}/, 'an http(s) URL with {value} where the value goes') }).strict(),
    create: (args) => (value) => {
      if (typeof value !== 'string' && typeof value !== 'number') return value;
      const text = String(value);
      return { url: args.url.replaceAll('{value}', encodeURIComponent(text)), value: text };
    },
  }),

  iso8601: define({
    description: 'a date-time as ISO 8601 in UTC (2026-01-05T09:00:00.000Z), from ISO text or unix seconds; null when it is not a date',
    args: noArgs,
    create: () => (value) => (present(value) ? (toDate(value)?.toISOString() ?? null) : value),
  }),
  unixSeconds: define({
    description: 'a date-time as whole seconds since the epoch, from ISO text; null when it is not a date',
    args: noArgs,
    create: () => (value) => {
      if (!present(value)) return value;
      const date = toDate(value);
      return date ? Math.floor(date.getTime() / 1000) : null;
    },
  }),
  date: define({
    description: 'the calendar date (2026-01-05) of a date-time, in `timeZone` (an IANA name, default UTC); null when it is not a date',
    args: z.object({ timeZone: z.string().default('UTC') }).strict().optional().nullable(),
    create: (args) => {
      const timeZone = args?.timeZone ?? 'UTC';
      let format: Intl.DateTimeFormat;
      try {
        format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
      } catch {
        throw new Error(`date: "${timeZone}" is not a time zone`);
      }
      return (value) => {
        if (!present(value)) return value;
        const date = toDate(value);
        return date ? format.format(date) : null;
      };
    },
  }),

  localized: define({
    description: 'one language of a LocalizedString ({ en: …, de: … }): the record\'s locale, then its language, then `fallback` in order, then the first there is',
    args: z.object({ fallback: z.array(z.string()).default([]) }).strict().optional().nullable(),
    create: (args) => {
      const fallback = args?.fallback ?? [];
      return (value, context) => {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
        const texts = value as Record<string, unknown>;
        const locale = context.locale;
        const candidates = [locale, languageOf(locale), ...fallback];
        for (const candidate of candidates) {
          if (candidate === undefined) continue;
          // commercetools keys are usually spelled as asked (de, en-GB); other spellings are looked for after.
          const exact = texts[candidate];
          if (typeof exact === 'string') return exact;
          const key = Object.keys(texts).find((k) => k.toLowerCase() === candidate.toLowerCase());
          if (key !== undefined && typeof texts[key] === 'string') return texts[key];
        }
        // A language variant of the locale's language (de-AT for de).
        const language = languageOf(locale);
        const variant = language ? Object.keys(texts).find((k) => languageOf(k) === language && typeof texts[k] === 'string') : undefined;
        if (variant !== undefined) return texts[variant];
        const first = Object.values(texts).find((text) => typeof text === 'string');
        return first ?? null;
      };
    },
  }),

  sum: define({
    description: 'the sum of the numbers in a list (`lineItems[*].quantity`); other items are ignored',
    args: noArgs,
    create: () => (value) => {
      if (!Array.isArray(value)) return value;
      let total = 0;
      for (const item of value) if (typeof item === 'number' && Number.isFinite(item)) total += item;
      return total;
    },
  }),
  count: define({
    description: 'how many items a list has (0 when there is none)',
    args: noArgs,
    create: () => (value) => (Array.isArray(value) ? value.length : present(value) ? value : 0),
  }),

  last: define({
    description: 'the last item of a list (the newest of `$orders[*]…`); null for an empty list',
    args: noArgs,
    create: () => (value) => (Array.isArray(value) ? (value.length > 0 ? (value[value.length - 1] as unknown) : null) : value),
  }),

  join: define({
    description: 'the non-empty items of a list joined with `separator` (default ", ")',
    args: z.object({ separator: z.string().default(', ') }).strict().optional().nullable(),
    create: (args) => {
      const separator = args?.separator ?? ', ';
      return (value) => {
        if (!Array.isArray(value)) return value;
        return value.filter((item) => present(item) && item !== '').map(String).join(separator);
      };
    },
  }),

  truncate: define({
    description: 'text cut to `length` characters (whole characters, never half an emoji), ending in `ellipsis` when cut',
    args: z.object({ length: z.number().int().min(1), ellipsis: z.string().default('') }).strict(),
    create: (args) => {
      const ellipsis = [...args.ellipsis];
      if (ellipsis.length >= args.length) throw new Error(`truncate: the ellipsis must be shorter than length ${args.length}`);
      return onText((text) => {
        const chars = [...text];
        return chars.length <= args.length ? text : chars.slice(0, args.length - ellipsis.length).join('') + args.ellipsis;
      });
    },
  }),

  map: define({
    description: 'a lookup table (commercetools orderState → the destination\'s status); a value not in it becomes `default` when one is given, else stays as it is',
    args: z.object({ table: z.record(z.string(), z.unknown()), default: z.unknown().optional() }).strict(),
    create: (args) => {
      const table = new Map(Object.entries(args.table));
      const hasDefault = Object.hasOwn(args, 'default');
      return (value) => {
        if (!present(value)) return value;
        const key = String(value);
        if (table.has(key)) return table.get(key);
        return hasDefault ? args.default : value;
      };
    },
  }),

  default: define({
    description: 'the given `value` when the field is null, missing or empty text',
    args: z.object({ value: z.unknown() }).strict(),
    create: (args) => (value) => (present(value) && value !== '' ? value : args.value),
  }),

  hash: define({
    description: 'HMAC-SHA256 of the text with the configured hash key, as hex: a stable token that joins across systems holding the same key; `normalize` (default true) trims and lower-cases first, so Anna@X.com and anna@x.com hash alike',
    args: z.object({ normalize: z.boolean().default(true) }).strict().optional().nullable(),
    create: (args, secrets) => {
      const key = secrets.hashKey;
      if (!key) throw new Error('hash: no hash key is configured (pii.hashKey)');
      const normalize = args?.normalize ?? true;
      return (value) => {
        if (!present(value) || (typeof value !== 'string' && typeof value !== 'number')) return value;
        const text = normalize ? String(value).trim().toLowerCase() : String(value);
        return createHmac('sha256', key).update(text, 'utf8').digest('hex');
      };
    },
  }),

  mask: define({
    description: 'hides most of a value: an e-mail as j***@example.com, a phone number but its last `keep` digits (default 2), other text but its first character',
    args: z.object({ kind: z.enum(['auto', 'email', 'phone', 'text']).default('auto'), keep: z.number().int().min(0).max(6).default(2) }).strict().optional().nullable(),
    create: (args) => {
      const kind = args?.kind ?? 'auto';
      const keep = args?.keep ?? 2;
      return (value) => {
        if (!present(value)) return value;
        const text = String(value);
        const as = kind !== 'auto' ? kind : text.includes('@') ? 'email' : /^[+()\d\s./-]{6,}$/.test(text) ? 'phone' : 'text';
        if (as === 'email') return maskEmail(text);
        if (as === 'phone') return maskPhone(text, keep);
        return maskText(text);
      };
    },
  }),
};

/** Cent precision of a currency (ISO 4217 minor units), as commercetools rounds high-precision money to it. */
function centDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export type TransformName = keyof typeof transforms;

export class TransformError extends Error {
  override readonly name = 'TransformError';
}

/**
 * Compiles one pipeline step — a transform's name, or `{ name: args }` — into its function. Throws a
 * TransformError naming the transform and what is wrong (an unknown name lists the known ones).
 */
export function compileTransform(step: unknown, secrets: TransformSecrets = {}): TransformFunction {
  let name: string;
  let rawArgs: unknown;
  if (typeof step === 'string') {
    name = step;
  } else if (step !== null && typeof step === 'object' && !Array.isArray(step) && Object.keys(step).length === 1) {
    [name, rawArgs] = Object.entries(step as Record<string, unknown>)[0]!;
  } else {
    throw new TransformError('a pipeline step is a transform name or { name: arguments } with exactly one name');
  }
  if (!Object.hasOwn(transforms, name)) {
    throw new TransformError(`unknown transform "${name}" (known: ${Object.keys(transforms).join(', ')})`);
  }
  const definition = transforms[name as TransformName] as TransformDefinition<z.ZodType>;
  const parsed = definition.args.safeParse(rawArgs);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}`).join('; ');
    throw new TransformError(`transform "${name}": ${problems}`);
  }
  try {
    return definition.create(parsed.data, secrets);
  } catch (error) {
    throw new TransformError(error instanceof Error ? error.message : String(error));
  }
}

/** Compiles a pipeline; the value flows through the steps in order. */
export function compilePipeline(steps: readonly unknown[], secrets: TransformSecrets = {}): TransformFunction {
  const compiled = steps.map((step, index) => {
    try {
      return compileTransform(step, secrets);
    } catch (error) {
      throw new TransformError(`pipe[${index}]: ${(error as Error).message}`);
    }
  });
  return (value, context) => {
    let current = value;
    for (const fn of compiled) current = fn(current, context);
    return current;
  };
}
