// The monday connector without a runtime: built as the engine builds it (the kit's fetch over a limiter that never
// waits), sending items straight to the strict monday simulator, asserting on the boards the simulator holds and
// the mutations it received — start-up checks of columns and groups, column values in monday's formats, only
// changed columns on update, monday-owned columns written once, one failing mutation failing its item alone,
// HTTP-200 errors classified by code, monday's concurrency limit (FIELD_LIMIT_EXCEEDED) waited out and retried,
// every process paused for a limit the body states (with or without Retry-After) and for a spent complexity budget,
// links to items that do not exist yet, routing, line items in each mode, and the request kept in a failure for
// the dead letter. The runtime half (both stores) is test/monday.test.ts.
import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideAfterFailure } from '../src/engine/retry-policy.ts';
import { PermanentError, RateLimitedError, RetryableError } from '../src/destinations/kit/index.ts';
import { mondayDestination } from '../src/destinations/monday/index.ts';
import type { ItemOutcome } from '../src/destinations/types.ts';
import type { SimBoard } from '../src/sandbox/monday/account.ts';
import { MONDAY_API_VERSION, MUTATION_COST, startMondaySimulator, type MondaySimulator } from '../src/sandbox/monday/simulator.ts';
import { createTestConnector, recordItem } from './support/connector-test.ts';
import { eventually } from './support/harness.ts';

const TOKEN = 'monday-test-token';

let sim: MondaySimulator;
let accounts: SimBoard;
let orders: SimBoard;

beforeEach(async () => {
  sim = await startMondaySimulator({ token: TOKEN });
  accounts = sim.account.createBoard({
    name: 'Accounts',
    groups: [{ id: 'topics', title: 'Customers' }, { id: 'uk', title: 'UK' }, { id: 'companies', title: 'Companies' }],
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'email_col', type: 'email' },
      { id: 'phone_col', type: 'phone' },
      { id: 'tier', type: 'status', labels: ['Bronze', 'Silver', 'Gold'] },
      { id: 'stage', type: 'status', labels: ['Lead', 'Customer', 'Churned'] },
      { id: 'signed_up', type: 'date' },
      { id: 'orders', type: 'numbers' },
      { id: 'site', type: 'link' },
      { id: 'vip', type: 'checkbox' },
      { id: 'segments', type: 'dropdown', labels: ['B2B', 'B2C'] },
      { id: 'country_col', type: 'country' },
      { id: 'total', type: 'formula' },
    ],
  });
  orders = sim.account.createBoard({
    name: 'Orders',
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'customer_link', type: 'board_relation', boardIds: [accounts.id] },
      { id: 'state', type: 'status', labels: ['Open', 'Complete'] },
      { id: 'lines_text', type: 'long_text' },
    ],
    subitemColumns: [{ id: 'line_id', type: 'text' }, { id: 'qty', type: 'numbers' }],
  });
});

afterEach(async () => {
  await sim.close();
});

const customerBoard = () => ({
  board: accounts.id,
  externalIdColumn: 'ext_id',
  columns: { email: 'email_col', phone: 'phone_col', tier: { column: 'tier', type: 'status' as const }, stage: 'stage', signed_up: 'signed_up', orders: 'orders', site: 'site', vip: 'vip', segments: 'segments', country: 'country_col' },
  mondayOwned: ['stage'],
});

function settings(overrides: Record<string, unknown> = {}) {
  return {
    token: TOKEN,
    endpoint: sim.url,
    boards: {
      customer: customerBoard(),
      company: { board: accounts.id, group: 'companies', externalIdColumn: 'ext_id', columns: {} },
      order: { board: orders.id, externalIdColumn: 'ext_id', columns: { customer: { column: 'customer_link', links: 'customer' }, state: 'state' }, lineItems: { field: 'lines', mode: 'subitems', externalIdColumn: 'line_id', columns: { quantity: 'qty' } } },
    },
    ...overrides,
  };
}

async function prepared(overrides: Record<string, unknown> = {}) {
  const test = createTestConnector(mondayDestination, settings(overrides) as never);
  await test.connector.prepare!();
  return test;
}

