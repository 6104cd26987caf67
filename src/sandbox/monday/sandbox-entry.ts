// monday CRM in the sandbox: the strict monday simulator with two boards — Accounts (customers, a group per store,
// a stage column monday owns) and Deals (orders linked to their customer's item, line items as subitems) — a
// destination routing each store's records to its group, and at the end a check that every customer's item
// matches commercetools.
import { randomBytes } from 'node:crypto';
import { compileMapping } from '../../mapping/record-mapping.ts';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { STORES } from '../seed.ts';
import type { SimBoard } from './account.ts';
import { startMondaySimulator, type MondaySimulator } from './simulator.ts';

const NAME = 'monday';
const CUSTOMER_NAME = { template: '{{firstName}} {{lastName}}' };
/** One group per store on each board, named after the store. */
const groupOf = (storeKey: string) => storeKey.replace(/-store$/, '');

export const mondaySandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const simulator = await startMondaySimulator({ token: randomBytes(24).toString('base64url') });
    const groups = [{ id: 'topics', title: 'Other' }, ...STORES.map((store) => ({ id: groupOf(store.key), title: store.key }))];
    const accounts = simulator.account.createBoard({
      name: 'Accounts',
      groups,
      columns: [
        { id: 'ext_id', title: 'commercetools id', type: 'text' },
        { id: 'email', title: 'E-mail', type: 'email' },
        { id: 'country', title: 'Country', type: 'country' },
        { id: 'stage', title: 'Stage', type: 'status', labels: ['Lead', 'Qualified', 'Customer'] },
      ],
    });
    const deals = simulator.account.createBoard({
      name: 'Deals',
      groups,
      columns: [
        { id: 'ext_id', title: 'commercetools id', type: 'text' },
        { id: 'customer', title: 'Customer', type: 'board_relation', boardIds: [accounts.id] },
        { id: 'state', title: 'State', type: 'status', labels: ['Open', 'Confirmed', 'Complete', 'Cancelled'] },
        { id: 'total', title: 'Total', type: 'numbers' },
        { id: 'placed', title: 'Placed', type: 'date' },
      ],
      subitemColumns: [
        { id: 'line_id', title: 'Line item id', type: 'text' },
        { id: 'qty', title: 'Quantity', type: 'numbers' },
      ],
    });
    const byStore = STORES.map((store) => ({ match: { store: store.key }, target: { group: groupOf(store.key) } }));
    return {
      destination: {
        name: NAME,
        type: 'monday',
        token: simulator.token,
        endpoint: simulator.url,
        boards: {
          customer: { board: accounts.id, externalIdColumn: 'ext_id', columns: { email: 'email', country: { column: 'country', type: 'country' }, stage: 'stage' }, mondayOwned: ['stage'] },
          order: {
            board: deals.id,
            externalIdColumn: 'ext_id',
            columns: { customer: { column: 'customer', type: 'board_relation', links: 'customer' }, state: 'state', total: 'total', placed: 'placed' },
            lineItems: { field: 'lines', mode: 'subitems', externalIdColumn: 'line_id', columns: { quantity: 'qty' } },
          },
        },
        records: {
          customer: { fields: { name: CUSTOMER_NAME, email: 'email', country: 'addresses[0].country', stage: { value: 'Lead' } }, when: byStore },
          order: {
            fields: { name: { first: ['orderNumber', 'id'] }, customer: 'customerId', state: 'orderState', total: 'totalPrice', placed: 'createdAt', lines: { list: 'lineItems', fields: { id: 'id', name: 'variant.sku', quantity: 'quantity' } } },
            when: byStore,
          },
        },
      },
      banner: `${simulator.url}  (a strict monday GraphQL simulator: customers on Accounts, orders on Deals with their line items as subitems)`,
      check: (context) => check(simulator, accounts, deals, context),
      stop: () => simulator.close(),
    };
  },
};

/** Each customer as an item of Accounts in its store's group, named and mailed as in commercetools; a deleted one archived or gone. */
async function check(monday: MondaySimulator, accounts: SimBoard, deals: SimBoard, { commercetools, customerIds: ids, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const current = await commercetools.fetchByIds('customer', ids);
  const items = new Map(monday.account.itemsOf(accounts.id).filter((item) => item.state === 'active').map((item) => [item.values.get('ext_id')?.text ?? '', item]));
  const name = compileMapping({ fields: { name: CUSTOMER_NAME } });
  const mismatches: string[] = [];
  let matching = 0;
  for (const id of ids) {
    const resource = current.get(id);
    const item = items.get(id);
    const who = label(id, 'customer');
    if (!resource) {
      if (item) mismatches.push(`${who}: deleted in commercetools but still an active monday item`);
      else matching += 1;
      continue;
    }
    const mapped = await name.apply(resource);
    const expectedName = mapped.skip ? undefined : mapped.payload.name;
    const storeKey = (resource.stores as Array<{ key?: string }> | undefined)?.[0]?.key;
    const expectedGroup = storeKey ? groupOf(storeKey) : 'topics';
    const email = item ? (monday.account.valueOf(item.id, 'email') as { email?: string } | undefined)?.email : undefined;
    if (!item) mismatches.push(`${who}: no monday item`);
    else if (item.name !== expectedName || email !== resource.email) mismatches.push(`${who}: the monday item has ${JSON.stringify({ name: item.name, email })}`);
    else if (item.groupId !== expectedGroup) mismatches.push(`${who}: the monday item is in group ${item.groupId}, not ${expectedGroup}`);
    else matching += 1;
  }
  const orders = monday.account.itemsOf(deals.id).length;
  const subitems = deals.subitemsBoardId ? monday.account.itemsOf(deals.subitemsBoardId).length : 0;
  return {
    matching,
    total: ids.length,
    mismatches,
    summary: `${matching}/${ids.length} customers are monday items matching commercetools; ${orders} orders on Deals with ${subitems} line items as subitems; ${monday.stats.calls} GraphQL requests (${monday.stats.mutations} mutations, ${monday.stats.budgetExhausted} refused for the complexity budget, ${monday.stats.invalid} invalid)`,
  };
}
