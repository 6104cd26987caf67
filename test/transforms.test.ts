// The mapping transforms one by one, on the edge cases a shop's data has: missing values, wrong kinds, national
// phone numbers, country names in other languages, money of every precision, time zones, partial translations.
import { describe, expect, it } from 'vitest';
import { compilePipeline, compileTransform, TransformError, type TransformContext } from '../src/mapping/transforms.ts';

const run = (step: unknown, value: unknown, context: TransformContext = {}, secrets = {}) => compileTransform(step, secrets)(value, context);

describe('text transforms', () => {
  it('trim, lower and upper change text and pass everything else through', () => {
    expect(run('trim', '  Anna  ')).toBe('Anna');
    expect(run('lower', 'ÄNNA@Example.COM')).toBe('änna@example.com');
    expect(run('upper', 'straße')).toBe('STRASSE');
    for (const name of ['trim', 'lower', 'upper']) {
      expect(run(name, null)).toBeNull();
      expect(run(name, undefined)).toBeUndefined();
      expect(run(name, 42)).toBe(42);
    }
  });

  it('truncate cuts whole characters and adds the ellipsis only when it cuts', () => {
    expect(run({ truncate: { length: 5 } }, 'Hello world')).toBe('Hello');
    expect(run({ truncate: { length: 6, ellipsis: '…' } }, 'Hello world')).toBe('Hello…');
    expect(run({ truncate: { length: 20, ellipsis: '…' } }, 'Hello')).toBe('Hello');
    // An emoji is two UTF-16 units; it is kept or dropped whole.
    expect(run({ truncate: { length: 3 } }, 'ab😀cd')).toBe('ab😀');
    expect(() => compileTransform({ truncate: { length: 1, ellipsis: '...' } })).toThrow(/ellipsis must be shorter/);
    expect(() => compileTransform({ truncate: {} })).toThrow(/transform "truncate": length/);
  });

  it('last takes a list\'s last item', () => {
    expect(run('last', ['ON-1', 'ON-2'])).toBe('ON-2');
    expect(run('last', [])).toBeNull();
    expect(run('last', 'ON-1')).toBe('ON-1');
    expect(run('last', null)).toBeNull();
  });

  it('join keeps the non-empty items of a list', () => {
    expect(run('join', ['Unter den Linden 1', null, '', 'Berlin'])).toBe('Unter den Linden 1, Berlin');
    expect(run({ join: { separator: ' / ' } }, ['a', 2, 'c'])).toBe('a / 2 / c');
    expect(run('join', [])).toBe('');
    expect(run('join', 'not a list')).toBe('not a list');
  });

  it('default replaces null, missing and empty text only', () => {
    const step = { default: { value: 'unknown' } };
    expect(run(step, null)).toBe('unknown');
    expect(run(step, undefined)).toBe('unknown');
    expect(run(step, '')).toBe('unknown');
    expect(run(step, 0)).toBe(0);
    expect(run(step, false)).toBe(false);
    expect(run(step, 'x')).toBe('x');
  });

  it('map looks values up, with or without a default for the rest', () => {
    const table = { Open: 'new', Confirmed: 'in_progress', Complete: 'done' };
    expect(run({ map: { table } }, 'Confirmed')).toBe('in_progress');
    expect(run({ map: { table } }, 'Cancelled')).toBe('Cancelled');
    expect(run({ map: { table, default: 'other' } }, 'Cancelled')).toBe('other');
    expect(run({ map: { table: { '1': 'one' } } }, 1)).toBe('one');
    expect(run({ map: { table, default: 'other' } }, null)).toBeNull();
    // Keys like "constructor" are table entries, not the prototype's.
    expect(run({ map: { table } }, 'constructor')).toBe('constructor');
  });
});

describe('e164', () => {
  it('reads a national number in the record\'s country', () => {
    expect(run('e164', '030 1234567', { country: 'DE' })).toBe('+49301234567');
    expect(run('e164', '020 7946 0958', { country: 'GB' })).toBe('+442079460958');
    expect(run('e164', '(415) 555-2671', { country: 'us' })).toBe('+14155552671');
  });

  it('keeps an international number whatever the country, and an explicit region beats the record\'s', () => {
    expect(run('e164', '+44 20 7946 0958', { country: 'DE' })).toBe('+442079460958');
    expect(run('e164', '0049 30 1234567', { country: 'DE' })).toBe('+49301234567');
    expect(run({ e164: { region: 'AT' } }, '01 5123456', { country: 'DE' })).toBe('+4315123456');
  });

  it('gives null for what is not a valid number, and cannot guess a national number without a country', () => {
    expect(run('e164', 'call me', { country: 'DE' })).toBeNull();
    expect(run('e164', '123', { country: 'DE' })).toBeNull();
    expect(run('e164', '030 1234567')).toBeNull();
    expect(run('e164', null, { country: 'DE' })).toBeNull();
  });
});