const ada = { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+447400123456', tier: 'Gold', stage: 'Lead', signed_up: '2026-03-01T09:30:00.000Z', orders: 3, site: 'https://ada.example.com', vip: true, segments: ['B2C'], country: 'GB' };
const itemsOn = (board: SimBoard) => sim.account.itemsOf(board.id);
const expectOk = (outcome: ItemOutcome | undefined) => {
  if (!outcome?.ok) throw new Error(`expected success, got ${outcome ? outcome.error.message : 'nothing'}`);
  return outcome;
};
const expectFailure = (outcome: ItemOutcome | undefined) => {
  if (!outcome || outcome.ok) throw new Error('expected a failure');
  return outcome.error;
};

describe('start-up', () => {
  it('reads the boards and accepts a configuration that matches them', async () => {
    const test = await prepared();
    expect(test.calls).toBeGreaterThanOrEqual(1);
  });

  it('stops with a precise message naming a missing column, a wrong type, a computed column and a missing group', async () => {
    const bad = settings({
      boards: {
        customer: { ...customerBoard(), group: 'nowhere', columns: { email: 'email_missing', phone: { column: 'phone_col', type: 'text' }, total: 'total' } },
      },
    });
    const test = createTestConnector(mondayDestination, bad as never);
    const error = await test.connector.prepare!().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PermanentError);
    const message = (error as Error).message;
    expect(message).toContain(`boards.customer.group: board ${accounts.id} (Accounts) has no group "nowhere"`);
    expect(message).toContain('boards.customer.columns.email: board');
    expect(message).toContain('has no column "email_missing"');
    expect(message).toContain('boards.customer.columns.phone: column "phone_col" is a phone column, but the configuration says text');
    expect(message).toContain('boards.customer.columns.total: column "total" is a formula column');
  });

  it('refuses a board that does not exist and a board-relation column without links', async () => {
    const test = createTestConnector(mondayDestination, settings({ boards: { customer: { board: '999', externalIdColumn: 'ext_id' }, order: { board: orders.id, externalIdColumn: 'ext_id', columns: { customer: 'customer_link' } } } }) as never);
    const message = await test.connector.prepare!().then(
      () => '',
      (e: unknown) => (e as Error).message,
    );
    expect(message).toContain('boards.customer: board 999 does not exist');
    expect(message).toContain('boards.order.columns.customer: column "customer_link" connects boards: say whose items the mapped ids are with links:');
  });
});

