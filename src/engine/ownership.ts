// Field ownership in record sync (commercetools → destination): which changed fields a send may carry. A
// destination-owned field is sent when the record is created at the destination and never again; a shared field
// is sent when commercetools wins it by the conflict rule (field-state.ts), and held back when the destination
// does (inbound work writes the destination's value to commercetools) or when both already hold the same value
// (the Subscription's echo of a write-back). A field held back keeps, in the snapshot, what the destination holds.
import type { FieldOwnership } from '../config/ownership.ts';
import { EMPTY_FIELD_STATE, currentDigest, observeCommercetools, sentToDestination, winner, type Digester, type FieldState } from './field-state.ts';
import { ruleOf } from './inbound-work.ts';
import type { Routes } from './routes.ts';

export type Ownership = Readonly<Record<string, FieldOwnership>>;

/** The ownership of each record mapping of a destination that has any (owner other than commercetools). */
export function ownershipByRecordType(routes: Routes, destination: string): Map<string, Ownership> {
  const config = routes.destinations.find((d) => d.name === destination);
  const result = new Map<string, Ownership>();
  for (const [recordType, mapping] of Object.entries(config?.records ?? {})) {
    const owned = Object.fromEntries(Object.entries(mapping.ownership ?? {}).filter(([, o]) => o.owner !== 'commercetools'));
    if (Object.keys(owned).length > 0) result.set(recordType, owned);
  }
  return result;
}

export interface OwnershipInput {
  ownership: Ownership;
  /** What the destination holds (the last confirmed snapshot), null on a first send. */
  previous: Record<string, unknown> | null;
  /** The snapshot of the record now; fields held back get their previous value in it. */
  next: Record<string, unknown>;
  record: Record<string, unknown>;
  changed: string[];
  /** Field states of the record's shared and written-back fields. */
  states: ReadonlyMap<string, FieldState>;
  /** When commercetools last modified the resource (ms). */
  ctAt: number;
  /** The field states' digester (keyed). */
  digest: Digester;
}

/** The fields to send, the snapshot to keep, and the field states to store once the send succeeds. */
export function applyOwnership(input: OwnershipInput): { changed: string[]; snapshot: Record<string, unknown>; states: Map<string, FieldState>; held: Set<string> } {
  const { ownership, previous, record, ctAt } = input;
  const snapshot = { ...input.next };
  const states = new Map<string, FieldState>();
  const held = new Set<string>();
  for (const [field, owned] of Object.entries(ownership)) {
    const changed = input.changed.includes(field);
    const current = currentDigest(input.states.get(field) ?? EMPTY_FIELD_STATE, record[field], input.digest);
    const state = observeCommercetools(current.state, current.digest, ctAt);
    if (previous === null) {
      // Created at the destination now: every field goes, and both sides hold commercetools' value.
      if (owned.writeBack) states.set(field, sentToDestination(state));
      continue;
    }
    if (!changed) continue;
    const decision = owned.owner === 'destination' ? 'destination' : winner(state, ruleOf(owned));
    if (decision === 'commercetools') {
      states.set(field, sentToDestination(state));
      continue;
    }
    held.add(field);
    // The destination keeps its value (destination wins), or already holds this one (agreed).
    if (decision === 'destination') {
      if (Object.hasOwn(previous, field)) snapshot[field] = previous[field];
      else delete snapshot[field];
    }
    if (owned.writeBack) states.set(field, state);
  }
  return { changed: input.changed.filter((field) => !held.has(field)), snapshot, states, held };
}
