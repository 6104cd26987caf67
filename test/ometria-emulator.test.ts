// The Ometria connector against the commercetools emulator (read through the official SDK), on both stores.
// Products: a product's categories reach Ometria as attributes of type "category" labelled with the normalised
// path ("Women > Shoes > Sneakers"), the ancestors read by the reference expander; the sandbox's change generator's
// product changes (a price changed and published, a product unpublished) reach Ometria as commercetools sends them.
// Consent kept in commercetools custom objects (one per customer, in a container, keyed by the customer's id), sent
// to Ometria: end to end on both stores against the commercetools emulator (through the official SDK) and the
// Ometria simulator — the object's e-mail and SMS consent become marketing_optin and channels.sms with the object's
// times, a customer without an object is not opted in, and a changed object reaches Ometria with the customer's
// next sync, read afresh (never from a cache). Also: the objects of a batch are read in one query per container,
// never one per customer (the reference expander and the commercetools client, against the emulator). An object
// changed or deleted on its own (the customer unchanged) reaches Ometria too: its change notification marks the
// customer whose consent it holds dirty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceExpander } from '../src/mapping/references.ts';
import { compilePath } from '../src/mapping/path.ts';
import { createChangeGenerator } from '../src/sandbox/changes.ts';
import { emulatorCredentials } from '../src/sandbox/emulator.ts';
import { startOmetriaSimulator, type OmetriaSimulator } from '../src/sandbox/ometria/simulator.ts';
import { testStores } from './support/stores.ts';
import { useEmulator } from './support/emulator.ts';
import { eventually, messageBase, startTestRuntime, type TestRuntime } from './support/harness.ts';

const API_KEY = 'ometria-custom-object-key';
const PROJECT = 'consent-objects';

const env = useEmulator({ projectKey: PROJECT });

async function createCustomer(email: string, firstName: string): Promise<{ id: string; version: number }> {
  const response = await env.api.customers().post({ body: { email, firstName, password: 'secret-Pass1' } }).execute();
  return { id: response.body.customer.id, version: response.body.customer.version };
}

async function setConsent(customerId: string, value: Record<string, unknown>): Promise<void> {
  await env.api.customObjects().post({ body: { container: 'consent', key: customerId, value } }).execute();
}

/** The notification commercetools sends for a customer's change (the engine reads the customer from commercetools). */
const changed = (customer: { id: string; version: number }) => ({ ...messageBase(customer.id, customer.version), projectKey: PROJECT, type: 'CustomerFirstNameSet' });

describe('custom objects read in batches', () => {
  it('the commercetools client reads the objects of many customers in one query per container', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `batch-${i}`);
    for (const id of ids.slice(0, 20)) await env.api.customObjects().post({ body: { container: 'prefs', key: id, value: { email: true } } }).execute();
    const before = env.emulator.apiRequests;
    const found = await env.ct.fetchReferenced('key-value-document', 'key', ids.map((id) => `prefs/${id}`));
    expect(env.emulator.apiRequests - before).toBe(1);
    expect(found.size).toBe(20);
    expect(found.get('prefs/batch-3')).toMatchObject({ container: 'prefs', key: 'batch-3', value: { email: true } });
    expect(found.has('prefs/batch-25')).toBe(false);
  });

  it('the commercetools client finds the customers a custom object is keyed by (key, customer number) in one query', async () => {
    const numbers = ['CN-1', 'CN-2'];
    for (const customerNumber of numbers) await env.api.customers().post({ body: { email: `${customerNumber}@example.com`, password: 'secret-Pass1', customerNumber } }).execute();
    const before = env.emulator.apiRequests;
    const found = await env.ct.fetchByField('customer', 'customerNumber', [...numbers, 'CN-none']);
    expect(env.emulator.apiRequests - before).toBe(1);
    expect([...found.keys()].sort()).toEqual(numbers);
    expect(found.get('CN-2')).toMatchObject({ email: 'cn-2@example.com' });
  });

  it('the expander asks for every object of a batch at once, and again for the next batch (consent is not cached)', async () => {
    const calls: string[][] = [];
    const expander = createReferenceExpander((typeId, by, values) => {
      calls.push(values);
      return Promise.resolve(new Map(values.map((value) => [value, { container: 'consent', key: value.split('/')[1], value: { email: value.endsWith('1') } }])));
    });
    const path = compilePath('customObjects.consent.id');
    const batch = Array.from({ length: 50 }, (_, i) => ({ resource: { id: `c${i}` }, references: [path] }));
    const first = (await expander.expand(batch)) as Array<{ customObjects: { consent: { id: { obj: { value: { email: boolean } } } } } }>;
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(50);
    expect(first[1]!.customObjects.consent.id.obj.value.email).toBe(true);
    expect(first[2]!.customObjects.consent.id.obj.value.email).toBe(false);
    await expander.expand(batch.slice(0, 3));
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual(['consent/c0', 'consent/c1', 'consent/c2']);
  });
});