describe('items', () => {
  it('creates an item with every mapped column in monday\'s format, token without Bearer and the API version pinned', async () => {
    const test = await prepared();
    const [outcome] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: ada })]);
    const id = expectOk(outcome).destinationId!;
    expect(outcome).toMatchObject({ ok: true, personId: id });
    const item = sim.account.items.get(id)!;
    expect(item).toMatchObject({ name: 'Ada Lovelace', boardId: accounts.id, groupId: 'topics' });
    expect(sim.account.valueOf(id, 'ext_id')).toBe('c1');
    expect(sim.account.valueOf(id, 'email_col')).toEqual({ email: 'ada@example.com', text: 'ada@example.com' });
    expect(sim.account.valueOf(id, 'phone_col')).toEqual({ phone: '+447400123456', countryShortName: 'GB' });
    expect(item.values.get('tier')?.text).toBe('Gold');
    expect(sim.account.valueOf(id, 'signed_up')).toEqual({ date: '2026-03-01', time: '09:30:00' });
    expect(sim.account.valueOf(id, 'orders')).toBe('3');
    expect(sim.account.valueOf(id, 'site')).toEqual({ url: 'https://ada.example.com', text: 'https://ada.example.com' });
    expect(sim.account.valueOf(id, 'vip')).toEqual({ checked: 'true' });
    expect(item.values.get('segments')?.text).toBe('B2C');
    expect(sim.account.valueOf(id, 'country_col')).toEqual({ countryCode: 'GB', countryName: 'United Kingdom' });
    expect(sim.stats.invalid).toBe(0);
  });

  it('updates only the changed columns, never a monday-owned one, and finds an item it does not know by its external id', async () => {
    const test = await prepared();
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: ada })]);
    const id = expectOk(created).destinationId!;
    // Sales move the deal on in monday.
    sim.account.setByHand(id, 'stage', { label: 'Customer' });
    // ctbridge lost the id (a replay after a restore): it finds the item by the external-id column.
    const [updated] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { orders: 4, stage: 'Churned' }, record: { ...ada, orders: 4, stage: 'Churned' } })]);
    expect(expectOk(updated).destinationId).toBe(id);
    const change = sim.mutations.filter((m) => m.field === 'change_multiple_column_values').at(-1)!;
    expect(change.columnValues).toEqual({ orders: '4' });
    expect(sim.account.items.get(id)!.values.get('stage')?.text).toBe('Customer');
    expect(itemsOn(accounts)).toHaveLength(1);
  });

  it('sends nothing for an item whose mapped columns did not change, and clears a column only when its field became empty', async () => {
    const test = await prepared();
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: ada })]);
    const id = expectOk(created).destinationId!;
    const before = sim.stats.calls;
    await test.connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: {}, record: ada })]);
    expect(sim.stats.calls).toBe(before);
    await test.connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: { site: null }, record: { ...ada, site: null } })]);
    expect(sim.account.valueOf(id, 'site')).toBeUndefined();
    expect(sim.account.valueOf(id, 'email_col')).toEqual({ email: 'ada@example.com', text: 'ada@example.com' });
  });

  it('puts many items in one request, and an item whose value monday refuses fails alone with monday\'s error and what was sent', async () => {
    const test = await prepared();
    const items = [
      recordItem({ resourceId: 'c1', fields: { name: 'One', email: 'one@example.com' } }),
      recordItem({ resourceId: 'c2', fields: { name: 'Two', tier: 'Platinum' } }),
      recordItem({ resourceId: 'c3', fields: { name: 'Three', orders: 7 } }),
    ];
    const before = sim.stats.calls;
    const outcomes = await test.connector.sendRecords(items);
    // One lookup and one request of three mutations.
    expect(sim.stats.calls - before).toBe(2);
    expectOk(outcomes[0]);
    expectOk(outcomes[2]);
    const error = expectFailure(outcomes[1]);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('customer c2: monday answered ColumnValueException: invalid value - label does not exist in column');
    expect(error.message).toContain('"column_type":"status"');
    // The item's name is personal data: redacted like every dead letter's.
    expect(error.message).toContain(`sent: create_item({"board_id":"${accounts.id}","name":"[redacted]","column_values":{"ext_id":"c2","tier":{"label":"Platinum"}}})`);
    expect(itemsOn(accounts).map((i) => i.name).sort()).toEqual(['One', 'Three']);
  });

  it('creates a missing status label when createLabelsIfMissing says so', async () => {
    const test = await prepared({ createLabelsIfMissing: true });
    const [outcome] = await test.connector.sendRecords([recordItem({ resourceId: 'c2', fields: { name: 'Two', tier: 'Platinum' } })]);
    expect(sim.account.items.get(expectOk(outcome).destinationId!)!.values.get('tier')?.text).toBe('Platinum');
  });

  it('refuses a phone number that is not E.164 before sending, naming the field; the personal value is not in the message', async () => {
    const test = await prepared();
    const [outcome] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada', phone: '07911 123456' } })]);
    const error = expectFailure(outcome);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('customer c1: phone (monday column phone_col, phone) takes a valid phone number in E.164');
    expect(itemsOn(accounts)).toHaveLength(0);
  });

  it('keeps personal values out of a failure\'s request snapshot (e-mails and phones redacted)', async () => {
    const test = await prepared();
    const [outcome] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada', email: 'ada@example.com', tier: 'Unknown' } })]);
    const error = expectFailure(outcome);
    expect(error.message).toContain('sent: create_item(');
    expect(error.message).toContain('"email":"[redacted]"');
    expect(error.message).toContain('"columns":["email=email_col"]');
    expect(error.message).not.toContain('ada@example.com');
    expect(error.message).not.toContain('Ada');
  });

  it('routes by target: another group, and another board entry', async () => {
    const test = await prepared({ boards: { ...settings().boards, 'customer-b2b': { board: orders.id, group: 'topics', externalIdColumn: 'ext_id', columns: {} } } });
    const outcomes = await test.connector.sendRecords([
      recordItem({ resourceId: 'uk1', fields: { name: 'UK one' }, target: { group: 'uk' } }),
      recordItem({ resourceId: 'b2b1', fields: { name: 'B2B one' }, target: { board: 'customer-b2b' } }),
    ]);
    expect(sim.account.items.get(expectOk(outcomes[0]).destinationId!)).toMatchObject({ boardId: accounts.id, groupId: 'uk' });
    expect(sim.account.items.get(expectOk(outcomes[1]).destinationId!)).toMatchObject({ boardId: orders.id, name: 'B2B one' });
  });

  it('moves an existing item to the group it is routed to now, and leaves one already there alone', async () => {
    const test = await prepared();
    const [first] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const id = expectOk(first).destinationId!;
    const before = sim.account.items.get(id)!.groupId;
    expect(before).not.toBe('uk');
    const [moved] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: {}, record: { name: 'Ada' }, target: { group: 'uk' } })]);
    expect(expectOk(moved).destinationId).toBe(id);
    expect(sim.account.items.get(id)).toMatchObject({ groupId: 'uk', name: 'Ada' });
    const [again] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: {}, record: { name: 'Ada' }, target: { group: 'uk' } })]);
    expectOk(again);
    expect(sim.mutations.filter((m) => m.field === 'move_item_to_group').map((m) => [m.args.item_id, m.args.group_id])).toEqual([[id, 'uk']]);
    // A group the board does not have is monday's error, for that record alone.
    const [missing] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', destinationId: id, fields: {}, record: { name: 'Ada' }, target: { group: 'nowhere' } })]);
    expect(expectFailure(missing)).toBeInstanceOf(PermanentError);
    expect(sim.account.items.get(id)!.groupId).toBe('uk');
  });

  it('archives a deleted record\'s item, and answers success for one never on monday', async () => {
    const test = await prepared();
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const id = expectOk(created).destinationId!;
    const outcomes = await test.connector.sendRecords([recordItem({ resourceId: 'c1', operation: 'delete', fields: {} }), recordItem({ resourceId: 'never', operation: 'delete', fields: {} })]);
    expectOk(outcomes[0]);
    expectOk(outcomes[1]);
    expect(sim.account.items.get(id)!.state).toBe('archived');
  });
});

