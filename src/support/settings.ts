// Configuration of the support view: what a role may see (`api.roles.<role>.support`) and the view's own settings
// (`api.support`: cache, page size, rate limit, back-office links). A role's personal data is governed by the PII
// policy language destinations use (pii/classes.ts), once for the role and again per market (store key), e.g.
// `markets: { uk-store: { phone: mask, address: mask } }`; the strictest policy that applies wins.
import { z } from 'zod';
import { PII_CLASSES, piiPolicySchema, type PiiPolicy, type PiiTreatment } from '../pii/classes.ts';

/** The parts of a view a role can be given or refused; personal data within them follows the PII policy. */
export const SUPPORT_FIELDS = ['email', 'name', 'phone', 'addresses', 'dateOfBirth', 'customerGroup', 'customFields', 'orders', 'lineItems', 'payments', 'shipping', 'returns'] as const;
export type SupportField = (typeof SUPPORT_FIELDS)[number];

/**
 * What an agent reads must still mean something to them: a digest or a vault token of a phone number does not, so
 * the support view takes pass, mask and drop. Under `mask`, an address keeps its city and country only.
 */
const VIEW_TREATMENTS = new Set<PiiTreatment>(['pass', 'mask', 'drop']);

const viewPolicySchema = piiPolicySchema.superRefine((policy, ctx) => {
  for (const [piiClass, treatment] of Object.entries(policy)) {
    if (treatment !== undefined && !VIEW_TREATMENTS.has(treatment)) {
      ctx.addIssue({ code: 'custom', path: [piiClass], message: `"${treatment}" means nothing to an agent reading the view: use pass, mask or drop` });
    }
  }
});

const storeKey = z.string().min(1);

export const supportRoleSchema = z.strictObject({
  fields: z
    .array(z.enum(SUPPORT_FIELDS))
    .default([...SUPPORT_FIELDS])
    .describe(`the parts of a view the role sees (default all): ${SUPPORT_FIELDS.join(', ')}`),
  customFields: z.array(z.string().min(1)).default([]).describe("the customer's custom fields the role sees, by name"),
  stores: z.array(storeKey).min(1).optional().describe('the stores (keys) whose customers and orders the role sees; unset: every store'),
  pii: viewPolicySchema.default({}).describe('what the role sees of each class of personal data: pass (default), mask or drop'),
  markets: z.record(storeKey, viewPolicySchema).default({}).describe('the policy per store key, over `pii`, e.g. { uk-store: { phone: mask, address: mask } }'),
});
export type SupportRole = z.infer<typeof supportRoleSchema>;

export const supportSettingsSchema = z.strictObject({
  cacheMs: z.number().int().min(0).max(300_000).default(5_000).describe('how long a commercetools answer is reused for the same lookup (0: never)'),
  ordersPerView: z.number().int().min(1).max(100).default(20).describe("how many of a customer's latest orders the customer view holds"),
  rateLimit: z
    .strictObject({ requestsPerSecond: z.number().positive().default(10), burst: z.number().int().min(1).default(20) })
    .default({ requestsPerSecond: 10, burst: 20 })
    .describe('per API client'),
  backOffice: z
    .strictObject({
      customer: z.string().min(1).optional().describe('e.g. https://mc.europe-west1.gcp.commercetools.com/{projectKey}/customers/{customerId}'),
      order: z.string().min(1).optional().describe('e.g. https://mc.europe-west1.gcp.commercetools.com/{projectKey}/orders/{orderId}'),
    })
    .default({})
    .describe('link templates to the merchant back office; placeholders {projectKey}, {customerId}, {customerNumber}, {orderId}, {orderNumber}, {storeKey}'),
});
export type SupportSettings = z.infer<typeof supportSettingsSchema>;

const STRICTNESS: Record<PiiTreatment, number> = { pass: 0, mask: 1, hash: 2, tokenize: 2, drop: 3 };

/** The role's policy in one market (store key); undefined: outside any store. */
export function policyFor(role: SupportRole, market: string | undefined): PiiPolicy {
  return market === undefined ? { ...role.pii } : { ...role.pii, ...role.markets[market] };
}

/** The strictest of several policies, class by class: what may be shown under all of them. */
export function strictest(policies: readonly PiiPolicy[]): PiiPolicy {
  const out: PiiPolicy = {};
  for (const piiClass of PII_CLASSES) {
    let treatment: PiiTreatment = 'pass';
    for (const policy of policies) {
      const candidate = policy[piiClass] ?? 'pass';
      if (STRICTNESS[candidate] > STRICTNESS[treatment]) treatment = candidate;
    }
    if (treatment !== 'pass') out[piiClass] = treatment;
  }
  return out;
}
