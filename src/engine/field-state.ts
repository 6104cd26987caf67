// What ctbridge knows of one field both sides may write (a `shared` field, or a destination-owned one written
// back): the value each side last held as ctbridge saw it (as a keyed digest, never the value), when that side changed
// it, and when the two last agreed. Record sync (commercetools → destination) and inbound work (destination →
// commercetools) observe values into it and ask it who wins; both go through these pure functions, so the two
// directions decide alike whatever order their work runs in (test/two-way-property.test.ts).
//
// The rule: when the sides differ, the side that changed since they last agreed wins; when both did (a conflict),
// `sourceOfTruth` names the winner, or with `lastWriteWins` the later change does (by each side's change time,
// not by arrival), ties going to `sourceOfTruth`. The destination's events are placed on its own timeline (their
// change times): an event older than one already seen describes a value the destination no longer holds. An
// event of ctbridge's own write to the destination (the connector knows its API user) is never an edit: it only
// says what the destination holds, and if that is not what must win, commercetools' value is sent again. A real
// edit the destination overwrote with a later write of ctbridge's still competes by the rule against commercetools.
import { createHash, createHmac } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

export type Side = 'commercetools' | 'destination';

export interface ConflictRule {
  rule: 'sourceOfTruth' | 'lastWriteWins';
  /** The winner of a conflict (sourceOfTruth), or of a tie (lastWriteWins). */
  sourceOfTruth: Side;
}

export interface FieldState {
  /** Digest of the value commercetools holds, as mapped for the destination; null: not seen yet. */
  ct: string | null;
  /** When commercetools' value last changed (ms), or, once written back, the destination edit's time. */
  ctAt: number;
  /** Digest of the value the destination holds; null: not seen yet. */
  dest: string | null;
  /** When that value was edited (ms); a value ctbridge propagated carries its origin's time, an echo 0. */
  destAt: number;
  /** The newest event time seen on the destination's timeline, and whether that event was ctbridge's own write. */
  destSeenAt: number;
  destSeenByUs: boolean;
  /** When both sides last held the same value (ms). */
  agreedAt: number;
}

export const EMPTY_FIELD_STATE: FieldState = { ct: null, ctAt: 0, dest: null, destAt: 0, destSeenAt: 0, destSeenByUs: false, agreedAt: 0 };

/**
 * The unkeyed digest field states were written with before their digests were keyed: equal values give equal
 * digests, but a guess at a personal value (an e-mail, a phone number) can be tested against it. Only read now, to
 * recognise old rows (currentDigest).
 */
export function valueDigest(value: unknown): string {
  return createHash('sha256').update(canonical(value ?? null)).digest('base64url').slice(0, 32);
}

/** Digests a mapped value for the field state. */
export type Digester = (value: unknown) => string;

/** Marks a keyed digest; a digest without it is an unkeyed one of an older row. */
const KEYED = 'k1.';

/** HMAC-SHA256 under a key of the store's key ring (pii/keys.ts): without the key, no guess can be tested. */
export function keyedDigester(key: Buffer): Digester {
  return (value) => `${KEYED}${createHmac('sha256', key).update(canonical(value ?? null)).digest('base64url').slice(0, 32)}`;
}

/**
 * The keyed digest of `value`, and the state with an unkeyed digest of that same value (a row written before the
 * digests were keyed) replaced by it, so old rows compare as they did and are keyed once they are saved again.
 */
export function currentDigest(state: FieldState, value: unknown, digest: Digester): { state: FieldState; digest: string } {
  const keyed = digest(value);
  const legacy = (held: string | null) => held !== null && !held.startsWith(KEYED);
  if (!legacy(state.ct) && !legacy(state.dest)) return { state, digest: keyed };
  const old = valueDigest(value);
  return { state: { ...state, ...(state.ct === old && { ct: keyed }), ...(state.dest === old && { dest: keyed }) }, digest: keyed };
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const sameValue = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a ?? null, b ?? null);

/** commercetools holds `digest`, read at a version last modified at `at`: a change only when the value differs. */
export function observeCommercetools(state: FieldState, digest: string, at: number): FieldState {
  // Unchanged, and the destination holds it too: they agree as of the later of their times.
  if (state.ct === digest) return agreeIfEqual(state);
  return agreeIfEqual({ ...state, ct: digest, ctAt: Math.max(at, state.ctAt) });
}

/** ctbridge wrote commercetools' value to the destination: both hold it, at commercetools' time. */
export function sentToDestination(state: FieldState): FieldState {
  return { ...state, dest: state.ct, destAt: state.ctAt, agreedAt: Math.max(state.agreedAt, state.ctAt) };
}

/** ctbridge wrote the destination's value to commercetools: both hold it, at the destination's time. */
export function writtenBack(state: FieldState): FieldState {
  return { ...state, ct: state.dest, ctAt: state.destAt, agreedAt: Math.max(state.agreedAt, state.destAt) };
}

