// The monday connector end to end, on both stores: commercetools messages through ingest and the engine to the
// strict monday simulator, asserting on the boards it holds — customers, business units and orders on the right
// boards and groups per store (when: blocks), an update sending only the changed columns, a monday-owned column
// edited in monday never overwritten, an exhausted complexity budget delaying but losing nothing, monday's errors
// (HTTP 200 ones, and the concurrency limit FIELD_LIMIT_EXCEEDED) becoming retries or dead letters (with the
// GraphQL request and monday's error) by their code, and an order that
// arrives before its customer linked to the customer's item in the end. How each item becomes GraphQL is
// test/monday-connector.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.ts';
import type { SimBoard } from '../src/sandbox/monday/account.ts';
import { startMondaySimulator, type MondaySimulator, type MondaySimulatorOptions } from '../src/sandbox/monday/simulator.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, FakeCommercetools, messageBase, startTestRuntime, untilDone, type TestRuntime } from './support/harness.ts';

const TOKEN = 'monday-runtime-token';
let currentStore: (typeof testStores)[number];

interface Setup extends TestRuntime {
  sim: MondaySimulator;
  accounts: SimBoard;
  orders: SimBoard;
  commercetools: FakeCommercetools;
}

async function setUp(simOptions: Partial<MondaySimulatorOptions> = {}, engine: Partial<Config['engine']> = {}): Promise<Setup> {
  const sim = await startMondaySimulator({ token: TOKEN, ...simOptions });
  const accounts = sim.account.createBoard({
    name: 'Accounts',
    groups: [{ id: 'topics', title: 'Customers' }, { id: 'uk', title: 'UK customers' }, { id: 'companies', title: 'Companies' }],
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'email', type: 'email' },
      { id: 'city', type: 'text' },
      { id: 'stage', type: 'status', labels: ['Lead', 'Customer', 'Churned'] },
    ],
  });
  const orders = sim.account.createBoard({
    name: 'Deals',
    groups: [{ id: 'topics', title: 'Orders' }, { id: 'uk', title: 'UK orders' }],
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'customer', type: 'board_relation', boardIds: [accounts.id] },
      { id: 'state', type: 'status', labels: ['Open', 'Confirmed', 'Complete'] },
      { id: 'total', type: 'numbers' },
    ],
    subitemColumns: [{ id: 'line_id', type: 'text' }, { id: 'qty', type: 'numbers' }],
  });
  const commercetools = new FakeCommercetools();
  const started = await startTestRuntime({
    storeUrl: await currentStore.create(),
    engine: { maxAttempts: 4, ...engine },
    fetcher: commercetools,
    closeAfter: [sim],
    destinations: [
      {
        name: 'crm',
        type: 'monday',
        token: TOKEN,
        endpoint: sim.url,
        boards: {
          customer: { board: accounts.id, externalIdColumn: 'ext_id', columns: { email: 'email', city: 'city', stage: 'stage' }, mondayOwned: ['stage'] },
          company: { board: accounts.id, group: 'companies', externalIdColumn: 'ext_id', columns: {} },
          order: {
            board: orders.id,
            externalIdColumn: 'ext_id',
            columns: { customer: { column: 'customer', type: 'board_relation', links: 'customer' }, state: 'state', total: 'total' },
            lineItems: { field: 'lines', mode: 'subitems', externalIdColumn: 'line_id', columns: { quantity: 'qty' } },
          },
        },
        records: {
          customer: {
            fields: { name: { template: '{{firstName}} {{lastName}}' }, email: 'email', city: 'addresses[0].city', stage: { value: 'Lead' } },
            when: [{ match: { store: 'uk' }, target: { group: 'uk' } }],
          },
          company: { source: 'business-unit', fields: { name: 'name' } },
          order: {
            fields: { name: 'orderNumber', customer: 'customerId', state: 'orderState', total: 'totalPrice', lines: { list: 'lineItems', fields: { id: 'id', name: 'name.en', quantity: 'quantity' } } },
            when: [{ match: { store: 'uk' }, target: { group: 'uk' } }],
          },
        },
      },
    ],
  });
  return { ...started, sim, accounts, orders, commercetools };
}

const itemByExternalId = (s: Setup, board: SimBoard, id: string) => s.sim.account.itemsOf(board.id).find((item) => item.values.get('ext_id')?.text === id);
const money = (centAmount: number) => ({ type: 'centPrecision', currencyCode: 'GBP', centAmount, fractionDigits: 2 });

/** Waits until `check` holds, failing only when nothing moves at the simulator for a while (its mutations). */
function until(s: Setup, check: () => boolean, what: string): Promise<void> {
  return untilDone(() => Promise.resolve({ done: check(), remaining: s.sim.stats.calls }), what);
}

