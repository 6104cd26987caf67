// What a user configures for an Intercom destination (`type: intercom`).
import { z } from 'zod';

export const ATTRIBUTE_TYPES = ['string', 'integer', 'float', 'boolean', 'date'] as const;

export const intercomSettings = z.object({
  token: z.string().min(1).describe('an Intercom access token, from the environment (${INTERCOM_TOKEN})'),
  region: z.enum(['us', 'eu', 'au']).default('us').describe('the workspace\'s data region'),
  baseUrl: z.url().optional().describe('instead of the region: another API base URL (a simulator)'),
  timeoutMs: z.number().int().positive().default(10_000),
  limitPerMinute: z.number().int().positive().default(10_000).describe('the workspace\'s API rate limit; calls are paced to stay under it'),
  attributes: z.record(z.string(), z.enum(ATTRIBUTE_TYPES)).default({}).describe('custom contact attributes the mappings write, with their Intercom data type; created at start-up when missing'),
  onDelete: z.enum(['archive', 'delete']).default('archive').describe('what a deleted (or erased) commercetools customer becomes in Intercom'),
  orderLink: z
    .string()
    .regex(/^https:\/\/[^\s]*\{id\}/, 'an https URL with {id} where the order id goes')
    .optional()
    .describe('the order in the merchant\'s back office, e.g. https://mc.europe-west1.gcp.commercetools.com/my-project/orders/{id}: added to order events as order_url, a rich link whose text is the event\'s order_number (or the order id)'),
});

export type IntercomSettings = z.infer<typeof intercomSettings>;
