// Momentis in the sandbox: the loyalty simulator (points per euro and pound, tiers, a reward every 500 points) and a
// destination with the connector's default mappings, so customers become members, order messages interactions and
// a paid order (the generator pays open orders) an accrual. Two-way: once ctbridge listens, the loyalty Type is set
// up and the simulator's signed webhooks point at ctbridge, which writes points, tier and rewards to the customer's
// custom fields, and each reward becomes a discount code only that customer can use once. The check reports what
// was booked and how many customers hold points in commercetools.
import { randomBytes } from 'node:crypto';
import { setupTypes } from '../../commercetools/writeback.ts';
import { momentisInbound } from '../../destinations/momentis/inbound.ts';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { startMomentisSimulator, type MomentisSimulator } from './simulator.ts';

const NAME = 'momentis';
/** The sandbox's customer Type, which monday's stage field is in too: a customer holds one custom Type. */
const LOYALTY_TYPE = 'ctbridge-sandbox-customer';

export const momentisSandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const apiKey = `mk_sandbox_${randomBytes(16).toString('hex')}`;
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const simulator = await startMomentisSimulator({ apiKeys: [apiKey] });
    return {
      // No records: or events: the connector's default mappings apply.
      destination: {
        name: NAME,
        type: 'momentis',
        baseUrl: simulator.url,
        auth: { apiKey },
        brand: 'Sandbox',
        // The sandbox has no PII vault: members' personal fields go as the destination's pii policy says.
        memberPii: 'policy',
        loyaltyType: LOYALTY_TYPE,
        inbound: { auth: { type: 'momentis', secret } },
      },
      banner: `${simulator.url}  (a Momentis loyalty simulator: customers become members, a paid order earns points, which come back by signed webhook to the customer's ${LOYALTY_TYPE} custom fields; every 500 points a reward, a single-use discount code for that customer)`,
      async connect(context) {
        // What `ctbridge setup` does for a Momentis destination with inbound webhooks.
        await setupTypes(context.commercetools, momentisInbound.snapshotFields!({ loyaltyType: LOYALTY_TYPE } as never), false);
        const url = `${context.url}/v1/inbound/${NAME}`;
        simulator.setWebhook({ url, secret });
        context.note(`  two-way: Momentis webhooks (balance, tier, rewards) → ${url} → customer custom fields loyaltyPoints, loyaltyTier, loyaltyRewards`);
      },
      check: (context) => check(simulator, context),
      stop: () => simulator.close(),
    };
  },
};

/**
 * Each member whose loyalty Momentis changed: its balance on the commercetools customer. Webhooks still in flight when
 * ctbridge stopped are the simulator's to retry, so a lagging balance is reported in the summary, not as a mismatch.
 */
async function check(momentis: MomentisSimulator, { commercetools, shop }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const changed = [...momentis.members].filter(([, member]) => member.loyalty.version > 0);
  const customers = await commercetools.fetchByIds('customer', changed.map(([id]) => id));
  const seeded = new Set(shop.customerIds);
  let holding = 0;
  let holdingSeeded = 0;
  let current = 0;
  for (const [id, member] of changed) {
    const fields = (customers.get(id)?.custom as { fields?: Record<string, unknown> } | undefined)?.fields;
    const points = fields?.loyaltyPoints;
    if (typeof points !== 'number' || points <= 0) continue;
    holding += 1;
    if (seeded.has(id)) holdingSeeded += 1;
    if (points === member.loyalty.balance) current += 1;
  }
  const count = (type: string) => momentis.ledger.filter((entry) => entry.type === type).length;
  const rewards = [...momentis.members.values()].reduce((sum, member) => sum + member.loyalty.rewards.length, 0);
  const delivered = momentis.webhooks.filter((webhook) => webhook.state === 'delivered').length;
  return {
    matching: current,
    total: changed.length,
    mismatches: [],
    summary: `${momentis.members.size} members; ledger: ${count('accrue')} accruals, ${count('reverse')} reversals, ${count('redeem')} redemptions; ${rewards} rewards issued; ${delivered}/${momentis.webhooks.length} webhooks delivered; ${holding} customers (${holdingSeeded} seeded) hold loyaltyPoints in commercetools, ${current}/${changed.length} equal to their Momentis balance`,
  };
}
