// A shop's history in the commercetools emulator, for the backfill tests and the benchmark: customers, and orders
// spread over them, added straight into the emulator's storage (creating 20,000 orders through its HTTP API would
// take minutes and test the emulator, not ctbridge). Each resource is what commercetools answers for it at
// version 1 (`addOrder` adds one more); `bumpOrder` makes a newer version, as an update action would.
import { randomUUID } from 'node:crypto';
import type { Emulator } from './emulator.ts';

export interface History {
  customerIds: string[];
  orderIds: string[];
}

/** The record mappings the backfill tests and the benchmark give the http sink. */
export const HISTORY_RECORDS = {
  customer: { fields: { email: 'email', firstName: 'firstName' } },
  order: { fields: { orderNumber: 'orderNumber', state: 'orderState', total: 'totalPrice.centAmount', customerId: 'customerId' } },
};

export async function seedHistory(emulator: Emulator, counts: { customers: number; orders: number }): Promise<History> {
  const project = emulator.mock.project(emulator.projectKey);
  const at = (n: number) => new Date(Date.UTC(2025, 0, 1) + n * 60_000).toISOString();
  const customerIds: string[] = [];
  for (let i = 0; i < counts.customers; i += 1) {
    const id = randomUUID();
    customerIds.push(id);
    await project.unsafeAdd('customer', {
      id,
      version: 1,
      createdAt: at(i),
      lastModifiedAt: at(i),
      email: `history-${i}@example.com`,
      firstName: `Customer${i}`,
      lastName: 'History',
      addresses: [],
      isEmailVerified: true,
      stores: [],
      customerGroupAssignments: [],
      authenticationMode: 'Password',
    } as never);
  }
  const orderIds: string[] = [];
  for (let i = 0; i < counts.orders; i += 1) {
    orderIds.push(await addOrder(emulator, { at: at(i), orderNumber: `H-${i}`, customerId: customerIds[i % customerIds.length], centAmount: 1000 + i }));
  }
  return { customerIds, orderIds };
}

/** An open EUR order without line items, added at version 1 as of `at` (an ISO time); its id. */
export async function addOrder(emulator: Emulator, order: { at: string; orderNumber: string; customerId?: string | undefined; centAmount: number }): Promise<string> {
  const id = randomUUID();
  await emulator.mock.project(emulator.projectKey).unsafeAdd('order', {
    id,
    version: 1,
    createdAt: order.at,
    lastModifiedAt: order.at,
    orderNumber: order.orderNumber,
    orderState: 'Open',
    ...(order.customerId !== undefined && { customerId: order.customerId }),
    totalPrice: { type: 'centPrecision', currencyCode: 'EUR', centAmount: order.centAmount, fractionDigits: 2 },
    lineItems: [],
    customLineItems: [],
    shipping: [],
    refusedGifts: [],
    syncInfo: [],
    origin: 'Customer',
    shippingMode: 'Single',
  } as never);
  return id;
}

/** Makes a newer version of an order in the emulator (as an update action would) and returns it. */
export async function bumpOrder(emulator: Emulator, id: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const project = emulator.mock.project(emulator.projectKey);
  const current = (await project.get('order', id)) as unknown as Record<string, unknown>;
  const next = { ...current, ...fields, version: (current.version as number) + 1, lastModifiedAt: new Date().toISOString() };
  await project.config.storage.add(emulator.projectKey, 'order', next as never);
  return next;
}
