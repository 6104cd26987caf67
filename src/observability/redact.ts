// Removes personal data and secrets from anything that is logged or kept in a dead letter. Keys are matched
// case-insensitively against commercetools' personal-data field names; strings that look like e-mail addresses
// are redacted wherever they appear, and so are card numbers and IBANs.
import { isCardNumber, maskPaymentData } from '../pii/payment-data.ts';

export const REDACTED = '[redacted]';

const PERSONAL_KEYS = new Set(
  [
    'email', 'customerEmail', 'firstName', 'lastName', 'middleName', 'fullName', 'name', 'title', 'salutation',
    'phone', 'mobile', 'fax', 'streetName', 'streetNumber', 'additionalStreetInfo', 'additionalAddressInfo',
    'postalCode', 'pOBox', 'building', 'apartment', 'department', 'company', 'companyName', 'dateOfBirth',
    'vatId', 'externalId', 'ip', 'ipAddress', 'password', 'clientSecret', 'secret', 'token', 'authorization',
    'iban', 'cardNumber', 'cvv', 'cvc',
  ].map((k) => k.toLowerCase()),
);

const EMAIL = /[^\s@"'<>]+@[^\s@"'<>]+\.[a-z]{2,}/gi;
const MAX_DEPTH = 32;

/** Free text (an error message, a response excerpt) with e-mail addresses and JSON-quoted personal fields removed. */
export function redactText(text: string): string {
  return maskPaymentData(text)
    .replace(EMAIL, REDACTED)
    .replace(JSON_STRING_FIELD, (match, key: string) => (isPersonalKey(key) ? `"${key}":"${REDACTED}"` : match));
}

// `"firstName": "Ada"` inside a JSON-ish excerpt.
const JSON_STRING_FIELD = /"([A-Za-z]+)"\s*:\s*"(?:[^"\\]|\\.)*"/g;

export function isPersonalKey(key: string): boolean {
  return PERSONAL_KEYS.has(key.toLowerCase());
}

/** A deep copy of value with personal fields replaced; never throws, whatever it is given. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 1e12 && isCardNumber(String(value))) return '[card number]';
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isPersonalKey(key) && item !== null && item !== undefined ? REDACTED : redact(item, depth + 1);
  }
  return out;
}

/** Redacts the fields of a mapped record whose source is personal data, plus anything redact() catches. */
export function redactMapped(record: Record<string, unknown>, personalFields: ReadonlySet<string>): Record<string, unknown> {
  const out = redact(record) as Record<string, unknown>;
  for (const field of personalFields) if (out[field] !== null && out[field] !== undefined) out[field] = REDACTED;
  return out;
}