describe.each(testStores)('the Ometria connector against the commercetools emulator on $name', (testStore) => {
  let started: TestRuntime;
  let sim: OmetriaSimulator;
  const post = (body: unknown) => started.post(body);

  beforeAll(async () => {
    sim = await startOmetriaSimulator({ apiKey: API_KEY });
    started = await startTestRuntime({
      storeUrl: await testStore.create(),
      commercetools: emulatorCredentials(env.emulator),
      engine: { leaseMs: 60_000, maxAttempts: 3, lingerMs: 200 },
      closeAfter: [sim],
      destinations: [
        {
          name: 'marketing',
          type: 'ometria',
          apiKey: API_KEY,
          baseUrl: sim.url,
          collection: 'shop',
          stores: ['uk'],
          currencies: ['EUR'],
          consent: {
            email: { customObject: { container: 'consent', field: 'email.optin', timestampField: 'email.at' } },
            sms: { customObject: { container: 'consent', field: 'sms' } },
          },
          validation: { firstCheckMs: 50, maxCheckMs: 200, settleMs: 600_000 },
        },
      ],
    });
  });

  afterAll(async () => {
    await started.stop();
    await testStore.cleanup();
  });

  it('sends a product\'s categories as normalised category paths', async () => {
    const suffix = testStore.name;
    const category = async (key: string, name: string, parent?: string) => (await env.api.categories().post({ body: { key: `${key}-${suffix}`, name: { en: name }, slug: { en: `${key}-${suffix}` }, ...(parent && { parent: { typeId: 'category', key: `${parent}-${suffix}` } }) } }).execute()).body;
    await category('women', 'Women');
    await category('shoes', 'Shoes', 'women');
    const sneakers = await category('sneakers', 'Sneakers', 'shoes');
    const sale = await category('sale', 'Sale');
    const productType = (await env.api.productTypes().post({ body: { key: `shoe-${suffix}`, name: `Shoe ${suffix}`, description: 'shoes' } }).execute()).body;
    const draft = await env.api
      .products()
      .post({
        body: {
          key: `runner-${suffix}`,
          productType: { typeId: 'product-type', id: productType.id },
          name: { en: 'Runner' },
          slug: { en: `runner-${suffix}` },
          categories: [{ typeId: 'category', id: sneakers.id }, { typeId: 'category', id: sale.id }],
          masterVariant: { sku: `RUN-1-${suffix}`, prices: [{ value: { currencyCode: 'EUR', centAmount: 9900 } }] },
          variants: [{ sku: `RUN-2-${suffix}` }],
          publish: true,
        },
      })
      .execute();
    expect((await post({ ...messageBase(draft.body.id, draft.body.version, 'product'), projectKey: PROJECT, type: 'ProductCreated' })).status).toBe(202);
    await eventually(() => sim.records.product.get(draft.body.id) !== undefined && sim.records.product.get(`RUN-2-${suffix}`) !== undefined, 'the product and its variant');
    const categories = [
      { type: 'category', id: `sneakers-${suffix}`, label: 'Women > Shoes > Sneakers' },
      { type: 'category', id: `sale-${suffix}`, label: 'Sale' },
    ];
    expect(sim.records.product.get(draft.body.id)!.attributes).toEqual(categories);
    expect(sim.records.product.get(`RUN-2-${suffix}`)!.attributes).toEqual(categories);
    expect(sim.errors).toEqual([]);
  });

  it('the change generator\'s product changes reach Ometria: a new price in the listing, an unpublished product inactive', async () => {
    const suffix = testStore.name;
    const productType = (await env.api.productTypes().post({ body: { key: `tee-${suffix}`, name: `Tee ${suffix}`, description: 'tees' } }).execute()).body;
    const product = (
      await env.api
        .products()
        .post({ body: { key: `tee-${suffix}`, productType: { typeId: 'product-type', id: productType.id }, name: { en: 'Tee' }, slug: { en: `tee-${suffix}` }, masterVariant: { sku: `TEE-${suffix}`, prices: [{ value: { currencyCode: 'EUR', centAmount: 2000 } }] }, publish: true } })
        .execute()
    ).body;
    const generator = createChangeGenerator(env.ct, { projectKey: PROJECT, seed: 7 });
    const priced = await generator.changeProductPrice(product.id);
    expect(priced.messages.map((m) => m.type)).toEqual(['ProductPriceChanged', 'ProductPublished']);
    expect((await post([...priced.messages, ...priced.changes])).status).toBe(202);
    const current = (await env.api.products().withId({ ID: product.id }).get().execute()).body.masterData.current.masterVariant.prices![0]!.value.centAmount;
    expect(current).not.toBe(2000);
    await eventually(() => (sim.records.product.get(product.id)?.listings as Array<{ price: number }> | undefined)?.[0]?.price === current / 100, 'the new price in Ometria');
    expect(sim.records.product.get(product.id)).toMatchObject({ is_active: true, title: 'Tee', listings: [{ store: 'uk', currency: 'EUR', price: current / 100 }] });
    const unpublished = await generator.toggleProductPublication(product.id);
    expect(unpublished.messages.map((m) => m.type)).toEqual(['ProductUnpublished']);
    await post([...unpublished.messages, ...unpublished.changes]);
    await eventually(() => sim.records.product.get(product.id)?.is_active === false, 'the product inactive in Ometria');
    expect(sim.errors).toEqual([]);
  });

  it('sends the consent a customer\'s custom object holds, with its times; no object: not opted in', async () => {
    const ann = await createCustomer(`ann-${testStore.name}@example.com`, 'Ann');
    const bob = await createCustomer(`bob-${testStore.name}@example.com`, 'Bob');
    await setConsent(ann.id, { email: { optin: true, at: '2026-02-01T10:00:00.000Z' }, sms: true });
    expect((await post([changed(ann), changed(bob)])).status).toBe(202);
    await eventually(() => sim.contact(ann.id, 'shop') !== undefined && sim.contact(bob.id, 'shop') !== undefined, 'both contacts in Ometria');
    expect(sim.contact(ann.id, 'shop')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDIN', timestamp_subscribed: '2026-02-01T10:00:00.000Z', channels: { sms: { allow_marketing: true } } });
    expect(sim.contact(bob.id, 'shop')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT' });
    expect(sim.contact(bob.id, 'shop')!.channels).toMatchObject({ sms: { allow_marketing: false } });
    expect(sim.errors).toEqual([]);
  });

  it('a changed object reaches Ometria with the customer\'s next sync, read afresh; an older opt-in never overrides it', async () => {
    const cy = await createCustomer(`cy-${testStore.name}@example.com`, 'Cy');
    await setConsent(cy.id, { email: { optin: true, at: '2026-02-01T10:00:00.000Z' }, sms: false });
    await post(changed(cy));
    await eventually(() => sim.contact(cy.id, 'shop')?.marketing_optin === 'EXPLICITLY_OPTEDIN', 'the opt-in');
    // The customer opts out (the object is rewritten), then changes their name: the next sync reads the new object.
    await setConsent(cy.id, { email: { optin: false, at: '2026-03-01T10:00:00.000Z' }, sms: false });
    const renamed = await env.api.customers().withId({ ID: cy.id }).post({ body: { version: cy.version, actions: [{ action: 'setFirstName', firstName: 'Cyril' }] } }).execute();
    await post(changed({ id: cy.id, version: renamed.body.version }));
    await eventually(() => sim.contact(cy.id, 'shop')?.firstname === 'Cyril', 'the renamed contact');
    expect(sim.contact(cy.id, 'shop')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: '2026-03-01T10:00:00.000Z' });
    // An opt-in older than the opt-out (recorded late) changes nothing.
    await setConsent(cy.id, { email: { optin: true, at: '2026-02-15T10:00:00.000Z' }, sms: false });
    const again = await env.api.customers().withId({ ID: cy.id }).post({ body: { version: renamed.body.version, actions: [{ action: 'setLastName', lastName: 'Late' }] } }).execute();
    await post(changed({ id: cy.id, version: again.body.version }));
    await eventually(() => sim.contact(cy.id, 'shop')?.lastname === 'Late', 'the later version synced');
    expect(sim.contact(cy.id, 'shop')).toMatchObject({ marketing_optin: 'EXPLICITLY_OPTEDOUT', timestamp_unsubscribed: '2026-03-01T10:00:00.000Z' });
  });

  /** The change notification commercetools sends for a custom object (Change subscription on key-value-document). */
  const objectChanged = (object: { id: string; version: number; container: string; key: string }, notificationType: 'ResourceCreated' | 'ResourceUpdated' | 'ResourceDeleted') => ({
    notificationType,
    projectKey: PROJECT,
    resource: { typeId: 'key-value-document', id: object.id },
    resourceUserProvidedIdentifiers: { containerAndKey: { container: object.container, key: object.key } },
    version: object.version,
    ...(notificationType === 'ResourceUpdated' && { oldVersion: object.version - 1 }),
    modifiedAt: new Date().toISOString(),
  });

  it('a consent object changed or deleted on its own reaches Ometria: its customer is synced again', async () => {
    const dee = await createCustomer(`dee-${testStore.name}@example.com`, 'Dee');
    const created = (await env.api.customObjects().post({ body: { container: 'consent', key: dee.id, value: { email: { optin: false, at: '2026-01-15T10:00:00.000Z' } } } }).execute()).body;
    await post(changed(dee));
    await eventually(() => sim.contact(dee.id, 'shop')?.marketing_optin === 'EXPLICITLY_OPTEDOUT', 'the opt-out');
    // Only the object changes (an opt-in, later than the opt-out): the customer's own version stays where it was.
    const updated = (await env.api.customObjects().post({ body: { container: 'consent', key: dee.id, value: { email: { optin: true, at: '2026-03-01T10:00:00.000Z' } } } }).execute()).body;
    expect(updated.id).toBe(created.id);
    expect((await post(objectChanged(updated, 'ResourceUpdated'))).status).toBe(202);
    await eventually(() => sim.contact(dee.id, 'shop')?.marketing_optin === 'EXPLICITLY_OPTEDIN', 'the opt-in in Ometria');
    expect(sim.contact(dee.id, 'shop')).toMatchObject({ timestamp_subscribed: '2026-03-01T10:00:00.000Z' });
    // An object in another container, and one keyed by no customer, change nothing and fail nothing.
    const other = (await env.api.customObjects().post({ body: { container: 'wishlists', key: dee.id, value: { items: 3 } } }).execute()).body;
    const stray = (await env.api.customObjects().post({ body: { container: 'consent', key: `nobody-${testStore.name}`, value: { sms: true } } }).execute()).body;
    expect((await post([objectChanged(other, 'ResourceCreated'), objectChanged(stray, 'ResourceCreated')])).status).toBe(202);
    // The object is deleted: no object is no consent, as of the customer's last change (later than the opt-in).
    const deleted = (await env.api.customObjects().withContainerAndKey({ container: 'consent', key: dee.id }).delete().execute()).body;
    expect((await post(objectChanged({ ...deleted, version: deleted.version + 1 }, 'ResourceDeleted'))).status).toBe(202);
    await eventually(() => sim.contact(dee.id, 'shop')?.marketing_optin === 'EXPLICITLY_OPTEDOUT', 'the consent withdrawn in Ometria');
    expect(sim.contact(`nobody-${testStore.name}`, 'shop')).toBeUndefined();
    expect(sim.errors).toEqual([]);
  });
});
