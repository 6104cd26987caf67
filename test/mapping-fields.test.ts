// Mapped fields on the official commercetools examples: paths with filters, templates, literals, fallbacks and
// transform pipelines, the context transforms see, which fields count as personal data, the references they read
// (JSONata expressions' too, from their syntax tree) and their expansion, and the start-up errors a wrong field
// gives, where it is written.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.ts';
import { compileField, recordContext } from '../src/mapping/field.ts';
import { compileMapping, MappingError, type CompiledMapping } from '../src/mapping/record-mapping.ts';
import { createReferenceExpander } from '../src/mapping/references.ts';
import { unexpandedReferenceWarnings } from '../src/engine/routes.ts';

async function payloadOf(mapping: CompiledMapping, source: unknown): Promise<Record<string, unknown> | 'skipped'> {
  const mapped = await mapping.apply(source);
  return mapped.skip ? 'skipped' : mapped.payload;
}

const reference = (path: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../spec/commercetools/resources/${path}`, import.meta.url), 'utf8')) as Record<string, unknown>;

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
  it('read paths, filtered list elements, templates, literals and the first non-empty of several', async () => {
    const mapping = compileMapping({ fields: {
      email: { path: 'email', pipe: ['trim', 'lower'] },
      shippingCity: 'addresses[?id=defaultShippingAddressId].city',
      viennaPhone: "addresses[?city='Wien'].mobile",
      name: { template: '{{firstName}} {{ lastName }}' },
      source: { value: 'commercetools' },
      phone: { first: ['phone', 'addresses[?id=defaultShippingAddressId].phone', 'addresses[?id=defaultShippingAddressId].mobile'], pipe: ['e164'] },
      tier: { path: 'custom.fields.loyaltyTier', pipe: [{ map: { table: { gold: 'Gold', silver: 'Silver' } } }] },
      missing: 'addresses[?id=nowhere].city',
    } });
    expect(await payloadOf(mapping, customer)).toEqual({
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

  it('maps the official order example with money, localized names and its store', async () => {
    const order = reference('order.example.json');
    const mapping = compileMapping({ fields: {
      total: { path: 'totalPrice', pipe: ['money'] },
      totalMinor: { path: 'totalPrice', pipe: [{ money: { as: 'minor' } }] },
      firstItem: { path: 'lineItems[0].name', pipe: [{ localized: { fallback: ['en'] } }] },
      status: { path: 'orderState', pipe: [{ map: { table: { Open: 'new', Complete: 'done' } } }] },
      placed: { path: 'createdAt', pipe: ['unixSeconds'] },
    } });
    expect(await payloadOf(mapping, order)).toEqual({ total: '10.00', totalMinor: 1000, firstItem: 'MyProduct', status: 'new', placed: 1483559689 });
  });

  it('counts a field as personal data when its name or any source it reads is', () => {
    const mapping = compileMapping({ fields: {
      contact: { first: ['mobile', 'addresses[0].phone'] },
      greeting: { template: 'Hello {{firstName}}' },
      email: { value: 'fixed' },
      tier: 'custom.fields.loyaltyTier',
    } });
    expect([...mapping.personalFields].sort()).toEqual(['contact', 'email', 'greeting']);
  });
});

/** The commercetools and server blocks every configuration here starts with. */
const CONFIG_HEAD = `commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }
server: { ingest: { auth: { type: bearer, token: a-token-of-enough-length } } }
`;

function configWith(fields: string, pii = ''): string {
  return `
${CONFIG_HEAD}${pii}
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

  it('asks for the vault where a field tokenizes without one', () => {
    expect(problems(configWith('          email: { path: email, pipe: [tokenize] }'))).toEqual([
      'destinations[0].records.customer.fields.email: the tokenize transform needs pii.vault (keys: { k1: ${CTBRIDGE_VAULT_KEY_1} }, activeKey: k1)',
    ]);
  });

  it('asks for the hash key where a field hashes without one', () => {
    expect(problems(configWith('          hashed: { path: email, pipe: [hash] }'))).toEqual([
      'destinations[0].records.customer.fields.hashed: the hash transform needs pii.hashKey (e.g. hashKey: ${CTBRIDGE_HASH_KEY})',
    ]);
  });
});

