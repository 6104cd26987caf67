// Removes personal data and secrets from anything that is logged or kept in a dead letter, whatever shape it has.
// Structurally: the values of commercetools' personal fields (by name, case-insensitively: names, e-mails, phones,
// addresses and their parts, company, date of birth, VAT id…), whole addresses (but their id, key and country)
// and every custom field's value. By form, wherever they are, object keys included: e-mail addresses (also
// URL-encoded), phone numbers, card numbers and IBANs. JSON inside a string is redacted as JSON; the encoded data
// of an envelope (Pub/Sub `data`, CloudEvents `data_base64`, SNS `Message`) is decoded and redacted, or, when it
// does not decode, replaced by its length and digest. Every scan is linear in what it reads, and what it reads is
// bounded (MAX_TEXT per text; per structure MAX_STRING per string, MAX_CHARS and MAX_NODES in all): the rest is
// cut off, and the cut is said.
import { createHash } from 'node:crypto';
import { classOfName } from '../pii/classes.ts';
import { emailSpans, internationalPhoneSpans, isPhoneLike, looksLikeJson, nationalPhoneSpans, type TextSpan } from '../pii/detectors.ts';
import { containsPaymentData, isCardNumber, maskPaymentData } from '../pii/payment-data.ts';

export const REDACTED = '[redacted]';

/** How much of a text redactText reads and keeps. */
export const MAX_TEXT = 64 * 1024;
/** How much of each string a redacted structure keeps. */
const MAX_STRING = 4 * 1024;
/** How many characters of strings one redact() reads in all (JSON inside strings included). */
const MAX_CHARS = 2 * 1024 * 1024;
/** How many values one redact() keeps. */
const MAX_NODES = 20_000;
const MAX_DEPTH = 32;

// Lower-cased. Besides these, every name pii/classes.ts gives a class of personal data (phoneNumber, givenName,
// surname, city, street, iban…).
const PERSONAL_KEYS = new Set(
  [
    'email', 'customerEmail', 'firstName', 'lastName', 'middleName', 'fullName', 'name', 'title', 'salutation',
    'phone', 'mobile', 'fax', 'streetName', 'streetNumber', 'additionalStreetInfo', 'additionalAddressInfo',
    'postalCode', 'pOBox', 'building', 'apartment', 'department', 'company', 'companyName', 'dateOfBirth',
    'vatId', 'taxId', 'externalId', 'externalUserId', 'ip', 'ipAddress', 'password', 'clientSecret', 'secret',
    'token', 'accessToken', 'refreshToken', 'apiKey', 'authorization', 'iban', 'cardNumber', 'cvv', 'cvc',
  ].map((k) => k.toLowerCase()),
);

/** Keys holding an address (or a list of them): every part is redacted but these. */
const ADDRESS_KEYS = new Set(['address', 'addresses', 'shippingaddress', 'billingaddress', 'itemshippingaddresses', 'oldaddress', 'previousaddress', 'deliveryaddress']);
const ADDRESS_KEEP = new Set(['id', 'key', 'country', 'typeid']);

/** Keys of envelopes whose string value is encoded data: JSON text or base64 of it. */
const ENCODED_KEYS = new Set(['data', 'data_base64', 'Message']);

export function isPersonalKey(key: string): boolean {
  return PERSONAL_KEYS.has(key.toLowerCase()) || classOfName(key) !== undefined;
}

// `"firstName": "Ada"` or `"phone": 4930123456` inside a JSON-ish excerpt. The alternatives of each part are
// disjoint, so a failed match backtracks over nothing: linear.
const JSON_FIELD = /"([A-Za-z]+)"\s*:\s*("(?:[^"\\]|\\.)*"|[-+\d.eE]+)/g;

/** Free text (an error message, a response excerpt) with personal data removed; reads and keeps at most MAX_TEXT. */
export function redactText(text: string): string {
  const cut = text.length > MAX_TEXT;
  let out = maskPaymentData(cut ? text.slice(0, MAX_TEXT) : text);
  out = replaceSpans(out, emailSpans(out));
  out = replaceSpans(out, internationalPhoneSpans(out));
  out = replaceSpans(out, nationalPhoneSpans(out));
  out = out.replace(JSON_FIELD, (match, key: string) => (isPersonalKey(key) ? `"${key}":"${REDACTED}"` : match));
  return cut ? `${out}… [${text.length - MAX_TEXT} more characters not shown]` : out;
}