describe('country', () => {
  it('reads alpha-2, alpha-3 and English names, whatever the case', () => {
    expect(run('country', 'de')).toBe('DE');
    expect(run('country', 'DEU')).toBe('DE');
    expect(run('country', 'Germany')).toBe('DE');
    expect(run('country', ' united kingdom ')).toBe('GB');
    expect(run({ country: { as: 'alpha3' } }, 'FR')).toBe('FRA');
  });

  it('names a country in the record\'s language or a given one, and reads names in it', () => {
    expect(run({ country: { as: 'name' } }, 'DE', { locale: 'de-DE' })).toBe('Deutschland');
    expect(run({ country: { as: 'name' } }, 'DE', { locale: 'en-GB' })).toBe('Germany');
    expect(run({ country: { as: 'name', language: 'fr' } }, 'DE')).toBe('Allemagne');
    expect(run('country', 'Deutschland', { locale: 'de-AT' })).toBe('DE');
  });

  it('gives null for what is no country, and refuses a language it has no names in', () => {
    expect(run('country', 'XX')).toBeNull();
    expect(run('country', 'Atlantis')).toBeNull();
    expect(run('country', 49)).toBe(49);
    expect(() => compileTransform({ country: { as: 'name', language: 'zz' } })).toThrow(/no country names in language "zz"/);
    expect(() => compileTransform({ country: { as: 'flag' } })).toThrow(/transform "country": as/);
  });
});

describe('money', () => {
  const euro = { type: 'centPrecision', currencyCode: 'EUR', centAmount: 123456, fractionDigits: 2 };

  it('writes cent-precision money as a decimal string, minor units or an object', () => {
    expect(run('money', euro)).toBe('1234.56');
    expect(run({ money: { as: 'minor' } }, euro)).toBe(123456);
    expect(run({ money: { as: 'object' } }, euro)).toEqual({ amount: 123456, currency: 'EUR' });
  });

  it('handles small, negative and zero-decimal amounts exactly', () => {
    expect(run('money', { ...euro, centAmount: 5 })).toBe('0.05');
    expect(run('money', { ...euro, centAmount: -1999 })).toBe('-19.99');
    expect(run('money', { ...euro, centAmount: 0 })).toBe('0.00');
    expect(run('money', { type: 'centPrecision', currencyCode: 'JPY', centAmount: 1500, fractionDigits: 0 })).toBe('1500');
    expect(run('money', { type: 'centPrecision', currencyCode: 'KWD', centAmount: 1234, fractionDigits: 3 })).toBe('1.234');
    // 2^53 - 1 cents: no floating-point digits lost.
    expect(run('money', { ...euro, centAmount: Number.MAX_SAFE_INTEGER })).toBe('90071992547409.91');
  });

  it('uses the cent amount of high-precision money', () => {
    const precise = { type: 'highPrecision', currencyCode: 'EUR', centAmount: 1235, preciseAmount: 123456, fractionDigits: 4 };
    expect(run('money', precise)).toBe('12.35');
    expect(run({ money: { as: 'minor' } }, precise)).toBe(1235);
  });

  it('writes it as a number for attributes that take one', () => {
    expect(run({ money: { as: 'number' } }, euro)).toBe(1234.56);
    expect(run({ money: { as: 'number' } }, { ...euro, centAmount: 5 })).toBe(0.05);
  });

  it('sums a list of money per currency, in currency order, exactly', () => {
    const usd = { type: 'centPrecision', currencyCode: 'USD', centAmount: 999, fractionDigits: 2 };
    const yen = { type: 'centPrecision', currencyCode: 'JPY', centAmount: 1500, fractionDigits: 0 };
    const precise = { type: 'highPrecision', currencyCode: 'EUR', centAmount: 1, preciseAmount: 123, fractionDigits: 4 };
    expect(run('sumByCurrency', [usd, euro, yen, euro, precise])).toEqual({ EUR: '2469.13', JPY: '1500', USD: '9.99' });
    expect(Object.keys(run('sumByCurrency', [usd, euro]) as object)).toEqual(['EUR', 'USD']);
    expect(run({ sumByCurrency: { as: 'minor' } }, [euro, euro])).toEqual({ EUR: 246912 });
    expect(run({ sumByCurrency: { as: 'number' } }, [usd, usd, null, 'x', { centAmount: 1 }])).toEqual({ USD: 19.98 });
    expect(run('sumByCurrency', [])).toEqual({});
    expect(run('sumByCurrency', null)).toBeNull();
    expect(() => compileTransform({ sumByCurrency: { as: 'object' } })).toThrow(/transform "sumByCurrency": as/);
  });

  it('passes through what is not money', () => {
    expect(run('money', null)).toBeNull();
    expect(run('money', '12.00')).toBe('12.00');
    expect(run('money', { centAmount: 100 })).toEqual({ centAmount: 100 });
  });
});

