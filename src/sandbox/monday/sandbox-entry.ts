// monday CRM in the sandbox: the strict monday simulator with two boards — Accounts (customers, a group per store,
// a stage column monday owns) and Deals (orders linked to their customer's item, line items as subitems) — a
// destination routing each store's records to its group, and at the end a check that every customer's item
// matches commercetools. Two-way: the stage is monday's, and written back to the customer's custom field
// `mondayStage`; once ctbridge listens, the simulator's webhooks are registered (signed with the app's signing
// secret) and a salesperson moves a few customers' stages by hand, which the check then finds in commercetools.
import { randomBytes } from 'node:crypto';
import { setupTypes } from '../../commercetools/writeback.ts';
import { compileMapping } from '../../mapping/record-mapping.ts';
import type { SandboxCheckContext, SandboxConnectContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { STORES } from '../seed.ts';
import type { SimBoard } from './account.ts';
import { startMondaySimulator, type MondaySimulator } from './simulator.ts';
import { mondayWebhooks, type MondayWebhooks } from './webhooks.ts';

const NAME = 'monday';
const CUSTOMER_NAME = { template: '{{firstName}} {{lastName}}' };
/** The monday user ctbridge's token acts as (webhooks of its own writes name it), and a salesperson. */
const API_USER = 1;
const SALESPERSON = 2;
/** The custom Type and field the monday-owned stage is written back to. */
const STAGE_TYPE = 'ctbridge-sandbox-customer';
const STAGE_FIELD = 'mondayStage';
/** Customers whose stage the salesperson moves by hand, and to what. */
const HAND_EDITS = ['Qualified', 'Customer', 'Qualified'];
/** One group per store on each board, named after the store. */
const groupOf = (storeKey: string) => storeKey.replace(/-store$/, '');

export const mondaySandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const simulator = await startMondaySimulator({ token: randomBytes(24).toString('base64url'), apiUserId: API_USER, handUserId: SALESPERSON });
    const signingSecret = randomBytes(24).toString('base64url');
    let webhooks: MondayWebhooks | undefined;
    /** The stage set by hand, by customer id. */
    const edits = new Map<string, string>();
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
          customer: { board: accounts.id, externalIdColumn: 'ext_id', columns: { email: 'email', country: { column: 'country', type: 'country' }, stage: 'stage' } },
          order: {
            board: deals.id,
            externalIdColumn: 'ext_id',
            columns: { customer: { column: 'customer', type: 'board_relation', links: 'customer' }, state: 'state', total: 'total', placed: 'placed' },
            lineItems: { field: 'lines', mode: 'subitems', externalIdColumn: 'line_id', columns: { quantity: 'qty' } },
          },
        },
        apiUserId: API_USER,
        inbound: { auth: { type: 'monday', signingSecret } },
        records: {
          customer: {
            fields: { name: CUSTOMER_NAME, email: 'email', country: 'addresses[0].country', stage: { path: `custom.fields.${STAGE_FIELD}`, pipe: [{ default: { value: 'Lead' } }] } },
            // monday owns the stage: sent when the item is created, and an edit in monday is written back.
            ownership: { stage: { owner: 'destination', writeBack: { customField: STAGE_FIELD, type: STAGE_TYPE } } },
            when: byStore,
          },
          order: {
            fields: { name: { first: ['orderNumber', 'id'] }, customer: 'customerId', state: 'orderState', total: 'totalPrice', placed: 'createdAt', lines: { list: 'lineItems', fields: { id: 'id', name: 'variant.sku', quantity: 'quantity' } } },
            when: byStore,
          },
        },
      },
      banner: `${simulator.url}  (a strict monday GraphQL simulator: customers on Accounts, orders on Deals with their line items as subitems; Accounts' Stage is monday's and comes back by webhook to the customer's custom field ${STAGE_FIELD})`,
      async connect(context) {
        webhooks = await handEdits(simulator, accounts, signingSecret, edits, context);
      },
      check: async (context) => withEdits(await check(simulator, accounts, deals, context), simulator, accounts, edits, context),
      async stop() {
        webhooks?.stop();
        await simulator.close();
      },
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

/**
 * Two-way sync, shown: the custom Type the stage is written back to (what `ctbridge setup` does), monday's webhooks
 * registered with ctbridge (the challenge answered), and a salesperson moving a few customers' stages by hand. Only
 * customers without a custom Type of their own are edited: their Type would lack the field.
 */
async function handEdits(monday: MondaySimulator, accounts: SimBoard, signingSecret: string, edits: Map<string, string>, context: SandboxConnectContext): Promise<MondayWebhooks> {
  await setupTypes(context.commercetools, [{ type: STAGE_TYPE, resourceTypeId: 'customer', field: STAGE_FIELD, fieldType: 'String' }], false);
  const url = `${context.url}/v1/inbound/${NAME}`;
  const webhooks = mondayWebhooks(monday.account, { url, signingSecret, boardId: accounts.id, apiUserId: API_USER, handUserId: SALESPERSON });
  await webhooks.register();
  const items = monday.account.itemsOf(accounts.id).filter((item) => item.state === 'active');
  const customers = await context.commercetools.fetchByIds('customer', items.map((item) => item.values.get('ext_id')?.text ?? ''));
  const editable = items.filter((item) => {
    const customer = customers.get(item.values.get('ext_id')?.text ?? '');
    return customer !== undefined && customer.custom === undefined;
  });
  for (const [index, stage] of HAND_EDITS.entries()) {
    const item = editable[index * 3];
    if (!item) break;
    const id = item.values.get('ext_id')!.text;
    monday.account.setByHand(item.id, 'stage', { label: stage });
    edits.set(id, stage);
    context.note(`  two-way: a salesperson set ${context.label(id, 'customer')}'s Stage to ${stage} in monday → webhook → ${url} → custom field ${STAGE_FIELD}`);
  }
  await webhooks.flush();
  return webhooks;
}

/** The check, with the stages set by hand: each in commercetools' custom field, and still monday's value. */
async function withEdits(checked: SandboxDestinationCheck, monday: MondaySimulator, accounts: SimBoard, edits: Map<string, string>, { commercetools, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const current = await commercetools.fetchByIds('customer', [...edits.keys()]);
  const items = new Map(monday.account.itemsOf(accounts.id).map((item) => [item.values.get('ext_id')?.text ?? '', item]));
  const mismatches: string[] = [];
  let arrived = 0;
  for (const [id, stage] of edits) {
    const resource = current.get(id);
    if (!resource) {
      arrived += 1; // deleted since: nothing to hold the stage
      continue;
    }
    const held = (resource.custom as { fields?: Record<string, unknown> } | undefined)?.fields?.[STAGE_FIELD];
    const inMonday = items.get(id)?.values.get('stage')?.text;
    if (held !== stage) mismatches.push(`${label(id, 'customer')}: the Stage set in monday (${stage}) is ${JSON.stringify(held ?? null)} in commercetools' ${STAGE_FIELD}`);
    else if (inMonday !== stage) mismatches.push(`${label(id, 'customer')}: monday's Stage was overwritten with ${JSON.stringify(inMonday ?? null)}`);
    else arrived += 1;
  }
  return { ...checked, mismatches: [...checked.mismatches, ...mismatches], summary: `${checked.summary}; two-way: ${arrived}/${edits.size} stages set in monday by hand reached commercetools (${STAGE_FIELD})` };
}
