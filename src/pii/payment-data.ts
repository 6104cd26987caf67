// Payment data never leaves ctbridge, whatever a mapping says: every outgoing payload is scanned for card numbers
// (a brand's prefix and length, Luhn check), IBANs (a registered country's length, mod-97 check digits) and
// CVV-like fields (a security-code name holding 3–4 digits). A finding blocks the send; `maskPaymentData` keeps the
// same values out of dead letters and logs.
//
// A card number or IBAN is a token of its own: text is cut into words (letters and digits, joined by single `-`
// or `.` between them, so a UUID, a hex digest or `ORDER-4111…` is one word), and a card is a word of digits and
// dashes (4111-1111-1111-1111), or a few such words apart by single spaces (4111 1111 1111 1111, 3782 822463
// 10005); never digits inside a longer word. Both scans are one pass over the text (no backtracking regex), so
// their cost is linear in its length, whatever it holds.

export type PaymentDataKind = 'card number' | 'IBAN' | 'card security code';

export interface PaymentDataFinding {
  /** Where in the payload: `fields.note`, `lines[2].comment`. */
  path: string;
  kind: PaymentDataKind;
}

const SECURITY_CODE_KEY = /^(cvv2?|cvc2?|cid|csc|securitycode|cardsecuritycode|cardverificationvalue|cardverificationcode|verificationcode)$/i;
const SECURITY_CODE_VALUE = /^\d{3,4}$/;

/** Every place in `value` that holds payment data (at most 20, which is enough to block and explain). */
export function findPaymentData(value: unknown, path = ''): PaymentDataFinding[] {
  const findings: PaymentDataFinding[] = [];
  visit(value, path, undefined, findings, 0);
  return findings;
}

function visit(value: unknown, path: string, key: string | undefined, findings: PaymentDataFinding[], depth: number): void {
  if (findings.length >= 20 || depth > 32) return;
  if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value);
    if (key !== undefined && SECURITY_CODE_KEY.test(key) && SECURITY_CODE_VALUE.test(text.trim())) findings.push({ path, kind: 'card security code' });
    if (text.length >= 13 && scan(text, CARD, true).length > 0) findings.push({ path, kind: 'card number' });
    if (typeof value === 'string' && text.length >= 15 && scan(text, IBAN, true).length > 0) findings.push({ path, kind: 'IBAN' });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => visit(item, `${path}[${index}]`, key, findings, depth + 1));
    return;
  }
  for (const [name, item] of Object.entries(value)) visit(item, path === '' ? name : `${path}.${name}`, name, findings, depth + 1);
}

/** Text with card numbers and IBANs replaced, for logs and dead letters. */
export function maskPaymentData(text: string): string {
  if (text.length < 13) return text;
  const spans = scan(text, CARD | IBAN, false);
  if (spans.length === 0) return text;
  let out = '';
  let last = 0;
  for (const span of spans) {
    if (span.start < last) {
      last = Math.max(last, span.end);
      continue;
    }
    out += `${text.slice(last, span.start)}${span.kind === CARD ? '[card number]' : '[IBAN]'}`;
    last = span.end;
  }
  return out + text.slice(last);
}

/** `text` holds a card number or an IBAN. */
export function containsPaymentData(text: string): boolean {
  return text.length >= 13 && scan(text, CARD | IBAN, true).length > 0;
}