function replaceSpans(text: string, spans: readonly TextSpan[]): string {
  if (spans.length === 0) return text;
  let out = '';
  let last = 0;
  for (const { start, end } of spans) {
    out += text.slice(last, start) + REDACTED;
    last = end;
  }
  return out + text.slice(last);
}

/** A text that cannot be read, described instead of kept: its length and the start of its SHA-256. */
export function describeOpaque(text: string): string {
  return `[undecodable: ${text.length} characters, sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 16)}]`;
}

interface Budget {
  chars: number;
  nodes: number;
  /** Keys replaced in this structure, for unique replacement names. */
  keys: number;
}

/** A deep copy of value with personal data replaced; never throws, whatever it is given. */
export function redact(value: unknown): unknown {
  return redactValue(value, { chars: MAX_CHARS, nodes: MAX_NODES, keys: 0 }, 0);
}

/** Redacts the fields of a mapped record whose source is personal data, plus anything redact() catches. */
export function redactMapped(record: Record<string, unknown>, personalFields: ReadonlySet<string>): Record<string, unknown> {
  const out = redact(record) as Record<string, unknown>;
  for (const field of personalFields) if (out[field] !== null && out[field] !== undefined) out[field] = REDACTED;
  return out;
}

function redactValue(value: unknown, budget: Budget, depth: number): unknown {
  if (value === null || value === undefined || typeof value === 'boolean') return value;
  budget.nodes -= 1;
  if (typeof value === 'string') return redactString(value, budget, depth);
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 1e12 && isCardNumber(String(value)) ? '[card number]' : value;
  if (typeof value !== 'object') return REDACTED;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return redactArray(value, budget, (item) => redactValue(item, budget, depth + 1));
  const source = value as Record<string, unknown>;
  const customField = typeof source.type === 'string' && source.type.includes('CustomField');
  return redactObject(source, budget, (key, item) => {
    const lower = key.toLowerCase();
    if (item === null || item === undefined) return item;
    if (ADDRESS_KEYS.has(lower)) return redactLeaves(item, budget, depth + 1, ADDRESS_KEEP);
    if (isPersonalKey(key)) return REDACTED;
    // A custom field's value says nothing about its kind: all of them go (the Type and the field names stay).
    if (lower === 'custom' && isObject(item)) {
      return redactObject(item, budget, (name, part) => (name === 'fields' ? redactLeaves(part, budget, depth + 2, undefined) : redactValue(part, budget, depth + 2)));
    }
    if (customField && (lower === 'value' || lower === 'previousvalue' || lower === 'oldvalue')) return redactLeaves(item, budget, depth + 1, undefined);
    if (typeof item === 'string' && ENCODED_KEYS.has(key)) return redactEncoded(item, budget, depth + 1);
    return redactValue(item, budget, depth + 1);
  });
}

function redactArray(items: readonly unknown[], budget: Budget, each: (item: unknown) => unknown): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    if (budget.nodes <= 0) {
      out.push(`[${items.length - out.length} more items not kept]`);
      break;
    }
    out.push(each(item));
  }
  return out;
}

function redactObject(source: object, budget: Budget, each: (key: string, item: unknown) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const entries: Array<[string, unknown]> = Object.entries(source);
  for (let index = 0; index < entries.length; index += 1) {
    if (budget.nodes <= 0) {
      out['[not kept]'] = `${entries.length - index} more fields`;
      break;
    }
    const [key, item] = entries[index]!;
    // An e-mail address (or phone number, card number…) as a key is as personal as one as a value.
    const safeKey = keyIsPersonal(key) ? `[redacted key ${(budget.keys += 1)}]` : key;
    out[safeKey] = each(key, item);
  }
  return out;
}