describe('orders', () => {
  const order = (id: string, customer: string, lines: Array<Record<string, unknown>>) => recordItem({ resourceId: id, resourceType: 'order', recordType: 'order', fields: { name: `Order ${id}`, customer, state: 'Open', lines } });

  it('links the customer\'s item; an order whose customer is not on monday yet fails for a retry and links once it is', async () => {
    const test = await prepared();
    const [early] = await test.connector.sendRecords([order('o1', 'c9', [])]);
    expect(expectFailure(early)).toBeInstanceOf(RetryableError);
    expect(expectFailure(early).retryable).toBe(true);
    expect(itemsOn(orders)).toHaveLength(0);
    const [customer] = await test.connector.sendRecords([recordItem({ resourceId: 'c9', fields: { name: 'Nine' } })]);
    const [later] = await test.connector.sendRecords([order('o1', 'c9', [])]);
    const orderId = expectOk(later).destinationId!;
    expect(sim.account.valueOf(orderId, 'customer_link')).toEqual({ linkedPulseIds: [{ linkedPulseId: Number(expectOk(customer).destinationId) }] });
  });

  it('makes line items subitems of the order, and on a change updates only the changed ones', async () => {
    const test = await prepared();
    await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const lines = [{ id: 'li-1', name: 'Socks', quantity: 2 }, { id: 'li-2', name: 'Hat', quantity: 1 }];
    const [created] = await test.connector.sendRecords([order('o1', 'c1', lines)]);
    const orderItem = sim.account.items.get(expectOk(created).destinationId!)!;
    expect(orderItem.subitemIds.map((id) => sim.account.items.get(id)!.name)).toEqual(['Socks', 'Hat']);
    const changedLines = [{ id: 'li-1', name: 'Socks', quantity: 3 }, lines[1]!, { id: 'li-3', name: 'Scarf', quantity: 1 }];
    const [updated] = await test.connector.sendRecords([recordItem({ resourceId: 'o1', resourceType: 'order', recordType: 'order', destinationId: orderItem.id, fields: { lines: changedLines }, record: { name: 'Order o1', customer: 'c1', state: 'Open', lines: changedLines }, previous: { lines } })]);
    expectOk(updated);
    const subitems = orderItem.subitemIds.map((id) => sim.account.items.get(id)!);
    expect(subitems.map((s) => [s.name, s.values.get('qty')?.text])).toEqual([['Socks', '3'], ['Hat', '1'], ['Scarf', '1']]);
    // The hat did not change: no mutation for it.
    const hat = subitems[1]!.id;
    expect(sim.mutations.filter((m) => m.field === 'change_multiple_column_values' && m.args.item_id === hat)).toHaveLength(0);
  });

  it('archives the subitem of a line item the order no longer has, and only that one', async () => {
    const test = await prepared();
    await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const lines = [{ id: 'li-1', name: 'Socks', quantity: 2 }, { id: 'li-2', name: 'Hat', quantity: 1 }];
    const [created] = await test.connector.sendRecords([order('o1', 'c1', lines)]);
    const orderItem = sim.account.items.get(expectOk(created).destinationId!)!;
    const [socks, hat] = orderItem.subitemIds.map((id) => sim.account.items.get(id)!);
    const [updated] = await test.connector.sendRecords([recordItem({ resourceId: 'o1', resourceType: 'order', recordType: 'order', destinationId: orderItem.id, fields: { lines: [lines[0]!] }, record: { name: 'Order o1', customer: 'c1', state: 'Open', lines: [lines[0]!] }, previous: { lines } })]);
    expectOk(updated);
    expect(hat!.state).toBe('archived');
    expect(socks!.state).toBe('active');
    expect(sim.mutations.filter((m) => m.field === 'archive_item').map((m) => m.args.item_id)).toEqual([hat!.id]);
  });

  it('deletes the connected board\'s item of a removed line item when onDelete says delete', async () => {
    const lineBoard = sim.account.createBoard({ name: 'Line items', columns: [{ id: 'line_id', type: 'text' }, { id: 'qty', type: 'numbers' }] });
    const ordersWithLines = sim.account.createBoard({ name: 'Orders 2', columns: [{ id: 'ext_id', type: 'text' }, { id: 'lines_link', type: 'board_relation', boardIds: [lineBoard.id] }] });
    const test = await prepared({ onDelete: 'delete', boards: { ...settings().boards, order: { board: ordersWithLines.id, externalIdColumn: 'ext_id', columns: {}, lineItems: { field: 'lines', mode: 'board_relation', board: lineBoard.id, column: 'lines_link', externalIdColumn: 'line_id', columns: { quantity: 'qty' } } } } });
    const lines = [{ id: 'li-1', name: 'Socks', quantity: 2 }, { id: 'li-2', name: 'Hat', quantity: 1 }];
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'o1', resourceType: 'order', recordType: 'order', fields: { name: 'Order o1', lines } })]);
    const orderId = expectOk(created).destinationId!;
    const [updated] = await test.connector.sendRecords([recordItem({ resourceId: 'o1', resourceType: 'order', recordType: 'order', destinationId: orderId, fields: { lines: [lines[1]!] }, record: { name: 'Order o1', lines: [lines[1]!] }, previous: { lines } })]);
    expectOk(updated);
    expect(itemsOn(lineBoard).map((i) => i.name)).toEqual(['Hat']);
    expect(sim.mutations.filter((m) => m.field === 'delete_item')).toHaveLength(1);
    expect(sim.account.valueOf(orderId, 'lines_link')).toEqual({ linkedPulseIds: [{ linkedPulseId: Number(itemsOn(lineBoard)[0]!.id) }] });
  });

  it('writes line items into a long-text column in long_text mode', async () => {
    const base = settings();
    const test = await prepared({ boards: { ...base.boards, order: { ...base.boards.order, lineItems: { field: 'lines', mode: 'long_text', column: 'lines_text' } } } });
    await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const [created] = await test.connector.sendRecords([order('o1', 'c1', [{ id: 'li-1', name: 'Socks', quantity: 2, price: { centAmount: 1250, currencyCode: 'EUR', fractionDigits: 2 } }])]);
    expect(sim.account.valueOf(expectOk(created).destinationId!, 'lines_text')).toEqual({ text: '2 × Socks — 12.50 EUR' });
  });

  it('makes line items items of a connected board in board_relation mode', async () => {
    const lineBoard = sim.account.createBoard({ name: 'Line items', columns: [{ id: 'line_id', type: 'text' }, { id: 'qty', type: 'numbers' }] });
    const ordersWithLines = sim.account.createBoard({ name: 'Orders 2', columns: [{ id: 'ext_id', type: 'text' }, { id: 'lines_link', type: 'board_relation', boardIds: [lineBoard.id] }] });
    const test = await prepared({ boards: { ...settings().boards, order: { board: ordersWithLines.id, externalIdColumn: 'ext_id', columns: {}, lineItems: { field: 'lines', mode: 'board_relation', board: lineBoard.id, column: 'lines_link', externalIdColumn: 'line_id', columns: { quantity: 'qty' } } } } });
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'o1', resourceType: 'order', recordType: 'order', fields: { name: 'Order o1', lines: [{ id: 'li-1', name: 'Socks', quantity: 2 }] } })]);
    const lineItems = itemsOn(lineBoard);
    expect(lineItems.map((i) => [i.name, i.values.get('qty')?.text])).toEqual([['Socks', '2']]);
    expect(sim.account.valueOf(expectOk(created).destinationId!, 'lines_link')).toEqual({ linkedPulseIds: [{ linkedPulseId: Number(lineItems[0]!.id) }] });
  });
});

