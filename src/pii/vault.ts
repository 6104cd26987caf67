// The token vault behind the `tokenize` PII policy: a destination receives `tok_…` instead of the value, and
// ctbridge can turn it back (support views, erasure). Each value is stored once, AES-256-GCM encrypted under the
// active key of pii.vault (the key id is kept beside it, so old keys still decrypt after a rotation), and found
// again by a blind index (an HMAC of the value), so the same value always gets the same token — also for two
// customers sharing a value (an email), so each customer who tokenizes it is recorded as an owner of the token,
// and erasing one removes only their ownership (the token goes with its last owner). Tokenize calls made in the
// same turn of the event loop share one store round trip.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Tokenizer } from '../mapping/transforms.ts';
import type { Database } from '../store/schema.ts';

export interface VaultConfig {
  /** Key id → 32 bytes in base64. */
  keys: Record<string, string>;
  activeKey: string;
}

export interface Vault {
  /** A tokenizer whose new tokens are recorded as this subject's data (a customer id), for erasure. */
  forSubject(subject: string | undefined): Tokenizer;
  /** The values behind tokens; unknown tokens are left out. */
  detokenize(tokens: readonly string[]): Promise<Map<string, string>>;
  /** Re-encrypts every token not under the active key with it; the tokens themselves do not change. */
  rotate(onProgress?: (done: number) => void): Promise<{ reencrypted: number; remaining: Record<string, number> }>;
  /** Removes a subject's ownership of tokens, and the tokens no one else owns (in `executor`, e.g. an erasure's transaction); returns how many tokens went. */
  eraseSubject(subject: string, executor?: Kysely<Database>): Promise<number>;
}

const CACHE_MAX = 10_000;
const ROTATE_BATCH = 500;

interface Waiting {
  value: string;
  subject: string | undefined;
  resolve: (token: string) => void;
  reject: (error: Error) => void;
}

