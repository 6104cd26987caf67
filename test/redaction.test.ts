// Redaction, unit by unit (issue 11, items 4, 11 and 12): linear-time detection that keeps up with adversarial
// megabyte inputs (the old e-mail pattern took about half an hour on 1 MiB: this file's 10 s per-test timeout is
// the bound, no timing is asserted) and still finds ordinary addresses; structural redaction of personal fields,
// custom fields, addresses, personal keys and encoded envelope data; URL credentials; and the logger that passes
// free text through it.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/logger.ts';
import { MAX_TEXT, REDACTED, redact, redactText, redactUrl } from '../src/observability/redact.ts';
import { emailSpans, internationalPhoneSpans, isEmailAddress } from '../src/pii/detectors.ts';

const MIB = 1024 * 1024;

describe('e-mail detection', () => {
  it('finds ordinary addresses, URL-encoded ones, and leaves what is not one alone', () => {
    const cases: Array<[string, string]> = [
      ['ada@example.com', REDACTED],
      ['Contact Ada.Lovelace+crm@mail.example.co.uk today', `Contact ${REDACTED} today`],
      ['<ada@example.com>, "bob@example.org"', `<${REDACTED}>, "${REDACTED}"`],
      ['mailto:ada@example.com?subject=x', `mailto:${REDACTED}?subject=x`],
      ['https://x.test/unsubscribe?email=ada%40example.com&id=7', `https://x.test/unsubscribe?email=${REDACTED}&id=7`],
      ['ADA%40EXAMPLE.COM', REDACTED],
      ['{"email":"ada@example.com","id":"c1"}', `{"email":"${REDACTED}","id":"c1"}`],
      ['first ada@example.com, then bob@example.net.', `first ${REDACTED}, then ${REDACTED}.`],
      ['version 1.2.3, user@localhost, @mention, a@b, 50%4 off', 'version 1.2.3, user@localhost, @mention, a@b, 50%4 off'],
    ];
    for (const [text, expected] of cases) expect(redactText(text), text).toBe(expected);
    expect(isEmailAddress(' ada@example.com ')).toBe(true);
    expect(isEmailAddress('ada@example.com and more')).toBe(false);
  });

  it('redacts adversarial megabyte strings correctly, in linear time (bounded by this test\'s timeout)', { timeout: 10_000 }, () => {
    const adversarial: Record<string, string> = {
      'a@ repeated': 'a@'.repeat(MIB / 2),
      '@ only': '@'.repeat(MIB),
      'no TLD': `${'a'.repeat(MIB / 2)}@${'b'.repeat(MIB / 2)}`,
      'dots, no letters after': `a@${'b.1'.repeat(MIB / 3)}`,
      'URL-encoded @ repeated': 'a%40'.repeat(MIB / 4),
      'unterminated JSON string': `"firstName":"${'x'.repeat(MIB)}`,
      'JSON keys without values': '"a" '.repeat(MIB / 4),
      'plus digits': '+1'.repeat(MIB / 2),
      'digit groups': '4 '.repeat(MIB / 2),
      'zeros and dashes': '0-'.repeat(MIB / 2),
    };
    for (const [name, text] of Object.entries(adversarial)) {
      const out = redactText(text);
      // What is read is cut at MAX_TEXT, and the cut is said; none of these holds an address to redact.
      expect(out.startsWith(text.slice(0, 1000)) || name === 'plus digits' || name === 'zeros and dashes', name).toBe(true);
      expect(out, name).toContain(`more characters not shown]`);
      expect(out.length, name).toBeLessThan(MAX_TEXT + 100);
      // Structures read what their budget allows, and keep a bounded part of each string.
      const structured = JSON.stringify(redact({ note: text, list: [text, text], data: text, [text.slice(0, 10_000)]: 1 }));
      expect(structured.length, name).toBeLessThan(64 * 1024);
    }
    // Dense real addresses are all found, as far as the text is read.
    const dense = 'ada@example.com '.repeat(MIB / 16);
    const out = redactText(dense);
    expect(out).not.toContain('@');
    expect(out.startsWith(`${REDACTED} ${REDACTED} `)).toBe(true);
    // The detectors alone, on the whole megabyte.
    expect(emailSpans('a@'.repeat(MIB / 2))).toEqual([]);
    expect(emailSpans(dense)).toHaveLength(MIB / 16);
    expect(internationalPhoneSpans('+1'.repeat(MIB / 2))).toEqual([]);
  });
});

