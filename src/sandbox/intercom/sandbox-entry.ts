// Intercom in the sandbox: the strict 2.14 simulator (with a search lag, as Intercom has), a destination that
// makes customers users with their order context (from $orders) and orders, payments and email changes events on
// their timeline, and at the end a check that every customer's user matches commercetools.
import { randomBytes } from 'node:crypto';
import { compileMapping, type Mapped } from '../../mapping/record-mapping.ts';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { STORES } from '../seed.ts';
import { startIntercomSimulator, type IntercomSimulator } from './simulator.ts';

const NAME = 'intercom';

/** The order context on an Intercom user, from the customer's orders as commercetools has them ($orders). */
const ORDER_CONTEXT = {
  last_order_number: { path: '$orders[*].orderNumber', pipe: ['last'] },
  last_order_status: { path: '$orders[*].orderState', pipe: ['last'] },
  total_orders: { path: '$orders[*]', pipe: ['count'] },
  // One attribute per currency: lifetime_value_EUR, lifetime_value_GBP.
  lifetime_value: { path: '$orders[*].totalPrice', pipe: [{ sumByCurrency: { as: 'number' } }] },
};

/** A successful charge or refund is an Intercom event of its own; other transactions are none (null). */
const PAYMENT_EVENT_NAME = "transaction.state = 'Success' ? (transaction.type = 'Charge' ? 'payment-captured' : transaction.type = 'Refund' ? 'payment-refunded' : null) : null";

/** The Intercom user of a customer: Intercom's own fields, and custom attributes declared with their types. */
const USER_FIELDS = {
  email: 'email',
  name: { template: '{{firstName}} {{lastName}}' },
  customer_number: 'customerNumber',
  store: 'stores[0].key',
  locale: 'locale',
  ...ORDER_CONTEXT,
};
const ATTRIBUTES = {
  customer_number: 'string',
  store: 'string',
  locale: 'string',
  last_order_number: 'string',
  last_order_status: 'string',
  total_orders: 'integer',
  ...Object.fromEntries(STORES.map((store) => [`lifetime_value_${store.currency}`, 'float'])),
};

export const intercomSandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    // Intercom's search index lags behind writes; a few seconds here, minutes in a real workspace.
    const simulator = await startIntercomSimulator({ token: randomBytes(24).toString('base64url'), searchLagMs: 5_000 });
    return {
      destination: {
        name: NAME,
        type: 'intercom',
        token: simulator.token,
        baseUrl: simulator.url,
        attributes: ATTRIBUTES,
        records: { customer: { source: 'customer', fields: USER_FIELDS } },
        // The customer's timeline; the messages after OrderCreated only name their order or payment.
        events: {
          // Typed metadata: the total a monetary amount, the order's time a date (a key ending in _date).
          'placed-order': { on: ['OrderCreated'], fields: { order_number: 'order.orderNumber', total: { path: 'order.totalPrice', pipe: [{ money: { as: 'object' } }] }, order_date: { path: 'order.createdAt', pipe: ['unixSeconds'] }, store: 'order.store.key', email: 'order.customerEmail' } },
          'order-state-changed': { on: ['OrderStateChanged'], fields: { order_state: 'orderState', old_order_state: 'oldOrderState' } },
          payment: { on: ['PaymentTransactionAdded'], fields: { event_name: { jsonata: PAYMENT_EVENT_NAME }, amount: { path: 'transaction.amount', pipe: [{ money: { as: 'object' } }] } } },
          'email-changed': { on: ['CustomerEmailChanged'], fields: { customer_id: 'resource.id' } },
        },
      },
      banner: `${simulator.url}  (a strict Intercom 2.14 simulator: customers become users, orders data events)`,
      check: (context) => check(simulator, context),
      stop: async () => simulator.close(),
    };
  },
};

/**
 * Each customer as an Intercom user (email and name as in commercetools, and the order context of the orders it
 * has now); a deleted one archived or gone.
 */
async function check(intercom: IntercomSimulator, { commercetools, customerIds: ids, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const current = await commercetools.fetchByIds('customer', ids);
  const orders = await commercetools.fetchOrdersOf(ids);
  const contacts = [...intercom.workspace.contacts.values()];
  const users = new Map(contacts.filter((c) => c.role === 'user' && !c.archived).map((c) => [c.external_id, c]));
  const name = compileMapping({ fields: { name: USER_FIELDS.name } });
  const context = compileMapping({ fields: ORDER_CONTEXT });
  const mismatches: string[] = [];
  let matching = 0;
  for (const id of ids) {
    const resource = current.get(id);
    const user = users.get(id);
    const who = label(id, 'customer');
    if (!resource) {
      if (user) mismatches.push(`${who}: deleted in commercetools but still an active Intercom user`);
      else matching += 1;
      continue;
    }
    const mapped = await name.apply(resource);
    const expectedName = mapped.skip ? null : mapped.payload.name;
    const expectedContext = orderContextAttributes(await context.apply(resource, { orders: orders.get(id) ?? [] }));
    const differs = user ? Object.entries(expectedContext).filter(([attribute, value]) => (user.custom_attributes[attribute] ?? null) !== value) : [];
    if (!user) mismatches.push(`${who}: no Intercom user`);
    else if (user.email !== resource.email || user.name !== expectedName) mismatches.push(`${who}: the Intercom user has ${JSON.stringify({ email: user.email, name: user.name })}`);
    else if (differs.length > 0) mismatches.push(`${who}: the Intercom user's order context has ${JSON.stringify(Object.fromEntries(differs.map(([attribute]) => [attribute, user.custom_attributes[attribute] ?? null])))}, commercetools says ${JSON.stringify(Object.fromEntries(differs))}`);
    else matching += 1;
  }
  const leads = contacts.filter((c) => c.role === 'lead').length;
  return {
    matching,
    total: ids.length,
    mismatches,
    summary: `${matching}/${ids.length} customers are Intercom users matching commercetools; ${intercom.workspace.events.length} events, ${leads} leads, ${intercom.stats.calls} API calls (${intercom.stats.rateLimited} answered 429)`,
  };
}

/** The order context as Intercom attributes: lifetime_value per currency, and a currency without orders cleared. */
function orderContextAttributes(mapped: Mapped): Record<string, unknown> {
  if (mapped.skip) return {};
  const { lifetime_value: lifetime, ...rest } = mapped.payload;
  const perCurrency = Object.fromEntries(STORES.map((store) => [`lifetime_value_${store.currency}`, (lifetime as Record<string, unknown>)[store.currency] ?? null]));
  return { ...rest, ...perCurrency };
}