describe('monday\'s errors and limits', () => {
  it('COMPLEXITY_BUDGET_EXHAUSTED (HTTP 200) is a rate limit: retried after retry_in_seconds, every process paused, nothing counted as sent', async () => {
    const test = await prepared();
    sim.faults.push({ kind: 'error', code: 'COMPLEXITY_BUDGET_EXHAUSTED', message: 'Complexity budget exhausted', retryInSeconds: 30, statusCode: 429 });
    const [outcome] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]);
    const error = expectFailure(outcome);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(30_000);
    expect(test.limiter.pausedUntil).toBeGreaterThan(Date.now() + 25_000);
    expect(itemsOn(accounts)).toHaveLength(0);
  });

  it('the older ComplexityException shape, Rate Limit Exceeded (429), maxConcurrencyExceeded and DAILY_LIMIT_EXCEEDED are rate limits too', async () => {
    const test = await prepared();
    const send = async () => expectFailure((await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]))[0]);
    sim.faults.push({ kind: 'legacy', errorCode: 'ComplexityException', message: 'Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 1 seconds', statusCode: 429 });
    const legacy = await send();
    expect(legacy).toBeInstanceOf(RateLimitedError);
    expect((legacy as RateLimitedError).retryAfterMs).toBe(1_000);
    sim.faults.push({ kind: 'status', status: 429, retryAfterSeconds: 1 });
    expect(await send()).toBeInstanceOf(RateLimitedError);
    sim.faults.push({ kind: 'error', code: 'maxConcurrencyExceeded', message: 'Max concurrency exceeded', retryInSeconds: 1 });
    expect(await send()).toBeInstanceOf(RateLimitedError);
    sim.faults.push({ kind: 'error', code: 'DAILY_LIMIT_EXCEEDED', message: 'Daily limit exceeded', retryInSeconds: 3600 });
    const daily = await send();
    expect(daily).toBeInstanceOf(RateLimitedError);
    expect((daily as RateLimitedError).retryAfterMs).toBe(3_600_000);
    // Spent for an hour: the next send fails at once for a later retry instead of holding its batch.
    const before = sim.stats.calls;
    const next = await send();
    expect(next).toBeInstanceOf(RateLimitedError);
    expect((next as RateLimitedError).retryAfterMs).toBeGreaterThan(3_500_000);
    expect(sim.stats.calls).toBe(before);
  });

  it('an HTTP-200 answer with only errors never counts as success; a 500 is retryable; a revoked token is permanent', async () => {
    const test = await prepared();
    const send = async () => (await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]))[0];
    sim.faults.push({ kind: 'error', code: 'SomethingNew', message: 'Something happened', statusCode: 200 });
    expect(expectFailure(await send())).toBeInstanceOf(PermanentError);
    sim.faults.push({ kind: 'status', status: 500 });
    expect(expectFailure(await send())).toBeInstanceOf(RetryableError);
    sim.token = 'rotated';
    const revoked = expectFailure(await send());
    expect(revoked).toBeInstanceOf(PermanentError);
    expect(revoked.message).toContain('monday refused the token');
  });

  it('FIELD_LIMIT_EXCEEDED is the concurrency limit: the destination pauses for retry_in_seconds and the items are retried whole, never dead letters', async () => {
    // The connector's clock is the test's: the wait monday asks for passes when the test moves it, not in real time.
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const test = createTestConnector(mondayDestination, settings() as never, { now: () => clock });
    await test.connector.prepare!();
    const items = Array.from({ length: 3 }, (_, i) => recordItem({ resourceId: `c${i}`, fields: { name: `N${i}` } }));
    sim.faults.push({ kind: 'fieldLimit', retryInSeconds: 15 });
    const failed = await test.connector.sendRecords(items);
    for (const outcome of failed) {
      const error = expectFailure(outcome);
      expect(error).toBeInstanceOf(RateLimitedError);
      expect(error.message).toContain('FIELD_LIMIT_EXCEEDED');
      expect((error as RateLimitedError).retryAfterMs).toBe(15_000);
      // The engine retries it (no sooner than monday said), it does not become a dead letter.
      const decision = decideAfterFailure({ attempts: 0, firstFailedAt: null, attemptLog: null }, error, clock, { maxAttempts: 10, maxAgeMs: 86_400_000, backoffBaseMs: 1_000, backoffMaxMs: 60_000 }, () => 0);
      expect(decision).toMatchObject({ action: 'retry', dueAt: clock + 15_000 });
    }
    // Every process sending to monday waits too (the shared limiter, from Retry-After).
    expect(test.limiter.pausedUntil).toBe(clock + 15_000);
    expect(itemsOn(accounts)).toHaveLength(0);

    clock += 15_000;
    const calls = sim.stats.calls;
    const retried = await test.connector.sendRecords(items);
    retried.forEach((o) => expectOk(o));
    expect(itemsOn(accounts).map((item) => item.name).sort()).toEqual(['N0', 'N1', 'N2']);
    // Not made smaller: one lookup and one request with all three mutations, as before the limit.
    expect(sim.stats.calls - calls).toBe(2);
    expect(sim.mutations.map((m) => `${m.field} ${m.alias}`)).toEqual(['create_item m0', 'create_item m1', 'create_item m2']);
  });

  it('FIELD_LIMIT_EXCEEDED in the flat shape of older versions waits its error_data.retry_in_seconds too, every process with it', async () => {
    const clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const test = createTestConnector(mondayDestination, settings() as never, { now: () => clock });
    await test.connector.prepare!();
    // HTTP 429 without Retry-After: the kit alone would pause a second; the body says two.
    sim.faults.push({ kind: 'legacy', errorCode: 'FIELD_LIMIT_EXCEEDED', message: 'Concurrency limit exceeded for the field', statusCode: 429, errorData: { retry_in_seconds: 2, entity: 'boards' }, httpStatus: 429 });
    const error = expectFailure((await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]))[0]);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(2_000);
    expect(error.status).toBe(429);
    expect(test.limiter.pausedUntil).toBe(clock + 2_000);
  });

  it('a limit stated only in the body of an HTTP-200 answer pauses every process for its wait; other errors pause nothing', async () => {
    // The connector's clock is the test's: the waits pass when the test moves it.
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const test = createTestConnector(mondayDestination, settings() as never, { now: () => clock });
    await test.connector.prepare!();
    const send = async () => expectFailure((await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]))[0]);

    sim.faults.push({ kind: 'error', code: 'SomethingNew', message: 'Something happened', statusCode: 200 });
    expect(await send()).toBeInstanceOf(PermanentError);
    expect(test.limiter.pausedUntil).toBe(0);

    // None of these answers carries Retry-After.
    sim.faults.push({ kind: 'legacy', errorCode: 'FIELD_LIMIT_EXCEEDED', message: 'Concurrency limit exceeded for the field', statusCode: 429, errorData: { retry_in_seconds: 20, entity: 'boards' } });
    expect(await send()).toBeInstanceOf(RateLimitedError);
    expect(test.limiter.pausedUntil).toBe(clock + 20_000);

    clock += 20_000;
    sim.faults.push({ kind: 'legacy', errorCode: 'ComplexityException', message: 'Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 7 seconds', statusCode: 429 });
    expect(await send()).toBeInstanceOf(RateLimitedError);
    expect(test.limiter.pausedUntil).toBe(clock + 7_000);

    // The daily limit without a wait: until midnight UTC, as its items are retried.
    clock += 7_000;
    sim.faults.push({ kind: 'error', code: 'DAILY_LIMIT_EXCEEDED', message: 'Daily limit exceeded' });
    const daily = await send();
    expect(daily).toBeInstanceOf(RateLimitedError);
    expect(test.limiter.pausedUntil).toBe(Date.UTC(2026, 11, 6, 0, 0, 0));
    expect((daily as RateLimitedError).retryAfterMs).toBe(Date.UTC(2026, 11, 6, 0, 0, 0) - clock);
  });

  it('an answer whose complexity left pays for no mutation pauses every process until the window resets', async () => {
    await sim.close();
    // The simulator's clock and the connector's are the test's, frozen: the window resets 60 s after it began.
    const clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    sim = await startMondaySimulator({ token: TOKEN, budgetPerMinute: 45_000, now: () => clock });
    accounts = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }] });
    const test = createTestConnector(mondayDestination, { token: TOKEN, endpoint: sim.url, boards: { customer: { board: accounts.id, externalIdColumn: 'ext_id' } } }, { now: () => clock });
    // Reading the boards, then a create, leave room for more mutations: no pause.
    await test.connector.prepare!();
    expectOk((await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada' } })]))[0]);
    expect(sim.budget().left).toBeGreaterThan(3 * MUTATION_COST);
    expect(test.limiter.pausedUntil).toBe(0);
    // Another app on the account spends two mutations' worth of the same budget.
    for (const name of ['by hand 1', 'by hand 2']) {
      const answer = await fetch(sim.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: TOKEN }, body: JSON.stringify({ query: 'mutation ($board: ID!, $name: String!) { create_item(board_id: $board, item_name: $name) { id } }', variables: { board: accounts.id, name } }) });
      expect(((await answer.json()) as { data?: unknown }).data).toBeDefined();
    }
    // The next create is paid for, and what it leaves pays for no other: every process waits for the reset.
    expectOk((await test.connector.sendRecords([recordItem({ resourceId: 'c2', fields: { name: 'Alan' } })]))[0]);
    expect(sim.budget().left).toBeLessThan(MUTATION_COST);
    expect(sim.budget().resetInSeconds).toBe(60);
    expect(test.limiter.pausedUntil).toBe(clock + 60_000);
    expect(itemsOn(accounts)).toHaveLength(4);
  });

  it('waits for the complexity budget to reset instead of sending what it cannot pay for', async () => {
    await sim.close();
    // Room for about three mutations a window; a window of two seconds.
    sim = await startMondaySimulator({ token: TOKEN, budgetPerMinute: 35_000, budgetWindowMs: 2_000 });
    accounts = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }] });
    const test = createTestConnector(mondayDestination, { token: TOKEN, endpoint: sim.url, maxMutationsPerRequest: 2, boards: { customer: { board: accounts.id, externalIdColumn: 'ext_id' } } });
    await test.connector.prepare!();
    const first = await test.connector.sendRecords([recordItem({ resourceId: 'c0', fields: { name: 'N0' } })]);
    expectOk(first[0]);
    const outcomes = await test.connector.sendRecords(Array.from({ length: 6 }, (_, i) => recordItem({ resourceId: `c${i + 1}`, fields: { name: `N${i + 1}` } })));
    outcomes.forEach((o) => expectOk(o));
    expect(itemsOn(accounts)).toHaveLength(7);
    expect(sim.stats.budgetExhausted).toBe(0);
  });
});

