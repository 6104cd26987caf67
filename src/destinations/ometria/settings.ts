// What a user configures for an Ometria destination (`type: ometria`): the API key and where the API is, the
// collection contacts belong to, the stores and currencies the default mappings list, where commercetools keeps
// each consent channel and suppressions, the order status table, the product attribute whitelist and URL
// templates, and how asynchronous validation is followed up.
import { z } from 'zod';

/** A field inside a custom object's value: names joined by dots (`email` or `channels.email.optin`). */
const valueField = z.string().regex(/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/, 'names joined by dots, such as email or channels.email.optin');

/**
 * Where commercetools keeps one consent channel (or the suppression): a custom field, membership of customer groups,
 * or a custom object per customer.
 */
const consentSource = z.union([
  z.strictObject({
    customField: z.string().min(1).describe('a Boolean custom field of the customer (true: opted in / suppressed)'),
    timestampField: z.string().min(1).optional().describe('a DateTime custom field saying when it was last changed; without it, the customer\'s lastModifiedAt'),
  }),
  z.strictObject({
    customerGroups: z.array(z.string().min(1)).min(1).describe('keys of the customer groups whose members are opted in (or suppressed)'),
  }),
  z.strictObject({
    customObject: z.strictObject({
      container: z
        .string()
        .regex(/^[A-Za-z_][\w-]*$/, 'a container name of letters, digits, _ and - (starting with a letter or _)')
        .describe('the custom object container consent objects are kept in'),
      keyFrom: z.enum(['id', 'key', 'customerNumber']).default('id').describe('the customer field each object\'s key is: its id (the default), its key or its customer number'),
      field: valueField.describe('the Boolean in the object\'s value (true: opted in / suppressed)'),
      timestampField: valueField.optional().describe('a date-time in the object\'s value saying when it was last changed; without it, the object\'s lastModifiedAt'),
    }),
  }),
]);

export type ConsentSource = z.infer<typeof consentSource>;

const DEFAULT_STATUS_TABLE = { Open: 'pending', Confirmed: 'pending', Complete: 'complete', Cancelled: 'cancelled', Shipped: 'shipped', Delivered: 'complete', Partial: 'shipped' };

export const ometriaSettings = z.object({
  apiKey: z.string().min(1).describe('the Ometria API key, from the environment (${OMETRIA_API_KEY}); sent as X-Ometria-Auth'),
  baseUrl: z.url().default('https://api.ometria.com').describe('the API\'s base URL (a simulator\'s, in tests)'),
  collection: z.string().min(1).default('commercetools').describe('the @collection of the contacts ctbridge sends (one per source system, e.g. per brand)'),
  stores: z.array(z.string().min(1)).default([]).describe('store keys the default mappings send contacts\' store_ids and product listings for'),
  currencies: z.array(z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as EUR')).default([]).describe('currencies product listings are sent in (per store)'),
  locale: z.string().min(2).default('en').describe('the locale product titles and category names are read in, unless a store\'s own (storeLocales)'),
  storeLocales: z.record(z.string(), z.string().min(2)).default({}).describe('the locale of each store\'s titles (uk: en-GB, de: de-DE)'),
  timeoutMs: z.number().int().positive().default(10_000),
  gatherMs: z.number().int().min(0).max(5_000).default(200).describe('a push with room for more records waits up to this long for them (Ometria counts requests, not records)'),
  requestsPerSecond: z.number().positive().max(100).default(4).describe('the account\'s push rate limit (Ometria: 4 per second), shared by every worker and process'),
  consent: z
    .strictObject({
      email: consentSource.optional().describe('marketing e-mail consent: becomes marketing_optin with timestamp_subscribed / timestamp_unsubscribed'),
      sms: consentSource.optional().describe('marketing SMS consent: becomes channels.sms.allow_marketing with dt_updated_marketing'),
      suppression: consentSource.optional().describe('a suppression: wins over every opt-in; a suppressed contact is only ever sent opted out'),
    })
    .default({}),
  orderStatus: z.record(z.string(), z.string().min(1)).default(DEFAULT_STATUS_TABLE).describe('commercetools state (shipmentState, then orderState) → Ometria order status'),
  productAttributes: z.array(z.string().min(1)).default([]).describe('product attributes sent (by name); enum values are sent by their label'),
  productUrl: z.string().min(1).optional().describe('a product page URL template: {slug} and {store} are replaced, e.g. https://shop.example/{store}/p/{slug}'),
  imageUrl: z.string().min(1).optional().describe('an image URL template ({url} is the variant\'s first image URL); without it the image URL as is'),
  validation: z
    .strictObject({
      firstCheckMs: z.number().int().min(0).default(5_000).describe('how long after a push Ometria\'s validation errors are first read'),
      maxCheckMs: z.number().int().positive().default(60_000).describe('the longest wait between two reads while records wait (the wait doubles up to it)'),
      settleMs: z.number().int().positive().default(10 * 60_000).describe('a record not reported invalid within this time counts as delivered'),
    })
    .default({ firstCheckMs: 5_000, maxCheckMs: 60_000, settleMs: 600_000 }),
});

export type OmetriaSettings = z.infer<typeof ometriaSettings>;
