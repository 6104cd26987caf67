// Raw notifications are sealed at rest until processed (issue 11, item 15): an accepted body waits in the inbox
// encrypted, and so do the message an event delivery keeps and the resource a record key carries; nothing of the
// e-mail or the name is readable in those rows, nor (SQLite) anywhere in the database files; what reaches the
// destination is intact. Rows written before sealing are still routed and delivered.
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { compileRoutes } from '../src/engine/routes.ts';
import { createSealer } from '../src/pii/sealed.ts';
import { loadSealKey } from '../src/pii/secrets.ts';
import { appendToInbox, inboxRow } from '../src/store/inbox.ts';
import { routeInbox } from '../src/engine/routing.ts';
import { inboxPath } from '../src/store/store.ts';
import { customerMessage, eventually, startHarness, type Harness } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const EMAIL = 'zelda.sealtest@example.org';
const FIRST = 'Quintessa';
const LAST = 'Marchbanks';

/** Every file of an SQLite store (main and inbox, with their WAL files), as raw bytes. */
function sqliteFiles(url: string): Buffer[] {
  const path = url.slice('sqlite:'.length);
  return [path, inboxPath(path)].flatMap((file) => [file, `${file}-wal`]).filter((file) => existsSync(file)).map((file) => readFileSync(file));
}

function expectNoPersonalData(text: string | Buffer, where: string): void {
  for (const value of [EMAIL, FIRST, LAST]) expect(Buffer.from(text).includes(value), `${value} readable in ${where}`).toBe(false);
}

describe.each(testStores)('raw notifications sealed at rest on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('keeps the e-mail and the name unreadable in the inbox, event and record rows until delivered, and delivers them intact', async () => {
    const url = await testStore.create();
    // No workers: accepted bodies wait in the inbox until the test routes them.
    const h: Harness = await startHarness({ storeUrl: url, work: false });
    try {
      const message = customerMessage({ id: 'sealed-1', version: 1, email: EMAIL, firstName: FIRST, lastName: LAST }, 'CustomerCreated');
      expect((await h.post(message)).status).toBe(202);
      const { db, inbox } = h.runtime.store;

      const waiting = await inbox.db.selectFrom('inbox').selectAll().execute();
      expect(waiting).toHaveLength(1);
      expect(waiting[0]!.seal).not.toBeNull();
      expectNoPersonalData(Buffer.from(waiting[0]!.body), 'the inbox body');
      expectNoPersonalData(JSON.stringify(waiting[0]), 'the inbox row');
      if (testStore.name === 'sqlite') for (const file of sqliteFiles(url)) expectNoPersonalData(file, 'the SQLite files');

      // Routed, not yet delivered: the event keeps the message, the record key the customer it carried.
      const sealer = createSealer(await loadSealKey(db, undefined));
      const routed = await routeInbox(h.runtime.store, compileRoutes(h.config), 100, Date.now(), { sealer });
      expect(routed).toMatchObject({ routed: 1, notifications: 1 });
      const events = await db.selectFrom('events').selectAll().execute();
      const records = await db.selectFrom('records').selectAll().execute();
      expect(events).toHaveLength(1);
      expect(records).toHaveLength(1);
      expect(events[0]!.payload).toMatch(/^sealed:v2:/);
      expect(records[0]!.carried_resource).toMatch(/^sealed:v2:/);
      expectNoPersonalData(JSON.stringify(events), 'the events row');
      expectNoPersonalData(JSON.stringify(records), 'the records row');
      if (testStore.name === 'sqlite') for (const file of sqliteFiles(url)) expectNoPersonalData(file, 'the SQLite files');

      h.runtime.engine.start();
      await eventually(() => h.sink.records.has('customer/sealed-1') && h.sink.applied.some((i) => i.kind === 'event'), 'the record and the event at the sink');
      expect(h.sink.records.get('customer/sealed-1')).toMatchObject({ email: EMAIL, firstName: FIRST, lastName: LAST });
      expect(h.sink.applied.find((i) => i.kind === 'event')!.body).toMatchObject({ sourceType: 'CustomerCreated', payload: { customerId: 'sealed-1', type: 'CustomerCreated' } });
    } finally {
      await h.stop();
    }
  });

  it('still routes and delivers rows written before sealing', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), work: false });
    try {
      const message = customerMessage({ id: 'unsealed-1', version: 1, email: 'old@example.org', firstName: 'Olde' }, 'CustomerCreated');
      // As an older ctbridge wrote it: the body as it arrived, and an event row holding the message as JSON.
      await appendToInbox(h.runtime.store.inbox, [inboxRow({ body: Buffer.from(JSON.stringify(message)), transport: undefined, correlationId: 'before-sealing', items: 1 }, Date.now())]);
      const older = customerMessage({ id: 'unsealed-0', version: 1, email: 'older@example.org' }, 'CustomerCreated');
      await h.runtime.store.db
        .insertInto('events')
        .values({ destination: 'sink', event_type: 'customerEvents', dedupe_key: older.id as string, source_type: 'CustomerCreated', resource_type: 'customer', resource_id: 'unsealed-0', payload: JSON.stringify(older), correlation_id: 'before-sealing', occurred_at: null, created_at: Date.now(), due_at: Date.now(), lease_owner: null, lease_until: null, first_failed_at: null, last_error: null, attempt_log: null })
        .execute();
      h.runtime.engine.start();
      await eventually(() => h.sink.records.has('customer/unsealed-1') && h.sink.applied.filter((i) => i.kind === 'event').length === 2, 'both delivered');
      expect(h.sink.records.get('customer/unsealed-1')).toMatchObject({ email: 'old@example.org', firstName: 'Olde' });
      const customers = h.sink.applied.filter((i) => i.kind === 'event').map((i) => (i.body.payload as { customerId: string }).customerId);
      expect(customers.sort()).toEqual(['unsealed-0', 'unsealed-1']);
    } finally {
      await h.stop();
    }
  });

  it('delivers what was sealed under the store\'s own key after pii.hashKey is configured', async () => {
    const url = await testStore.create();
    const before = await startHarness({ storeUrl: url, work: false });
    try {
      expect((await before.post(customerMessage({ id: 'keyed-later', version: 1, email: EMAIL, firstName: FIRST }, 'CustomerCreated'))).status).toBe(202);
    } finally {
      await before.stop();
    }
    const after = await startHarness({ storeUrl: url, pii: { hashKey: 'a-hash-key-configured-later-0123456789' } });
    try {
      await eventually(() => after.sink.records.has('customer/keyed-later') && after.sink.applied.some((i) => i.kind === 'event'), 'the record and the event at the sink');
      expect(after.sink.records.get('customer/keyed-later')).toMatchObject({ email: EMAIL, firstName: FIRST });
    } finally {
      await after.stop();
    }
  });
});