describe('structural redaction', () => {
  const customer = {
    id: '8f3b6c1e-4d2a-4c5b-9e7f-1a2b3c4d5e6f',
    version: 7,
    key: 'customer-ada',
    customerNumber: 'C-1001',
    email: 'ada@example.com',
    firstName: 'Ada',
    lastName: 'Lovelace',
    givenName: 'Augusta',
    surname: 'Byron',
    phoneNumber: '+44 20 7946 0958',
    mobile: '07700 900123',
    dateOfBirth: '1815-12-10',
    companyName: 'Analytical Engines Ltd',
    vatId: 'GB123456789',
    city: 'London',
    street: 'St James Square 12',
    addresses: [{ id: 'addr-1', key: 'home', country: 'GB', streetName: 'St James Square', streetNumber: '12', postalCode: 'SW1Y 4JH', city: 'London', phone: '020 7946 0958', email: 'home@example.com', region: 'Greater London' }],
    shippingAddress: { country: 'GB', firstName: 'Ada', city: 'London' },
    custom: { type: { typeId: 'type', id: 'type-1' }, fields: { nickname: 'Enchantress', favouriteNumber: 1815, notes: { text: 'likes tea' } } },
    'byron@example.com': { score: 3 },
    'ada%40example.com': true,
    remark: 'call her on +44 20 7946 0958 or 020 7946 0958, or write to ada%40example.com',
  };
  const personalValues = ['ada@example.com', 'Ada', 'Lovelace', 'Augusta', 'Byron', '7946', '07700', '1815-12-10', 'Analytical', 'GB123456789', 'London', 'St James', 'SW1Y', 'home@example.com', 'Enchantress', '1815', 'tea', 'byron', 'ada%40example.com', 'Greater'];

  it('removes personal fields by name, whole addresses, custom field values and personal keys, and keeps ids, versions and types', () => {
    const out = redact(customer) as Record<string, unknown>;
    const text = JSON.stringify(out);
    for (const value of personalValues) expect(text, value).not.toContain(value);
    expect(out).toMatchObject({ id: customer.id, version: 7, key: 'customer-ada', customerNumber: 'C-1001' });
    expect(out.addresses).toEqual([expect.objectContaining({ id: 'addr-1', key: 'home', country: 'GB', city: REDACTED }) as unknown]);
    expect(out.custom).toEqual({ type: { typeId: 'type', id: 'type-1' }, fields: { nickname: REDACTED, favouriteNumber: REDACTED, notes: { text: REDACTED } } });
    expect(Object.keys(out).filter((key) => key.startsWith('[redacted key'))).toHaveLength(2);
  });

  it('reads JSON inside strings and the encoded data of envelopes, and describes what does not decode', () => {
    const message = { notificationType: 'Message', id: 'm-1', type: 'CustomerCreated', resourceVersion: 7, customer };
    const envelope = {
      message: { messageId: 'p-1', data: Buffer.from(JSON.stringify(message)).toString('base64'), attributes: { contact: 'ada@example.com' } },
      undecodable: { data: Buffer.from('not JSON: ada@example.com, +44 20 7946 0958').toString('base64') },
      sns: { Type: 'Notification', Message: JSON.stringify(message) },
      plain: { data: 'ada@example.com is not base64' },
    };
    const out = redact(envelope) as { message: { data: { base64Json: typeof message } }; undecodable: { data: string }; sns: { Message: string }; plain: { data: string } };
    const text = JSON.stringify(out);
    for (const value of personalValues) expect(text, value).not.toContain(value);
    expect(out.message.data.base64Json).toMatchObject({ notificationType: 'Message', id: 'm-1', type: 'CustomerCreated', resourceVersion: 7, customer: { id: customer.id, version: 7 } });
    expect(out.undecodable.data).toMatch(/^\[undecodable: \d+ characters, sha256 [0-9a-f]{16}\]$/);
    expect(out.plain.data).toMatch(/^\[undecodable: 29 characters, sha256 [0-9a-f]{16}\]$/);
    expect(JSON.parse(out.sns.Message)).toMatchObject({ id: 'm-1', customer: { id: customer.id, firstName: REDACTED } });
  });

  it('bounds what it keeps of a huge structure, and says where it cut', () => {
    const many = Array.from({ length: 100_000 }, (_, i) => ({ i, email: `user${i}@example.com` }));
    const out = redact({ many }) as { many: unknown[] };
    expect(out.many.length).toBeLessThan(many.length);
    expect(out.many.at(-1)).toMatch(/more items not kept\]$/);
    expect(JSON.stringify(out)).not.toContain('@example.com');
  });
});

