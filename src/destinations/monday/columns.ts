// How a mapped value becomes a monday column value, in monday's own JSON format for the column's type: text,
// long_text {text}, email {email,text}, phone {phone,countryShortName} (E.164 and its ISO country), status {label},
// date {date,time} in UTC, numbers (as text), link {url,text}, checkbox {checked}, dropdown {labels}, country
// {countryCode,countryName}, board_relation {item_ids}. A value the type cannot take is a PermanentError naming the
// field and column (the item fails alone); null clears the column. Pure functions, except the phone and country
// libraries, loaded on first use. Source: developer.monday.com api-reference "Column types reference" (per type),
// restated in spec/monday/README.md, "Column values".
import { createRequire } from 'node:module';
import type Countries from 'i18n-iso-countries';
import type { parsePhoneNumberFromString as ParsePhoneNumber } from 'libphonenumber-js/max';
import { PermanentError } from '../kit/index.ts';
import type { ColumnType } from './settings.ts';

const requireModule = createRequire(import.meta.url);
let phoneLibrary: { parsePhoneNumberFromString: typeof ParsePhoneNumber } | undefined;
let countryLibrary: typeof Countries | undefined;
const phones = () => (phoneLibrary ??= requireModule('libphonenumber-js/max') as { parsePhoneNumberFromString: typeof ParsePhoneNumber });
function countries(): typeof Countries {
  if (!countryLibrary) {
    countryLibrary = requireModule('i18n-iso-countries') as typeof Countries;
    countryLibrary.registerLocale(requireModule('i18n-iso-countries/langs/en.json') as Countries.LocaleData);
  }
  return countryLibrary;
}

/** monday's long-text columns take at most 2,000 characters. */
export const LONG_TEXT_LIMIT = 2_000;

/** Where a value goes, for the error message: `customer c1: phone (column phone_mk)`. */
export interface ValueContext {
  what: string;
  field: string;
  column: string;
}

/**
 * The column value for a mapped value (board_relation takes item ids, already resolved). `null` clears the
 * column (monday: an empty value); undefined means "nothing to send".
 */
export function columnValue(type: string, value: unknown, context: ValueContext): unknown {
  const fail = (why: string): never => {
    throw new PermanentError(`${context.what}: ${context.field} (monday column ${context.column}, ${type}) ${why}`);
  };
  if (value === undefined) return undefined;
  if (value === null || value === '' || (Array.isArray(value) && value.length === 0)) return type === 'text' || type === 'numbers' ? '' : {};
  switch (type as ColumnType) {
    case 'text':
      return textOf(value);
    case 'long_text': {
      const text = Array.isArray(value) ? value.map((line) => textOf(line)).join('\n') : textOf(value);
      return { text: truncate(text, LONG_TEXT_LIMIT) };
    }
    case 'email': {
      if (typeof value !== 'string' || !value.includes('@')) return fail(`takes an e-mail address, not ${describe(value)}`);
      return { email: value, text: value };
    }
    case 'phone': {
      if (typeof value !== 'string') return fail(`takes a phone number in E.164 (+4930…), not ${describe(value)}`);
      const parsed = phones().parsePhoneNumberFromString(value);
      if (!parsed?.country || !parsed.isValid()) return fail('takes a valid phone number in E.164 (+ and the country code, e.g. +4930123456); map it through the phone transform');
      return { phone: parsed.number, countryShortName: parsed.country };
    }
    case 'status':
      if (typeof value !== 'string' && typeof value !== 'number') return fail(`takes a label, not ${describe(value)}`);
      return { label: String(value) };
    case 'date': {
      const date = toDate(value);
      if (!date) return fail(`takes a date or date-time (ISO 8601), not ${describe(value)}`);
      return date;
    }
    case 'numbers': {
      const number = toNumber(value);
      if (number === undefined) return fail(`takes a number, not ${describe(value)}`);
      return String(number);
    }
    case 'link': {
      const url = typeof value === 'string' ? value : typeof value === 'object' && typeof (value as { url?: unknown }).url === 'string' ? (value as { url: string }).url : undefined;
      if (!url || !/^https?:\/\/\S+$/.test(url)) return fail(`takes an http(s) URL, not ${describe(value)}`);
      const text = typeof value === 'object' && typeof (value as { text?: unknown }).text === 'string' ? (value as { text: string }).text : url;
      return { url, text };
    }
    case 'checkbox':
      // monday has no "unchecked" value: an unchecked box is an empty column.
      return value === true || value === 'true' ? { checked: 'true' } : value === false || value === 'false' ? {} : fail(`takes true or false, not ${describe(value)}`);
    case 'dropdown': {
      const labels = (Array.isArray(value) ? value : [value]).filter((label) => label !== null && label !== '');
      if (!labels.every((label) => typeof label === 'string' || typeof label === 'number')) return fail(`takes a label or a list of labels, not ${describe(value)}`);
      return { labels: labels.map(String) };
    }
    case 'country': {
      if (typeof value !== 'string') return fail(`takes a country (ISO 3166 alpha-2 code or English name), not ${describe(value)}`);
      const lib = countries();
      const trimmed = value.trim();
      const code = /^[A-Za-z]{2}$/.test(trimmed) && lib.isValid(trimmed.toUpperCase()) ? trimmed.toUpperCase() : lib.getAlpha2Code(trimmed, 'en');
      const name = code ? lib.getName(code, 'en') : undefined;
      if (!code || !name) return fail(`takes a country (ISO 3166 alpha-2 code or English name), not ${describe(value)}`);
      return { countryCode: code, countryName: name };
    }
    case 'board_relation': {
      const ids = (Array.isArray(value) ? value : [value]).map((id) => Number(id));
      if (!ids.every((id) => Number.isSafeInteger(id) && id > 0)) return fail(`takes item ids, not ${describe(value)}`);
      return { item_ids: ids };
    }
    default:
      return fail('is a column type ctbridge does not write');
  }
}

