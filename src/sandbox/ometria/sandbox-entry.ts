// Ometria in the sandbox: the strict Push API simulator at Ometria's 4 requests a second, a destination with the
// default mappings (customers as contacts, orders, order messages as custom events) for the sandbox's stores and
// currencies, and at the end a check that every customer is a contact and every order an order as commercetools has
// them (contact e-mail, order total and validity).
import { randomBytes } from 'node:crypto';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { STORES } from '../seed.ts';
import { startOmetriaSimulator, type OmetriaSimulator } from './simulator.ts';

const NAME = 'ometria';
const COLLECTION = 'sandbox';

export const ometriaSandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const simulator = await startOmetriaSimulator({ apiKey: randomBytes(24).toString('base64url') });
    return {
      // No records: or events: — the connector's default mappings apply.
      destination: {
        name: NAME,
        type: 'ometria',
        apiKey: simulator.apiKey,
        baseUrl: simulator.url,
        collection: COLLECTION,
        stores: STORES.map((store) => store.key),
        currencies: [...new Set(STORES.map((store) => store.currency))],
        validation: { firstCheckMs: 1_000, maxCheckMs: 5_000, settleMs: 30_000 },
      },
      banner: `${simulator.url}  (a strict Ometria Push API simulator, 4 requests/s: customers become contacts, orders orders, order messages custom events)`,
      check: (context) => check(simulator, context),
      stop: () => simulator.close(),
    };
  },
};

/** Each customer a contact with its e-mail, each of their orders an Ometria order with its total and validity. */
async function check(ometria: OmetriaSimulator, { commercetools, customerIds: ids, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const current = await commercetools.fetchByIds('customer', ids);
  const orders = await commercetools.fetchOrdersOf(ids);
  const mismatches: string[] = [];
  let matching = 0;
  for (const id of ids) {
    const resource = current.get(id);
    const contact = ometria.contact(id, COLLECTION);
    const who = label(id, 'customer');
    if (!resource) {
      // The Push API deletes nothing: a deleted customer is opted out.
      if (contact && contact.marketing_optin !== 'EXPLICITLY_OPTEDOUT') mismatches.push(`${who}: deleted in commercetools but not opted out in Ometria`);
      else matching += 1;
      continue;
    }
    const email = typeof resource.email === 'string' ? resource.email.trim().toLowerCase() : undefined;
    if (!contact) {
      mismatches.push(`${who}: no Ometria contact`);
      continue;
    }
    if (contact.email !== email) {
      mismatches.push(`${who}: the Ometria contact has another e-mail`);
      continue;
    }
    const wrong = (orders.get(id) ?? []).filter((order) => {
      const sent = ometria.records.order.get(order.id as string);
      const total = order.totalPrice as { centAmount: number; fractionDigits: number };
      return !sent || sent.grand_total !== total.centAmount / 10 ** total.fractionDigits || sent.is_valid !== (order.orderState !== 'Cancelled') || (sent.customer as { id?: string } | undefined)?.id !== id;
    });
    if (wrong.length > 0) mismatches.push(`${who}: ${wrong.length} order(s) missing or different in Ometria`);
    else matching += 1;
  }
  const pushes = ometria.pushes.filter((push) => push.status === 200);
  return {
    matching,
    total: ids.length,
    mismatches,
    summary: `${matching}/${ids.length} customers are Ometria contacts with their orders as commercetools has them; ${ometria.records.contact.size} contacts, ${ometria.records.order.size} orders, ${ometria.records.custom_event.size} custom events in ${pushes.length} pushes (${ometria.stats.rateLimited} answered 429, ${ometria.errors.length} validation errors)`,
  };
}