/** Every leaf of an address or a custom field replaced, but those under `keep` (an address's id and country). */
function redactLeaves(value: unknown, budget: Budget, depth: number, keep: ReadonlySet<string> | undefined): unknown {
  if (value === null || value === undefined || typeof value === 'boolean') return value;
  budget.nodes -= 1;
  if (typeof value !== 'object' || depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return redactArray(value, budget, (item) => redactLeaves(item, budget, depth + 1, keep));
  return redactObject(value, budget, (key, item) => (keep?.has(key.toLowerCase()) ? redactValue(item, budget, depth + 1) : redactLeaves(item, budget, depth + 1, keep)));
}

function keyIsPersonal(key: string): boolean {
  if (key.length < 5) return false;
  return emailSpans(key).length > 0 || internationalPhoneSpans(key).length > 0 || isPhoneLike(key) || containsPaymentData(key);
}

/** JSON inside a string, parsed and redacted; undefined when it is not JSON (or longer than is left to read). */
function redactJson(text: string, budget: Budget, depth: number): { value: unknown } | undefined {
  if (!looksLikeJson(text) || text.length > budget.chars) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
  budget.chars -= text.length;
  return { value: redactValue(parsed, budget, depth + 1) };
}

function redactString(text: string, budget: Budget, depth: number): string {
  if (budget.chars <= 0) return '[not kept]';
  const json = redactJson(text, budget, depth);
  if (json !== undefined) return JSON.stringify(json.value);
  if (isPhoneLike(text)) return REDACTED;
  const kept = text.length > MAX_STRING ? text.slice(0, MAX_STRING) : text;
  budget.chars -= kept.length;
  const out = redactText(kept);
  return kept.length < text.length ? `${out}… [${text.length - kept.length} more characters not kept]` : out;
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** An envelope's encoded data: JSON text, or base64 of it, redacted as JSON; anything else only described. */
function redactEncoded(text: string, budget: Budget, depth: number): unknown {
  if (budget.chars <= 0) return '[not kept]';
  const json = redactJson(text, budget, depth);
  if (json !== undefined) return JSON.stringify(json.value);
  const compact = text.replace(/\s+/g, '');
  if (compact.length > 0 && compact.length <= budget.chars && BASE64.test(compact)) {
    try {
      const decoded = utf8.decode(Buffer.from(compact, 'base64'));
      const redacted = redactJson(decoded, budget, depth);
      if (redacted !== undefined) return { base64Json: redacted.value };
    } catch {
      // Not UTF-8: described below.
    }
  }
  return describeOpaque(text);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Connection settings that say nothing secret; every other query parameter's value is hidden.
const SAFE_URL_PARAMETERS = new Set([
  'sslmode', 'ssl', 'application_name', 'fallback_application_name', 'connect_timeout', 'target_session_attrs', 'client_encoding',
  'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'statement_timeout', 'schema', 'search_path', 'timezone',
  'host', 'port',
]);
const MAX_URL = 2048;

/**
 * A URL (a store URL, a destination's) fit to log or show: the user info (`user:password@`) replaced by `***@`,
 * the value of every query parameter but harmless connection settings (sslmode, application_name…) replaced by
 * `***`, the fragment left out. Works on the text, so it never throws and redacts malformed URLs as well.
 */
export function redactUrl(url: string): string {
  const text = String(url);
  const hash = text.indexOf('#');
  const whole = hash === -1 ? text : text.slice(0, hash);
  const slashes = whole.indexOf('//');
  const start = slashes === -1 ? 0 : slashes + 2;
  let authorityEnd = whole.length;
  for (let i = start; i < whole.length; i += 1) {
    if (whole[i] === '/' || whole[i] === '?') {
      authorityEnd = i;
      break;
    }
  }
  const authority = whole.slice(start, authorityEnd);
  // The user info ends at the authority's last `@`; when the authority is no host[:port] but a later `@` follows,
  // it is a password holding a `/` or `?` its writer did not encode, and it ends there.
  let userEnd = authority.lastIndexOf('@');
  if (userEnd !== -1) userEnd += start;
  else if (!HOST_AND_PORT.test(authority)) userEnd = whole.indexOf('@', authorityEnd);
  const head = userEnd === -1 ? '' : `${whole.slice(0, start)}***`;
  const rest = userEnd === -1 ? whole : whole.slice(userEnd);
  const question = rest.indexOf('?');
  let out = head + (question === -1 ? rest : rest.slice(0, question));
  if (question !== -1) {
    const parameters = rest.slice(question + 1).split(/[&;]/).map((parameter) => {
      const equals = parameter.indexOf('=');
      if (equals === -1) return parameter === '' ? '' : '***';
      const name = parameter.slice(0, equals);
      return SAFE_URL_PARAMETERS.has(safeDecode(name).toLowerCase()) ? parameter : `${name}=***`;
    });
    out += `?${parameters.join('&')}`;
  }
  return out.length > MAX_URL ? `${out.slice(0, MAX_URL)}…` : out;
}

const HOST_AND_PORT = /^[\w.[\]%~-]*(:\d*)?$/;

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