/** Line items as the lines of a long-text column: `2 × Name (SKU) — 12.50 EUR`, what each has of those. */
export function lineItemsText(items: unknown): string {
  const list = Array.isArray(items) ? items : [];
  return list
    .map((line) => {
      if (line === null || typeof line !== 'object') return textOf(line);
      const l = line as Record<string, unknown>;
      const parts = [l.quantity !== undefined ? `${textOf(l.quantity)} × ` : '', textOf(l.name ?? l.sku ?? l.id ?? ''), l.sku !== undefined && l.name !== undefined ? ` (${textOf(l.sku)})` : ''];
      const price = l.price ?? l.total ?? l.totalPrice;
      if (price !== undefined && price !== null) parts.push(` — ${typeof price === 'object' ? formatMoney(price as Record<string, unknown>) : textOf(price)}`);
      return parts.join('');
    })
    .join('\n');
}

/** A value as text: scalars as they are, objects and lists as JSON. */
export function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : `${value as number | boolean | string}`;
}

function formatMoney(money: Record<string, unknown>): string {
  if (typeof money.centAmount === 'number') {
    const digits = typeof money.fractionDigits === 'number' ? money.fractionDigits : 2;
    return `${(money.centAmount / 10 ** digits).toFixed(digits)} ${String(money.currencyCode)}`;
  }
  return JSON.stringify(money);
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  // A commercetools Money (centAmount with its fraction digits).
  if (value && typeof value === 'object' && typeof (value as { centAmount?: unknown }).centAmount === 'number') {
    const money = value as { centAmount: number; fractionDigits?: number };
    return money.centAmount / 10 ** (money.fractionDigits ?? 2);
  }
  return undefined;
}

/** A date as {date} or a date-time as {date,time} in UTC. */
function toDate(value: unknown): { date: string; time?: string } | undefined {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) return Number.isNaN(Date.parse(value)) ? undefined : { date: value };
  const at = typeof value === 'number' ? new Date(value) : typeof value === 'string' ? new Date(value) : undefined;
  if (!at || Number.isNaN(at.getTime())) return undefined;
  const iso = at.toISOString();
  return { date: iso.slice(0, 10), time: iso.slice(11, 19) };
}

function truncate(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