describe('polling activity logs', () => {
  it('reads by monday\'s clock, so that a clock of ours ahead of it by more than the overlap misses no change', async () => {
    await sim.close();
    // monday's clock, and ours five minutes ahead of it (the overlap each poll reads back is one minute).
    let mondayClock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const ours = () => mondayClock + 5 * 60_000;
    sim = await startMondaySimulator({ token: TOKEN, now: () => mondayClock });
    accounts = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }, { id: 'stage', type: 'status', labels: ['Lead', 'Customer', 'Churned'] }] });
    const test = createTestConnector(mondayDestination, { token: TOKEN, endpoint: sim.url, boards: { customer: { board: accounts.id, externalIdColumn: 'ext_id', columns: { stage: 'stage' }, mondayOwned: ['stage'] } } }, { now: ours });
    await test.connector.prepare!();
    const [created] = await test.connector.sendRecords([recordItem({ resourceId: 'c1', fields: { name: 'Ada', stage: 'Lead' } })]);
    const id = expectOk(created).destinationId!;

    const first = await test.connector.pollInbound!(undefined, ours());
    expect(Number(first.cursor)).toBe(mondayClock);
    // Ten seconds later by monday's clock, a salesperson moves the deal on; the next poll comes ten seconds after.
    mondayClock += 10_000;
    sim.account.setByHand(id, 'stage', { label: 'Customer' });
    mondayClock += 10_000;
    const second = await test.connector.pollInbound!(first.cursor, ours());
    const logs = second.deliveries.map((delivery) => (delivery.body as { activity_log: { data: string; user_id: string } }).activity_log);
    expect(logs.filter((log) => log.user_id === '2').map((log) => (JSON.parse(log.data) as { value: { label: { text: string } } }).value.label.text)).toEqual(['Customer']);
    expect(Number(second.cursor)).toBe(mondayClock);
  });
});

