// What ctbridge keeps of a body it could not understand (issue 11, item 12), on both stores: a quarantined
// dead letter, as the admin API returns it, holds none of the personal data the body carried — not in known
// personal fields (phoneNumber, givenName, surname, city, street…), custom fields, addresses, e-mail addresses used
// as keys or URL-encoded, nor in Pub/Sub data that does not decode (described by length and digest instead) — and
// keeps what an operator needs (the type, ids, versions). The quarantine reasons, stored and logged, are redacted.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { startSink } from '../src/sandbox/sink.ts';
import { ADMIN_TOKEN, eventually, FakeCommercetools, INGEST_TOKEN, testConfig } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const CUSTOMER_ID = 'e0c3a3f4-4c1b-4f5e-9a51-3b8f2d6c7e10';

/** A customer with every kind of personal data commercetools holds, and more in custom fields and keys. */
const customer = {
  id: CUSTOMER_ID,
  version: 3,
  key: 'customer-key-17',
  customerNumber: 'CN-00017',
  email: 'adelina.lovelacey@example.com',
  firstName: 'Adelina',
  lastName: 'Lovelacey',
  middleName: 'Kingsworth',
  givenName: 'Augustina',
  surname: 'Byronson',
  title: 'Countessa',
  phoneNumber: '+44 20 7946 0958',
  mobile: '07700 900461',
  dateOfBirth: '1815-12-10',
  companyName: 'Analytical Enginery Ltd',
  vatId: 'GB987654321',
  city: 'Marylebonia',
  street: 'Dorsettia Street 24',
  addresses: [{ id: 'addr-1', country: 'GB', streetName: 'Dorsettia Street', streetNumber: '24', postalCode: 'NW1 5PU', city: 'Marylebonia', phone: '020 7946 0911', email: 'home.adelina@example.com' }],
  shippingAddress: { country: 'GB', firstName: 'Adelina', lastName: 'Lovelacey', streetName: 'Dorsettia Street', city: 'Marylebonia' },
  billingAddress: { country: 'GB', company: 'Enginery Billing', postalCode: 'NW1 5PU' },
  custom: {
    type: { typeId: 'type', id: 'type-42' },
    fields: { nickname: 'Enchantressa', loyaltyNote: 'prefers the Tuesday newsletter', 'grace.hopperton@example.com': 'referred by', backupContact: 'ada.backup%40example.com' },
  },
  'charlie.babbage@example.com': { referrals: 2 },
  notes: 'reach her at mailto:adelina.lovelacey%40example.com or +44 20 7946 0958',
};

/** Every personal value above (and its pieces), none of which may appear in what is kept. */
const PERSONAL = [
  'adelina.lovelacey', 'Adelina', 'Lovelacey', 'Kingsworth', 'Augustina', 'Byronson', 'Countessa', '7946', '07700 900461', '1815-12-10',
  'Analytical Enginery', 'GB987654321', 'Marylebonia', 'Dorsettia', 'NW1 5PU', 'home.adelina', 'Enginery Billing', 'Enchantressa',
  'Tuesday newsletter', 'grace.hopperton', 'ada.backup', 'charlie.babbage', 'Babbage Undecodable', 'undecodable.person',
];

async function start(storeUrl: string) {
  const lines: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) });
  const sink = await startSink();
  const runtime = await startRuntime({ config: testConfig(storeUrl, sink.url), logger: createLogger({ destination }), fetcher: new FakeCommercetools() });
  return {
    lines,
    post: (body: unknown, correlationId: string) =>
      fetch(`${runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}`, 'x-correlation-id': correlationId }, body: JSON.stringify(body) }),
    admin: async (path: string) => (await fetch(`${runtime.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json(),
    async stop() {
      await runtime.stop();
      await sink.close();
    },
  };
}

describe.each(testStores)('quarantined dead letters on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('keep no personal data of what they quarantine, in the admin API or the log, and keep the type, ids and versions', async () => {
    const h = await start(await testStore.create());
    try {
      const messageId = randomUUID();
      const bodies = {
        // A Message of a notificationType ctbridge does not know, carrying the whole customer.
        unknownType: { notificationType: 'CustomerSomething', projectKey: 'test-project', id: messageId, version: 1, sequenceNumber: 3, resource: { typeId: 'customer', id: CUSTOMER_ID }, resourceVersion: 3, type: 'CustomerCreated', customer },
        // A Pub/Sub push whose data is base64 of something that is not JSON, naming someone.
        undecodable: { message: { messageId: 'pubsub-77', publishTime: '2026-01-01T00:00:00Z', data: Buffer.from('From: Babbage Undecodable <undecodable.person@example.com>').toString('base64') }, subscription: 'projects/p/subscriptions/ctbridge' },
        // The same, not even base64.
        notBase64: { message: { messageId: 'pubsub-78', data: 'undecodable.person@example.com!' }, subscription: 'projects/p/subscriptions/ctbridge' },
        // Not a notification at all.
        unknownShape: { hello: 'world', customer },
      };
      for (const [name, body] of Object.entries(bodies)) expect((await h.post(body, `pii-${name}`)).status, name).toBe(202);

      type Letter = { id: number; kind: string; correlationId: string; reason: string; payload: Record<string, unknown> };
      let letters: Letter[] = [];
      await eventually(async () => {
        letters = ((await h.admin('/v1/dead-letters?limit=1000')) as { items: Letter[] }).items.filter((l) => l.correlationId.startsWith('pii-'));
        return letters.length === Object.keys(bodies).length;
      }, 'every body quarantined');
      const byName = new Map(letters.map((letter) => [letter.correlationId.slice('pii-'.length), letter]));
      const shown = [JSON.stringify(await h.admin('/v1/dead-letters?limit=1000')), ...(await Promise.all(letters.map((l) => h.admin(`/v1/dead-letters/${l.id}`)))).map((l) => JSON.stringify(l))].join('\n');
      for (const value of PERSONAL) expect(shown, value).not.toContain(value);
      const logged = h.lines.join('');
      expect(logged).toContain('quarantined');
      for (const value of PERSONAL) expect(logged, value).not.toContain(value);

      // What helps an operator stays.
      expect(byName.get('unknownType')).toMatchObject({
        kind: 'quarantine',
        reason: 'unknown notificationType "CustomerSomething"',
        payload: { notificationType: 'CustomerSomething', id: messageId, resource: { typeId: 'customer', id: CUSTOMER_ID }, resourceVersion: 3, type: 'CustomerCreated', customer: { id: CUSTOMER_ID, version: 3, key: 'customer-key-17', customerNumber: 'CN-00017', addresses: [{ id: 'addr-1', country: 'GB' }], custom: { type: { typeId: 'type', id: 'type-42' } } } },
      });
      const undecodable = byName.get('undecodable')!;
      expect(undecodable.reason).toMatch(/^Pub\/Sub push message\.data decodes to text that is not JSON/);
      expect(undecodable.payload).toMatchObject({ message: { messageId: 'pubsub-77', publishTime: '2026-01-01T00:00:00Z', data: expect.stringMatching(/^\[undecodable: \d+ characters, sha256 [0-9a-f]{16}\]$/) as unknown }, subscription: 'projects/p/subscriptions/ctbridge' });
      expect(byName.get('notBase64')!.payload).toMatchObject({ message: { messageId: 'pubsub-78', data: expect.stringMatching(/^\[undecodable: 31 characters/) as unknown } });
      expect(byName.get('unknownShape')!.payload).toMatchObject({ hello: 'world', customer: { id: CUSTOMER_ID, version: 3 } });
    } finally {
      await h.stop();
    }
  });
});
