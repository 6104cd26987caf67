// PII protection, unit by unit: payment-data detection (cards by brand prefix and Luhn, IBANs by mod 97, CVV-like
// fields) without flagging timestamps or phone numbers; field classes; the destination policy (mask, hash, drop,
// tokenize) on top-level fields, list elements and whole objects; snapshot digests; and the token vault on both
// stores (one token per value, batched round trips, reversible, rotation to a new key, erasure by subject).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { compileMapping } from '../src/mapping/record-mapping.ts';
import { classOfField } from '../src/pii/classes.ts';
import { findPaymentData, isCardNumber, isIban, maskPaymentData } from '../src/pii/payment-data.ts';
import { createSnapshotter } from '../src/pii/snapshot.ts';
import { createVault } from '../src/pii/vault.ts';
import { redact } from '../src/observability/redact.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';

describe('payment data', () => {
  it('recognises card numbers of the major brands by prefix, length and Luhn check, grouped or not', () => {
    for (const card of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '3530111333300000', '4000 0566 5566 5556', '5200-8282-8282-8210']) {
      expect(findPaymentData({ note: `pay with ${card} please` })).toEqual([{ path: 'note', kind: 'card number' }]);
    }
    expect(isCardNumber('4111111111111112')).toBe(false); // Luhn fails
    expect(isCardNumber('1793491200000')).toBe(false); // a millisecond timestamp: no card prefix
  });

  it('does not flag timestamps, order numbers, phone numbers or amounts', () => {
    const payload = { placedAt: 1793491200000, orderNumber: 'ON-100000', phone: '+49 30 1234567', mobile: '0664 1234567', total: '1234567.89', id: '92f5a867-bf19-47ab-982c-6720a03a3921', count: 4111 };
    expect(findPaymentData(payload)).toEqual([]);
  });

  it('recognises IBANs by their check digits, and CVV-like fields holding 3 or 4 digits', () => {
    expect(isIban('DE89 3704 0044 0532 0130 00')).toBe(true);
    expect(isIban('GB82WEST12345698765432')).toBe(true);
    expect(isIban('DE89370400440532013001')).toBe(false);
    expect(findPaymentData({ lines: [{ comment: 'refund to GB82 WEST 1234 5698 7654 32' }], card: { cvv: '123' }, cvc: 99 })).toEqual([
      { path: 'lines[0].comment', kind: 'IBAN' },
      { path: 'card.cvv', kind: 'card security code' },
    ]);
  });

  it('masks card numbers and IBANs in text, and redaction does too', () => {
    expect(maskPaymentData('card 4111 1111 1111 1111, iban DE89370400440532013000, order 12345')).toBe('card [card number], iban [IBAN], order 12345');
    expect(redact({ detail: 'declined 4111111111111111', ref: 4111111111111111, pan: 4111111111111111 })).toEqual({ detail: 'declined [card number]', ref: '[card number]', pan: '[redacted]' });
  });
});

describe('field classes', () => {
  it('come from the field name, else the last name of each path, and pii: overrides them', () => {
    expect(classOfField('email', [])).toBe('email');
    expect(classOfField('contact', ['customerEmail'])).toBe('email');
    expect(classOfField('shipName', ['firstName', 'lastName'])).toBe('name');
    expect(classOfField('city', [])).toBe('address');
    expect(classOfField('country', ['country'])).toBeUndefined();
    // A product's name is not a person's.
    expect(classOfField('product', ['name'])).toBeUndefined();
    expect(classOfField('product', ['name'], 'name')).toBe('name');
    expect(classOfField('email', ['email'], 'none')).toBeUndefined();
  });
});

describe('the PII policy of a destination', () => {
  const customer = {
    id: 'c-1',
    email: 'Anna.Schmidt@example.com',
    firstName: 'Anna',
    lastName: 'Schmidt',
    dateOfBirth: '1990-04-01',
    addresses: [{ streetName: 'Hauptstraße', streetNumber: '5', city: 'Wien', country: 'AT', phone: '+43 664 1234567' }],
    lineItems: [{ name: { en: 'Shoe' }, recipient: 'Anna Schmidt' }],
  };
  const fields = {
    email: 'email',
    name: { template: '{{firstName}} {{lastName}}' },
    birthday: 'dateOfBirth',
    phone: 'addresses[0].phone',
    street: 'addresses[0].streetName',
    country: 'addresses[0].country',
    address: 'addresses[0]',
    lines: { list: 'lineItems', fields: { product: { path: 'name.en' }, recipient: { path: 'recipient', pii: 'name' as const } } },
  };

  it('masks, hashes and drops by class, in list elements and leaf by leaf in whole objects', async () => {
    const mapping = compileMapping({ fields }, { secrets: { hashKey: 'a-hash-key-of-16-chars-or-more' }, policy: { email: 'mask', name: 'hash', dateOfBirth: 'drop', phone: 'mask', address: 'mask' } });
    const mapped = await mapping.apply(customer);
    if (mapped.skip) throw new Error('not skipped');
    const p = mapped.payload;
    expect(p.email).toBe('A***@example.com');
    expect(p.name).toMatch(/^[0-9a-f]{64}$/);
    expect('birthday' in p).toBe(false);
    expect(p.phone).toBe('+** *** *****67');
    expect(p.street).toBe('H********');
    expect(p.country).toBe('AT');
    expect(JSON.stringify(p.address)).not.toMatch(/Hauptstraße|Wien/);
    expect(p.lines).toEqual([{ product: 'Shoe', recipient: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown }]);
    expect(mapping.fields.find((f) => f.name === 'birthday')).toMatchObject({ piiClass: 'dateOfBirth', treatment: 'drop' });
  });

  it('tokenizes through the vault given at apply time, and refuses to send the value without one', async () => {
    const mapping = compileMapping({ fields: { email: 'email', country: 'addresses[0].country' } }, { policy: { email: 'tokenize' } });
    const tokens = { tokenize: (value: string) => Promise.resolve(`tok_${value.length}`) };
    expect(await mapping.apply(customer, { tokens })).toEqual({ skip: false, payload: { email: 'tok_24', country: 'AT' }, target: undefined });
    await expect(mapping.apply(customer)).rejects.toThrow(/no token vault/);
  });

  it('tokenizes as the last transform of a pipe, and refuses it anywhere else', async () => {
    const mapping = compileMapping({ fields: { email: { path: 'email', pipe: ['trim', 'lower', 'tokenize'] } } });
    const seen: string[] = [];
    const tokens = { tokenize: (value: string) => (seen.push(value), Promise.resolve('tok_x')) };
    expect(await mapping.apply(customer, { tokens })).toEqual({ skip: false, payload: { email: 'tok_x' }, target: undefined });
    expect(seen).toEqual(['anna.schmidt@example.com']);
    expect(() => compileMapping({ fields: { email: { path: 'email', pipe: ['tokenize', 'lower'] } } })).toThrow('email: pipe[0]: tokenize must be the last step (a token cannot be transformed further)');
  });
});

