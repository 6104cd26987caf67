// A vault token shared by two customers (issue 11, item 16): the same value (an email) tokenizes to the same token
// for both, so erasing one customer removes only their ownership; the other's token still resolves and is what
// their next sync sends, and the token goes with its last owner. On both stores.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { piiKeysLoader } from '../src/pii/keys.ts';
import { testStores } from './support/stores.ts';
import { eventually, startHarness, type Harness } from './support/harness.ts';

const VAULT = { keys: { k1: randomBytes(32).toString('base64') }, activeKey: 'k1' };
const HASH_KEY = 'a-hash-key-of-16-chars-or-more';
const SHARED = 'shared.inbox@example.com';

const destination = { pii: { email: 'tokenize' }, records: { customer: { fields: { email: 'email', firstName: 'firstName' } } }, events: {} };

async function erased(h: Harness, count: number): Promise<void> {
  await eventually(async () => (await h.runtime.store.db.selectFrom('audit_log').select('id').where('action', '=', 'erasure').execute()).length === count, `erasure ${count} carried out`);
}

describe.each(testStores)('shared vault tokens on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('erasing one of two customers sharing an email keeps the other\'s token; the token goes with the last owner', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), destination, pii: { hashKey: HASH_KEY, vault: VAULT } });
    try {
      const db = h.runtime.store.db;
      // twin-a first: the token is created for twin-a, and found again for twin-b.
      await h.post(h.commercetools.upsertCustomer('twin-a', { email: SHARED, firstName: 'A' }));
      await eventually(() => h.sink.records.has('customer/twin-a'), 'twin-a at the sink');
      await h.post(h.commercetools.upsertCustomer('twin-b', { email: SHARED, firstName: 'B' }));
      await eventually(() => h.sink.records.has('customer/twin-b'), 'twin-b at the sink');
      const token = h.sink.records.get('customer/twin-a')!.email as string;
      expect(token).toMatch(/^tok_/);
      expect(h.sink.records.get('customer/twin-b')!.email).toBe(token);
      const owners = async () => (await db.selectFrom('vault_token_owners').selectAll().execute()).map((row) => `${row.subject}:${row.token === token ? 'T' : row.token}`).sort();
      expect(await owners()).toEqual(['twin-a:T', 'twin-b:T']);

      await h.post({ ...h.commercetools.deleteCustomer('twin-a'), dataErasure: true });
      await erased(h, 1);
      await eventually(() => !h.sink.records.has('customer/twin-a'), 'twin-a deleted at the sink');
      // twin-a's link is gone; twin-b's token still turns back into the email.
      expect(await owners()).toEqual(['twin-b:T']);
      expect(await db.selectFrom('vault_tokens').select('subject').where('subject', '=', 'twin-a').execute()).toEqual([]);
      const keys = await piiKeysLoader(db, h.config.pii)();
      expect(await keys.tokens!.detokenize([token])).toEqual(new Map([[token, SHARED]]));

      // twin-b's next syncs: another email gets another token, and the shared one the same token as before.
      await h.post(h.commercetools.upsertCustomer('twin-b', { email: 'other@example.com' }, 'CustomerEmailChanged'));
      await eventually(() => h.sink.records.get('customer/twin-b')?.email !== token, 'the new email at the sink');
      const other = h.sink.records.get('customer/twin-b')!.email as string;
      await h.post(h.commercetools.upsertCustomer('twin-b', { email: SHARED }, 'CustomerEmailChanged'));
      await eventually(() => h.sink.records.get('customer/twin-b')?.email === token, 'the shared email, under the same token, at the sink');

      // Erasing the last owner removes the tokens.
      await h.post({ ...h.commercetools.deleteCustomer('twin-b'), dataErasure: true });
      await erased(h, 2);
      expect(await owners()).toEqual([]);
      expect(await db.selectFrom('vault_tokens').select('token').where('token', 'in', [token, other]).execute()).toEqual([]);
      expect(await keys.tokens!.detokenize([token, other])).toEqual(new Map());
    } finally {
      await h.stop();
    }
  });
});
