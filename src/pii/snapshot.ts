// What the store keeps of a sent record for the next delta: personal fields as keyed digests, the rest as sent.
// The delta compares digests, so a changed email is still seen as changed, but no snapshot row holds the email.
// A field the mapping does not know as personal is digested too when its value holds an e-mail address or an
// international phone number (a whole `custom.fields`, a note, `$string($)` under a policy that passes them).
import { emailSpans, internationalPhoneSpans } from './detectors.ts';
import { keyedDigest } from './secrets.ts';

const PREFIX = 'digest:';

export type Snapshotter = (record: Record<string, unknown>, personalFields: ReadonlySet<string>) => Record<string, unknown>;

export function createSnapshotter(key: Buffer): Snapshotter {
  const digest = keyedDigest(key, 27);
  return (record, personalFields) => {
    let out: Record<string, unknown> | undefined;
    for (const [name, value] of Object.entries(record)) {
      if (value === null || value === undefined || !(personalFields.has(name) || holdsPersonalText(value))) continue;
      out ??= { ...record };
      out[name] = PREFIX + digest(JSON.stringify(value));
    }
    return out ?? record;
  };
}

/** Whether a text anywhere in `value` holds an e-mail address or an international phone number. */
function holdsPersonalText(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.length >= 6 && (emailSpans(value).length > 0 || internationalPhoneSpans(value).length > 0);
  if (value === null || typeof value !== 'object' || depth > 32) return false;
  if (Array.isArray(value)) return value.some((item) => holdsPersonalText(item, depth + 1));
  return Object.entries(value).some(([key, item]) => holdsPersonalText(key, depth + 1) || holdsPersonalText(item, depth + 1));
}
