// The safeguards of agent actions, as pure functions of the order (with its payments and the project's states) and
// the request: each either refuses with a stable rule name, or plans the exact commercetools update actions. The
// service (service.ts) reads fresh state, calls these, writes, and on a version conflict reads and calls again, so
// every write is checked against the state it is applied to.
import type { LineItem, Order, OrderUpdateAction, Payment, PaymentUpdateAction, State, Transaction } from '@commercetools/platform-sdk';
import type { ActionsConfig, OrderStateName } from './config.ts';

/** A refusal: `rule` is stable (the problem type ends with it), `status` the HTTP answer. */
export interface Refusal {
  rule: string;
  status: number;
  detail: string;
}

export function refuse(rule: string, status: number, detail: string): { ok: false; refusal: Refusal } {
  return { ok: false, refusal: { rule, status, detail } };
}

export interface Money {
  currencyCode: string;
  centAmount: number;
  fractionDigits: number;
}

/** A decimal string in minor units, or undefined when it has more fraction digits than the currency. */
export function toMinorUnits(decimal: string, fractionDigits: number): number | undefined {
  const [whole = '0', fraction = ''] = decimal.split('.');
  if (fraction.length > fractionDigits) return undefined;
  return Number(whole) * 10 ** fractionDigits + Number(fraction.padEnd(fractionDigits, '0') || '0');
}

export function formatMinorUnits(cents: number, fractionDigits: number): string {
  if (fractionDigits === 0) return String(cents);
  const text = String(Math.abs(cents)).padStart(fractionDigits + 1, '0');
  return `${cents < 0 ? '-' : ''}${text.slice(0, -fractionDigits)}.${text.slice(-fractionDigits)}`;
}

export interface MoneyView {
  currencyCode: string;
  amount: string;
  centAmount: number;
}

export function moneyView(cents: number, currencyCode: string, fractionDigits: number): MoneyView {
  return { currencyCode, amount: formatMinorUnits(cents, fractionDigits), centAmount: cents };
}

// ---------------------------------------------------------------------------------------------------------------
// Payments

const sum = (transactions: readonly Transaction[], currency: string, match: (t: Transaction) => boolean) =>
  transactions.filter((t) => t.amount.currencyCode === currency && match(t)).reduce((total, t) => total + t.amount.centAmount, 0);

/** What a payment has charged (successful Charge transactions) and refunded or is refunding (Refunds not failed). */
export function paymentBalance(payment: Payment, currency: string): { charged: number; refunded: number; available: number } {
  const charged = sum(payment.transactions, currency, (t) => t.type === 'Charge' && t.state === 'Success');
  // An Initial or Pending refund is money already promised back: counting it keeps two refunds from both passing.
  const refunded = sum(payment.transactions, currency, (t) => t.type === 'Refund' && t.state !== 'Failure');
  return { charged, refunded, available: charged - refunded };
}

export function orderCurrency(order: Order): { currencyCode: string; fractionDigits: number } {
  return { currencyCode: order.totalPrice.currencyCode, fractionDigits: order.totalPrice.fractionDigits };
}

