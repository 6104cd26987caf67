// What the store keeps of a sent record for the next delta: personal fields as keyed digests, the rest as sent.
// The delta compares digests, so a changed email is still seen as changed, but no snapshot row holds the email.
import { keyedDigest } from './secrets.ts';

const PREFIX = 'digest:';

export type Snapshotter = (record: Record<string, unknown>, personalFields: ReadonlySet<string>) => Record<string, unknown>;

export function createSnapshotter(key: Buffer): Snapshotter {
  const digest = keyedDigest(key, 27);
  return (record, personalFields) => {
    if (personalFields.size === 0) return record;
    const out: Record<string, unknown> = { ...record };
    for (const name of personalFields) {
      const value = out[name];
      if (value === null || value === undefined) continue;
      out[name] = PREFIX + digest(JSON.stringify(value));
    }
    return out;
  };
}