export function createVault(db: Kysely<Database>, config: VaultConfig, blindKey: Buffer, now: () => number = Date.now): Vault {
  const keys = new Map(Object.entries(config.keys).map(([id, text]) => [id, Buffer.from(text, 'base64')]));
  const active = keys.get(config.activeKey);
  if (!active || active.length !== 32) throw new Error(`pii.vault: the active key "${config.activeKey}" is not a 32-byte key`);
  // By blind index and subject: a hit means the subject's ownership of the token is recorded too.
  const cache = new Map<string, string>();
  const cacheKey = (index: string, subject: string | undefined) => `${index}\u0000${subject ?? ''}`;
  let waiting = new Map<string, Waiting[]>();
  let scheduled = false;

  const blindIndex = (value: string) => createHmac('sha256', blindKey).update(value, 'utf8').digest('base64url');

  function encrypt(token: string, value: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', active!, nonce);
    // The token is authenticated with the value, so a ciphertext moved to another token does not decrypt.
    cipher.setAAD(Buffer.from(token, 'utf8'));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
  }

  function decrypt(token: string, keyId: string, ciphertext: string): string {
    const key = keys.get(keyId);
    if (!key) throw new Error(`token ${token} is encrypted with key "${keyId}", which is no longer configured in pii.vault.keys`);
    const raw = Buffer.from(ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(token, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  }

  function remember(index: string, token: string): void {
    cache.delete(index);
    cache.set(index, token);
    if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  }

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = waiting;
    waiting = new Map();
    try {
      const indexes = [...batch.keys()];
      const found = new Map<string, string>();
      const lookUp = async (wanted: string[]) => {
        for (let i = 0; i < wanted.length; i += 500) {
          const rows = await db.selectFrom('vault_tokens').select(['token', 'blind_index']).where('blind_index', 'in', wanted.slice(i, i + 500)).execute();
          for (const row of rows) found.set(row.blind_index, row.token);
        }
      };
      await lookUp(indexes);
      const missing = indexes.filter((index) => !found.has(index));
      if (missing.length > 0) {
        const rows = missing.map((index) => {
          const first = batch.get(index)![0]!;
          const token = `tok_${randomBytes(16).toString('base64url')}`;
          return { token, blind_index: index, key_id: config.activeKey, ciphertext: encrypt(token, first.value), subject: first.subject ?? null, created_at: now() };
        });
        // Another process may have stored the same value meanwhile: its token wins, and is read back below.
        for (let i = 0; i < rows.length; i += 200) {
          await db.insertInto('vault_tokens').values(rows.slice(i, i + 200)).onConflict((oc) => oc.column('blind_index').doNothing()).execute();
        }
        await lookUp(missing);
      }
      const owners = new Map<string, { token: string; subject: string }>();
      for (const [index, waiters] of batch) {
        const token = found.get(index);
        if (token === undefined) continue;
        for (const { subject } of waiters) if (subject !== undefined) owners.set(cacheKey(token, subject), { token, subject });
      }
      const ownerRows = [...owners.values()];
      for (let i = 0; i < ownerRows.length; i += 200) {
        await db.insertInto('vault_token_owners').values(ownerRows.slice(i, i + 200)).onConflict((oc) => oc.columns(['token', 'subject']).doNothing()).execute();
      }
      for (const [index, waiters] of batch) {
        const token = found.get(index);
        if (token === undefined) {
          for (const waiter of waiters) waiter.reject(new Error('the token vault could not store a value'));
          continue;
        }
        for (const waiter of waiters) {
          remember(cacheKey(index, waiter.subject), token);
          waiter.resolve(token);
        }
      }
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error as Error);
    }
  }

  return {
    forSubject(subject) {
      return {
        tokenize(value) {
          const index = blindIndex(value);
          const hit = cache.get(cacheKey(index, subject));
          if (hit !== undefined) return Promise.resolve(hit);
          return new Promise<string>((resolve, reject) => {
            const list = waiting.get(index);
            const entry = { value, subject, resolve, reject };
            if (list) list.push(entry);
            else waiting.set(index, [entry]);
            if (!scheduled) {
              scheduled = true;
              setImmediate(() => void flush());
            }
          });
        },
      };
    },

    async detokenize(tokens) {
      const values = new Map<string, string>();
      const unique = [...new Set(tokens)];
      for (let i = 0; i < unique.length; i += 500) {
        const rows = await db.selectFrom('vault_tokens').select(['token', 'key_id', 'ciphertext']).where('token', 'in', unique.slice(i, i + 500)).execute();
        for (const row of rows) values.set(row.token, decrypt(row.token, row.key_id, row.ciphertext));
      }
      return values;
    },

    async rotate(onProgress) {
      let reencrypted = 0;
      for (;;) {
        const rows = await db.selectFrom('vault_tokens').select(['token', 'key_id', 'ciphertext']).where('key_id', '!=', config.activeKey).where('key_id', 'in', [...keys.keys()]).limit(ROTATE_BATCH).execute();
        if (rows.length === 0) break;
        await db.transaction().execute(async (trx) => {
          for (const row of rows) {
            const value = decrypt(row.token, row.key_id, row.ciphertext);
            await trx.updateTable('vault_tokens').set({ key_id: config.activeKey, ciphertext: encrypt(row.token, value) }).where('token', '=', row.token).where('key_id', '=', row.key_id).execute();
          }
        });
        reencrypted += rows.length;
        onProgress?.(reencrypted);
      }
      // Tokens under a key no longer configured cannot be read: say how many, so the operator can restore the key.
      const left = await db.selectFrom('vault_tokens').select(['key_id', db.fn.countAll<number | string>().as('n')]).where('key_id', '!=', config.activeKey).groupBy('key_id').execute();
      return { reencrypted, remaining: Object.fromEntries(left.map((row) => [row.key_id, Number(row.n)])) };
    },

    async eraseSubject(subject, executor = db) {
      const owned = (await executor.selectFrom('vault_token_owners').select('token').where('subject', '=', subject).execute()).map((row) => row.token);
      await executor.deleteFrom('vault_token_owners').where('subject', '=', subject).execute();
      let deleted = 0;
      for (let i = 0; i < owned.length; i += 500) {
        const result = await executor
          .deleteFrom('vault_tokens')
          .where('token', 'in', owned.slice(i, i + 500))
          .where((eb) => eb.not(eb.exists(eb.selectFrom('vault_token_owners as o').select(sql`1`.as('one')).whereRef('o.token', '=', 'vault_tokens.token'))))
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      // Tokens others still own keep no trace of who first tokenized them.
      await executor.updateTable('vault_tokens').set({ subject: null }).where('subject', '=', subject).execute();
      cache.clear();
      return deleted;
    },
  };
}
