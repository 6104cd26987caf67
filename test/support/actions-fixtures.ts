// Orders to act on in the commercetools emulator, for the agent actions tests: a catalogue product, the
// LineItemStates (ordered, shipped, cancelled) and OrderStates (a small workflow) actions use, and orders imported
// with taxed line items, states and a payment with the transactions a test asks for.
import type { ByProjectKeyRequestBuilder, Order, Payment, State, TransactionDraft } from '@commercetools/platform-sdk';

export interface ActionShop {
  states: Record<'ordered' | 'shipped' | 'cancelled' | 'picking' | 'packed' | 'closed', State>;
}

let orderCounter = 0;

export async function prepareShop(api: ByProjectKeyRequestBuilder): Promise<ActionShop> {
  await api.productTypes().post({ body: { key: 'apparel', name: 'Apparel', description: 'Clothing' } }).execute();
  for (const sku of ['SHIRT-1', 'CAP-1']) {
    await api
      .products()
      .post({ body: { key: sku.toLowerCase(), productType: { typeId: 'product-type', key: 'apparel' }, name: { en: sku }, slug: { en: sku.toLowerCase() }, masterVariant: { sku }, publish: true } })
      .execute();
  }
  const state = async (key: string, type: 'LineItemState' | 'OrderState', initial = false) =>
    (await api.states().post({ body: { key, type, initial, name: { en: key } } }).execute()).body;
  const cancelled = await state('cancelled', 'LineItemState');
  const shipped = await state('shipped', 'LineItemState');
  const ordered = await state('ordered', 'LineItemState', true);
  const closed = await state('closed', 'OrderState');
  const packed = await state('packed', 'OrderState');
  const picking = await state('picking', 'OrderState', true);
  // The workflow: picking → packed → closed, and closed is final (an empty transitions list).
  const transitions = async (from: State, to: State[]) =>
    (await api.states().withId({ ID: from.id }).post({ body: { version: from.version, actions: [{ action: 'setTransitions', transitions: to.map((t) => ({ typeId: 'state' as const, id: t.id })) }] } }).execute()).body;
  const pickingWithTransitions = await transitions(picking, [packed]);
  const packedWithTransitions = await transitions(packed, [closed]);
  const closedFinal = await transitions(closed, []);
  return { states: { ordered, shipped, cancelled, picking: pickingWithTransitions, packed: packedWithTransitions, closed: closedFinal } };
}

export interface OrderOptions {
  currencyCode?: string;
  /** Per line: quantity, unit gross price in cents; items start in `ordered` unless `states` says otherwise. */
  lines?: { sku: string; quantity: number; unitCents: number; states?: { key: 'ordered' | 'shipped' | 'cancelled'; quantity: number }[] }[];
  transactions?: ('charge' | 'authorization' | 'failed-charge')[];
  paymentState?: 'Paid' | 'Pending' | 'BalanceDue';
  orderState?: 'Open' | 'Confirmed' | 'Complete' | 'Cancelled';
  workflowState?: 'picking' | 'packed' | 'closed';
}

export async function createOrder(api: ByProjectKeyRequestBuilder, shop: ActionShop, options: OrderOptions = {}): Promise<{ order: Order; payment: Payment; total: number }> {
  const currencyCode = options.currencyCode ?? 'EUR';
  const lines = options.lines ?? [{ sku: 'SHIRT-1', quantity: 4, unitCents: 2975 }];
  const total = lines.reduce((sum, line) => sum + line.quantity * line.unitCents, 0);
  orderCounter += 1;
  let order = (
    await api
      .orders()
      .importOrder()
      .post({
        body: {
          orderNumber: `A-${process.pid}-${orderCounter}`,
          totalPrice: { currencyCode, centAmount: total },
          orderState: options.orderState ?? 'Open',
          paymentState: options.paymentState ?? 'Paid',
          ...(options.workflowState && { state: { typeId: 'state', id: shop.states[options.workflowState].id } }),
          lineItems: lines.map((line) => ({
            name: { en: line.sku },
            variant: { sku: line.sku },
            price: { value: { currencyCode, centAmount: line.unitCents } },
            quantity: line.quantity,
            taxRate: { name: '19% MwSt', amount: 0.19, includedInPrice: true, country: 'DE' },
            state: (line.states ?? [{ key: 'ordered', quantity: line.quantity }]).map((s) => ({ quantity: s.quantity, state: { typeId: 'state' as const, id: shop.states[s.key].id } })),
          })),
        },
      })
      .execute()
  ).body;
  if (options.workflowState && !order.state) {
    order = (await api.orders().withId({ ID: order.id }).post({ body: { version: order.version, actions: [{ action: 'transitionState', state: { typeId: 'state', id: shop.states[options.workflowState].id }, force: true }] } }).execute()).body;
  }
  const amount = { currencyCode, centAmount: total };
  const kinds = options.transactions ?? ['authorization', 'charge'];
  const transactions: TransactionDraft[] = kinds.map((kind) =>
    kind === 'authorization' ? { type: 'Authorization', amount, state: 'Success' } : kind === 'charge' ? { type: 'Charge', amount, state: 'Success' } : { type: 'Charge', amount, state: 'Failure' },
  );
  const payment = (await api.payments().post({ body: { amountPlanned: amount, paymentMethodInfo: { paymentInterface: 'adyen', method: 'scheme' }, transactions } }).execute()).body;
  order = (await api.orders().withId({ ID: order.id }).post({ body: { version: order.version, actions: [{ action: 'addPayment', payment: { typeId: 'payment', id: payment.id } }] } }).execute()).body;
  return { order, payment, total };
}