/** A digit string of a card brand's prefix and length that passes the Luhn check. */
export function isCardNumber(digits: string): boolean {
  if (!/^\d{13,19}$/.test(digits) || !hasCardPrefix(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i -= 1) {
    let digit = digits.charCodeAt(i) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

// Issuer prefixes of the major brands (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). They
// exclude what commonly looks like a Luhn-valid digit run but is not a card: millisecond timestamps (1…), phone
// numbers with a country code (+49…: the + is not a digit, but 49… is no card prefix either).
function hasCardPrefix(digits: string): boolean {
  const two = Number(digits.slice(0, 2));
  const three = Number(digits.slice(0, 3));
  const four = Number(digits.slice(0, 4));
  const length = digits.length;
  if (digits[0] === '4') return length === 13 || length === 16 || length === 19; // Visa
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return length === 16; // Mastercard
  if (two === 34 || two === 37) return length === 15; // American Express
  if (four === 6011 || two === 65 || (three >= 644 && three <= 649)) return length >= 16; // Discover
  if (four >= 3528 && four <= 3589) return length >= 16; // JCB
  if ((three >= 300 && three <= 305) || two === 36 || two === 38) return length >= 14; // Diners Club
  if (two === 62) return length >= 16; // UnionPay
  if (two === 50 || (two >= 56 && two <= 69)) return length >= 12; // Maestro
  return false;
}

// IBAN lengths by country (the ISO 13616 registry, and the countries that use IBANs outside it): a candidate of
// another length, or from a country without IBANs, is not one, which keeps hex digests and references out.
const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  Object.entries({
    AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22,
    CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22,
    GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30,
    KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20,
    MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22,
    RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
    UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
    // Not in the registry, but issued: francophone Africa, Maghreb, Iran and others.
    AO: 25, BF: 28, BJ: 28, CF: 27, CG: 27, CI: 28, CM: 27, CV: 25, DZ: 26, GA: 27, GQ: 27, GW: 25, IR: 26, KM: 27,
    MA: 28, MG: 27, ML: 28, MZ: 25, NE: 28, SN: 28, TD: 27, TG: 28,
  }),
);

/** An IBAN (spaces allowed) of its country's length whose check digits are right (ISO 13616 mod 97). */
export function isIban(text: string): boolean {
  const compact = text.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(compact) || IBAN_LENGTHS.get(compact.slice(0, 2)) !== compact.length) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : char;
    for (const digit of digits) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

// ---------------------------------------------------------------------------------------------------------------
// The scan: words, then runs of words apart by single spaces, then windows of those runs.

const CARD = 1;
const IBAN = 2;

interface Span {
  start: number;
  end: number;
  kind: number;
}

// What a word is made of.
const DIGIT = 1;
const LETTER = 2;
const DASH = 4;
/** `.`, `_` or a letter or digit outside ASCII: such a word is neither a card number nor an IBAN. */
const OTHER = 8;

const NON_ASCII_WORD = /^[\p{L}\p{N}\p{M}]/u;

/** What each ASCII character is: 0 (not part of a word), DIGIT, LETTER or OTHER (`_`). */
const ASCII_KIND = new Uint8Array(128);
for (let code = 0; code < 128; code += 1) {
  ASCII_KIND[code] = code >= 48 && code <= 57 ? DIGIT : (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ? LETTER : code === 95 ? OTHER : 0;
}

/** 0 when the non-ASCII character at `i` does not belong in a word, else its width in UTF-16 units. */
function nonAsciiWidth(text: string, i: number): number {
  const point = text.codePointAt(i)!;
  return NON_ASCII_WORD.test(String.fromCodePoint(point)) ? (point > 0xffff ? 2 : 1) : 0;
}

/** Whether the character at `i` belongs in a word. */
function isWordChar(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  return code < 128 ? ASCII_KIND[code] !== 0 : nonAsciiWidth(text, i) > 0;
}

// Fixed-length tests (no backtracking) that every card number / IBAN passes: most texts fail both, and are done.
const CARD_HINT = /[0-9][0-9 -]{12}/;
const IBAN_HINT = /[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]{11}/;

/**
 * The card numbers and IBANs (`kinds`) in `text`, in order and not overlapping; with `first`, stops at the first.
 * Linear in the length of the text: every character is looked at a bounded number of times.
 */
function scan(text: string, kinds: number, first: boolean): Span[] {
  const spans: Span[] = [];
  if ((kinds & CARD) !== 0 && !CARD_HINT.test(text)) kinds &= ~CARD;
  if ((kinds & IBAN) !== 0 && !IBAN_HINT.test(text)) kinds &= ~IBAN;
  if (kinds === 0) return spans;
  const n = text.length;
  // The current run of words apart by single spaces that could make up a card number or an IBAN.
  const starts: number[] = [];
  const ends: number[] = [];
  const flags: number[] = [];
  const flush = () => {
    if (starts.length > 0) {
      const cards = spans.length;
      if ((kinds & CARD) !== 0) cardWindows(text, starts, ends, flags, spans, first);
      if ((kinds & IBAN) !== 0 && !(first && spans.length > 0)) ibanWindows(text, starts, ends, flags, spans, first, cards);
      starts.length = 0;
      ends.length = 0;
      flags.length = 0;
    }
  };
  let i = 0;
  while (i < n) {
    let code = text.charCodeAt(i);
    let kind = code < 128 ? ASCII_KIND[code]! : nonAsciiWidth(text, i) > 0 ? OTHER : 0;
    if (kind === 0) {
      i += 1;
      continue;
    }
    const start = i;
    i += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
    while (i < n) {
      code = text.charCodeAt(i);
      if (code < 128) {
        const next = ASCII_KIND[code]!;
        if (next !== 0) {
          kind |= next;
          i += 1;
          continue;
        }
        // A single `-` or `.` between two word characters joins them into one word.
        if ((code === 45 || code === 46) && i + 1 < n && isWordChar(text, i + 1)) {
          kind |= code === 45 ? DASH : OTHER;
          i += 1;
          continue;
        }
        break;
      }
      const width = nonAsciiWidth(text, i);
      if (width === 0) break;
      kind |= OTHER;
      i += width;
    }
    // Only words of digits (with dashes) or of ASCII letters and digits can be part of a card number or an IBAN.
    const usable = (kind & OTHER) === 0 && (kind & (LETTER | DASH)) !== (LETTER | DASH);
    const last = ends.length - 1;
    const joined = last >= 0 && start === ends[last]! + 1 && text.charCodeAt(start - 1) === 32;
    if (!usable || !joined) flush();
    // `+4930123456789` is a phone number, whatever its digits.
    if (usable && text.charCodeAt(start - 1) !== 43) {
      starts.push(start);
      ends.push(i);
      flags.push(kind);
    }
    if (first && spans.length > 0) return spans;
  }
  flush();
  if (spans.length > 1) spans.sort((a, b) => a.start - b.start);
  return spans;
}

/** Digits of text[start, end) without its dashes, and the lengths of its dash-separated groups. */
function digitGroups(text: string, start: number, end: number, groups: number[]): string {
  let digits = '';
  let group = 0;
  for (let i = start; i < end; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 45) {
      groups.push(group);
      group = 0;
    } else {
      digits += text[i];
      group += 1;
    }
  }
  groups.push(group);
  return digits;
}

/**
 * Card numbers among a run of words: a window of whole words, 13–19 digits that pass `isCardNumber`, either one
 * group of digits or groups of 3–6 (the last 1–6), as cards are written. The longest window from each word wins.
 */
function cardWindows(text: string, starts: number[], ends: number[], flags: number[], spans: Span[], first: boolean): void {
  const count = starts.length;
  let i = 0;
  while (i < count) {
    if ((flags[i]! & LETTER) !== 0) {
      i += 1;
      continue;
    }
    let digits = '';
    const groups: number[] = [];
    let best = -1;
    // A word longer than 19 digits and 18 dashes is no part of a card number.
    for (let j = i; j < count && (flags[j]! & LETTER) === 0 && ends[j]! - starts[j]! <= 37; j += 1) {
      digits += digitGroups(text, starts[j]!, ends[j]!, groups);
      if (digits.length > 19) break;
      if (digits.length >= 13 && groupsLikeCard(groups) && isCardNumber(digits)) best = j;
    }
    if (best === -1) {
      i += 1;
      continue;
    }
    spans.push({ start: starts[i]!, end: ends[best]!, kind: CARD });
    if (first) return;
    i = best + 1;
  }
}

function groupsLikeCard(groups: readonly number[]): boolean {
  if (groups.length === 1) return true;
  for (let g = 0; g < groups.length - 1; g += 1) if (groups[g]! < 3 || groups[g]! > 6) return false;
  const lastGroup = groups[groups.length - 1]!;
  return lastGroup >= 1 && lastGroup <= 6;
}

/**
 * IBANs among a run of words: from a word starting with a country code and two digits, whole words up to the
 * country's length, not overlapping the card numbers found in the run (spans from `cards` on, in order).
 */
function ibanWindows(text: string, starts: number[], ends: number[], flags: number[], spans: Span[], first: boolean, cards: number): void {
  const count = starts.length;
  const cardsEnd = spans.length;
  let card = cards;
  let i = 0;
  while (i < count) {
    const start = starts[i]!;
    const expected = (flags[i]! & DASH) === 0 && isLetterAt(text, start) && isLetterAt(text, start + 1) && isDigitAt(text, start + 2) && isDigitAt(text, start + 3)
      ? IBAN_LENGTHS.get(text.slice(start, start + 2).toUpperCase())
      : undefined;
    if (expected === undefined) {
      i += 1;
      continue;
    }
    let length = 0;
    let end = -1;
    let j = i;
    for (; j < count && (flags[j]! & DASH) === 0; j += 1) {
      length += ends[j]! - starts[j]!;
      if (length >= expected) break;
    }
    if (length === expected) end = j;
    while (card < cardsEnd && spans[card]!.end <= start) card += 1;
    const overlaps = end !== -1 && card < cardsEnd && spans[card]!.start < ends[end]!;
    if (end !== -1 && !overlaps && isIban(text.slice(start, ends[end]))) {
      spans.push({ start, end: ends[end]!, kind: IBAN });
      if (first) return;
      i = end + 1;
    } else {
      i += 1;
    }
  }
}

function isLetterAt(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

function isDigitAt(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  return code >= 48 && code <= 57;
}
