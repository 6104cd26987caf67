// What the store keeps of a sent record for the next delta: personal fields as keyed digests, the rest as sent.
// The delta compares digests, so a changed email is still seen as changed, but no snapshot row holds the email.
import { createHmac } from 'node:crypto';

const PREFIX = 'hmac:';

export type Snapshotter = (record: Record<string, unknown>, personalFields: ReadonlySet<string>) => Record<string, unknown>;

export function createSnapshotter(key: Buffer): Snapshotter {
  return (record, personalFields) => {
    if (personalFields.size === 0) return record;
    const out: Record<string, unknown> = { ...record };
    for (const name of personalFields) {
      const value = out[name];
      if (value === null || value === undefined) continue;
      out[name] = PREFIX + createHmac('sha256', key).update(JSON.stringify(value)).digest('base64url').slice(0, 27);
    }
    return out;
  };
}
