// What a user configures for a Momentis destination (`type: momentis`): the REST destination's settings with the
// contract's defaults filled in (spec/momentis/momentis.openapi.yaml) — OAuth2 client credentials at /oauth/token
// with the contract's scopes, or an API key in X-Api-Key; JSON; errors as RFC 7807 problems (`/detail`); the
// paths of members, interactions and transactions — and what the default mappings need: the brand, the stores
// (markets) that belong to it, how members' personal data leaves, where the back office shows an order. Every
// default is overridable: an `operations` entry replaces the default one of the same name, key by key.
import { z } from 'zod';
import { DEFAULT_REWARD_CODE_PREFIX } from '../../commercetools/reward-codes.ts';
import type { SettingsProblem } from '../types.ts';
import { oauth2Auth, presetOperations, restSettingsShape, type RestSettings } from '../rest/settings.ts';

export const MOMENTIS_TOKEN_PATH = '/oauth/token';
export const MOMENTIS_SCOPES = 'members:write interactions:write loyalty:write';

/**
 * The contract's calls. A member is upserted by its commercetools id (PUT: create and update alike); an event of
 * `interactions` becomes one interaction on the member's timeline, one of `loyalty` a transaction (its source
 * message id as Idempotency-Key and sourceId).
 */
export const MOMENTIS_OPERATIONS = {
  records: {
    member: {
      create: { method: 'PUT', path: '/v1/members/{id}' },
      update: { method: 'PUT', path: '/v1/members/{id}' },
    },
  },
  events: {
    interactions: {
      send: {
        method: 'POST',
        path: '/v1/members/{customerId}/interactions',
        body: { interactions: [{ id: '{{idempotencyKey}}', type: '{{fields.type}}', occurredAt: '{{fields.occurredAt}}', context: '{{fields.context}}', link: '{{fields.link}}', data: '{{fields.data}}' }] },
      },
    },
    // One redeem transaction per reward code an order used (the connector sends them: index.ts).
    redemptions: {
      send: {
        method: 'POST',
        path: '/v1/members/{customerId}/transactions',
        body: { type: '{{fields.type}}', sourceId: '{{fields.sourceId}}', rewardId: '{{fields.rewardId}}', orderId: '{{fields.orderId}}', orderNumber: '{{fields.orderNumber}}', occurredAt: '{{fields.occurredAt}}' },
      },
    },
    loyalty: {
      send: {
        method: 'POST',
        path: '/v1/members/{customerId}/transactions',
        body: { type: '{{fields.type}}', sourceId: '{{idempotencyKey}}', orderId: '{{fields.orderId}}', orderNumber: '{{fields.orderNumber}}', amount: '{{fields.amount}}', reason: '{{fields.reason}}', store: '{{fields.store}}', occurredAt: '{{fields.occurredAt}}' },
      },
    },
  },
} as const;

/** The OAuth2 settings with the contract's token endpoint, grant and scopes as defaults. */
const momentisOAuth2 = z.preprocess(
  (value) => (value !== null && typeof value === 'object' && !Array.isArray(value) ? { tokenUrl: MOMENTIS_TOKEN_PATH, grant: 'client_credentials', scope: MOMENTIS_SCOPES, ...value } : value),
  oauth2Auth,
);

/** An API key: `{ apiKey: ${KEY} }` in the X-Api-Key header, or `{ apiKey: { header, value } }`. */
const momentisApiKey = z.preprocess(
  (value) => (typeof value === 'string' ? { header: 'X-Api-Key', value } : value !== null && typeof value === 'object' && !Array.isArray(value) ? { header: 'X-Api-Key', ...value } : value),
  z.strictObject({ header: z.string().min(1), value: z.string().min(1) }),
);

