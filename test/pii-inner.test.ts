// The PII policy reaches inside what a field produces (issue 11, item 13): a mapping that reads a whole object
// (`custom.fields`, `$string($)`, `$lookup(...)`) gets no e-mail address (or international phone number) past
// `email: drop`, wherever it sits — a whole value, inside text or JSON text, URL-encoded, as an object key, under a
// key that names a class — and `hash`, `mask` or `tokenize` treat it as they would a field of that class. Unit by
// unit, end to end on both stores (what the sink received), and in `ctbridge mapping preview`.
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compileMapping, type MappingSpec } from '../src/mapping/record-mapping.ts';
import type { PiiPolicy } from '../src/pii/classes.ts';
import { testStores } from './support/stores.ts';
import { eventually, startHarness } from './support/harness.ts';

const HASH_KEY = 'a-hash-key-of-16-chars-or-more';
const EMAIL = 'ada.lovelace@example.com';
const PHONE = '+44 20 7946 0958';
const hashOf = (text: string) => createHmac('sha256', HASH_KEY).update(text.trim().toLowerCase(), 'utf8').digest('hex');

const customer = {
  id: 'c-ada',
  version: 1,
  email: EMAIL,
  firstName: 'Ada',
  custom: {
    type: { typeId: 'type', id: 'type-1' },
    fields: { contact: EMAIL, tier: 'gold', backupPhone: PHONE, note: `write to ${EMAIL} or ada.lovelace%40example.com`, [EMAIL]: 'vip' },
  },
};

const FIELDS: MappingSpec['fields'] = {
  notes: 'custom.fields',
  everything: { jsonata: '$string($)' },
  looked: { jsonata: '$lookup(custom.fields, "contact")' },
  line: { jsonata: '"Contact: " & custom.fields.contact' },
  tier: 'custom.fields.tier',
};

async function mapped(policy: PiiPolicy, fields = FIELDS): Promise<Record<string, unknown>> {
  const tokens = { tokenize: (value: string) => Promise.resolve(`tok_${hashOf(value).slice(0, 8)}`) };
  const result = await compileMapping({ fields }, { policy, secrets: { hashKey: HASH_KEY } }).apply(customer, { tokens });
  if (result.skip) throw new Error('skipped');
  return result.payload;
}

describe('the PII policy inside a field\'s value', () => {
  it('drops e-mail addresses wherever a field holds them: whole, in text, in JSON text, URL-encoded, as keys, under class names', async () => {
    const payload = await mapped({ email: 'drop' });
    const text = JSON.stringify(payload);
    expect(text).not.toContain('ada.lovelace');
    expect(payload.notes).toEqual({ tier: 'gold', backupPhone: PHONE, note: 'write to  or ' });
    expect(payload.looked).toBeNull();
    expect(payload.line).toBe('Contact: ');
    expect(payload.tier).toBe('gold');
    const everything = JSON.parse(payload.everything as string) as Record<string, unknown>;
    expect(everything).toMatchObject({ id: 'c-ada', version: 1, firstName: 'Ada', custom: { fields: { tier: 'gold' } } });
    expect('email' in everything).toBe(false);
  });

  it('hashes, masks or tokenizes them as the policy says for their class, phone numbers too', async () => {
    const hashed = await mapped({ email: 'hash', phone: 'drop' });
    expect(hashed.looked).toBe(hashOf(EMAIL));
    expect(hashed.notes).toEqual({ contact: hashOf(EMAIL), tier: 'gold', note: `write to ${hashOf(EMAIL)} or ${hashOf('ada.lovelace%40example.com')}`, [hashOf(EMAIL)]: 'vip' });
    expect(JSON.parse(hashed.everything as string)).toMatchObject({ email: hashOf(EMAIL), custom: { fields: { contact: hashOf(EMAIL) } } });
    expect(JSON.stringify(hashed)).not.toContain('7946');

    const masked = await mapped({ email: 'mask' });
    expect(masked.looked).toBe('a***@example.com');
    expect(JSON.stringify(masked)).not.toContain('ada.lovelace');

    const tokenized = await mapped({ email: 'tokenize' });
    expect(tokenized.looked).toBe(`tok_${hashOf(EMAIL).slice(0, 8)}`);
    expect(JSON.stringify(tokenized)).not.toContain('ada.lovelace');
    await expect(compileMapping({ fields: FIELDS }, { policy: { email: 'tokenize' } }).apply(customer)).rejects.toThrow(/no token vault/);
  });

  it('treats the values under keys that name a class, and leaves a field that says pii: none alone', async () => {
    const payload = await mapped({ name: 'drop' }, { whole: { jsonata: '$' }, mine: { path: 'custom.fields.contact', pii: 'none' } });
    expect(payload.whole).toMatchObject({ id: 'c-ada', email: EMAIL });
    expect('firstName' in (payload.whole as object)).toBe(false);
    const optedOut = await mapped({ email: 'drop' }, { mine: { path: 'custom.fields', pii: 'none' } });
    expect(optedOut.mine).toMatchObject({ contact: EMAIL });
  });

  it('changes nothing without a policy that does something', async () => {
    expect(await mapped({})).toMatchObject({ looked: EMAIL, notes: customer.custom.fields });
    expect(await mapped({ email: 'pass', name: 'pass' })).toMatchObject({ looked: EMAIL });
  });
});