async function deadLetters(s: Setup): Promise<Array<{ id: number; reason: string; lastError?: string; resourceId?: string }>> {
  const list = (await (await adminFetch(s, '/v1/dead-letters')).json()) as { items: Array<{ id: number; reason: string }> };
  return Promise.all(list.items.map(async (item) => (await (await adminFetch(s, `/v1/dead-letters/${item.id}`)).json()) as { id: number; reason: string; lastError?: string }));
}

function businessUnitCreated(id: string, name: string): Record<string, unknown> {
  return { ...messageBase(id, 1, 'business-unit'), type: 'BusinessUnitCreated', businessUnit: { id, version: 1, key: `bu-${id}`, name, unitType: 'Company', associates: [] } };
}

describe.each(testStores)('the monday connector on $name', (testStore) => {
  beforeAll(() => {
    currentStore = testStore;
  });
  afterAll(() => testStore.cleanup());

  it('puts customers, business units and orders on their boards and groups per store, with line items as subitems and the order linked to its customer', async () => {
    const s = await setUp();
    try {
      await s.post(s.commercetools.upsertCustomer('c-de', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', addresses: [{ city: 'Berlin' }], stores: [{ typeId: 'store', key: 'de' }] }));
      await s.post(s.commercetools.upsertCustomer('c-uk', { email: 'alan@example.com', firstName: 'Alan', lastName: 'Turing', addresses: [{ city: 'London' }], stores: [{ typeId: 'store', key: 'uk' }] }));
      s.commercetools.resources.set('bu1', { id: 'bu1', version: 1, key: 'bu-bu1', name: 'Analytical Engines Ltd', unitType: 'Company', associates: [] });
      await s.post(businessUnitCreated('bu1', 'Analytical Engines Ltd'));
      await s.post(s.commercetools.upsertOrder('o-uk', { orderNumber: 'UK-1', customerId: 'c-uk', orderState: 'Open', store: { typeId: 'store', key: 'uk' }, totalPrice: money(4250), lineItems: [{ id: 'li-1', name: { en: 'Socks' }, quantity: 2 }, { id: 'li-2', name: { en: 'Hat' }, quantity: 1 }] }));
      await until(s, () => itemByExternalId(s, s.orders, 'o-uk')?.subitemIds.length === 2 && itemByExternalId(s, s.accounts, 'bu1') !== undefined && itemByExternalId(s, s.accounts, 'c-de') !== undefined, 'every record on monday');

      const de = itemByExternalId(s, s.accounts, 'c-de')!;
      const uk = itemByExternalId(s, s.accounts, 'c-uk')!;
      expect(de).toMatchObject({ name: 'Ada Lovelace', groupId: 'topics' });
      expect(uk).toMatchObject({ name: 'Alan Turing', groupId: 'uk' });
      expect(s.sim.account.valueOf(de.id, 'email')).toEqual({ email: 'ada@example.com', text: 'ada@example.com' });
      expect(itemByExternalId(s, s.accounts, 'bu1')).toMatchObject({ name: 'Analytical Engines Ltd', groupId: 'companies' });
      const order = itemByExternalId(s, s.orders, 'o-uk')!;
      expect(order).toMatchObject({ name: 'UK-1', groupId: 'uk' });
      expect(order.values.get('state')?.text).toBe('Open');
      expect(s.sim.account.valueOf(order.id, 'total')).toBe('42.5');
      expect(s.sim.account.valueOf(order.id, 'customer')).toEqual({ linkedPulseIds: [{ linkedPulseId: Number(uk.id) }] });
      expect(order.subitemIds.map((id) => s.sim.account.items.get(id)!.name)).toEqual(['Socks', 'Hat']);
      expect(s.sim.stats.invalid).toBe(0);
    } finally {
      await s.stop();
    }
  });

  it('sends only the changed columns on an update, and never overwrites a column monday owns', async () => {
    const s = await setUp();
    try {
      await s.post(s.commercetools.upsertCustomer('c1', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', addresses: [{ city: 'Berlin' }] }));
      await until(s, () => itemByExternalId(s, s.accounts, 'c1') !== undefined, 'the customer item');
      const item = itemByExternalId(s, s.accounts, 'c1')!;
      expect(item.values.get('stage')?.text).toBe('Lead');
      // Sales move the customer on in monday.
      s.sim.account.setByHand(item.id, 'stage', { label: 'Customer' });
      await s.post(s.commercetools.upsertCustomer('c1', { addresses: [{ city: 'Paris' }] }, 'CustomerAddressChanged'));
      await until(s, () => s.sim.account.valueOf(item.id, 'city') === 'Paris', 'the new city');
      const change = s.sim.mutations.filter((m) => m.field === 'change_multiple_column_values').at(-1)!;
      expect(change.columnValues).toEqual({ city: 'Paris' });
      expect(item.values.get('stage')?.text).toBe('Customer');
      expect(s.sim.account.itemsOf(s.accounts.id)).toHaveLength(1);
    } finally {
      await s.stop();
    }
  });

  it('an order that arrives before its customer ends linked to the customer\'s item', async () => {
    // Attempts enough for the order to wait however long a busy machine takes to sync its customer.
    const s = await setUp({}, { maxAttempts: 50 });
    try {
      await s.post(s.commercetools.upsertOrder('o1', { orderNumber: 'DE-1', customerId: 'late', orderState: 'Open', totalPrice: money(1000), lineItems: [] }));
      // The order is tried and waits for its customer.
      await until(s, () => s.sim.mutations.length === 0 && s.sim.stats.calls >= 2, 'the order tried');
      expect(itemByExternalId(s, s.orders, 'o1')).toBeUndefined();
      await s.post(s.commercetools.upsertCustomer('late', { email: 'late@example.com', firstName: 'Late', lastName: 'Comer' }));
      await until(s, () => itemByExternalId(s, s.orders, 'o1') !== undefined, 'the order item');
      const customer = itemByExternalId(s, s.accounts, 'late')!;
      expect(s.sim.account.valueOf(itemByExternalId(s, s.orders, 'o1')!.id, 'customer')).toEqual({ linkedPulseIds: [{ linkedPulseId: Number(customer.id) }] });
      expect(await deadLetters(s)).toHaveLength(0);
    } finally {
      await s.stop();
    }
  });

  it('an exhausted complexity budget delays the backlog but loses nothing', async () => {
    // About five mutations per two-second window, for fifteen customers: three windows at least.
    const s = await setUp({ budgetPerMinute: 60_000, budgetWindowMs: 2_000 }, { maxAttempts: 50, leaseMs: 30_000 });
    try {
      const ids = Array.from({ length: 15 }, (_, i) => `b${i}`);
      await s.post(ids.map((id) => s.commercetools.upsertCustomer(id, { email: `${id}@example.com`, firstName: 'B', lastName: id })));
      await untilDone(() => Promise.resolve({ done: ids.every((id) => itemByExternalId(s, s.accounts, id) !== undefined), remaining: s.sim.account.itemsOf(s.accounts.id).length }), 'every customer on monday');
      expect(s.sim.account.itemsOf(s.accounts.id)).toHaveLength(15);
      // More than one window's budget was spent: the backlog waited for resets.
      expect(s.sim.stats.complexity).toBeGreaterThan(60_000);
      expect(await deadLetters(s)).toHaveLength(0);
    } finally {
      await s.stop();
    }
  });

  it('monday\'s errors become retries or dead letters by their code; the dead letter keeps the request and monday\'s error', async () => {
    const s = await setUp();
    try {
      // A budget error first: retried, then delivered.
      s.sim.faults.push({ kind: 'error', code: 'COMPLEXITY_BUDGET_EXHAUSTED', message: 'Complexity budget exhausted', retryInSeconds: 1, statusCode: 429 });
      await s.post(s.commercetools.upsertCustomer('c1', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace' }));
      await until(s, () => itemByExternalId(s, s.accounts, 'c1') !== undefined, 'the customer after the budget error');
      // The concurrency limit: waited out and retried, not a dead letter (the one below is the only one).
      const limited = s.sim.stats.concurrencyLimited;
      s.sim.faults.push({ kind: 'fieldLimit', retryInSeconds: 1 });
      await s.post(s.commercetools.upsertCustomer('c2', { email: 'alan@example.com', firstName: 'Alan', lastName: 'Turing' }));
      await until(s, () => itemByExternalId(s, s.accounts, 'c2') !== undefined, 'the customer after the concurrency limit');
      expect(s.sim.stats.concurrencyLimited).toBe(limited + 1);
      // A status label the column does not have: permanent, a dead letter.
      await s.post(s.commercetools.upsertOrder('o-bad', { orderNumber: 'DE-2', customerId: 'c1', orderState: 'Cancelled', totalPrice: money(100), lineItems: [] }));
      let letters: Awaited<ReturnType<typeof deadLetters>> = [];
      await untilDone(async () => {
        letters = await deadLetters(s);
        return { done: letters.length === 1, remaining: s.sim.stats.calls };
      }, 'the dead letter');
      const letter = letters[0]! as Record<string, unknown>;
      const text = JSON.stringify(letter);
      expect(text).toContain('ColumnValueException');
      expect(text).toContain('label does not exist in column');
      expect(text).toContain('sent: create_item(');
      expect(text).toContain('\\"state\\":{\\"label\\":\\"Cancelled\\"}');
      expect(itemByExternalId(s, s.orders, 'o-bad')).toBeUndefined();
    } finally {
      await s.stop();
    }
  });
});
