// Value detectors for personal data whose form gives it away wherever it sits: e-mail addresses (also
// URL-encoded, `ada%40example.com`) and phone numbers. Redaction (observability/redact.ts) uses them on whatever it
// keeps; the PII policy (policy.ts) on whatever a mapped field produces. Each is one pass over the text with no
// backtracking regex, so the time they take is linear in its length whatever the text holds (an e-mail regex of
// the form `[^@]+@[^@]+\.[a-z]+` takes quadratic time on `a@a@a@…` or a long run without a dot).

export interface TextSpan {
  start: number;
  end: number;
}

/** Characters that end an address part: white space, quotes, brackets and the separators of URLs and lists. */
function isAddressStop(code: number): boolean {
  if (code <= 32 || code === 0x7f) return true;
  switch (code) {
    case 34: // "
    case 38: // &
    case 39: // '
    case 40: // (
    case 41: // )
    case 44: // ,
    case 47: // /
    case 58: // :
    case 59: // ;
    case 60: // <
    case 61: // =
    case 62: // >
    case 63: // ?
    case 64: // @
    case 91: // [
    case 92: // \
    case 93: // ]
    case 123: // {
    case 124: // |
    case 125: // }
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
    case 0xfeff:
      return true;
    default:
      return code >= 0x2000 && code <= 0x200b;
  }
}

function isAsciiLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** The length of the `@` at `i`: 1 for `@`, 3 for its URL encoding `%40`, 0 when there is none. */
function atSignAt(text: string, i: number): number {
  const code = text.charCodeAt(i);
  if (code === 64) return 1;
  return code === 37 && text.charCodeAt(i + 1) === 52 && text.charCodeAt(i + 2) === 48 ? 3 : 0;
}

/**
 * Where e-mail addresses are in `text`: a local part, `@` (or `%40`), and a domain whose last dot is followed by
 * two or more letters. Parts stop at white space, quotes, brackets and URL separators.
 */
export function emailSpans(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  if (text.indexOf('@') === -1 && text.indexOf('%40') === -1) return spans;
  const n = text.length;
  // The local part of the next address starts after this (the end of the last address or `@`).
  let floor = 0;
  let i = 0;
  while (i < n) {
    let atLength = 0;
    while (i < n && (atLength = atSignAt(text, i)) === 0) i += 1;
    if (atLength === 0) break;
    const at = i;
    let start = at;
    while (start > floor && !isAddressStop(text.charCodeAt(start - 1))) start -= 1;
    const domain = at + atLength;
    let end = domain;
    while (end < n && !isAddressStop(text.charCodeAt(end)) && atSignAt(text, end) === 0) end += 1;
    // The last dot followed by two letters, with a label before it.
    let matchEnd = -1;
    for (let dot = end - 3; dot > domain; dot -= 1) {
      if (text.charCodeAt(dot) === 46 && isAsciiLetter(text.charCodeAt(dot + 1)) && isAsciiLetter(text.charCodeAt(dot + 2))) {
        matchEnd = dot + 3;
        while (matchEnd < end && isAsciiLetter(text.charCodeAt(matchEnd))) matchEnd += 1;
        break;
      }
    }
    if (start < at && matchEnd !== -1) {
      spans.push({ start, end: matchEnd });
      floor = matchEnd;
      i = matchEnd;
    } else {
      floor = domain;
      i = domain;
    }
  }
  return spans;
}

/** The whole text (white space around it aside) is one e-mail address. */
export function isEmailAddress(text: string): boolean {
  const spans = emailSpans(text);
  if (spans.length !== 1) return false;
  const { start, end } = spans[0]!;
  return text.slice(0, start).trim() === '' && text.slice(end).trim() === '';
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isWordCode(code: number): boolean {
  return isDigit(code) || isAsciiLetter(code) || code === 95;
}

/** Characters a phone number is written with between its digits. */
function isPhoneSeparator(code: number): boolean {
  return code === 32 || code === 45 || code === 46 || code === 40 || code === 41 || code === 47;
}

/**
 * Where international phone numbers are in `text`: `+` (not inside a word, as in base64) and 7–15 digits written
 * with spaces, dashes, dots, slashes or parentheses, not followed by a letter or digit.
 */
export function internationalPhoneSpans(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  let from = 0;
  for (;;) {
    const plus = text.indexOf('+', from);
    if (plus === -1) return spans;
    from = plus + 1;
    if (plus > 0 && isWordCode(text.charCodeAt(plus - 1))) continue;
    let i = plus + 1;
    let digits = 0;
    let lastDigit = -1;
    let separators = 0;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (isDigit(code)) {
        digits += 1;
        lastDigit = i;
        separators = 0;
      } else if (isPhoneSeparator(code) && separators < 2) {
        separators += 1;
      } else {
        break;
      }
      i += 1;
    }
    if (lastDigit === -1) continue;
    // `+4917012345678abc` is part of a longer token.
    if (digits >= 7 && digits <= 15 && !isWordCode(text.charCodeAt(lastDigit + 1))) spans.push({ start: plus, end: lastDigit + 1 });
    from = Math.max(from, lastDigit + 1);
  }
}