const destination = (pii: PiiPolicy) => ({ pii, records: { customer: { fields: FIELDS } }, events: {} });

describe.each(testStores)('inner personal data at the sink on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  for (const [policy, check] of [
    [{ email: 'drop' }, (record: Record<string, unknown>) => expect(record).toMatchObject({ looked: null, tier: 'gold', line: 'Contact: ' })],
    [{ email: 'hash' }, (record: Record<string, unknown>) => expect(record).toMatchObject({ looked: hashOf(EMAIL), notes: { contact: hashOf(EMAIL) } })],
  ] as const) {
    it(`sends no e-mail address inside custom.fields, $string($) or $lookup under email: ${policy.email}`, async () => {
      const h = await startHarness({ storeUrl: await testStore.create(), destination: destination(policy), pii: { hashKey: HASH_KEY } });
      try {
        await h.post(h.commercetools.upsertCustomer('c-ada', { email: EMAIL, firstName: 'Ada', custom: customer.custom }));
        await eventually(() => h.sink.records.has('customer/c-ada'), 'the customer at the sink');
        const record = h.sink.records.get('customer/c-ada')!;
        check(record);
        const received = JSON.stringify(h.sink.requests.map((request) => request.body));
        expect(received).toContain('c-ada');
        expect(received).not.toContain('ada.lovelace');
      } finally {
        await h.stop();
      }
    });
  }
});

describe('ctbridge mapping preview', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-inner-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('shows the e-mail inside whole-object fields dropped, and says so', async () => {
    const config = join(dir, 'ctbridge.yaml');
    writeFileSync(
      config,
      `commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }
server: { ingest: { auth: { type: bearer, token: a-token-of-enough-length } } }
destinations:
  - name: crm
    type: http
    url: http://127.0.0.1:1/records
    pii: { email: drop }
    records:
      customer:
        fields: ${JSON.stringify(FIELDS)}
`,
    );
    const input = join(dir, 'customer.json');
    writeFileSync(input, JSON.stringify(customer));
    const run = (json: boolean) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(root, 'bin', 'ctbridge.js'), 'mapping', 'preview', '--config', config, '--destination', 'crm', '--record', 'customer', '--input', input, ...(json ? ['--json'] : [])], { cwd: root }, (error, stdout, stderr) => {
          resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
        });
      });
    const asJson = await run(true);
    expect(asJson.stderr).toBe('');
    const result = JSON.parse(asJson.stdout) as { payload: Record<string, unknown>; personal: unknown[] };
    expect(JSON.stringify(result.payload)).not.toContain('ada.lovelace');
    expect(result.payload).toMatchObject({ looked: null, tier: 'gold' });
    expect(result.personal).toEqual(expect.arrayContaining([{ field: 'looked', class: 'email', form: 'dropped', inside: true }, { field: 'everything', class: 'email', form: 'dropped', inside: true }]));
    const asText = await run(false);
    expect(asText.stdout).not.toContain('ada.lovelace');
    expect(asText.stdout).toMatch(/personal data: .*looked \(email inside, dropped\)/);
  });
});