describe('the simulator, as monday answers', () => {
  const post = (headers: Record<string, string>, query: string, variables: Record<string, unknown> = {}) =>
    fetch(sim.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: TOKEN, ...headers }, body: JSON.stringify({ query, variables }) });
  const boardQuery = 'query ($ids: [ID!]) { boards(ids: $ids) { id name } }';

  it('serves a request without API-Version with its default version, as monday serves its current one', async () => {
    const response = await post({}, boardQuery, { ids: [accounts.id] });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data?: { boards: Array<{ id: string; name: string }> }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data?.boards).toEqual([{ id: accounts.id, name: 'Accounts' }]);
  });

  it('answers FIELD_LIMIT_EXCEEDED (HTTP 429, retry_in_seconds, Retry-After) to a request beyond the ones allowed to run at once', async () => {
    await sim.close();
    sim = await startMondaySimulator({ token: TOKEN, maxConcurrentRequests: 2, concurrencyRetryInSeconds: 7 });
    accounts = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }] });
    const body = JSON.stringify({ query: boardQuery, variables: { ids: [accounts.id] } });
    // Two requests whose bodies are still arriving: in flight, not answered yet.
    const held = [0, 1].map(() => {
      const sending = request(sim.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: TOKEN } });
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        sending.once('error', reject);
        sending.once('response', (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          response.once('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        });
      });
      sending.write(body.slice(0, 10));
      return { sending, answer };
    });
    await eventually(() => sim.inFlight() === 2, 'two requests in flight');

    const refused = await post({}, boardQuery, { ids: [accounts.id] });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('7');
    const error = (await refused.json()) as { errors: Array<{ message: string; extensions: Record<string, unknown> }>; data?: unknown };
    expect(error.data).toBeUndefined();
    expect(error.errors).toEqual([{ message: 'Concurrency limit exceeded for the field', extensions: { code: 'FIELD_LIMIT_EXCEEDED', status_code: 429, error_data: { retry_in_seconds: 7, entity: 'boards' } } }]);
    expect(sim.stats.concurrencyLimited).toBe(1);

    // The two held ones are answered as usual once their bodies arrive, and the limit has room again.
    held.forEach(({ sending }) => sending.end(body.slice(10)));
    for (const answer of await Promise.all(held.map(({ answer }) => answer))) {
      expect(answer.status).toBe(200);
      expect((JSON.parse(answer.body) as { data: { boards: unknown[] } }).data.boards).toHaveLength(1);
    }
    await eventually(() => sim.inFlight() === 0, 'nothing in flight');
    expect((await post({}, boardQuery, { ids: [accounts.id] })).status).toBe(200);
    // Injected, the same answer.
    sim.faults.push({ kind: 'fieldLimit', retryInSeconds: 3 });
    const injected = await post({}, boardQuery, { ids: [accounts.id] });
    expect(injected.status).toBe(429);
    expect(((await injected.json()) as { errors: Array<{ extensions: { code: string; error_data: unknown } }> }).errors[0]!.extensions).toMatchObject({ code: 'FIELD_LIMIT_EXCEEDED', error_data: { retry_in_seconds: 3 } });
  });

  it('serves the pinned version, and refuses a version it does not implement with monday\'s error shape', async () => {
    const pinned = await post({ 'api-version': MONDAY_API_VERSION }, boardQuery, { ids: [accounts.id] });
    expect(((await pinned.json()) as { data: { boards: unknown[] } }).data.boards).toHaveLength(1);
    const other = await post({ 'api-version': '2019-01' }, boardQuery, { ids: [accounts.id] });
    expect(other.status).toBe(400);
    const body = (await other.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('InvalidVersionException');
    expect(body.errors[0]!.message).toContain('2019-01');
  });
});