describe('JSONata, the record context and when: blocks', () => {
  it('evaluates JSONata with the context bound as variables, and reads the context with $ paths', async () => {
    const order = reference('order.example.json');
    const mapping = compileMapping(
      {
        fields: {
          quantity: { jsonata: '$sum(lineItems.quantity)' },
          skus: { jsonata: 'lineItems.variant.sku' },
          where: { jsonata: '$projectKey & "/" & $currency' },
          project: '$projectKey',
          currency: '$currency',
          label: { template: '{{orderNumber}} in {{$currency}}' },
        },
      },
      { projectKey: 'shop-eu' },
    );
    expect(await payloadOf(mapping, order)).toEqual({ quantity: 1, skus: 'some-sku-123', where: 'shop-eu/EUR', project: 'shop-eu', currency: 'EUR', label: 'in EUR' });
    const twoItems = { ...order, orderNumber: 'o-7', lineItems: [{ quantity: 2, variant: { sku: 'a' } }, { quantity: 3, variant: { sku: 'b' } }] };
    const payload = (await payloadOf(mapping, twoItems)) as Record<string, unknown>;
    expect(payload).toMatchObject({ quantity: 5, skus: ['a', 'b'], label: 'o-7 in EUR' });
    // A JSONata sequence comes out as a plain array, so it compares equal to the snapshot stored as JSON.
    expect(Object.getPrototypeOf(payload.skus)).toBe(Array.prototype);
    expect(Object.keys(payload.skus as object)).toEqual(['0', '1']);
  });

  it('reports a JSONata failure on one input as a MappingError naming the field', async () => {
    const mapping = compileMapping({ fields: { total: { jsonata: '$number(firstName)' } } });
    await expect(mapping.apply({ firstName: 'Ada' })).rejects.toThrow(/^field "total": /);
    await expect(mapping.apply({ firstName: 'Ada' })).rejects.toBeInstanceOf(MappingError);
  });

  it('applies when: blocks by store and country: overrides, omissions, a target, and skipped records', async () => {
    const mapping = compileMapping({
      fields: { email: 'email', city: 'addresses[0].city', market: { value: 'default' } },
      when: [
        { match: { store: ['uk', 'ie'] }, fields: { market: { value: 'UK & IE' } }, omit: ['city'], target: { url: 'http://127.0.0.1:1/uk' } },
        { match: { store: 'uk', country: 'GB' }, fields: { region: '$country' } },
        { match: { store: 'internal' }, skip: true },
      ],
    });
    const customer = (store: string | undefined, country: string) => ({ email: 'x@example.com', stores: store ? [{ typeId: 'store', key: store }] : [], addresses: [{ city: 'C', country }] });
    expect(await mapping.apply(customer(undefined, 'DE'))).toEqual({ skip: false, payload: { email: 'x@example.com', city: 'C', market: 'default' }, target: undefined });
    expect(await mapping.apply(customer('ie', 'IE'))).toEqual({ skip: false, payload: { email: 'x@example.com', market: 'UK & IE' }, target: { url: 'http://127.0.0.1:1/uk' } });
    expect(await mapping.apply(customer('uk', 'GB'))).toEqual({ skip: false, payload: { email: 'x@example.com', market: 'UK & IE', region: 'GB' }, target: { url: 'http://127.0.0.1:1/uk' } });
    expect(await mapping.apply(customer('internal', 'DE'))).toEqual({ skip: true });
    expect(mapping.fields.map((f) => `${f.definedIn}:${f.name}`)).toEqual(['fields:email', 'fields:city', 'fields:market', 'when[0]:market', 'when[1]:region']);
  });

  it('takes store and channel from the resource, the Message carrying it, or its first line item', () => {
    const order = { store: { typeId: 'store', key: 'de-store' }, lineItems: [{ distributionChannel: { typeId: 'channel', id: 'ch-1', obj: { key: 'berlin' } } }], totalPrice: { currencyCode: 'EUR' } };
    expect(recordContext(order, 'p')).toMatchObject({ store: 'de-store', channel: 'berlin', currency: 'EUR', projectKey: 'p' });
    const message = { type: 'OrderCreated', resource: { typeId: 'order', id: 'o-1' }, order };
    expect(recordContext(message)).toMatchObject({ store: 'de-store', channel: 'berlin' });
  });

  it('names the references a mapping reads through, for paths, templates and JSONata', () => {
    const mapping = compileMapping({
      fields: {
        group: 'customerGroup.obj.name',
        storeName: { template: '{{store.obj.key}} shop' },
        state: { jsonata: 'state.obj.key' },
        plain: 'customerGroup.id',
      },
    });
    expect(mapping.references).toEqual([['customerGroup'], ['store'], ['state']]);
  });
});