describe('snapshots', () => {
  it('keep personal fields as keyed digests that still tell a change', () => {
    const snapshot = createSnapshotter(randomBytes(32));
    const personal = new Set(['email']);
    const a = snapshot({ email: 'a@example.com', tier: 'gold' }, personal);
    expect(a.tier).toBe('gold');
    expect(String(a.email)).toMatch(/^digest:/);
    expect(JSON.stringify(a)).not.toContain('a@example.com');
    expect(snapshot({ email: 'a@example.com', tier: 'gold' }, personal)).toEqual(a);
    expect(snapshot({ email: 'b@example.com', tier: 'gold' }, personal).email).not.toBe(a.email);
    expect(snapshot({ email: null }, personal)).toEqual({ email: null });
  });

  it('digest a field the mapping does not know as personal when its value holds an e-mail or a phone number', () => {
    const snapshot = createSnapshotter(randomBytes(32));
    const none = new Set<string>();
    const record = { custom: { note: 'call ada@example.com', vip: true }, json: '{"phone":"+43 664 1234567"}', keyed: { 'ada@example.com': 1 }, tier: 'gold', id: 'c4bd1f67-0775-4605-958d-0a1b2c3d4e5f' };
    const kept = snapshot(record, none);
    for (const field of ['custom', 'json', 'keyed']) expect(String(kept[field])).toMatch(/^digest:/);
    expect(kept.tier).toBe('gold');
    expect(kept.id).toBe(record.id);
    expect(JSON.stringify(kept)).not.toMatch(/ada@example\.com|664 1234567/);
    expect(snapshot({ ...record, custom: { note: 'call bob@example.com', vip: true } }, none).custom).not.toBe(kept.custom);
    const plain = { tier: 'gold', count: 3 };
    expect(snapshot(plain, none)).toBe(plain);
  });
});

describe.each(testStores)('the token vault on $name', (testStore) => {
  afterAll(() => testStore.cleanup());
  const key = () => randomBytes(32).toString('base64');

  it('gives one token per value, in one round trip per turn, turns tokens back, rotates keys and erases by subject', async () => {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const k1 = key();
      const blind = randomBytes(32);
      const vault = createVault(store.db, { keys: { k1 }, activeKey: 'k1' }, blind);
      const anna = vault.forSubject('customer-anna');
      const [t1, t2, t3] = await Promise.all([anna.tokenize('anna@example.com'), anna.tokenize('anna@example.com'), vault.forSubject('customer-bob').tokenize('bob@example.com')]);
      expect(t1).toMatch(/^tok_[\w-]{22}$/);
      expect(t2).toBe(t1);
      expect(t3).not.toBe(t1);
      const rows = await store.db.selectFrom('vault_tokens').selectAll().execute();
      expect(rows).toHaveLength(2);
      expect(JSON.stringify(rows)).not.toMatch(/anna@example\.com|bob@example\.com/);

      // Another process (no shared cache) finds the same token for the same value.
      const other = createVault(store.db, { keys: { k1 }, activeKey: 'k1' }, blind);
      expect(await other.forSubject(undefined).tokenize('anna@example.com')).toBe(t1);
      expect(await other.detokenize([t1, t3, 'tok_unknown'])).toEqual(new Map([[t1, 'anna@example.com'], [t3, 'bob@example.com']]));

      // Rotation: a new active key re-encrypts everything; the tokens stay; the old key is no longer needed.
      const k2 = key();
      const rotated = createVault(store.db, { keys: { k1, k2 }, activeKey: 'k2' }, blind);
      expect(await rotated.rotate()).toEqual({ reencrypted: 2, remaining: {} });
      const onlyK2 = createVault(store.db, { keys: { k2 }, activeKey: 'k2' }, blind);
      expect(await onlyK2.detokenize([t1])).toEqual(new Map([[t1, 'anna@example.com']]));
      expect(await onlyK2.forSubject(undefined).tokenize('anna@example.com')).toBe(t1);

      expect(await onlyK2.eraseSubject('customer-anna')).toBe(1);
      expect(await onlyK2.detokenize([t1, t3])).toEqual(new Map([[t3, 'bob@example.com']]));
    } finally {
      await store.close();
    }
  });
});