/** An overtaken destination edit won: commercetools gets it (and the destination, which holds another value, after). */
export function overtakenWrittenBack(state: FieldState, digest: string, at: number): FieldState {
  // The destination holds a write of ctbridge's (what overtook the edit): never an edit of its own, so it yields.
  return agreeIfEqual({ ...state, ct: digest, ctAt: at, destAt: 0 });
}

function agreeIfEqual(state: FieldState): FieldState {
  if (state.ct === null || state.ct !== state.dest) return state;
  return { ...state, agreedAt: Math.max(state.agreedAt, state.ctAt, state.destAt) };
}

export interface DestinationEvent {
  digest: string;
  /** The change's time on the destination's clock (ms). */
  at: number;
  /** The change was ctbridge's own write (the destination says who made it). */
  byUs: boolean;
}

/**
 * What a destination event means: `ignore` (a duplicate, an echo, or superseded), `decide` (a current edit: read
 * commercetools and ask winner()), `resend` (the destination holds a stale write of ctbridge's: send commercetools'
 * value again; the event's value is what the destination holds) or `overtaken` (a real edit the destination
 * already overwrote with ctbridge's later write: it competes with commercetools' value by conflictWinner()).
 */
export function onDestinationEvent(state: FieldState, event: DestinationEvent): { kind: 'ignore' | 'decide' | 'resend' | 'overtaken'; state: FieldState } {
  if (event.at < state.destSeenAt) {
    if (event.byUs || !state.destSeenByUs || event.digest === state.dest) return { kind: 'ignore', state };
    return { kind: 'overtaken', state };
  }
  const seen = { ...state, destSeenAt: event.at, destSeenByUs: event.byUs };
  if (event.digest === state.dest) {
    // The value ctbridge last saw, edited again later (changed and changed back, the change in between not yet
    // delivered): a newer edit of the destination's, which competes by its own time with the value commercetools
    // holds when the decision reads it — which may have changed since the state last saw it.
    if (!event.byUs && event.at > state.destAt) return { kind: 'decide', state: { ...seen, destAt: event.at } };
    return { kind: 'ignore', state: seen };
  }
  if (event.byUs) return { kind: 'resend', state: { ...seen, dest: event.digest, destAt: 0 } };
  return { kind: 'decide', state: agreeIfEqual({ ...seen, dest: event.digest, destAt: event.at }) };
}

/** Whose value both sides must end up with: 'agreed' when they already hold the same (or one is unknown). */
export function winner(state: FieldState, rule: ConflictRule): Side | 'agreed' {
  if (state.ct === null || state.dest === null) return state.dest === null ? 'commercetools' : 'destination';
  if (state.ct === state.dest) return 'agreed';
  const ctChanged = state.ctAt > state.agreedAt;
  const destChanged = state.destAt > state.agreedAt;
  if (ctChanged && !destChanged) return 'commercetools';
  if (destChanged && !ctChanged) return 'destination';
  // Neither changed since they last agreed, yet they differ: one side holds a value older than the agreement (an
  // earlier write of ctbridge's coming back, an edit overwritten since): the newer value stands.
  if (!ctChanged && !destChanged && state.ctAt !== state.destAt) return state.ctAt > state.destAt ? 'commercetools' : 'destination';
  return conflictWinner(rule, state.ctAt, state.destAt);
}

/** Both sides changed (or an overtaken edit competes): the rule decides, by change times for lastWriteWins. */
export function conflictWinner(rule: ConflictRule, ctAt: number, destAt: number): Side {
  if (rule.rule === 'lastWriteWins' && ctAt !== destAt) return ctAt > destAt ? 'commercetools' : 'destination';
  return rule.sourceOfTruth;
}

/**
 * After a `decide` or `overtaken` event and a read of commercetools (its value's digest and modification time):
 * whether to write the destination's value back, what the field state is now (`observed`) and after that write
 * (`written`), whether the destination holds the event's value (the snapshot takes it) and whether commercetools'
 * value must be sent to the destination again (the record marked dirty).
 */
export function decideWriteBack(
  kind: 'decide' | 'overtaken',
  state: FieldState,
  ct: { digest: string; at: number },
  event: DestinationEvent,
  rule: ConflictRule,
): { decision: Side | 'agreed'; observed: FieldState; written: FieldState; holds: boolean; dirty: boolean } {
  const observed = observeCommercetools(state, ct.digest, ct.at);
  const holds = kind === 'decide';
  const decision = kind === 'decide' ? winner(observed, rule) : observed.ct === event.digest ? 'agreed' : conflictWinner(rule, observed.ctAt, event.at);
  const written = kind === 'decide' ? writtenBack(observed) : overtakenWrittenBack(observed, event.digest, event.at);
  // commercetools won a current edit: the destination must get commercetools' value; an overtaken edit that won:
  // the destination holds another value and must get it too.
  const dirty = (decision === 'commercetools' && kind === 'decide') || (decision === 'destination' && kind === 'overtaken');
  return { decision, observed, written, holds, dirty };
}