describe('referenced objects', () => {
  it('are fetched once per type for a whole batch, cached, and filled in as obj', async () => {
    const calls: Array<[string, string, string[]]> = [];
    let now = 0;
    const expander = createReferenceExpander(
      (typeId, by, values) => {
        calls.push([typeId, by, [...values]]);
        return Promise.resolve(new Map(values.filter((v) => v !== 'gone').map((v) => [v, { id: v, key: `${v}-key`, name: `Group ${v}` }])));
      },
      { ttlMs: 1_000, now: () => now },
    );
    const references = [['customerGroup'], ['store']];
    const resources = ['g1', 'g2', 'g1', 'gone'].map((group) => ({ customerGroup: { typeId: 'customer-group', id: group }, store: { typeId: 'store', key: 'uk' } }));
    const expanded = (await expander.expand(resources.map((resource) => ({ resource, references })))) as Array<Record<string, Record<string, unknown>>>;
    expect(calls).toEqual([
      ['customer-group', 'id', ['g1', 'g2', 'gone']],
      ['store', 'key', ['uk']],
    ]);
    expect(expanded.map((r) => (r.customerGroup!.obj as Record<string, unknown> | undefined)?.name ?? null)).toEqual(['Group g1', 'Group g2', 'Group g1', null]);
    // The input is not changed: the obj is set on copies.
    expect(resources[0]!.customerGroup).toEqual({ typeId: 'customer-group', id: 'g1' });

    await expander.expand(resources.map((resource) => ({ resource, references })));
    expect(calls).toHaveLength(2);
    now = 1_001;
    await expander.expand([{ resource: resources[0], references }]);
    expect(calls).toHaveLength(4);
  });

  it('returns the load error for the resources that needed it, and expands nothing not asked for', async () => {
    const expander = createReferenceExpander(() => Promise.reject(new Error('commercetools is down')));
    const [failed, untouched] = await expander.expand([
      { resource: { customerGroup: { typeId: 'customer-group', id: 'g1' } }, references: [['customerGroup']] },
      { resource: { customerGroup: { typeId: 'customer-group', id: 'g1' } }, references: [] },
    ]);
    expect(failed).toBeInstanceOf(Error);
    expect(untouched).toEqual({ customerGroup: { typeId: 'customer-group', id: 'g1' } });
  });
});

