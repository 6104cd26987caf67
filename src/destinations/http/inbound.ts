// The generic inbound contract of an `http` destination (two-way sync), for a system that can sign its webhooks
// with a shared secret (HMAC over the raw body, or the secret in a header) and say what changed in ctbridge's
// terms: `{ "id": "<delivery id>", "changes": [{ "recordType": "customer", "id": "<commercetools id>", "field":
// "tier", "value": "gold", "changedAt": "2026-12-05T10:00:00Z" }] }`.
import { z } from 'zod';
import { PermanentError } from '../kit/index.ts';
import type { InboundDefinition } from '../types.ts';

const body = z.strictObject({
  id: z.string().min(1).max(200),
  changes: z
    .array(z.strictObject({ recordType: z.string().min(1), id: z.string().min(1), field: z.string().min(1), value: z.unknown(), changedAt: z.iso.datetime({ offset: true }) }))
    .min(1)
    .max(1000),
});

export const genericInbound: InboundDefinition<unknown> = {
  auth: ['hmac', 'sharedSecret'],
  dedupeKey: (raw) => {
    const parsed = body.safeParse(raw);
    return parsed.success ? `http:${parsed.data.id}` : undefined;
  },
  changes(_settings, raw) {
    const parsed = body.safeParse(raw);
    if (!parsed.success) throw new PermanentError(`not an inbound change body: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ')}`);
    return parsed.data.changes.map((change) => ({ recordTypes: [change.recordType], resourceId: change.id, field: change.field, value: change.value, at: Date.parse(change.changedAt) }));
  },
};