describe('URL credentials', () => {
  it('hides user info and query values but harmless settings, and never throws on malformed URLs', () => {
    const cases: Array<[string, string]> = [
      ['postgres://u@host/db?password=X', 'postgres://***@host/db?password=***'],
      ['postgres://user:s3cret@db.example.com:5432/ctbridge?sslmode=require&sslpassword=kp&application_name=ct', 'postgres://***@db.example.com:5432/ctbridge?sslmode=require&sslpassword=***&application_name=ct'],
      ['postgresql://host/db?user=u&password=p;secret=s&token=t&key=k&sslkey=/k.pem', 'postgresql://host/db?user=***&password=***&secret=***&token=***&key=***&sslkey=***'],
      // Passwords holding characters their writer did not encode.
      ['postgres://u:pa/ss@host/db', 'postgres://***@host/db'],
      ['postgres://u:pa?ss@host/db', 'postgres://***@host/db'],
      ['postgres://u:p@ss@host/db', 'postgres://***@host/db'],
      ['https://hooks.example.com/in?token=abc#sig=xyz', 'https://hooks.example.com/in?token=***'],
      ['sqlite:.ctbridge/ctbridge.db', 'sqlite:.ctbridge/ctbridge.db'],
      ['u:pw@host', '***@host'],
    ];
    for (const [url, expected] of cases) expect(redactUrl(url), url).toBe(expected);
    const malformed = ['', '://', '@', '??&&==', 'postgres://%zz:%zz@h/d?%zz=%zz', 'postgres://:hunter2@/db?password=hunter2', `postgres://u:hunter2@${'h'.repeat(10_000)}`, 'p://u:hunter2@[::1', '\u0000hunter2@x'];
    for (const url of malformed) {
      const out = redactUrl(url);
      expect(out, url).not.toContain('hunter2');
      expect(out.length).toBeLessThan(2100);
    }
  });
});

describe('the logger', () => {
  it('passes errors and free-text reasons through redaction', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) }) });
    logger.warn({ reason: 'Pub/Sub push message.data is not JSON (Unexpected token \'a\', "ada@example.com" is not valid JSON)', correlationId: 'c-1' }, 'unrecognised payload quarantined');
    logger.error({ err: new Error('could not be routed: duplicate key value (email)=(ada@example.com) +44 20 7946 0958') }, 'failed');
    const text = lines.join('');
    expect(text).not.toContain('ada@example.com');
    expect(text).not.toContain('7946');
    expect(text).toContain('c-1');
    expect(text).toContain('could not be routed');
  });
});
