// PII protection in the running engine, on both stores: a destination's policy decides what of each class
// arrives (as stored by the sink), snapshots and every other row hold no raw personal data, payment data blocks
// the send with a dead letter that does not repeat it, every change is in the audit log (and `ctbridge audit`
// shows it), and a CustomerDeleted with dataErasure deletes the record at the destination and ctbridge's copies.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { piiKeysLoader } from '../src/pii/keys.ts';
import { purgeExpired } from '../src/engine/retention.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, startHarness, type Harness } from './support/harness.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-pii-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VAULT = { keys: { k1: randomBytes(32).toString('base64') }, activeKey: 'k1' };
const HASH_KEY = 'a-hash-key-of-16-chars-or-more';

const destination = {
  pii: { email: 'mask', name: 'tokenize', dateOfBirth: 'drop', phone: 'hash' },
  records: {
    customer: {
      fields: {
        email: 'email',
        name: { template: '{{firstName}} {{lastName}}' },
        birthday: 'dateOfBirth',
        phone: 'addresses[0].phone',
        note: 'custom.fields.note',
        tier: 'custom.fields.tier',
      },
    },
  },
  events: {},
};

const ANNA = { email: 'anna.schmidt@example.com', firstName: 'Anna', lastName: 'Schmidt', dateOfBirth: '1990-04-01', addresses: [{ phone: '+43 664 1234567', country: 'AT' }], custom: { fields: { tier: 'gold' } } };

/** Every text value of every row of every table, for scanning. */
async function allStoredText(h: Harness): Promise<string> {
  const tables = ['records', 'events', 'dead_letters', 'audit_log', 'vault_tokens', 'seen', 'erasure_requests'] as const;
  const parts: string[] = [];
  for (const table of tables) parts.push(JSON.stringify(await h.runtime.store.db.selectFrom(table).selectAll().execute()));
  return parts.join('\n');
}

