// Configuration of agent actions (refunds, item cancellations, order-state changes on commercetools): the
// `actions:` block (its own commercetools credentials with only the scopes actions need, the line-item states
// that mean cancelled and shipped, the order-state graph) and the `actions` section of an API role (what the role
// may do, its refund limits, whether it may approve).
import { z } from 'zod';

export const ACTION_KINDS = ['refund', 'cancel-items', 'change-state'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export const ORDER_STATES = ['Open', 'Confirmed', 'Complete', 'Cancelled'] as const;
export type OrderStateName = (typeof ORDER_STATES)[number];

/** A decimal amount as written in the configuration and the API: "50", "50.00", "0.5". */
export const decimalSchema = z.string().regex(/^\d{1,15}(\.\d{1,8})?$/, 'a decimal amount such as "50.00"');
const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code such as EUR');

export const roleActionsSchema = z.strictObject({
  allow: z.array(z.enum(ACTION_KINDS)).default([]).describe('the actions the role may take'),
  refundLimits: z
    .record(currencySchema, decimalSchema)
    .optional()
    .describe('per currency, the most an order may have refunded for a refund this role asks for to go through at once; above it (or in a currency not listed) it waits for approval. Absent: no limit'),
  approve: z.boolean().default(false).describe("whether the role may approve or reject other callers' pending refunds (within its own limits)"),
});
export type RoleActions = z.infer<typeof roleActionsSchema>;

/** What the actions client may be granted: reading and changing orders and payments, reading states. */
const ACTION_SCOPES = /^(manage_orders|manage_payments|view_orders|view_payments|view_states):[a-z0-9_-]+$/;

export const actionsSchema = z.strictObject({
  commercetools: z
    .strictObject({
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      scopes: z
        .array(z.string().regex(ACTION_SCOPES, 'only manage_orders, manage_payments, view_orders, view_payments and view_states scopes (least privilege: actions need no more), e.g. manage_orders:my-project'))
        .min(1)
        .describe('the scopes of the actions API client; the project and URLs are those of `commercetools`'),
    })
    .describe("a separate API client for actions, e.g. clientSecret: ${CTP_ACTIONS_CLIENT_SECRET}; the read client never writes"),
  lineItemStates: z
    .strictObject({
      cancelled: z.string().min(1).describe('key of the LineItemState cancelled items move into'),
      shipped: z.array(z.string().min(1)).default([]).describe('keys of LineItemStates whose items count as shipped (never cancelled)'),
    })
    .default({ cancelled: 'cancelled', shipped: ['shipped'] }),
  orderStates: z
    .record(z.enum(ORDER_STATES), z.array(z.enum(ORDER_STATES)))
    .default({ Open: ['Confirmed', 'Complete', 'Cancelled'], Confirmed: ['Complete', 'Cancelled'], Complete: [], Cancelled: [] })
    .describe('allowed orderState transitions; a state with none (or missing) is final'),
  refundTransactionState: z.enum(['Initial', 'Pending']).default('Initial').describe('the state a Refund transaction is added in; the payment service provider executes it and moves it on'),
  maxAttempts: z.number().int().min(1).max(20).default(5).describe('how often an action is re-checked and tried again when the order or payment changed meanwhile (409)'),
  leaseSeconds: z
    .number()
    .int()
    .min(15)
    .max(3600)
    .default(60)
    .describe(
      'how long a call holds its idempotency key unless it renews it (it does while it runs). Once a dead call\'s lease has run out, a retry with its key, or the sweeper `ctbridge start` runs, looks in commercetools for its writes and settles it. At least 15: longer than a commercetools request may take (10 s), so a write still on its way is not mistaken for one that never happened',
    ),
});
export type ActionsConfig = z.infer<typeof actionsSchema>;
