// Sealing: a value kept only so ctbridge can use it again later (a dead event's source message, for its
// replay) is stored AES-256-GCM encrypted under a key derived from the root key, so the row holds no readable
// personal data while it waits.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const PREFIX = 'sealed:v1:';

export interface Sealer {
  seal(text: string): string;
  /** The text a seal() gave, or the text itself when it was never sealed (rows written before sealing). */
  open(text: string): string;
}

export function createSealer(key: Buffer): Sealer {
  return {
    seal(text) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
      return PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
    },
    open(text) {
      if (!text.startsWith(PREFIX)) return text;
      const raw = Buffer.from(text.slice(PREFIX.length), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
    },
  };
}
