// Mapped fields on the official commercetools examples: paths with filters, templates, literals, fallbacks and
// transform pipelines, the context transforms see, which fields count as personal data, and the start-up errors
// a wrong field gives, where it is written.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.ts';
import { compileField } from '../src/mapping/field.ts';
import { compileFieldMapping } from '../src/mapping/record-mapping.ts';

const reference = (path: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../../shared/reference/commercetools/resources/${path}`, import.meta.url), 'utf8')) as Record<string, unknown>;

const customer = {
  id: 'c-1',
  version: 3,
  email: ' Anna.Schmidt@Example.com ',
  firstName: 'Anna',
  lastName: 'Schmidt',
  defaultShippingAddressId: 'a-2',
  addresses: [
    { id: 'a-1', city: 'Hamburg', country: 'DE', phone: '040 123456' },
    { id: 'a-2', city: 'Wien', country: 'AT', mobile: '0664 1234567' },
  ],
  custom: { fields: { loyaltyTier: 'gold' } },
};

describe('mapped fields', () => {
  it('read paths, filtered list elements, templates, literals and the first non-empty of several', () => {
    const mapping = compileFieldMapping({
      email: { path: 'email', pipe: ['trim', 'lower'] },
      shippingCity: 'addresses[?id=defaultShippingAddressId].city',
      viennaPhone: "addresses[?city='Wien'].mobile",
      name: { template: '{{firstName}} {{ lastName }}' },
      source: { value: 'commercetools' },
      phone: { first: ['phone', 'addresses[?id=defaultShippingAddressId].phone', 'addresses[?id=defaultShippingAddressId].mobile'], pipe: ['e164'] },
      tier: { path: 'custom.fields.loyaltyTier', pipe: [{ map: { table: { gold: 'Gold', silver: 'Silver' } } }] },
      missing: 'addresses[?id=nowhere].city',
    });
    expect(mapping.apply(customer)).toEqual({
      email: 'anna.schmidt@example.com',
      shippingCity: 'Wien',
      viennaPhone: '0664 1234567',
      name: 'Anna Schmidt',
      source: 'commercetools',
      // Read in the shipping address's country (Austria), since the customer has none of its own.
      phone: '+436641234567',
      tier: 'Gold',
      missing: null,
    });
  });

  it('leaves no stray spaces in a half-filled template, and null for an empty one', () => {
    const name = compileField({ template: '{{firstName}} {{middleName}} {{lastName}}' });
    expect(name.read({ firstName: 'Anna', lastName: 'Schmidt' }, {})).toBe('Anna Schmidt');
    expect(name.read({}, {})).toBeNull();
  });

  it('maps the official order example with money, localized names and its store', () => {
    const order = reference('order.example.json');
    const mapping = compileFieldMapping({
      total: { path: 'totalPrice', pipe: ['money'] },
      totalMinor: { path: 'totalPrice', pipe: [{ money: { as: 'minor' } }] },
      firstItem: { path: 'lineItems[0].name', pipe: [{ localized: { fallback: ['en'] } }] },
      status: { path: 'orderState', pipe: [{ map: { table: { Open: 'new', Complete: 'done' } } }] },
      placed: { path: 'createdAt', pipe: ['unixSeconds'] },
    });
    expect(mapping.apply(order)).toEqual({ total: '10.00', totalMinor: 1000, firstItem: 'MyProduct', status: 'new', placed: 1483559689 });
  });

  it('counts a field as personal data when its name or any source it reads is', () => {
    const mapping = compileFieldMapping({
      contact: { first: ['mobile', 'addresses[0].phone'] },
      greeting: { template: 'Hello {{firstName}}' },
      email: { value: 'fixed' },
      tier: 'custom.fields.loyaltyTier',
    });
    expect([...mapping.personalFields].sort()).toEqual(['contact', 'email', 'greeting']);
  });
});

function configWith(fields: string, pii = ''): string {
  return `
commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }
server: { ingest: { auth: { type: bearer, token: a-token-of-enough-length } } }
${pii}
destinations:
  - name: sink
    type: http
    url: http://127.0.0.1:1/records
    records:
      customer:
        fields:
${fields}
`;
}

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'ctbridge.yaml', {});
  } catch (error) {
    return (error as { problems?: Array<{ path: string; message: string }> }).problems?.map((p) => `${p.path}: ${p.message}`) ?? [(error as Error).message];
  }
  return [];
}

describe('field errors at start-up', () => {
  it('accepts every kind of field', () => {
    expect(problems(configWith(`          email: { path: email, pipe: [trim, lower] }
          name: { template: "{{firstName}} {{lastName}}" }
          phone: { first: [mobile, phone], pipe: [e164] }
          source: { value: commercetools }
          hashed: { path: email, pipe: [hash] }`, 'pii: { hashKey: a-hash-key-of-16-chars-or-more }'))).toEqual([]);
  });

  it('names the field and what is wrong with it', () => {
    const found = problems(configWith(`          email: { path: email, pipe: [trim, lowercase] }
          city: "addresses[?id=].city"
          name: { template: "no placeholders" }
          both: { path: email, value: x }
          cut: { path: email, pipe: [{ truncate: { length: 0 } }] }`));
    expect(found).toEqual([
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.email: pipe\[1\]: unknown transform "lowercase"/),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.city: .*not a valid path segment/),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.name: a template needs at least one \{\{path\}\}/),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.both: /),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.cut: pipe\[0\]: transform "truncate": length/),
    ]);
  });

  it('asks for the hash key where a field hashes without one', () => {
    expect(problems(configWith('          hashed: { path: email, pipe: [hash] }'))).toEqual([
      'destinations[0].records.customer.fields.hashed: the hash transform needs pii.hashKey (e.g. hashKey: ${CTBRIDGE_HASH_KEY})',
    ]);
  });
});
