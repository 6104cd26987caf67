// What the store keeps of a sent record for the next delta: personal fields as keyed digests, the rest as sent.
// The delta compares digests, so a changed email is still seen as changed, but no snapshot row holds the email.
import { hash } from 'node:crypto';

const PREFIX = 'digest:';

export type Snapshotter = (record: Record<string, unknown>, personalFields: ReadonlySet<string>) => Record<string, unknown>;

export function createSnapshotter(key: Buffer): Snapshotter {
  // A secret-prefixed SHA-256 in one native call: an HMAC object per field cost a fifth of the engine's CPU.
  // The digest is only compared, never verified as a MAC, so length extension does not matter here.
  const prefix = `${key.toString('base64')}\u0000`;
  return (record, personalFields) => {
    if (personalFields.size === 0) return record;
    const out: Record<string, unknown> = { ...record };
    for (const name of personalFields) {
      const value = out[name];
      if (value === null || value === undefined) continue;
      out[name] = PREFIX + hash('sha256', prefix + JSON.stringify(value), 'base64url').slice(0, 27);
    }
    return out;
  };
}
