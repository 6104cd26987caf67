// Pure helpers over commercetools Orders, shared by the client, the engine and the preview: the order `$orders`
// has (oldest first), orders grouped by customer, the payments an order holds.

/** The ids of the payments an order's paymentInfo references. */
export function paymentIdsOf(order: Record<string, unknown>): string[] {
  const payments = (order.paymentInfo as { payments?: unknown } | undefined)?.payments;
  return Array.isArray(payments) ? payments.flatMap((payment) => (typeof (payment as { id?: unknown } | null)?.id === 'string' ? [(payment as { id: string }).id] : [])) : [];
}

/** Orders by their customerId, each customer's oldest first (sorted here too: not every commercetools emulator sorts). */
export function groupOrdersByCustomer(orders: readonly Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const byCustomer = new Map<string, Record<string, unknown>[]>();
  for (const order of orders) {
    if (typeof order.customerId !== 'string') continue;
    const list = byCustomer.get(order.customerId);
    if (list) list.push(order);
    else byCustomer.set(order.customerId, [order]);
  }
  for (const list of byCustomer.values()) sortOldestFirst(list);
  return byCustomer;
}

/** Sorts orders in place by createdAt, then id: the order `$orders` has. */
export function sortOldestFirst(orders: Record<string, unknown>[]): Record<string, unknown>[] {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  const key = (order: Record<string, unknown>) => `${text(order.createdAt)}\u0000${text(order.id)}`;
  return orders.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
