// The support view's contract: the zod schemas of what the support routes answer. The routes parse every answer
// through these before sending it, and the OpenAPI document (/v1/openapi.json) is generated from the same objects,
// so an answer that would not match the published description fails instead of leaving.
//
// Personal fields are optional: a role's PII policy may drop them (then they are absent, never null or empty).
// Masked values are still strings. Money is commercetools' cent-precision form plus a display text in the view's
// locale, so a desk can show it as is and still compute with it.
import { z } from 'zod';

const id = z.string().min(1);
const timestamp = z.string().describe('ISO 8601');

export const moneySchema = z
  .strictObject({
    centAmount: z.number().int(),
    currencyCode: z.string().length(3),
    fractionDigits: z.number().int().min(0),
    formatted: z.string().describe("the amount in the view's locale, e.g. £12.50 or 12,50 €"),
  })
  .meta({ id: 'SupportMoney' });

export const addressSchema = z
  .strictObject({
    id: z.string().optional(),
    key: z.string().optional(),
    firstName: z.string().optional(),
    lastName: z.string().optional(),
    company: z.string().optional(),
    streetName: z.string().optional(),
    streetNumber: z.string().optional(),
    additionalAddressInfo: z.string().optional(),
    postalCode: z.string().optional(),
    city: z.string().optional(),
    region: z.string().optional(),
    country: z.string().optional(),
    phone: z.string().optional(),
    mobile: z.string().optional(),
    email: z.string().optional(),
  })
  .meta({ id: 'SupportAddress', description: 'an address; a masking policy may leave only its city and country' });

/** The ids a ticket should store to find the same customer or order again, in ctbridge and in the back office. */
export const referencesSchema = z
  .strictObject({
    customerId: id.optional(),
    customerNumber: z.string().optional(),
    orderId: id.optional(),
    orderNumber: z.string().optional(),
    storeKey: z.string().optional(),
    backOffice: z.string().optional().describe("a link to the record in the merchant's back office (api.support.backOfficeUrl templates)"),
  })
  .meta({ id: 'SupportReferences' });

export const lineItemSchema = z
  .strictObject({
    id,
    name: z.string().describe("in the requested locale, else the store's first language, else any"),
    sku: z.string().optional(),
    quantity: z.number().int(),
    unitPrice: moneySchema,
    totalPrice: moneySchema,
    states: z.array(z.strictObject({ state: z.string().describe('the state key, or its id when it has none'), quantity: z.number().int() })),
  })
  .meta({ id: 'SupportLineItem' });

export const transactionSchema = z
  .strictObject({
    id: z.string().optional(),
    type: z.string().describe('Authorization, CancelAuthorization, Charge, Refund, Chargeback'),
    state: z.string().describe('Initial, Pending, Success, Failure'),
    amount: moneySchema,
    timestamp: timestamp.optional(),
  })
  .meta({ id: 'SupportTransaction' });

export const paymentSchema = z
  .strictObject({
    id,
    method: z.string().optional().describe('e.g. Credit card, PayPal; never card data'),
    paymentInterface: z.string().optional(),
    amountPlanned: moneySchema,
    transactions: z.array(transactionSchema),
  })
  .meta({ id: 'SupportPayment' });

export const parcelSchema = z
  .strictObject({
    id,
    trackingId: z.string().optional(),
    carrier: z.string().optional(),
    isReturn: z.boolean().optional(),
    createdAt: timestamp.optional(),
  })
  .meta({ id: 'SupportParcel' });

export const deliverySchema = z
  .strictObject({
    id,
    key: z.string().optional(),
    createdAt: timestamp.optional(),
    items: z.array(z.strictObject({ lineItemId: id, quantity: z.number().int() })),
    parcels: z.array(parcelSchema),
  })
  .meta({ id: 'SupportDelivery' });

export const returnSchema = z
  .strictObject({
    returnTrackingId: z.string().optional(),
    returnDate: timestamp.optional(),
    items: z.array(
      z.strictObject({
        id,
        lineItemId: z.string().optional(),
        quantity: z.number().int(),
        shipmentState: z.string().describe('Advised, Returned, BackInStock, Unusable'),
        paymentState: z.string().describe('NonRefundable, Initial, Refunded, NotRefunded'),
        comment: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'SupportReturn' });

export const orderSchema = z
  .strictObject({
    references: referencesSchema,
    id,
    orderNumber: z.string().optional(),
    storeKey: z.string().optional(),
    locale: z.string().describe('the locale names and amounts are given in'),
    createdAt: timestamp,
    completedAt: timestamp.optional(),
    orderState: z.string(),
    paymentState: z.string().optional(),
    shipmentState: z.string().optional(),
    email: z.string().optional(),
    lineItems: z.array(lineItemSchema),
    totals: z.strictObject({
      total: moneySchema,
      net: moneySchema.optional(),
      gross: moneySchema.optional(),
      tax: moneySchema.optional(),
      taxPortions: z.array(z.strictObject({ name: z.string().optional(), rate: z.number(), amount: moneySchema })),
    }),
    shipping: z
      .strictObject({
        method: z.string().optional(),
        price: moneySchema.optional(),
        deliveries: z.array(deliverySchema),
      })
      .optional(),
    shippingAddress: addressSchema.optional(),
    billingAddress: addressSchema.optional(),
    payments: z.array(paymentSchema),
    refunded: moneySchema.optional().describe('the sum of successful Refund transactions'),
    returns: z.array(returnSchema),
  })
  .meta({ id: 'SupportOrder' });

export const customerSchema = z
  .strictObject({
    references: referencesSchema,
    id,
    customerNumber: z.string().optional(),
    email: z.string().optional(),
    firstName: z.string().optional(),
    lastName: z.string().optional(),
    phone: z.string().optional().describe("the default shipping (else first) address's phone"),
    dateOfBirth: z.string().optional(),
    customerGroup: z.strictObject({ id, key: z.string().optional(), name: z.string().optional() }).optional(),
    storeKeys: z.array(z.string()).describe('the stores the account belongs to; empty: a global account'),
    addresses: z.array(addressSchema),
    customFields: z.record(z.string(), z.unknown()).describe('the custom fields the role may see (api.roles.*.support.customFields)'),
    createdAt: timestamp,
  })
  .meta({ id: 'SupportCustomerProfile' });

export const pageSchema = z.strictObject({
  limit: z.number().int(),
  offset: z.number().int(),
  count: z.number().int(),
  total: z.number().int().optional(),
});

/** One customer and the latest page of their orders. */
export const customerViewSchema = z
  .strictObject({
    customer: customerSchema,
    orders: z.array(orderSchema),
    ordersPage: pageSchema,
  })
  .meta({ id: 'SupportCustomerView' });

export const customerSearchSchema = z.strictObject({ results: z.array(customerViewSchema) }).meta({ id: 'SupportCustomerSearch' });

export const orderPageSchema = z.strictObject({ results: z.array(orderSchema), page: pageSchema }).meta({ id: 'SupportOrderPage' });

export type Money = z.infer<typeof moneySchema>;
export type Address = z.infer<typeof addressSchema>;
export type OrderView = z.infer<typeof orderSchema>;
export type CustomerProfile = z.infer<typeof customerSchema>;
export type CustomerView = z.infer<typeof customerViewSchema>;
export type Page = z.infer<typeof pageSchema>;