/** Refunded (or being refunded) on the order, over all its payments, in its currency. */
export function refundedOnOrder(order: Order, payments: readonly Payment[]): number {
  const { currencyCode } = orderCurrency(order);
  return payments.reduce((total, payment) => total + paymentBalance(payment, currencyCode).refunded, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Refunds

export interface RefundLine {
  lineItemId: string;
  quantity: number;
}

export interface RefundRequest {
  amount?: { currencyCode: string; amount: string } | undefined;
  lineItems?: RefundLine[] | undefined;
  shipping?: boolean | undefined;
  paymentId?: string | undefined;
}

export interface RefundPart {
  what: string;
  quantity?: number;
  gross: number;
  /** Net and tax shares from the order's taxed prices; absent when the order has none for this part. */
  net?: number;
  tax?: number;
}

export interface RefundPlan {
  payment: { id: string; version: number; transactionIdsBefore: string[] };
  centAmount: number;
  currencyCode: string;
  fractionDigits: number;
  parts: RefundPart[];
  actions: PaymentUpdateAction[];
}

/** A share of a total for `quantity` of `of` items, rounded half up to the minor unit. */
function share(total: number, quantity: number, of: number): number {
  return Math.round((total * quantity) / of);
}

function lineRefund(line: LineItem, quantity: number): RefundPart {
  const part: RefundPart = { what: `line item ${line.id}`, quantity, gross: share(line.taxedPrice?.totalGross.centAmount ?? line.totalPrice.centAmount, quantity, line.quantity) };
  if (line.taxedPrice) {
    part.net = share(line.taxedPrice.totalNet.centAmount, quantity, line.quantity);
    part.tax = part.gross - part.net;
  }
  return part;
}

function shippingRefund(order: Order): RefundPart | undefined {
  const taxed = order.taxedShippingPrice ?? order.shippingInfo?.taxedPrice;
  if (taxed) return { what: 'shipping', gross: taxed.totalGross.centAmount, net: taxed.totalNet.centAmount, tax: taxed.totalGross.centAmount - taxed.totalNet.centAmount };
  const price = order.shippingInfo?.price;
  return price ? { what: 'shipping', gross: price.centAmount } : undefined;
}

/** The refund a request asks for, in the order's currency: its amount and its parts, or the rule it breaks. */
export function refundAmount(order: Order, request: RefundRequest): { ok: true; centAmount: number; parts: RefundPart[] } | { ok: false; refusal: Refusal } {
  const { currencyCode, fractionDigits } = orderCurrency(order);
  if (request.amount) {
    if (request.amount.currencyCode !== currencyCode) return refuse('currency-mismatch', 422, `the order is in ${currencyCode}; a refund of it must be too (got ${request.amount.currencyCode})`);
    const cents = toMinorUnits(request.amount.amount, fractionDigits);
    if (cents === undefined) return refuse('amount-precision', 422, `${currencyCode} amounts have ${fractionDigits} fraction digits (got ${request.amount.amount})`);
    if (cents <= 0) return refuse('amount-not-positive', 422, 'a refund amount must be above zero');
    return { ok: true, centAmount: cents, parts: [{ what: 'amount', gross: cents }] };
  }
  const parts: RefundPart[] = [];
  const seen = new Set<string>();
  for (const wanted of request.lineItems ?? []) {
    if (seen.has(wanted.lineItemId)) return refuse('duplicate-line-item', 422, `line item ${wanted.lineItemId} is listed twice`);
    seen.add(wanted.lineItemId);
    const line = order.lineItems.find((candidate) => candidate.id === wanted.lineItemId);
    if (!line) return refuse('unknown-line-item', 422, `the order has no line item ${wanted.lineItemId}`);
    if (wanted.quantity > line.quantity) return refuse('quantity-exceeds-line-item', 422, `line item ${line.id} has ${line.quantity} item(s), fewer than ${wanted.quantity}`);
    parts.push(lineRefund(line, wanted.quantity));
  }
  if (request.shipping) {
    const shipping = shippingRefund(order);
    if (!shipping) return refuse('no-shipping', 422, 'the order has no shipping price to refund');
    parts.push(shipping);
  }
  const centAmount = parts.reduce((total, part) => total + part.gross, 0);
  if (centAmount <= 0) return refuse('amount-not-positive', 422, 'the refund comes to zero');
  return { ok: true, centAmount, parts };
}

/**
 * A refund of `centAmount` as a Refund transaction on the order's payment that holds a successful charge with
 * enough left (charged minus refunded), the way commercetools documents refunds: the payment service provider
 * executes the transaction (https://docs.commercetools.com/api/projects/payments, Transaction, TransactionType Refund).
 */
export function planRefund(
  order: Order,
  payments: readonly Payment[],
  amount: { centAmount: number; parts: RefundPart[] },
  options: { paymentId?: string | undefined; transactionState: ActionsConfig['refundTransactionState']; now: number },
): { ok: true; plan: RefundPlan } | { ok: false; refusal: Refusal } {
  const { currencyCode, fractionDigits } = orderCurrency(order);
  const candidates = options.paymentId === undefined ? payments : payments.filter((payment) => payment.id === options.paymentId);
  if (options.paymentId !== undefined && candidates.length === 0) return refuse('unknown-payment', 422, `payment ${options.paymentId} is not one of the order's payments`);
  const charged = candidates.filter((payment) => paymentBalance(payment, currencyCode).charged > 0);
  if (charged.length === 0) return refuse('no-successful-charge', 409, `no payment of the order has a successful charge in ${currencyCode}`);
  const payment = charged.find((candidate) => paymentBalance(candidate, currencyCode).available >= amount.centAmount);
  if (!payment) {
    const most = Math.max(...charged.map((candidate) => paymentBalance(candidate, currencyCode).available));
    return refuse(
      'refund-exceeds-charge',
      409,
      `a refund of ${formatMinorUnits(amount.centAmount, fractionDigits)} ${currencyCode} exceeds what was charged minus what was refunded (at most ${formatMinorUnits(Math.max(0, most), fractionDigits)} ${currencyCode} on one payment)`,
    );
  }
  return {
    ok: true,
    plan: {
      payment: { id: payment.id, version: payment.version, transactionIdsBefore: payment.transactions.map((t) => t.id) },
      centAmount: amount.centAmount,
      currencyCode,
      fractionDigits,
      parts: amount.parts,
      actions: [
        {
          action: 'addTransaction',
          transaction: { type: 'Refund', amount: { currencyCode, centAmount: amount.centAmount }, state: options.transactionState, timestamp: new Date(options.now).toISOString() },
        },
      ],
    },
  };
}

/** Whether `payment` holds a Refund of `centAmount` that was not among `transactionIdsBefore`: the write happened. */
export function refundApplied(payment: Payment, plan: Pick<RefundPlan, 'centAmount' | 'currencyCode' | 'payment'>): boolean {
  const before = new Set(plan.payment.transactionIdsBefore);
  return payment.transactions.some((t) => !before.has(t.id) && t.type === 'Refund' && t.amount.centAmount === plan.centAmount && t.amount.currencyCode === plan.currencyCode);
}

// ---------------------------------------------------------------------------------------------------------------
// Item cancellations

export interface CancelPlan {
  order: { id: string; version: number };
  cancelled: { lineItemId: string; quantity: number }[];
  /** Per line item, the quantity in the cancelled state before: what a retry compares against. */
  cancelledBefore: Record<string, number>;
  cancelledStateId: string;
  actions: OrderUpdateAction[];
}

/** States of the project by key and by id (LineItemStates and OrderStates are what actions use). */
export interface StateIndex {
  byKey: Map<string, State>;
  byId: Map<string, State>;
}

export function indexStates(states: readonly State[]): StateIndex {
  return { byKey: new Map(states.filter((s) => s.key).map((s) => [s.key, s])), byId: new Map(states.map((s) => [s.id, s])) };
}

function quantityIn(line: LineItem, stateIds: ReadonlySet<string>): number {
  return line.state.filter((entry) => stateIds.has(entry.state.id)).reduce((total, entry) => total + entry.quantity, 0);
}

function deliveredQuantity(order: Order, lineItemId: string): number {
  const deliveries = order.shippingInfo?.deliveries ?? [];
  return deliveries.flatMap((delivery) => delivery.items).filter((item) => item.id === lineItemId).reduce((total, item) => total + item.quantity, 0);
}

/**
 * Moves quantities of line items into the configured cancelled LineItemState (`transitionLineItemState`), from
 * the states they are in that are neither cancelled nor shipped. Shipped quantities (in a shipped state, in a
 * delivery, or all of them once the order's shipmentState is Shipped or Delivered) and cancelled ones are refused.
 */
export function planCancel(order: Order, states: StateIndex, lines: readonly RefundLine[], config: ActionsConfig): { ok: true; plan: CancelPlan } | { ok: false; refusal: Refusal } {
  const cancelledState = states.byKey.get(config.lineItemStates.cancelled);
  if (!cancelledState || cancelledState.type !== 'LineItemState') {
    return refuse('cancelled-state-missing', 409, `the project has no LineItemState "${config.lineItemStates.cancelled}" (actions.lineItemStates.cancelled)`);
  }
  const shippedIds = new Set(config.lineItemStates.shipped.map((key) => states.byKey.get(key)?.id).filter((id): id is string => id !== undefined));
  const cancelledIds = new Set([cancelledState.id]);
  const allShipped = order.shipmentState === 'Shipped' || order.shipmentState === 'Delivered';
  const actions: OrderUpdateAction[] = [];
  const cancelledBefore: Record<string, number> = {};
  const seen = new Set<string>();
  for (const wanted of lines) {
    if (seen.has(wanted.lineItemId)) return refuse('duplicate-line-item', 422, `line item ${wanted.lineItemId} is listed twice`);
    seen.add(wanted.lineItemId);
    const line = order.lineItems.find((candidate) => candidate.id === wanted.lineItemId);
    if (!line) return refuse('unknown-line-item', 422, `the order has no line item ${wanted.lineItemId}`);
    if (wanted.quantity > line.quantity) return refuse('quantity-exceeds-line-item', 422, `line item ${line.id} has ${line.quantity} item(s), fewer than ${wanted.quantity}`);
    const cancelled = quantityIn(line, cancelledIds);
    cancelledBefore[line.id] = cancelled;
    const shipped = allShipped ? line.quantity : Math.max(quantityIn(line, shippedIds), deliveredQuantity(order, line.id));
    if (wanted.quantity > line.quantity - cancelled) {
      return refuse('already-cancelled', 409, `line item ${line.id}: ${cancelled} of ${line.quantity} item(s) are cancelled already; ${wanted.quantity} more cannot be`);
    }
    const open = line.state.filter((entry) => !cancelledIds.has(entry.state.id) && !shippedIds.has(entry.state.id));
    const cancellable = Math.min(
      open.reduce((total, entry) => total + entry.quantity, 0),
      line.quantity - cancelled - shipped,
    );
    if (wanted.quantity > cancellable) {
      return refuse('already-shipped', 409, `line item ${line.id}: ${shipped} of ${line.quantity} item(s) are shipped; at most ${Math.max(0, cancellable)} can be cancelled`);
    }
    let left = wanted.quantity;
    for (const entry of open) {
      if (left === 0) break;
      const from = states.byId.get(entry.state.id);
      if (from?.transitions !== undefined && !from.transitions.some((reference) => reference.id === cancelledState.id)) {
        return refuse('transition-not-allowed', 409, `line item ${line.id}: the state "${from.key ?? from.id}" has no transition to "${cancelledState.key}"`);
      }
      const quantity = Math.min(left, entry.quantity);
      actions.push({ action: 'transitionLineItemState', lineItemId: line.id, quantity, fromState: { typeId: 'state', id: entry.state.id }, toState: { typeId: 'state', id: cancelledState.id } });
      left -= quantity;
    }
  }
  if (actions.length === 0) return refuse('nothing-to-cancel', 422, 'name at least one line item and quantity');
  return { ok: true, plan: { order: { id: order.id, version: order.version }, cancelled: lines.map((l) => ({ ...l })), cancelledBefore, cancelledStateId: cancelledState.id, actions } };
}

/** Whether the order shows the cancellation: each line item holds its quantity more in the cancelled state. */
export function cancelApplied(order: Order, plan: Pick<CancelPlan, 'cancelled' | 'cancelledBefore' | 'cancelledStateId'>): boolean {
  const ids = new Set([plan.cancelledStateId]);
  return plan.cancelled.every((wanted) => {
    const line = order.lineItems.find((candidate) => candidate.id === wanted.lineItemId);
    return line !== undefined && quantityIn(line, ids) >= (plan.cancelledBefore[wanted.lineItemId] ?? 0) + wanted.quantity;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// State changes

export interface StateRequest {
  orderState?: OrderStateName | undefined;
  /** The key of an OrderState State (the project's workflow). */
  state?: string | undefined;
}

export interface StatePlan {
  order: { id: string; version: number };
  orderState?: OrderStateName;
  stateId?: string;
  actions: OrderUpdateAction[];
}

/**
 * An orderState change along the configured graph (never out of a final state, never to Complete while the
 * payment is open: paymentState other than Paid), and/or a workflow State change along the project's State
 * transitions (when the current State sets `transitions`, the target must be among them; an empty list is final).
 */
export function planStateChange(order: Order, states: StateIndex, request: StateRequest, config: ActionsConfig): { ok: true; plan: StatePlan } | { ok: false; refusal: Refusal } {
  const actions: OrderUpdateAction[] = [];
  const plan: StatePlan = { order: { id: order.id, version: order.version }, actions };
  if (request.orderState !== undefined) {
    const current = order.orderState as OrderStateName;
    const next = config.orderStates[current] ?? [];
    if (next.length === 0) return refuse('final-state', 409, `the order is ${current}, a final state`);
    if (request.orderState === current) return refuse('transition-not-allowed', 409, `the order is ${current} already`);
    if (!next.includes(request.orderState)) return refuse('transition-not-allowed', 409, `the order cannot go from ${current} to ${request.orderState} (allowed: ${next.join(', ')})`);
    if (request.orderState === 'Complete' && order.paymentState !== 'Paid') {
      return refuse('open-payment', 409, `the order cannot be Complete while its payment is ${order.paymentState ?? 'not recorded'}`);
    }
    actions.push({ action: 'changeOrderState', orderState: request.orderState });
    plan.orderState = request.orderState;
  }
  if (request.state !== undefined) {
    const target = states.byKey.get(request.state);
    if (!target || target.type !== 'OrderState') return refuse('unknown-state', 422, `the project has no OrderState with key "${request.state}"`);
    const current = order.state ? states.byId.get(order.state.id) : undefined;
    if (current?.id === target.id) return refuse('transition-not-allowed', 409, `the order is in state "${request.state}" already`);
    if (current?.transitions !== undefined) {
      if (current.transitions.length === 0) return refuse('final-state', 409, `the order's state "${current.key ?? current.id}" is final`);
      if (!current.transitions.some((reference) => reference.id === target.id)) {
        return refuse('transition-not-allowed', 409, `the order's state "${current.key ?? current.id}" has no transition to "${request.state}"`);
      }
    }
    actions.push({ action: 'transitionState', state: { typeId: 'state', id: target.id } });
    plan.stateId = target.id;
  }
  if (actions.length === 0) return refuse('nothing-to-change', 422, 'give an orderState or a state');
  return { ok: true, plan };
}

export function stateApplied(order: Order, plan: Pick<StatePlan, 'orderState' | 'stateId'>): boolean {
  return (plan.orderState === undefined || order.orderState === plan.orderState) && (plan.stateId === undefined || order.state?.id === plan.stateId);
}