describe('references read through JSONata', () => {
  const flatten = { flatten: true };
  const readsOf = (jsonata: string) => {
    const field = compileField({ jsonata });
    return { resource: field.references, subject: field.subjectReferences, unexpanded: field.unexpandedReferences };
  };
  // The order as placed, its codes' keys and codes in an object built per discount code (the Momentis redemption's).
  const placedOrder = 'order.{ "id": id, "discountCodes": [discountCodes.{ "state": state, "code": discountCode.obj.{ "key": key, "code": code } }] }';

  it('are the steps before each obj, into every list on the way, wherever the expression reads them from', () => {
    expect(readsOf('customerGroup.obj.key')).toEqual({ resource: [['customerGroup']], subject: [], unexpanded: [] });
    // A filter reads from each element, and every element is expanded: the filter picks after.
    expect(readsOf('order.discountCodes[state = "MatchesCart"].discountCode.obj.code').resource).toEqual([['order', flatten, 'discountCodes', flatten, 'discountCode']]);
    expect(readsOf('lineItems[distributionChannel.obj.key = "berlin"].quantity').resource).toEqual([['lineItems', flatten, 'distributionChannel']]);
    // An object constructor reads from what the path before it gave; one inside it from each of its elements.
    expect(readsOf(placedOrder).resource).toEqual([['order', flatten, 'discountCodes', flatten, 'discountCode']]);
    expect(readsOf('{ "group": customerGroup.obj.name, "stores": [stores.obj.key], "state": $exists(state) ? state.obj.key }').resource).toEqual([['customerGroup'], ['stores'], ['state']]);
    // `$$` is the input wherever it is; `$subject` the event's order or cart.
    expect(readsOf('lineItems.($$.store.obj.name & ": " & name.en)').resource).toEqual([['store']]);
    expect(readsOf('$subject.discountCodes.discountCode.obj.code')).toEqual({ resource: [], subject: [['discountCodes', flatten, 'discountCode']], unexpanded: [] });
    expect(readsOf('customObjects.consent.id.obj.value.email').resource).toEqual([['customObjects', 'consent', 'id']]);
    // A category's ancestors come expanded with it: nothing more to expand, and nothing to warn about.
    expect(readsOf('categories.obj.{ "path": $join(ancestors.obj.name.en, " > ") }')).toEqual({ resource: [['categories']], subject: [], unexpanded: [] });
  });

  it('say which obj reads cannot be told before mapping: a variable of its own, $orders, what a function gives', () => {
    expect(readsOf('$map(discountCodes, function($c) { $c.discountCode.obj.code })')).toEqual({ resource: [], subject: [], unexpanded: ['$c.discountCode.obj'] });
    expect(readsOf('$orders.store.obj.key').unexpanded).toEqual(['$orders.store.obj']);
    expect(readsOf('$lookup($, "customerGroup").obj.name').unexpanded).toEqual(['(…).obj']);
    expect(readsOf('$sum(lineItems.quantity)')).toEqual({ resource: [], subject: [], unexpanded: [] });
    // A reference inside an expanded object: the outer one is expanded, the inner one is not.
    expect(readsOf('store.obj.distributionChannels.obj.key')).toEqual({ resource: [['store']], subject: [], unexpanded: ['store.obj.distributionChannels.obj'] });
    expect(compileField('store.obj.distributionChannels[0].obj.key').unexpandedReferences).toEqual(['store.obj.distributionChannels[0].obj.key']);
  });

  it('have the expander fill in every reference the expression reads, through lists, and the mapping sees them', async () => {
    const codes = new Map([
      ['dc-1', { id: 'dc-1', key: 'reward-1', code: 'MOM-1' }],
      ['dc-2', { id: 'dc-2', key: 'reward-2', code: 'MOM-2' }],
    ]);
    const expander = createReferenceExpander((typeId, _by, values) => Promise.resolve(new Map(typeId === 'discount-code' ? values.flatMap((value) => (codes.has(value) ? [[value, codes.get(value)!] as const] : [])) : [])));
    const mapping = compileMapping({
      fields: {
        order: { jsonata: placedOrder },
        matching: { jsonata: '[order.discountCodes[state = "MatchesCart"].discountCode.obj.code]' },
      },
    });
    const code = (id: string, state: string) => ({ discountCode: { typeId: 'discount-code', id }, state });
    const message = { type: 'OrderCreated', order: { id: 'o-1', discountCodes: [code('dc-1', 'MatchesCart'), code('dc-2', 'DoesNotMatchCart')] } };
    const [expanded] = await expander.expand([{ resource: message, references: mapping.references }]);
    expect(await payloadOf(mapping, expanded)).toEqual({
      order: {
        id: 'o-1',
        discountCodes: [
          { state: 'MatchesCart', code: { key: 'reward-1', code: 'MOM-1' } },
          { state: 'DoesNotMatchCart', code: { key: 'reward-2', code: 'MOM-2' } },
        ],
      },
      matching: ['MOM-1'],
    });
    // An order whose discount codes are a single object rather than a list is read the same way.
    const [single] = await expander.expand([{ resource: { order: { id: 'o-2', discountCodes: code('dc-2', 'MatchesCart') } }, references: mapping.references }]);
    expect(await payloadOf(mapping, single)).toMatchObject({ matching: ['MOM-2'] });
  });

  it('in a list, are the elements\' own, where the list is', async () => {
    const mapping = compileMapping({ fields: { lines: { list: 'lineItems', fields: { sku: 'variant.sku', channel: 'distributionChannel.obj.key', store: { jsonata: '$$.store.obj.key' } } } } });
    expect(mapping.references).toEqual([['lineItems', { each: true }, 'distributionChannel'], ['lineItems', { each: true }, 'store']]);
    const channels = new Map([['ch-1', { id: 'ch-1', key: 'berlin' }]]);
    const expander = createReferenceExpander((typeId, _by, values) => Promise.resolve(new Map(typeId === 'channel' ? values.filter((value) => channels.has(value)).map((value) => [value, channels.get(value)!] as const) : [])));
    const order = { lineItems: [{ variant: { sku: 'a' }, distributionChannel: { typeId: 'channel', id: 'ch-1' } }, { variant: { sku: 'b' } }] };
    const [expanded] = await expander.expand([{ resource: order, references: mapping.references }]);
    // `$$` in a list's element is the element: it has no store.
    expect(await payloadOf(mapping, expanded)).toEqual({ lines: [{ sku: 'a', channel: 'berlin', store: null }, { sku: 'b', channel: null, store: null }] });
  });

  it('that are not expanded make config check warn, naming the field', () => {
    const config = parseConfigText(configWith(`          email: email
          codes: { jsonata: "$map(discountCodes, function($c) { $c.discountCode.obj.code })" }
          group: { jsonata: "customerGroup.obj.name" }
        when:
          - match: { store: uk }
            fields: { lastStore: "$orders[*].store.obj.key" }`), 'ctbridge.yaml', {});
    expect(unexpandedReferenceWarnings(config)).toEqual([
      'destinations[0].records.customer.fields.codes: $c.discountCode.obj is not expanded (only a reference reached by a path from the resource or $subject is), so it has no obj',
      'destinations[0].records.customer.when[0].fields.lastStore: $orders[*].store.obj.key is not expanded (only a reference reached by a path from the resource or $subject is), so it has no obj',
    ]);
  });
});

