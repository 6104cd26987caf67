// Momentis' webhooks (spec/momentis/momentis.openapi.yaml, `webhooks:`): each event — balance or tier changed, a
// reward issued or redeemed — carries the member's whole loyalty snapshot with a version that rises with every
// change, so the receiver keeps the highest version and ignores older ones, whatever order they arrive in. The
// snapshot lands on the commercetools customer (the member's externalId) as the custom fields of the Type
// `ctbridge-loyalty` (`loyaltyType`): loyaltyPoints, loyaltyTier, loyaltyRewards (the available rewards as JSON,
// nothing personal in them) and loyaltyVersion (engine/inbound-work.ts writes it, only when newer than the
// version there). A redelivery has the same event id: stored once. Signed per the contract (Momentis-Signature,
// server/inbound-auth.ts). With `rewardCodes.enabled`, the snapshot also carries the member's rewards, which the
// engine turns into customer-bound discount codes after writing it (commercetools/reward-codes.ts).
import { z } from 'zod';
import { PermanentError } from '../kit/index.ts';
import type { InboundDefinition, InboundSnapshot } from '../types.ts';
import { brandStores, type MomentisSettings } from './settings.ts';

const soleStore = (stores: readonly string[] | undefined) => (stores?.length === 1 ? stores[0] : undefined);

/** The customer custom fields Momentis owns: never sent from commercetools. */
export const LOYALTY_FIELDS: ReadonlySet<string> = new Set(['loyaltyPoints', 'loyaltyTier', 'loyaltyRewards', 'loyaltyVersion']);

const reward = z.object({
  id: z.string().min(1),
  name: z.string(),
  status: z.enum(['available', 'redeemed', 'expired']),
  value: z.union([
    z.object({ type: z.literal('absolute'), money: z.array(z.object({ currencyCode: z.string().regex(/^[A-Z]{3}$/), centAmount: z.number().int().positive() })).min(1) }),
    z.object({ type: z.literal('relative'), permyriad: z.number().int().min(1).max(10_000) }),
  ]),
  expiresAt: z.string().optional(),
});

export const momentisWebhookEvent = z.object({
  id: z.string().regex(/^evt_/),
  type: z.enum(['member.balance_changed', 'member.tier_changed', 'member.reward_issued', 'member.reward_redeemed']),
  occurredAt: z.string(),
  member: z.object({ externalId: z.string().min(1) }),
  loyalty: z.object({ version: z.number().int().min(0), balance: z.number().int(), tier: z.string(), rewards: z.array(reward) }),
});

export type MomentisWebhookEvent = z.infer<typeof momentisWebhookEvent>;
export type MomentisReward = z.infer<typeof reward>;

/** The rewards a shopper can still use, as the loyaltyRewards field holds them (ids, names, values, expiry). */
export function availableRewards(event: MomentisWebhookEvent): MomentisReward[] {
  return event.loyalty.rewards.filter((candidate) => candidate.status === 'available').map(({ id, name, status, value, expiresAt }) => ({ id, name, status, value, ...(expiresAt !== undefined && { expiresAt }) }));
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export const momentisInbound: InboundDefinition<MomentisSettings> = {
  auth: ['momentis'],
  dedupeKey: (body) => (isRecord(body) && typeof body.id === 'string' && body.id !== '' ? `momentis:${body.id.slice(0, 200)}` : undefined),
  // Momentis sends snapshots, never field edits.
  changes: () => [],
  snapshot(settings, body): InboundSnapshot {
    const parsed = momentisWebhookEvent.safeParse(body);
    if (!parsed.success) throw new PermanentError(`not a Momentis webhook event: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ')}`);
    const event = parsed.data;
    return {
      resourceType: 'customer',
      resourceId: event.member.externalId,
      type: settings.loyaltyType,
      versionField: 'loyaltyVersion',
      version: event.loyalty.version,
      fields: {
        loyaltyPoints: event.loyalty.balance,
        loyaltyTier: event.loyalty.tier,
        loyaltyRewards: JSON.stringify(availableRewards(event)),
        loyaltyVersion: event.loyalty.version,
      },
      ...(settings.rewardCodes.enabled && {
        rewardCodes: {
          rewards: event.loyalty.rewards.map(({ id, name, status, value, expiresAt }) => ({ id, name, status, value, ...(expiresAt !== undefined && { expiresAt }) })),
          prefix: settings.rewardCodes.prefix,
          // A brand with one store: its rewards are for carts of that store only.
          storeKey: soleStore(brandStores(settings)),
          rewardsField: 'loyaltyRewards',
        },
      }),
    };
  },
  snapshotFields: (settings) => [
    { type: settings.loyaltyType, resourceTypeId: 'customer', field: 'loyaltyPoints', fieldType: 'Number' },
    { type: settings.loyaltyType, resourceTypeId: 'customer', field: 'loyaltyTier', fieldType: 'String' },
    { type: settings.loyaltyType, resourceTypeId: 'customer', field: 'loyaltyRewards', fieldType: 'String' },
    { type: settings.loyaltyType, resourceTypeId: 'customer', field: 'loyaltyVersion', fieldType: 'Number' },
  ],
};
