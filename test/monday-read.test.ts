// Reading monday items back for reconciliation, against the monday simulator: an item ctbridge created reads back
// in the mapping's terms (name, text, e-mail, status label, number), a column a person changed in monday reads back
// changed, columns that do not read back exactly (date, phone) and columns monday owns are left out, and an
// archived or deleted item is one monday does not hold.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mondayDestination } from '../src/destinations/monday/index.ts';
import type { SimBoard } from '../src/sandbox/monday/account.ts';
import { startMondaySimulator, type MondaySimulator } from '../src/sandbox/monday/simulator.ts';
import { createTestConnector, recordItem } from './support/connector-test.ts';

const TOKEN = 'monday-read-token';

let sim: MondaySimulator;
let accounts: SimBoard;

beforeEach(async () => {
  sim = await startMondaySimulator({ token: TOKEN });
  accounts = sim.account.createBoard({
    name: 'Accounts',
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'email_col', type: 'email' },
      { id: 'phone_col', type: 'phone' },
      { id: 'tier', type: 'status', labels: ['Bronze', 'Silver', 'Gold'] },
      { id: 'stage', type: 'status', labels: ['Lead', 'Customer'] },
      { id: 'signed_up', type: 'date' },
      { id: 'orders', type: 'numbers' },
      { id: 'city', type: 'text' },
    ],
  });
});

afterEach(async () => {
  await sim.close();
});

describe('monday read-back', () => {
  it('reads an item back in the mapping\'s terms, sees a hand edit, leaves out what does not read back, and misses an archived item', async () => {
    const test = createTestConnector(mondayDestination, {
      token: TOKEN,
      endpoint: sim.url,
      boards: { customer: { board: accounts.id, externalIdColumn: 'ext_id', columns: { email: 'email_col', phone: 'phone_col', tier: 'tier', stage: 'stage', signed_up: 'signed_up', orders: 'orders', city: 'city' }, mondayOwned: ['stage'] } },
    });
    await test.connector.prepare!();
    const record = { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+447400123456', tier: 'Gold', stage: 'Lead', signed_up: '2026-03-01', orders: 3, city: 'London' };
    const [sent] = await test.connector.sendRecords([recordItem({ resourceId: 'c-1', recordType: 'customer', fields: record, record, changed: Object.keys(record) })]);
    if (!sent?.ok || sent.destinationId === undefined) throw new Error('the item was not created');
    const itemId = sent.destinationId;
    const read = () => test.connector.readRecords!([{ recordType: 'customer', resourceType: 'customer', resourceId: 'c-1', destinationId: itemId, target: undefined, fields: Object.keys(record) }]);

    expect(await read()).toEqual([{ found: true, fields: { name: 'Ada Lovelace', email: 'ada@example.com', tier: 'Gold', orders: 3, city: 'London' } }]);

    sim.account.setByHand(itemId, 'tier', { label: 'Bronze' });
    sim.account.setByHand(itemId, 'orders', '7');
    expect(await read()).toEqual([{ found: true, fields: { name: 'Ada Lovelace', email: 'ada@example.com', tier: 'Bronze', orders: 7, city: 'London' } }]);

    sim.account.archiveItem(itemId);
    expect(await read()).toEqual([{ found: false }]);
    sim.account.deleteItem(itemId);
    expect(await read()).toEqual([{ found: false }]);
  });
});