describe('a customer\'s orders ($orders)', () => {
  const money = (currencyCode: string, centAmount: number) => ({ type: 'centPrecision', currencyCode, centAmount, fractionDigits: 2 });
  const orders = [
    { id: 'o1', version: 2, orderNumber: 'ON-1', orderState: 'Cancelled', totalPrice: money('EUR', 1000), customerEmail: 'a@example.com' },
    { id: 'o2', version: 1, orderNumber: 'ON-2', orderState: 'Open', totalPrice: money('USD', 250), customerEmail: 'a@example.com' },
    { id: 'o3', version: 5, orderNumber: 'ON-3', orderState: 'Complete', totalPrice: money('EUR', 4200), customerEmail: 'a@example.com' },
  ];
  const mapping = compileMapping({
    fields: {
      email: 'email',
      total_orders: { path: '$orders[*]', pipe: ['count'] },
      lifetime_value: { path: '$orders[*].totalPrice', pipe: [{ sumByCurrency: { as: 'number' } }] },
      last_order: { path: '$orders[*].orderNumber', pipe: ['last'] },
      first_order: '$orders[0].orderNumber',
      kept: { jsonata: "$sum($orders[orderState != 'Cancelled'].totalPrice.centAmount)" },
      summary: { template: '{{$orders[0].orderNumber}} onwards' },
      order_emails: { path: '$orders[*].customerEmail', pipe: ['join'] },
    },
  });

  it('reads paths, transforms, JSONata and templates over the orders the engine gives, oldest first', async () => {
    expect(mapping.readsOrders).toBe(true);
    expect(await mapping.apply(customer, { orders })).toEqual({
      skip: false,
      target: undefined,
      payload: { email: ' Anna.Schmidt@Example.com ', total_orders: 3, lifetime_value: { EUR: 52, USD: 2.5 }, last_order: 'ON-3', first_order: 'ON-1', kept: 4450, summary: 'ON-1 onwards', order_emails: 'a@example.com, a@example.com, a@example.com' },
    });
  });

  it('is an empty list for a customer without orders', async () => {
    expect(await payloadOf(mapping, customer)).toEqual({ email: ' Anna.Schmidt@Example.com ', total_orders: 0, lifetime_value: {}, last_order: null, first_order: null, kept: null, summary: null, order_emails: '' });
  });

  it('classifies what it reads of the orders as personal data like the customer\'s own', () => {
    expect(mapping.personalFields).toEqual(new Set(['email', 'order_emails']));
    expect(compileMapping({ fields: { email: 'email' } }).readsOrders).toBe(false);
  });
});

