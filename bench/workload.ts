// The benchmark's data, derived from indexes so every bench process builds the same thing without passing it
// around: a pool of realistic customers (the emulator holds them for the naive handler's fetches) and the
// CustomerCreated Messages (Platform format, carrying the customer) that the throughput scenarios post.
import { Random, customerDraft } from '../src/sandbox/seed.ts';

export const BULK_PROJECT_KEY = 'bench-bulk';
export const BURST_PROJECT_KEY = 'bench-burst';

/** What the bench destination (and the naive handler) maps a commercetools customer to. */
export const CUSTOMER_FIELDS: Record<string, string> = {
  email: 'email',
  firstName: 'firstName',
  lastName: 'lastName',
  customerNumber: 'customerNumber',
  country: 'addresses[0].country',
  city: 'addresses[0].city',
};

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/** A UUID-shaped id that is the same in every process for the same index. */
export function customerId(index: number): string {
  return `c0ffee00-0000-4000-8000-${hex(index, 12)}`;
}

function messageId(index: number): string {
  return `0e55a9e0-0000-4000-9000-${hex(index, 12)}`;
}

const CREATED_AT = Date.UTC(2026, 0, 5, 9, 0, 0);

/** Customer number `index` of the pool, as commercetools returns it at version 1. */
export function poolCustomer(index: number): Record<string, unknown> {
  const { draft } = customerDraft(new Random(index + 1), index);
  const id = customerId(index);
  const at = new Date(CREATED_AT + index * 1000).toISOString();
  const addresses = (draft.addresses ?? []).map((address, i) => ({ ...address, id: `${hex(index, 8)}-a${i}` }));
  const { defaultShippingAddress, defaultBillingAddress, shippingAddresses, billingAddresses, stores, ...rest } = draft;
  return {
    ...rest,
    id,
    version: 1,
    versionModifiedAt: at,
    createdAt: at,
    lastModifiedAt: at,
    lastModifiedBy: { clientId: 'bench-import', isPlatformClient: false },
    createdBy: { clientId: 'bench-import', isPlatformClient: false },
    addresses,
    defaultShippingAddressId: defaultShippingAddress === undefined ? undefined : addresses[defaultShippingAddress]?.id,
    defaultBillingAddressId: defaultBillingAddress === undefined ? undefined : addresses[defaultBillingAddress]?.id,
    shippingAddressIds: (shippingAddresses ?? []).map((i) => addresses[i]?.id),
    billingAddressIds: (billingAddresses ?? []).map((i) => addresses[i]?.id),
    stores: (stores ?? []).map((store) => ({ typeId: 'store', key: store.key })),
    customerGroupAssignments: [],
    authenticationMode: 'Password',
  };
}

/** The CustomerCreated Message commercetools would deliver for pool customer `index`. */
export function createdMessage(index: number, projectKey = BULK_PROJECT_KEY): Record<string, unknown> {
  const customer = poolCustomer(index);
  return {
    notificationType: 'Message',
    projectKey,
    id: messageId(index),
    version: 1,
    sequenceNumber: 1,
    resource: { typeId: 'customer', id: customer.id },
    resourceVersion: 1,
    resourceUserProvidedIdentifiers: { key: customer.key, customerNumber: customer.customerNumber },
    type: 'CustomerCreated',
    customer,
    createdAt: customer.createdAt,
    lastModifiedAt: customer.lastModifiedAt,
    createdBy: customer.createdBy,
    lastModifiedBy: customer.lastModifiedBy,
  };
}

/** Request bodies: `count` CustomerCreated Messages from pool index `from`, `perRequest` per body (1: no array). */
export function createdBodies(from: number, count: number, perRequest: number): Array<{ body: string; messages: number }> {
  const bodies: Array<{ body: string; messages: number }> = [];
  for (let start = from; start < from + count; start += perRequest) {
    const size = Math.min(perRequest, from + count - start);
    const messages = Array.from({ length: size }, (_, i) => createdMessage(start + i));
    bodies.push({ body: JSON.stringify(perRequest === 1 ? messages[0] : messages), messages: size });
  }
  return bodies;
}

/** Reads a dotted path with [n] indexes (the subset of ctbridge's path syntax the bench mapping uses). */
export function readPath(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split(/\.|(?=\[)/)) {
    if (current === null || typeof current !== 'object') return undefined;
    const index = /^\[(\d+)\]$/.exec(part);
    current = index ? (current as unknown[])[Number(index[1])] : (current as Record<string, unknown>)[part];
  }
  return current;
}
