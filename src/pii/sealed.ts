// Sealing: what ctbridge keeps only to use it again later — an accepted request body until it is routed, a
// message or a carried resource until its delivery, a dead event's message until its replay — is stored
// AES-256-GCM encrypted under a key derived from the root key, so a row holds no readable personal data while
// it waits. Rows written before sealing (and text sealed as v1) are still read.
//
// Every Sealer (one per thread) encrypts under a subkey of its own, HKDF(key, a random 16-byte salt), and numbers
// its nonces with a counter: nonces never repeat under a subkey, however many values a long-running process seals
// (random 96-bit nonces under one key are only safe for 2^32 values), and sealing needs no random bytes. The salt
// travels with each sealed value, so any Sealer with the same key opens it.
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

const TEXT_V1 = 'sealed:v1:';
const TEXT_V2 = 'sealed:v2:';
/** Starts a sealed inbox body: a NUL byte, which no JSON text (what ingest stores unsealed) begins with. */
const BYTES_MAGIC = Buffer.from([0x00, 0x53, 0x42, 0x01]); // \0 S B v1
const SALT = 16;
const NONCE = 12;
const TAG = 16;
/** Subkeys a Sealer keeps for opening (one per sealing thread that wrote rows still present: a handful). */
const OPEN_CACHE = 64;

export interface Sealer {
  seal(text: string): string;
  /** The text a seal() gave, or the text itself when it was never sealed (rows written before sealing). */
  open(text: string): string;
  /** Bytes as they are stored: magic ‖ salt ‖ nonce ‖ ciphertext ‖ tag. */
  sealBytes(bytes: Uint8Array): Buffer;
  /** The bytes sealBytes() was given, or the bytes themselves when they were never sealed. */
  openBytes(bytes: Uint8Array): Uint8Array;
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

  /** header ‖ salt ‖ nonce ‖ ciphertext ‖ tag, in one buffer. */
  function encrypt(header: Buffer, plain: Uint8Array | string): Buffer {
    const iv = nextNonce();
    const cipher = createCipheriv('aes-256-gcm', subkey, iv);
    const body = typeof plain === 'string' ? cipher.update(plain, 'utf8') : cipher.update(plain);
    const last = cipher.final();
    const out = Buffer.allocUnsafe(header.length + SALT + NONCE + body.length + last.length + TAG);
    let at = header.copy(out, 0);
    at += salt.copy(out, at);
    at += iv.copy(out, at);
    at += body.copy(out, at);
    at += last.copy(out, at);
    cipher.getAuthTag().copy(out, at);
    return out;
  }

  /** The plaintext of salt ‖ nonce ‖ ciphertext ‖ tag (throws when it was tampered with or sealed under another key). */
  function decrypt(sealed: Uint8Array): Buffer {
    if (sealed.byteLength < SALT + NONCE + TAG) throw new Error('sealed value is truncated');
    return firstKeyThatOpens((index) => {
      const decipher = createDecipheriv('aes-256-gcm', subkeyFor(index, sealed.subarray(0, SALT)), sealed.subarray(SALT, SALT + NONCE));
      decipher.setAuthTag(sealed.subarray(sealed.byteLength - TAG));
      return Buffer.concat([decipher.update(sealed.subarray(SALT + NONCE, sealed.byteLength - TAG)), decipher.final()]);
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
      return TEXT_V2 + encrypt(Buffer.alloc(0), text).toString('base64');
    },
    open(text) {
      if (text.startsWith(TEXT_V2)) return decrypt(Buffer.from(text.slice(TEXT_V2.length), 'base64')).toString('utf8');
      if (text.startsWith(TEXT_V1)) return firstKeyThatOpens((index) => openV1(keys[index]!, text.slice(TEXT_V1.length)));
      return text;
    },
    sealBytes(bytes) {
      return encrypt(BYTES_MAGIC, bytes);
    },
    openBytes(bytes) {
      return isSealedBytes(bytes) ? decrypt(bytes.subarray(BYTES_MAGIC.length)) : bytes;
    },
  };
}

/** Whether stored bytes were sealed (an inbox body written before sealing is the JSON text itself). */
export function isSealedBytes(bytes: Uint8Array): boolean {
  return bytes.byteLength > BYTES_MAGIC.length && BYTES_MAGIC.every((byte, i) => bytes[i] === byte);
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
