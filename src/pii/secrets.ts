// The keys ctbridge derives its own digests and blind indexes from. With pii.hashKey configured that is the
// root; without it, a random key generated once and kept in the store (store_secrets), so a fresh sandbox or a
// test needs no configuration. A key in the store protects against reading values off a row, not against
// someone holding the whole database: configure pii.hashKey from a secret store for that.
import { hash, hkdfSync, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

const ROOT_NAME = 'pii-root-key';

/** The root key: the configured hash key, or the store's own (created on first use, the same for every process). */
export async function loadRootKey(db: Kysely<Database>, hashKey: string | undefined): Promise<Buffer> {
  if (hashKey !== undefined) return Buffer.from(hashKey, 'utf8');
  await db.insertInto('store_secrets').values({ name: ROOT_NAME, value: randomBytes(32).toString('base64') }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const row = await db.selectFrom('store_secrets').select('value').where('name', '=', ROOT_NAME).executeTakeFirstOrThrow();
  return Buffer.from(row.value, 'base64');
}

/** A key for one purpose (`snapshot`, `blind-index`), so that no two uses share a key. */
export function deriveKey(root: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `ctbridge ${purpose}`, 32));
}

/**
 * A keyed digest of text (base64url, `length` characters): a secret-prefixed SHA-256 in one native call, for
 * digests that are only compared (snapshots, email digests), never verified as a MAC, so length extension does
 * not matter. An HMAC object per value cost a fifth of the engine's CPU in the end-to-end bench.
 */
export function keyedDigest(key: Buffer, length: number): (text: string) => string {
  const prefix = `${key.toString('base64')}\u0000`;
  return (text) => hash('sha256', prefix + text, 'base64url').slice(0, length);
}

/** The key values are sealed under (pii/sealed.ts). */
export function sealKeyOf(root: Buffer): Buffer {
  return deriveKey(root, 'sealed');
}

/** The seal key alone, for the threads that seal accepted bodies and need no other key (HTTP, ingest). */
export async function loadSealKey(db: Kysely<Database>, hashKey: string | undefined): Promise<Buffer> {
  return sealKeyOf(await loadRootKey(db, hashKey));
}