describe('mapping errors at start-up', () => {
  it('names a JSONata syntax error, an unknown context name and a wrong routing target where they are written', () => {
    const text = configWith(`          total: { jsonata: "$sum(lineItems.quantity" }
          market: $market
        when:
          - match: { store: uk }
            fields: { name: { jsonata: "firstName &" } }
            target: { board: 123 }
          - match: { planet: mars }
          - match: { store: de }
            omit: [phone]`);
    expect(problems(text)).toEqual([
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.total: JSONata syntax error at character \d+/),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.fields\.market: "\$market" is not part of the record's context/),
      expect.stringMatching(/^destinations\[0\]\.records\.customer\.when\[0\]\.fields\.name: JSONata syntax error/),
      'destinations[0].records.customer.when[0].target.url: missing required key (expected a string)',
      'destinations[0].records.customer.when[0].target.board: unknown key "board"',
      'destinations[0].records.customer.when[1].match.planet: unknown key "planet"',
      'destinations[0].records.customer.when[2].omit[0]: "phone" is not a field of this mapping (it has total, market)',
    ]);
  });
});

describe('lists', () => {
  const order = {
    lineItems: [
      { quantity: 2, variant: { sku: 'a' }, name: { en: 'Shoe', de: 'Schuh' }, discounts: [{ amount: 1 }, { amount: 2 }] },
      { quantity: 3, variant: {}, name: { en: 'Sock' }, discounts: [{ amount: 4 }] },
    ],
    locale: 'de-DE',
  };

  it('reads every element with [*], leaving out the missing and flattening nested lists', async () => {
    const mapping = compileMapping({
      fields: {
        quantities: 'lineItems[*].quantity',
        total: { path: 'lineItems[*].quantity', pipe: ['sum'] },
        skus: { path: 'lineItems[*].variant.sku', pipe: ['join'] },
        discounts: 'lineItems[*].discounts[*].amount',
        lines: { path: 'lineItems', pipe: ['count'] },
        none: { path: 'giftCards', pipe: ['count'] },
        notAList: 'locale[*].x',
      },
    });
    expect(await payloadOf(mapping, order)).toEqual({ quantities: [2, 3], total: 5, skus: 'a', discounts: [1, 2, 4], lines: 2, none: 0, notAList: null });
  });

  it('maps a list of objects, one per element, with fields read from each element in the record context', async () => {
    const mapping = compileMapping({ fields: { lines: { list: 'lineItems', fields: { sku: 'variant.sku', name: { path: 'name', pipe: ['localized'] }, qty: 'quantity', shop: '$locale' } } } });
    expect(await payloadOf(mapping, order)).toEqual({
      lines: [
        { sku: 'a', name: 'Schuh', qty: 2, shop: 'de-DE' },
        { sku: null, name: 'Sock', qty: 3, shop: 'de-DE' },
      ],
    });
    expect(await payloadOf(mapping, {})).toEqual({ lines: null });
  });

  it('maps a list with a JSONata field in its elements', async () => {
    const mapping = compileMapping({ fields: { lines: { list: 'lineItems', fields: { discount: { jsonata: '$sum(discounts.amount)' } } } } });
    expect(await payloadOf(mapping, order)).toEqual({ lines: [{ discount: 3 }, { discount: 4 }] });
  });
});