/** A configuration file for the operator commands, on the test's store. */
function cliConfig(name: string, storeUrl: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }\nserver: { ingest: { auth: { type: none } } }\nstore: "${storeUrl}"\n${extra}\n`);
  return file;
}

function ctbridge(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'bin', 'ctbridge.js'), ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe.each(testStores)('PII protection on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('sends each class as the policy says, keeps no personal data in its rows, and audits every change', async () => {
    const storeUrl = await testStore.create();
    const h = await startHarness({ storeUrl, destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post(h.commercetools.upsertCustomer('anna', ANNA));
      await eventually(() => h.sink.records.has('customer/anna'), 'anna at the sink');
      const sent = h.sink.records.get('customer/anna')!;
      expect(sent.email).toBe('a***@example.com');
      expect(sent.name).toMatch(/^tok_/);
      expect('birthday' in sent).toBe(false);
      expect(sent.phone).toMatch(/^[0-9a-f]{64}$/);
      expect(sent.tier).toBe('gold');
      // The token turns back into the name, through the vault.
      const keys = await piiKeysLoader(h.runtime.store.db, h.config.pii)();
      expect(await keys.tokens!.detokenize([sent.name as string])).toEqual(new Map([[sent.name, 'Anna Schmidt']]));

      // A change of email is seen as a change (the snapshot compares digests) and sent masked.
      await h.post(h.commercetools.upsertCustomer('anna', { email: 'hanna.schmidt@example.com' }, 'CustomerEmailChanged'));
      await eventually(() => h.sink.records.get('customer/anna')?.email === 'h***@example.com', 'the email change');
      expect(h.sink.applied.at(-1)!.body.changed).toEqual(['email']);
      // The same change once more reads the same digest: nothing is sent.
      await h.post(h.commercetools.upsertCustomer('anna', { email: 'hanna.schmidt@example.com' }, 'CustomerEmailChanged'));
      await eventually(async () => (await h.runtime.store.db.selectFrom('records').select('synced_version').where('resource_id', '=', 'anna').executeTakeFirst())?.synced_version === 3, 'version 3 synced');
      expect(h.sink.applied.filter((i) => i.kind === 'record')).toHaveLength(2);

      const stored = await allStoredText(h);
      for (const value of ['anna.schmidt@example.com', 'hanna.schmidt@example.com', 'Schmidt', '1234567', '1990-04-01']) expect(stored).not.toContain(value);

      const entries = (await h.runtime.store.db.selectFrom('audit_log').selectAll().where('resource_id', '=', 'anna').orderBy('id').execute()).map((e) => [e.action, e.outcome, e.fields]);
      expect(entries).toEqual([
        ['record.upsert', 'ok', JSON.stringify(['email', 'name', 'phone', 'note', 'tier'])],
        ['record.upsert', 'ok', JSON.stringify(['email'])],
      ]);
    } finally {
      await h.stop();
    }
    // The operator's view of the same history, from the command line.
    const config = cliConfig(`audit-${testStore.name}`, storeUrl);
    const run = await ctbridge(['audit', '--record', 'anna', '--config', config]);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/sink\s+record\.upsert\s+customer\s+v1\s+ok email, name, phone, note, tier/);
    expect(lines[1]).toMatch(/record\.upsert\s+customer\s+v2\s+ok email /);
  });

  it('blocks a payload holding a card number, dead-letters it without the number, and audits the block', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post(h.commercetools.upsertCustomer('card', { ...ANNA, custom: { fields: { note: 'call back, card 4111 1111 1111 1111' } } }));
      let letters: Array<{ reason: string; payload: unknown }> = [];
      await eventually(async () => {
        letters = ((await (await adminFetch(h, '/v1/dead-letters')).json()) as { items: typeof letters }).items;
        return letters.length > 0;
      }, 'the dead letter');
      expect(letters[0]!.reason).toMatch(/payment data blocked, nothing was sent: card number in note/);
      expect(JSON.stringify(letters)).not.toMatch(/4111/);
      expect(h.sink.requests).toHaveLength(0);
      const audit = await h.runtime.store.db.selectFrom('audit_log').select(['outcome', 'detail']).where('resource_id', '=', 'card').execute();
      expect(audit).toEqual([{ outcome: 'dead-lettered', detail: expect.stringMatching(/payment data blocked/) as unknown }]);
      expect(await allStoredText(h)).not.toMatch(/4111 1111/);
    } finally {
      await h.stop();
    }
  });

  it('erases a customer deleted with dataErasure: deleted at the destination, tokens gone, an audit entry', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post(h.commercetools.upsertCustomer('gone', ANNA));
      await eventually(() => h.sink.records.has('customer/gone'), 'synced first');
      expect(await h.runtime.store.db.selectFrom('vault_tokens').select('subject').execute()).toEqual([{ subject: 'gone' }]);

      const deletion = { ...h.commercetools.deleteCustomer('gone'), dataErasure: true };
      expect((await h.post(deletion)).status).toBe(202);
      await eventually(async () => (await h.runtime.store.db.selectFrom('audit_log').select('id').where('action', '=', 'erasure').execute()).length === 1, 'the erasure carried out');
      await eventually(() => !h.sink.records.has('customer/gone'), 'deleted at the sink');
      expect(await h.runtime.store.db.selectFrom('vault_tokens').selectAll().execute()).toEqual([]);
      const erasure = await h.runtime.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'erasure').executeTakeFirstOrThrow();
      expect(erasure.detail).toMatch(/CustomerDeleted \(dataErasure\): 1 record\(s\) deleted at their destinations, 1 vault token\(s\)/);
      expect(erasure.correlation_id).toBeTruthy();
    } finally {
      await h.stop();
    }
  });

  it('purges snapshots and dead-letter payloads past their store\'s retention, audit entries past auditDays, and sends the whole record at the next change', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post([
        h.commercetools.upsertCustomer('uk-1', { ...ANNA, stores: [{ typeId: 'store', key: 'uk' }] }),
        h.commercetools.upsertCustomer('de-1', { ...ANNA, stores: [{ typeId: 'store', key: 'de' }] }),
        h.commercetools.upsertCustomer('uk-card', { ...ANNA, stores: [{ typeId: 'store', key: 'uk' }], custom: { fields: { note: '4111111111111111' } } }),
      ]);
      await eventually(async () => (await h.runtime.store.db.selectFrom('records').select('synced_at').where('synced_at', 'is not', null).execute()).length === 2, 'two customers synced');
      await eventually(async () => (await h.runtime.store.db.selectFrom('dead_letters').select('id').execute()).length === 1, 'the blocked one dead-lettered');
      const snapshots = async () => Object.fromEntries((await h.runtime.store.db.selectFrom('records').select(['resource_id', 'snapshot']).execute()).map((r) => [r.resource_id, r.snapshot]));
      const day = 24 * 3600 * 1000;
      // The dead-lettered record never synced, so it has no store yet: its letter follows the default (30 days).
      expect(await purgeExpired(h.runtime.store.db, { days: 30, stores: { uk: 1 } }, Date.now() + 2 * day)).toEqual({ snapshots: 1, deadLetterPayloads: 0, auditEntries: 0, payloadEntries: 0 });
      expect((await snapshots())['uk-1']).toBe('{}');
      expect((await snapshots())['de-1']).not.toBe('{}');
      expect(await purgeExpired(h.runtime.store.db, { days: 30, stores: { uk: 1 } }, Date.now() + 31 * day)).toEqual({ snapshots: 1, deadLetterPayloads: 1, auditEntries: 0, payloadEntries: 0 });
      expect((await h.runtime.store.db.selectFrom('dead_letters').select('payload').executeTakeFirstOrThrow()).payload).toBeNull();

      // The audit log keeps its own time: entries older than auditDays go, newer ones stay.
      const auditCount = async () => (await h.runtime.store.db.selectFrom('audit_log').select('id').execute()).length;
      const entries = await auditCount();
      expect(entries).toBeGreaterThan(0);
      expect((await purgeExpired(h.runtime.store.db, { stores: {}, auditDays: 365 }, Date.now() + 31 * day)).auditEntries).toBe(0);
      expect((await purgeExpired(h.runtime.store.db, { stores: {}, auditDays: 365 }, Date.now() + 366 * day)).auditEntries).toBe(entries);
      expect(await auditCount()).toBe(0);

      // With the snapshot gone, the next change sends every field again.
      await h.post(h.commercetools.upsertCustomer('uk-1', { custom: { fields: { tier: 'silver' } } }));
      await eventually(() => h.sink.records.get('customer/uk-1')?.tier === 'silver', 'the change');
      expect(h.sink.applied.at(-1)!.body.changed).toEqual(['email', 'name', 'phone', 'note', 'tier']);
    } finally {
      await h.stop();
    }
  });

  it('erases a customer from the command line: their data here at once, the destination\'s record at the next start', async () => {
    const storeUrl = await testStore.create();
    const first = await startHarness({ storeUrl, destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await first.post(first.commercetools.upsertCustomer('asked', ANNA));
      await eventually(() => first.sink.records.has('customer/asked'), 'synced');
      await eventually(async () => (await first.runtime.store.db.selectFrom('identities').select('person').execute()).length === 1, 'the identity');
    } finally {
      await first.stop();
    }
    const config = cliConfig(`erase-${testStore.name}`, storeUrl, `pii: { hashKey: ${HASH_KEY}, vault: { keys: { k1: "${VAULT.keys.k1}" }, activeKey: k1 } }`);
    const run = await ctbridge(['erase', '--customer', 'asked', '--config', config]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^erased customer asked \(correlation id [\w-]+\)/);

    const second = await startHarness({ storeUrl, destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      expect(await second.runtime.store.db.selectFrom('vault_tokens').selectAll().execute()).toEqual([]);
      expect(await second.runtime.store.db.selectFrom('identities').selectAll().execute()).toEqual([]);
      await eventually(() => second.sink.requests.some((r) => r.method === 'DELETE' && r.path === '/records/customer/asked'), 'the delete at the destination');
      const audit = await ctbridge(['audit', '--record', 'asked', '--json', '--config', config]);
      const actions = (JSON.parse(audit.stdout) as { entries: Array<{ action: string; outcome: string }> }).entries.map((e) => `${e.action}:${e.outcome}`);
      expect(actions.slice(0, 2)).toEqual(['record.upsert:ok', 'erasure:ok']);
    } finally {
      await second.stop();
    }
  });

  it('seals a dead event\'s message while it waits, and replays it intact', async () => {
    const h = await startHarness({
      storeUrl: await testStore.create(),
      destination: { records: {}, events: { welcome: { on: ['CustomerCreated'], fields: { customerId: 'resource.id', email: 'customer.email' } } } },
      pii: { hashKey: HASH_KEY },
    });
    try {
      h.sink.faultFor = (request) => (request.path === '/events' ? { kind: 'status', status: 422 } : undefined);
      await h.post(h.commercetools.upsertCustomer('late', ANNA));
      let letters: Array<{ id: number }> = [];
      await eventually(async () => {
        letters = ((await (await adminFetch(h, '/v1/dead-letters')).json()) as { items: typeof letters }).items;
        return letters.length > 0;
      }, 'the dead event');
      const kept = await h.runtime.store.db.selectFrom('events').select(['payload', 'dead']).executeTakeFirstOrThrow();
      expect(Number(kept.dead)).toBe(1);
      expect(kept.payload).toMatch(/^sealed:v\d+:/);
      expect(await allStoredText(h)).not.toContain(ANNA.email);

      h.sink.faultFor = undefined;
      expect((await adminFetch(h, `/v1/dead-letters/${letters[0]!.id}/replay`, { method: 'POST' })).status).toBe(202);
      await eventually(() => h.sink.applied.some((i) => i.kind === 'event'), 'the replayed event');
      expect(h.sink.applied.find((i) => i.kind === 'event')!.body.payload).toEqual({ customerId: 'late', email: ANNA.email });
    } finally {
      await h.stop();
    }
  });

  it('rotates the vault to a new key from the command line, the tokens unchanged', async () => {
    const storeUrl = await testStore.create();
    const h = await startHarness({ storeUrl, destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    let token: string;
    try {
      await h.post(h.commercetools.upsertCustomer('rot', ANNA));
      await eventually(() => h.sink.records.has('customer/rot'), 'synced');
      token = h.sink.records.get('customer/rot')!.name as string;
    } finally {
      await h.stop();
    }
    const k2 = randomBytes(32).toString('base64');
    const both = cliConfig(`rotate-${testStore.name}`, storeUrl, `pii: { hashKey: ${HASH_KEY}, vault: { keys: { k1: "${VAULT.keys.k1}", k2: "${k2}" }, activeKey: k2 } }`);
    const run = await ctbridge(['tokens', 'rotate', '--config', both]);
    expect(run.stdout).toBe('re-encrypted 1 token(s) under key "k2"\n');
    // The old key can go: the token still stands for the same name.
    const store = openStore(storeUrl);
    try {
      const keys = await piiKeysLoader(store.db, { hashKey: HASH_KEY, vault: { keys: { k2 }, activeKey: 'k2' } })();
      expect(await keys.tokens!.detokenize([token])).toEqual(new Map([[token, 'Anna Schmidt']]));
    } finally {
      await store.close();
    }
  });
});

// What an erased customer leaves in an SQLite store's files, read byte by byte: the database files and their
// write-ahead logs, as a running ctbridge leaves them and after `ctbridge erase` from the command line.
describe('erasure in the SQLite files', () => {
  const stores = testStores.find((store) => store.name === 'sqlite')!;
  afterAll(() => stores.cleanup());
  // Values found nowhere else, so a hit in the files can only be this customer.
  const ZOE = { email: 'zoe.quillfeather@example.org', firstName: 'Zoequill', lastName: 'Featherstonehaugh', dateOfBirth: '1981-07-09', addresses: [{ phone: '+43 664 7654321', city: 'Quillingen', country: 'AT' }], custom: { fields: { tier: 'gold' } } };
  const personal = [ZOE.email, ZOE.firstName, ZOE.lastName, ZOE.addresses[0]!.city];

  /** The personal values found in the bytes of every file beside the store (database files and their WALs). */
  function personalInFiles(storeUrl: string): string[] {
    const folder = dirname(storeUrl.slice('sqlite:'.length));
    const bytes = readdirSync(folder).map((file) => readFileSync(join(folder, file)));
    return personal.filter((value) => bytes.some((content) => content.includes(value)));
  }

  it('leaves none of a customer erased by a CustomerDeleted (dataErasure) in the files of the running store', async () => {
    const storeUrl = await stores.create();
    const h = await startHarness({ storeUrl, destination: { ...destination, events: { welcome: { on: ['CustomerCreated'], fields: { customerId: 'resource.id', email: 'customer.email' } } } }, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post(h.commercetools.upsertCustomer('zoe', ZOE));
      await eventually(() => h.sink.records.has('customer/zoe') && h.sink.applied.some((item) => item.kind === 'event'), 'synced and the event delivered');
      await eventually(async () => (await h.runtime.store.inbox.db.selectFrom('inbox').select('seq').execute()).length === 0, 'the inbox routed');
      // Notifications are sealed at rest and snapshots digest personal fields, so the files hold none of it even
      // before the erasure (the next test shows the check sees what is there).

      expect((await h.post({ ...h.commercetools.deleteCustomer('zoe'), dataErasure: true })).status).toBe(202);
      await eventually(() => !h.sink.records.has('customer/zoe'), 'deleted at the sink');
      await eventually(() => personalInFiles(storeUrl).length === 0, 'no personal value of the erased customer in the store files');
      expect(personalInFiles(storeUrl)).toEqual([]);
    } finally {
      await h.stop();
    }
  });

  it('overwrites deleted rows in the database files and empties the write-ahead logs (store.scrub)', async () => {
    const storeUrl = await stores.create();
    const store = openStore(storeUrl);
    await store.migrate();
    try {
      const marker = personal[0]!;
      await store.db.insertInto('audit_log').values({ at: 1, action: 'test', destination: null, item_type: 'customer', resource_id: 'zoe', version: null, fields: null, correlation_id: 'c', outcome: 'ok', detail: marker.repeat(50) }).execute();
      expect(personalInFiles(storeUrl)).toContain(marker); // the check sees what the files hold
      await store.db.deleteFrom('audit_log').execute();
      expect(await store.scrub()).toBe(true);
      expect(personalInFiles(storeUrl)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('leaves none of a customer erased with `ctbridge erase` in the files', async () => {
    const storeUrl = await stores.create();
    const h = await startHarness({ storeUrl, destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      await h.post(h.commercetools.upsertCustomer('zoe', ZOE));
      await eventually(() => h.sink.records.has('customer/zoe'), 'synced');
    } finally {
      await h.stop();
    }
    const config = cliConfig('erase-files', storeUrl, `pii: { hashKey: ${HASH_KEY}, vault: { keys: { k1: "${VAULT.keys.k1}" }, activeKey: k1 } }`);
    const run = await ctbridge(['erase', '--customer', 'zoe', '--config', config]);
    expect(run.stdout).toMatch(/^erased customer zoe/);
    expect(personalInFiles(storeUrl)).toEqual([]);
  });
});