describe('sealing', () => {
  const key = randomBytes(32);

  it('opens what any sealer with the same key sealed, and nothing sealed under another key or altered', () => {
    const [writer, reader] = [createSealer(key), createSealer(key)];
    const plain = Buffer.from(JSON.stringify({ email: EMAIL }));
    const body = Buffer.from(plain);
    const seal = writer.sealInPlace(body);
    expect(body.includes(EMAIL)).toBe(false);
    expect(body.length).toBe(plain.length);
    // Two seals of one value differ (each its own nonce).
    const again = Buffer.from(plain);
    writer.sealInPlace(again);
    expect(again.equals(body)).toBe(false);

    const altered = Buffer.from(body);
    altered[3]! ^= 1;
    expect(() => reader.openInPlace(altered, seal)).toThrow();
    expect(() => createSealer(randomBytes(32)).openInPlace(Buffer.from(body), seal)).toThrow();
    // A previous key still opens what it sealed.
    expect(Buffer.from(createSealer(randomBytes(32), [key]).openInPlace(Buffer.from(body), seal)).equals(plain)).toBe(true);
    expect(Buffer.from(reader.openInPlace(body, seal)).equals(plain)).toBe(true);

    // Bodies larger than a chunk, and text.
    const big = Buffer.from(JSON.stringify({ list: Array.from({ length: 20_000 }, (_, i) => `${i}-ü`) }));
    const bigCopy = Buffer.from(big);
    expect(Buffer.from(reader.openInPlace(bigCopy, writer.sealInPlace(bigCopy))).equals(big)).toBe(true);
    expect(reader.open(writer.seal('{"a":"ü€"}'))).toBe('{"a":"ü€"}');
    expect(() => createSealer(randomBytes(32)).open(writer.seal('{}'))).toThrow();
    // What was never sealed reads as it is.
    expect(reader.open('{"plain":true}')).toBe('{"plain":true}');
  });

  it('opens a dead event\'s message sealed by an earlier version (v1)', () => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const body = Buffer.concat([cipher.update('{"v":1}', 'utf8'), cipher.final()]);
    const v1 = `sealed:v1:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')}`;
    expect(createSealer(key).open(v1)).toBe('{"v":1}');
  });
});