/** The whole text is an international phone number (`+49 170 1234567`, `+14155550123`). */
export function isInternationalPhone(text: string): boolean {
  const trimmed = text.trim();
  if (!trimmed.startsWith('+')) return false;
  const spans = internationalPhoneSpans(trimmed);
  return spans.length === 1 && spans[0]!.start === 0 && spans[0]!.end === trimmed.length;
}

const DATE_LIKE = /^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$/;

/**
 * The whole text reads as a phone number, national ones too (`0664 1234567`, `(030) 123-4567`, `+43 …`,
 * `0049…`): 7–15 digits in the characters phone numbers are written with, starting with `+`, `0` or `(`, or
 * grouped; not a date. For redaction, where a false positive costs nothing.
 */
export function isPhoneLike(text: string): boolean {
  const trimmed = text.trim();
  if (trimmed.length < 7 || trimmed.length > 32 || DATE_LIKE.test(trimmed)) return false;
  let digits = 0;
  let grouped = false;
  for (let i = 0; i < trimmed.length; i += 1) {
    const code = trimmed.charCodeAt(i);
    if (isDigit(code)) digits += 1;
    else if (code === 43 && i === 0) continue;
    else if (isPhoneSeparator(code)) grouped ||= code !== 46;
    else return false;
  }
  if (digits < 7 || digits > 15) return false;
  const first = trimmed.charCodeAt(0);
  return first === 43 || first === 48 || first === 40 || grouped;
}

function isJoiner(code: number): boolean {
  return code === 45 || code === 46 || code === 47; // - . /
}

/** What starts at `i` continues a word before it (`abc-0775`, `1.0775`): part of a longer token, like a UUID. */
function partOfWordBefore(text: string, i: number): boolean {
  if (i === 0) return false;
  const before = text.charCodeAt(i - 1);
  return isWordCode(before) || (isJoiner(before) && i > 1 && isWordCode(text.charCodeAt(i - 2)));
}

/** What ends before `i` goes on into a word (`…958d`, `…958-d`). */
function partOfWordAfter(text: string, i: number): boolean {
  const after = text.charCodeAt(i);
  return isWordCode(after) || (isJoiner(after) && isWordCode(text.charCodeAt(i + 1)));
}

/**
 * Where national phone numbers are in `text`: a trunk prefix `0` (or `(0`), not inside a word or a decimal, then
 * 8–15 digits in at least two groups apart by single spaces, dashes, slashes or parentheses (`0207 946 0958`,
 * `(030) 123-4567`), or starting `00` (an international call prefix). For redaction, where a false positive
 * costs nothing.
 */
export function nationalPhoneSpans(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    const start = i;
    const opening = code === 40 && text.charCodeAt(i + 1) === 48;
    if ((code !== 48 && !opening) || partOfWordBefore(text, i)) {
      i += 1;
      continue;
    }
    let j = opening ? i + 1 : i;
    let digits = 0;
    let groups = 1;
    let lastDigit = -1;
    // Separators since the last digit: one, or two around a parenthesis (`(030) 123`).
    let separators = 0;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (isDigit(c)) {
        if (separators > 0 && lastDigit !== -1) groups += 1;
        digits += 1;
        lastDigit = j;
        separators = 0;
      } else if (c !== 46 && isPhoneSeparator(c) && (separators === 0 || (separators === 1 && (c === 40 || text.charCodeAt(j - 1) === 41)))) {
        separators += 1;
      } else {
        break;
      }
      j += 1;
    }
    const international = text.charCodeAt(start + (opening ? 1 : 0) + 1) === 48;
    if (digits >= 8 && digits <= 15 && (groups >= 2 || international) && !partOfWordAfter(text, lastDigit + 1)) {
      spans.push({ start, end: lastDigit + 1 });
    }
    i = Math.max(i + 1, lastDigit + 1);
  }
  return spans;
}

/** Whether a text starts (after white space) like a JSON object or array. */
export function looksLikeJson(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 32 || code === 9 || code === 10 || code === 13) continue;
    return code === 123 || code === 91; // { or [
  }
  return false;
}