describe('destination attributes at start-up', () => {
  it('names a mapped field the receiver does not have, where it is written', () => {
    const text = `
${CONFIG_HEAD}destinations:
  - name: crm
    type: http
    url: http://127.0.0.1:1/records
    accepts:
      records: { customer: [email, firstName] }
    records:
      customer:
        fields: { email: email, fristName: firstName }
        when:
          - match: { store: uk }
            fields: { region: $store }
      order:
        fields: { anything: id }
`;
    expect(problems(text)).toEqual([
      'destinations[0].records.customer.fields.fristName: the receiver has no field "fristName" (accepts.records.customer: email, firstName)',
      'destinations[0].records.customer.when[0].fields.region: the receiver has no field "region" (accepts.records.customer: email, firstName)',
    ]);
  });
});

describe('Intercom fields at start-up', () => {
  it('names a mapped field that is neither an Intercom contact field nor a declared custom attribute', () => {
    const text = `
${CONFIG_HEAD}destinations:
  - name: support
    type: intercom
    token: an-intercom-token
    attributes: { tier: string }
    records:
      customer:
        fields: { email: email, tier: custom.fields.tier, points: custom.fields.points }
`;
    expect(problems(text)).toEqual([
      'destinations[0].records.customer.fields.points: "points" is neither an Intercom contact field (email, phone, name, avatar, signed_up_at, last_seen_at, owner_id, unsubscribed_from_emails) nor declared under attributes with its data type (an object-valued field: declare points_<key>, e.g. points_EUR)',
    ]);
  });

  it('takes an object-valued field as the attributes its keys name, and refuses records Intercom has no place for', () => {
    const text = `
${CONFIG_HEAD}destinations:
  - name: support
    type: intercom
    token: an-intercom-token
    attributes: { lifetime_value_EUR: float }
    records:
      customer:
        fields: { email: email, lifetime_value: { path: "$orders[*].totalPrice", pipe: [sumByCurrency] } }
      order:
        fields: { last_order_number: orderNumber }
`;
    expect(problems(text)).toEqual([expect.stringMatching(/^destinations\[0\]\.records\.order: Intercom has contacts and companies, no place for records of order: .*read \$orders in the customer mapping/)]);
  });
});

describe('$orders at start-up', () => {
  it('is refused outside customer record mappings, where it is written, and $ names are ctbridge\'s own', () => {
    const text = `
${CONFIG_HEAD}destinations:
  - name: sink
    type: http
    url: http://127.0.0.1:1/records
    records:
      customer:
        fields: { orders: { path: "$orders[*]", pipe: [count] } }
      buyers:
        source: customer
        fields: { last: { jsonata: "$orders[-1].orderNumber" } }
      order:
        fields: { siblings: { path: "$orders[*]", pipe: [count] } }
      $orders:
        source: order
        fields: { id: id }
    events:
      placed:
        on: [OrderCreated]
        fields: { id: order.id }
        when:
          - match: { store: uk }
            fields: { total: { jsonata: "$count($orders)" } }
`;
    expect(problems(text)).toEqual([
      "destinations[0].records.order.fields.siblings: $orders is a customer's orders: only a record mapping of customers (source: customer) can read it, not one of order",
      'destinations[0].records.$orders: names starting with $ are ctbridge\'s own',
      "destinations[0].events.placed.when[0].fields.total: $orders is a customer's orders: only a record mapping of customers (source: customer) can read it, not an event mapping",
    ]);
  });
});
