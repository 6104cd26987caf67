// The last check before a payload leaves for a destination: payment data in it blocks the send, and the item
// goes to the dead letters with the reason (where and what kind, never the value).
import { PermanentError } from '../destinations/kit/errors.ts';
import { findPaymentData } from './payment-data.ts';

/** The error that blocks sending `payload`, or undefined when it holds no payment data. */
export function blockedPaymentData(payload: Record<string, unknown>): PermanentError | undefined {
  const findings = findPaymentData(payload);
  if (findings.length === 0) return undefined;
  const where = findings.map((finding) => `${finding.kind} in ${finding.path}`).join('; ');
  return new PermanentError(`payment data blocked, nothing was sent: ${where}`);
}