export const momentisSettings = z.object({
  ...restSettingsShape,
  baseUrl: z.url().describe('the Momentis API\'s address (the contract\'s paths are below it, /v1/…)'),
  auth: z
    .union([z.strictObject({ oauth2: momentisOAuth2 }), z.strictObject({ apiKey: momentisApiKey })])
    .describe('OAuth2 client credentials (token at /oauth/token, scopes members:write interactions:write loyalty:write by default) or an API key (X-Api-Key)'),
  errorMessage: restSettingsShape.errorMessage.unwrap().default('/detail'),
  brand: z.string().min(1).optional().describe('the brand this Momentis programme is for: sent with each member'),
  stores: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('the store keys (markets) of this brand: members, interactions and transactions of other stores stay away from it; without it, every store'),
  markets: z
    .record(
      z.string().min(1),
      z.strictObject({
        currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code').describe("the market's currency: its members get it"),
        locale: z.string().min(2).optional().describe("the market's language: members without a locale of their own get it"),
        priceChannel: z.string().min(1).optional().describe("the key of the market's price channel (its price book): each interaction's context names it"),
      }),
    )
    .optional()
    .describe('per store key of this brand, its market: currency, language and price book; without `stores`, its keys are the brand\'s stores'),
  memberPii: z
    .enum(['tokenize', 'policy'])
    .default('tokenize')
    .describe('members\' e-mail, names and phone in the default mappings: vault tokens (tokenize: needs pii.vault), or as the destination\'s pii policy says'),
  reverseOn: z
    .array(z.enum(['refund', 'cancellation', 'return']))
    .default(['refund', 'cancellation'])
    .describe('what takes points back in the default mappings: refunds (their amount), cancellations (the order total), returns (the goods\' value: only where returns are not refunded through payment transactions, or the points go back twice)'),
  loyaltyType: z.string().regex(/^[A-Za-z0-9_-]{2,256}$/, 'a Type key').default('ctbridge-loyalty').describe('the customer custom Type the loyalty fields (loyaltyPoints, loyaltyTier, loyaltyRewards, loyaltyVersion) are in; ctbridge setup creates it'),
  cartAbandonment: z
    .strictObject({
      enabled: z.boolean().default(true),
      idleMinutes: z.number().positive().max(30 * 24 * 60).default(60).describe('a cart no order came from this long after it was created is abandoned'),
      checkMs: z.number().int().min(10).max(600_000).default(30_000).describe('how often waiting carts are looked at'),
    })
    .default({ enabled: true, idleMinutes: 60, checkMs: 30_000 })
    .describe('cart.abandoned interactions for carts no order came from (needs the interactions of cart.created)'),
  rewardCodes: z
    .strictObject({
      enabled: z.boolean().default(true),
      prefix: z.string().regex(/^[A-Za-z0-9_-]{0,32}$/, 'letters, digits, "-" or "_", at most 32').default(DEFAULT_REWARD_CODE_PREFIX).describe('put before the reward id to make the code shoppers type'),
    })
    .default({ enabled: true, prefix: DEFAULT_REWARD_CODE_PREFIX })
    .describe('available rewards as single-use commercetools discount codes bound to their customer (needs inbound webhooks), and orders using one reported back as redeem transactions'),
  backOfficeUrl: z.url().default('https://mc.europe-west1.gcp.commercetools.com').describe('the Merchant Center (or another back office): interactions link to <backOfficeUrl>/<projectKey>/orders/<id>'),
  operations: presetOperations(MOMENTIS_OPERATIONS),
});

export type MomentisSettings = z.infer<typeof momentisSettings>;

/** A market outside the brand's stores would never see a member: a typo, said where it is. */
export function checkMomentisSettings(settings: MomentisSettings): SettingsProblem[] {
  const { stores, markets } = settings;
  if (!stores || !markets) return [];
  return Object.keys(markets)
    .filter((key) => !stores.includes(key))
    .map((key) => ({ path: ['markets', key], message: `"${key}" is not one of this brand's stores (${stores.join(', ')})` }));
}

/** The store keys of the destination's brand: `stores`, else its markets'; undefined means every store. */
export function brandStores(settings: Pick<MomentisSettings, 'stores' | 'markets'>): readonly string[] | undefined {
  return settings.stores ?? (settings.markets ? Object.keys(settings.markets) : undefined);
}

/** The REST settings a Momentis destination runs with. */
export function momentisToRest(settings: MomentisSettings): RestSettings {
  return settings;
}
