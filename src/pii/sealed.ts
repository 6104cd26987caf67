// Sealing: what ctbridge keeps only to use it again later — an accepted request body until it is routed, a
// message or a carried resource until its delivery, a dead event's message until its replay — is stored
// AES-256-GCM encrypted under a key derived from the root key, so a row holds no readable personal data while
// it waits. Rows written before sealing (and text sealed as v1) are still read.
//
// Every Sealer (one per thread) encrypts under a subkey of its own, HKDF(key, a random 16-byte salt), and numbers
// its nonces with a counter: nonces never repeat under a subkey, however many values a long-running process seals
// (random 96-bit nonces under one key are only safe for 2^32 values), and sealing needs no random bytes. The salt
// travels with each sealed value, so any Sealer with the same key opens it.
//
// Text (a JSON column) is sealed into one string: `sealed:v2:` and base64 of salt ‖ nonce ‖ ciphertext ‖ tag.
// Bytes (an inbox body, 1-200 KB on the ingest thread's hot path) are sealed in place, their ciphertext being as
// long as they are, with the rest (version ‖ salt ‖ nonce ‖ tag) returned apart to be kept beside them: no second
// buffer of a body's size, whose allocation and page faults cost more than the encryption.
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

const TEXT_V1 = 'sealed:v1:';
const TEXT_V2 = 'sealed:v2:';
/** The first byte of the seal kept beside sealed bytes. */
const BYTES_V1 = 0x01;
const SALT = 16;
const NONCE = 12;
const TAG = 16;
/** Subkeys a Sealer keeps for opening (one per sealing thread that wrote rows still present: a handful). */
const OPEN_CACHE = 64;

export interface Sealer {
  seal(text: string): string;
  /** The text a seal() gave, or the text itself when it was never sealed (rows written before sealing). */
  open(text: string): string;
  /** Encrypts `bytes` in place (the caller owns them) and returns the seal to keep beside them. */
  sealInPlace(bytes: Uint8Array): Buffer;
  /** Decrypts `bytes` sealed in place, in place (the caller owns them), with their seal; throws when they were altered. */
  openInPlace(bytes: Uint8Array, seal: Uint8Array): Uint8Array;
}

/**
 * A Sealer under `key`; values sealed under one of `previousKeys` still open (the store's own key, once
 * pii.hashKey is configured where it was not).
 */
