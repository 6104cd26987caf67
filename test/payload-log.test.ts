// The payload log's treatment and storage, without a runtime: what a body becomes before it is kept (secrets by
// name and by value, personal data masked or dropped as the destination's policy says — never in clear — card
// numbers, form bodies, text bodies, URLs), one row per item a call was made for, a call made for no item, and an
// erasure of a customer taking their rows. The whole path through the engine is test/novomind.test.ts.
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { carryOutErasures, requestErasure } from '../src/engine/erasure.ts';
import { createPayloadRecorder, payloadTreatment } from '../src/observability/payload-log.ts';
import { piiKeysLoader } from '../src/pii/keys.ts';
import { payloadsOf } from '../src/store/payload-log.ts';
import { openStore } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';

const settings = { baseUrl: 'https://crm.example.com', auth: { oauth2: { tokenUrl: '/token', grant: 'password', clientId: 'shop', clientSecret: 'cs-0123456789', username: 'integration@shop.example', password: 'pw-0123456789' } }, headers: { 'x-tenant': 'eu' } };

describe('what the payload log keeps of a body', () => {
  const { body, url } = payloadTreatment({ email: 'drop', name: 'hash', phone: 'pass' }, settings);

  it('masks or drops personal values as the policy says, never keeping one in clear', () => {
    const kept = JSON.parse(body(JSON.stringify({ id: 'c1', email: 'ada@example.com', firstName: 'Ada', phone: '+44 20 7946 0958', note: 'call +44 20 7946 0958 or write ada@example.com', total: 12.5 }))!) as Record<string, unknown>;
    // email: dropped (as the policy drops it); name: hashed when sent, masked here; phone: passed when sent, masked here.
    expect(kept).not.toHaveProperty('email');
    expect(kept.firstName).toBe('A**');
    expect(kept.phone).toBe('+** ** **** **58');
    expect(kept).toMatchObject({ id: 'c1', total: 12.5 });
    expect(JSON.stringify(kept)).not.toMatch(/ada@example\.com|7946|"Ada"/);
  });

  it('removes secrets by name and wherever a secret of the settings turns up, and card numbers', () => {
    const kept = JSON.parse(body(JSON.stringify({ access_token: 'tok-abc', refresh_token: 'r-1', token_type: 'bearer', apiKey: 'k', echo: 'password was pw-0123456789', card: '4111 1111 1111 1111' }))!) as Record<string, unknown>;
    expect(kept).toMatchObject({ access_token: '[secret]', refresh_token: '[secret]', token_type: 'bearer', apiKey: '[secret]', echo: 'password was [secret]' });
    expect(JSON.stringify(kept)).not.toContain('4111 1111');
  });

  it('reads a form body as its fields, and treats text and URLs too', () => {
    expect(JSON.parse(body('grant_type=password&username=integration%40shop.example&password=pw-0123456789&client_id=shop', 'application/x-www-form-urlencoded')!)).toEqual({ grant_type: 'password', username: '[secret]', password: '[secret]', client_id: 'shop' });
    expect(body('refused: cs-0123456789 for ada@example.com', 'text/plain')).toBe('refused: [secret] for ');
    expect(url('https://crm.example.com/customers/ada@example.com?email=ada@example.com')).toBe('https://crm.example.com/customers/?email=***');
    expect(body('', 'application/json')).toBeNull();
  });
});

describe.each(testStores)('the payload log on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('files a call under each item it was made for (or none), shows a record\'s calls, and an erasure takes them', async () => {
    const store = openStore(await testStore.create());
    try {
      await store.migrate();
      const record = createPayloadRecorder({ db: store.db, destination: 'crm', policy: {}, settings, logger: pino({ level: 'silent' }) });
      const exchange = { method: 'POST', url: 'https://crm.example.com/batch', requestType: 'application/json', requestBody: '[{"email":"ada@example.com"},{"email":"bob@example.com"}]', status: 200, responseType: 'application/json', responseBody: '{"ok":true}', error: undefined, at: 1_000, durationMs: 12 };
      await record({ ...exchange, subjects: [{ kind: 'record', type: 'customer', resourceId: 'ada', correlationId: 'corr-a' }, { kind: 'record', type: 'customer', resourceId: 'bob', correlationId: 'corr-b' }] });
      await record({ ...exchange, at: 2_000, subjects: [] });
      const ada = await payloadsOf(store.db, 'ada', { limit: 10 });
      expect(ada.map((row) => ({ destination: row.destination, correlation: row.correlation_id, kind: row.kind, type: row.item_type, status: row.status }))).toEqual([{ destination: 'crm', correlation: 'corr-a', kind: 'record', type: 'customer', status: 200 }]);
      expect(ada[0]!.request_body).toBe('[{"email":"a***@example.com"},{"email":"b***@example.com"}]');
      expect(await store.db.selectFrom('payload_log').select('id').where('resource_id', 'is', null).execute()).toHaveLength(1);

      const request = await requestErasure(store.db, 'ada', 'corr-erase', 'cli', 3_000);
      await carryOutErasures(store.db, [request], await piiKeysLoader(store.db, {})(), 3_000);
      expect(await payloadsOf(store.db, 'ada', { limit: 10 })).toEqual([]);
      expect(await payloadsOf(store.db, 'bob', { limit: 10 })).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
