// Payment data never leaves ctbridge, whatever a mapping says: every outgoing payload is scanned for card numbers
// (digit runs of a card brand's length and prefix that pass the Luhn check), IBANs (valid mod-97 check digits)
// and CVV-like fields (a security-code name holding 3–4 digits). A finding blocks the send; `maskPaymentData`
// keeps the same values out of dead letters and logs.

export type PaymentDataKind = 'card number' | 'IBAN' | 'card security code';

export interface PaymentDataFinding {
  /** Where in the payload: `fields.note`, `lines[2].comment`. */
  path: string;
  kind: PaymentDataKind;
}

// 13–19 digits, optionally grouped by single spaces or dashes (4111 1111 1111 1111), not part of a longer number.
const CARD_CANDIDATE = /(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d])/g;
// Two letters, two check digits, then 11–30 letters or digits, optionally grouped by spaces (DE89 3704 0044 …).
const IBAN_CANDIDATE = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/gi;
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
    if (text.length >= 13 && containsCardNumber(text)) findings.push({ path, kind: 'card number' });
    if (typeof value === 'string' && text.length >= 15 && containsIban(text)) findings.push({ path, kind: 'IBAN' });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => visit(item, `${path}[${index}]`, key, findings, depth + 1));
    return;
  }
  for (const [name, item] of Object.entries(value)) visit(item, path === '' ? name : `${path}.${name}`, name, findings, depth + 1);
}

function containsCardNumber(text: string): boolean {
  for (const match of text.matchAll(CARD_CANDIDATE)) if (isCardNumber(match[0].replace(/[ -]/g, ''))) return true;
  return false;
}

function containsIban(text: string): boolean {
  for (const match of text.matchAll(IBAN_CANDIDATE)) if (isIban(match[0])) return true;
  return false;
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

/** An IBAN (spaces allowed) whose check digits are right (ISO 13616 mod 97). */
export function isIban(text: string): boolean {
  const compact = text.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(compact)) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : char;
    for (const digit of digits) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

/** Text with card numbers and IBANs replaced, for logs and dead letters. */
export function maskPaymentData(text: string): string {
  if (text.length < 13) return text;
  return text
    .replace(CARD_CANDIDATE, (match) => (isCardNumber(match.replace(/[ -]/g, '')) ? '[card number]' : match))
    .replace(IBAN_CANDIDATE, (match) => (isIban(match) ? '[IBAN]' : match));
}
