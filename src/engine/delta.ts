// Delta computation: which mapped fields differ from the snapshot of what was last sent to a destination.
import { isDeepStrictEqual } from 'node:util';

/** Names of the fields whose value differs between the last sent record and the new one. */
export function changedFields(previous: Record<string, unknown> | undefined, next: Record<string, unknown>): string[] {
  if (previous === undefined) return Object.keys(next);
  const changed: string[] = [];
  for (const key of Object.keys(next)) {
    if (!isDeepStrictEqual(previous[key], next[key])) changed.push(key);
  }
  for (const key of Object.keys(previous)) {
    if (!(key in next)) changed.push(key);
  }
  return changed;
}

export function pick(record: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) out[name] = name in record ? record[name] : null;
  return out;
}