export function createSealer(key: Buffer, previousKeys: readonly Buffer[] = []): Sealer {
  const salt = randomBytes(SALT);
  const subkey = derive(key, salt);
  const nonce = Buffer.alloc(NONCE);
  let counter = 0n;
  const keys = [key, ...previousKeys];
  // By key index and salt.
  const subkeys = new Map<string, KeyObject>([[`0:${salt.toString('latin1')}`, subkey]]);

  function nextNonce(): Buffer {
    counter += 1n;
    nonce.writeBigUInt64BE(counter, NONCE - 8);
    return nonce;
  }

  function subkeyFor(index: number, saltBytes: Uint8Array): KeyObject {
    const id = `${index}:${Buffer.from(saltBytes.buffer, saltBytes.byteOffset, saltBytes.byteLength).toString('latin1')}`;
    let found = subkeys.get(id);
    if (!found) {
      found = derive(keys[index]!, saltBytes);
      if (subkeys.size >= OPEN_CACHE) subkeys.delete(subkeys.keys().next().value!);
      subkeys.set(id, found);
    }
    return found;
  }

  /** Encrypts `plain` into `out` from `at` (GCM's ciphertext is as long as the plaintext); returns salt ‖ nonce ‖ tag. */
  function encrypt(plain: Uint8Array, out: Uint8Array, at: number): { iv: Buffer; tag: Buffer } {
    const iv = nextNonce();
    const cipher = createCipheriv('aes-256-gcm', subkey, iv);
    const end = updateInto(cipher, plain, out, at);
    cipher.final().copy(out, end);
    return { iv, tag: cipher.getAuthTag() };
  }

  /** Decrypts `body` into `out` (which may be `body` itself); throws when it was altered or sealed under another key. */
  function decrypt(saltBytes: Uint8Array, iv: Uint8Array, body: Uint8Array, tag: Uint8Array, out: Uint8Array): void {
    // A wrong key only shows at final(), after update() wrote into `out`: opening in place, keep the ciphertext
    // to try the next key with.
    const spare = keys.length > 1 && out === body ? Buffer.from(body) : body;
    firstKeyThatOpens((index) => {
      const decipher = createDecipheriv('aes-256-gcm', subkeyFor(index, saltBytes), iv);
      decipher.setAuthTag(tag);
      updateInto(decipher, index === 0 ? body : spare, out, 0);
      decipher.final();
    });
  }

  /** The current key first; a previous one only when the current one fails to authenticate. */
  function firstKeyThatOpens<T>(open: (index: number) => T): T {
    for (let index = 0; ; index += 1) {
      try {
        return open(index);
      } catch (error) {
        if (index + 1 >= keys.length) throw error;
      }
    }
  }

  return {
    seal(text) {
      const plain = Buffer.from(text, 'utf8');
      const out = Buffer.allocUnsafe(SALT + NONCE + plain.byteLength + TAG);
      const { iv, tag } = encrypt(plain, out, SALT + NONCE);
      salt.copy(out, 0);
      iv.copy(out, SALT);
      tag.copy(out, out.byteLength - TAG);
      return TEXT_V2 + out.toString('base64');
    },
    open(text) {
      if (text.startsWith(TEXT_V2)) {
        const raw = Buffer.from(text.slice(TEXT_V2.length), 'base64');
        if (raw.byteLength < SALT + NONCE + TAG) throw new Error('sealed value is truncated');
        const body = raw.subarray(SALT + NONCE, raw.byteLength - TAG);
        decrypt(raw.subarray(0, SALT), raw.subarray(SALT, SALT + NONCE), body, raw.subarray(raw.byteLength - TAG), body);
        return body.toString('utf8');
      }
      if (text.startsWith(TEXT_V1)) return firstKeyThatOpens((index) => openV1(keys[index]!, text.slice(TEXT_V1.length)));
      return text;
    },
    sealInPlace(bytes) {
      const { iv, tag } = encrypt(bytes, bytes, 0);
      return Buffer.concat([Buffer.of(BYTES_V1), salt, iv, tag]);
    },
    openInPlace(bytes, seal) {
      if (seal.byteLength !== 1 + SALT + NONCE + TAG || seal[0] !== BYTES_V1) throw new Error('unknown seal');
      decrypt(seal.subarray(1, 1 + SALT), seal.subarray(1 + SALT, 1 + SALT + NONCE), bytes, seal.subarray(1 + SALT + NONCE), bytes);
      return bytes;
    },
  };
}

/**
 * Bodies of 100-200 KB as one update() would come back in a buffer of their own, above glibc's mmap threshold
 * (bin/ctbridge.js): a map, page faults and an unmap per body, costing more than the encryption itself.
 */
const CHUNK = 16 * 1024;

/**
 * Runs `bytes` through the cipher in chunks, copying the output into `out` from `at` (`out` may be `bytes`: a
 * chunk is read before its output is written); returns where it ended.
 */
function updateInto(cipher: { update(data: Uint8Array): Buffer }, bytes: Uint8Array, out: Uint8Array, at: number): number {
  let end = at;
  for (let from = 0; from < bytes.byteLength; from += CHUNK) {
    const chunk = cipher.update(bytes.subarray(from, Math.min(bytes.byteLength, from + CHUNK)));
    out.set(chunk, end);
    end += chunk.byteLength;
  }
  return end;
}

/** A KeyObject, not bytes: a cipher made from one costs a third of one made from a Buffer (no key import per call). */
function derive(key: Buffer, salt: Uint8Array): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', key, salt, 'ctbridge sealed subkey', 32)));
}

/** v1: the key itself, a random nonce per value (dead events sealed by earlier versions). */
function openV1(key: Buffer, encoded: string): string {
  const raw = Buffer.from(encoded, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE));
  decipher.setAuthTag(raw.subarray(raw.length - TAG));
  return Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]).toString('utf8');
}