describe('richLink', () => {
  it('makes a value a link with its text, the value URL-encoded in the link; refuses a URL without {value}', () => {
    const link = { richLink: { url: 'https://shop.example/orders/{value}' } };
    expect(run(link, 'ON 42/1')).toEqual({ url: 'https://shop.example/orders/ON%2042%2F1', value: 'ON 42/1' });
    expect(run(link, 42)).toEqual({ url: 'https://shop.example/orders/42', value: '42' });
    expect(run(link, null)).toBeNull();
    expect(run(link, { id: 1 })).toEqual({ id: 1 });
    expect(() => compileTransform({ richLink: { url: 'https://shop.example/orders' } })).toThrow(/transform "richLink": url: an http\(s\) URL with \{value\}/);
  });
});

describe('dates', () => {
  it('normalises to ISO 8601 in UTC and to unix seconds', () => {
    expect(run('iso8601', '2026-01-05T10:00:00+01:00')).toBe('2026-01-05T09:00:00.000Z');
    expect(run('iso8601', 1767603600)).toBe('2026-01-05T09:00:00.000Z');
    expect(run('unixSeconds', '2026-01-05T09:00:00.999Z')).toBe(1767603600);
    expect(run('unixSeconds', 'yesterday')).toBeNull();
    expect(run('iso8601', '')).toBeNull();
    expect(run('iso8601', null)).toBeNull();
  });

  it('gives the calendar date in a time zone', () => {
    const lateEvening = '2026-01-05T23:30:00.000Z';
    expect(run('date', lateEvening)).toBe('2026-01-05');
    expect(run({ date: { timeZone: 'Europe/Berlin' } }, lateEvening)).toBe('2026-01-06');
    expect(run({ date: { timeZone: 'America/New_York' } }, lateEvening)).toBe('2026-01-05');
    expect(() => compileTransform({ date: { timeZone: 'Mars/Olympus' } })).toThrow(/"Mars\/Olympus" is not a time zone/);
  });
});

describe('localized', () => {
  const name = { en: 'Shirt', 'de-DE': 'Hemd', fr: 'Chemise' };

  it('picks the locale, then its language, then the fallbacks, then the first there is', () => {
    expect(run('localized', name, { locale: 'de-DE' })).toBe('Hemd');
    expect(run('localized', name, { locale: 'fr-CA' })).toBe('Chemise');
    expect(run('localized', name, { locale: 'de-AT' })).toBe('Hemd');
    expect(run({ localized: { fallback: ['fr'] } }, name, { locale: 'it-IT' })).toBe('Chemise');
    expect(run('localized', name, { locale: 'it-IT' })).toBe('Shirt');
    expect(run('localized', name)).toBe('Shirt');
  });

  it('matches locale keys whatever their case, and passes through what is not a LocalizedString', () => {
    expect(run('localized', { 'en-us': 'Color' }, { locale: 'en-US' })).toBe('Color');
    expect(run('localized', {}, { locale: 'en' })).toBeNull();
    expect(run('localized', 'plain', { locale: 'en' })).toBe('plain');
    expect(run('localized', null, { locale: 'en' })).toBeNull();
  });
});

describe('hash and mask', () => {
  const secrets = { hashKey: 'a-test-key-that-is-long-enough' };

  it('hash is a keyed, stable token that joins differently written forms of one value', () => {
    const a = run('hash', 'Anna@Example.com', {}, secrets);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(run('hash', '  anna@example.com ', {}, secrets)).toBe(a);
    expect(run({ hash: { normalize: false } }, 'Anna@Example.com', {}, secrets)).not.toBe(a);
    expect(run('hash', 'anna@example.com', {}, { hashKey: 'another-key-entirely' })).not.toBe(a);
    expect(run('hash', null, {}, secrets)).toBeNull();
    expect(() => compileTransform('hash')).toThrow(/no hash key is configured/);
  });

  it('mask hides most of an e-mail, a phone number and other text', () => {
    expect(run('mask', 'jane.doe@example.com')).toBe('j***@example.com');
    expect(run('mask', '+49 30 1234567')).toBe('+** ** *****67');
    expect(run({ mask: { keep: 4 } }, '+49 30 1234567')).toBe('+** ** ***4567');
    expect(run('mask', 'Jane')).toBe('J***');
    expect(run({ mask: { kind: 'text' } }, 'x')).toBe('*');
    expect(run('mask', null)).toBeNull();
  });
});

describe('compiling pipelines', () => {
  it('runs the steps in order', () => {
    const pipeline = compilePipeline(['trim', 'lower', { truncate: { length: 4 } }]);
    expect(pipeline('  ANNA-MARIA ', {})).toBe('anna');
  });

  it('names the step, the transform and what is wrong', () => {
    expect(() => compilePipeline(['trim', 'lowercase'])).toThrow(/^pipe\[1\]: unknown transform "lowercase" \(known: trim, lower, upper/);
    expect(() => compilePipeline([{ map: { tabel: {} } }])).toThrow(/pipe\[0\]: transform "map"/);
    expect(() => compilePipeline([{ trim: null, lower: null }])).toThrow(/exactly one name/);
    expect(() => compilePipeline([42])).toThrow(TransformError);
  });
});
