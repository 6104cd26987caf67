// The field states of two-way sync hold keyed digests (HMAC-SHA256 under a key of the store's key ring), so a
// guess at a personal value cannot be tested against a stored row; rows written with the older unkeyed digests stay
// readable: a digest of the same value still compares equal (and is replaced by the keyed one), another value
// still differs.
import { describe, expect, it } from 'vitest';
import { EMPTY_FIELD_STATE, currentDigest, decideWriteBack, keyedDigester, onDestinationEvent, valueDigest } from '../src/engine/field-state.ts';

const digest = keyedDigester(Buffer.alloc(32, 1));

describe('field state digests', () => {
  it('are keyed: another key gives another digest, and the unkeyed digest of the value is not among them', () => {
    const email = 'ada.lovelace@example.org';
    expect(digest(email)).toMatch(/^k1\.[\w-]{32}$/);
    expect(digest(email)).toBe(digest(email));
    expect(digest(email)).not.toBe(keyedDigester(Buffer.alloc(32, 2))(email));
    expect(digest(email)).not.toContain(valueDigest(email));
    expect(digest({ b: 1, a: 2 })).toBe(digest({ a: 2, b: 1 }));
  });

  it('read rows with unkeyed digests: the same value compares equal and is rekeyed, another value differs', () => {
    const old = { ...EMPTY_FIELD_STATE, ct: valueDigest('Customer'), ctAt: 10, dest: valueDigest('Customer'), destAt: 10, destSeenAt: 10, agreedAt: 10 };

    const same = currentDigest(old, 'Customer', digest);
    expect(same.digest).toBe(digest('Customer'));
    expect(same.state).toEqual({ ...old, ct: digest('Customer'), dest: digest('Customer') });
    // monday tells of the value both already hold: decided against commercetools' value as read, the same one, so
    // nothing is written back and both agree as of the edit.
    const told = onDestinationEvent(same.state, { digest: same.digest, at: 20, byUs: false });
    const step = decideWriteBack('decide', told.state, { digest: same.digest, at: 10 }, { digest: same.digest, at: 20, byUs: false }, { rule: 'lastWriteWins', sourceOfTruth: 'commercetools' });
    expect(step.decision).toBe('agreed');
    expect(step.observed.agreedAt).toBe(20);

    const other = currentDigest(old, 'Churned', digest);
    expect(other.state).toEqual(old);
    const event = onDestinationEvent(other.state, { digest: other.digest, at: 20, byUs: false });
    expect(event.kind).toBe('decide');
    expect(event.state.dest).toBe(digest('Churned'));

    // Keyed rows are left as they are.
    const keyed = { ...old, ct: digest('Lead'), dest: digest('Lead') };
    expect(currentDigest(keyed, 'Lead', digest).state).toBe(keyed);
  });
});
