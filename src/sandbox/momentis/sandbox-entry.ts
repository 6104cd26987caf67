// Momentis in the sandbox: the loyalty simulator (points per euro and pound, tiers, a reward every 100 points) and a
// destination with the connector's default mappings, so customers become members, order messages interactions and
// a paid order (the generator pays open orders) an accrual. Two-way: once ctbridge listens, the loyalty Type is set
// up and the simulator's signed webhooks point at ctbridge, which writes points, tier and rewards to the customer's
// custom fields, and each reward becomes a discount code only that customer can use once. The shopper side (act):
// a customer whose reward's code is there places an order with it, and its OrderCreated reports the redemption to
// Momentis, whose webhook has ctbridge deactivate the code. The check reports what was booked, how many customers
// hold points in commercetools, and each redemption: reported once, code deactivated.
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { setupTypes } from '../../commercetools/writeback.ts';
import { momentisInbound } from '../../destinations/momentis/inbound.ts';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { REWARD_KEY_PREFIX } from '../../commercetools/reward-codes.ts';
import { quotePredicateString, type CommercetoolsClient } from '../../commercetools/client.ts';
import { DEFAULT_RULES, startMomentisSimulator, type MomentisSimulator } from './simulator.ts';

const NAME = 'momentis';
/** The sandbox's customer Type, which monday's stage field is in too: a customer holds one custom Type. */
const LOYALTY_TYPE = 'ctbridge-sandbox-customer';
/** A reward per 100 points (5 off per 100 spent), so a paid order of the seeded shop mostly earns one within the run. */
const SANDBOX_RULES = { ...DEFAULT_RULES, reward: { ...DEFAULT_RULES.reward!, everyPoints: 100 } };
/** How long the last shopper step waits for a reward's code, when none was redeemed during the run. */
const FINAL_WAIT_MS = 10_000;

/** A reward a shopper tried at checkout: the order placed with its code, or why commercetools refused it. */
interface Redemption {
  rewardId: string;
  customerId: string;
  code: string;
  order?: { id: string; orderNumber: string };
  refused?: string;
}

export const momentisSandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const apiKey = `mk_sandbox_${randomBytes(16).toString('hex')}`;
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const simulator = await startMomentisSimulator({ apiKeys: [apiKey], rules: SANDBOX_RULES });
    const redemptions: Redemption[] = [];
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
      banner: `${simulator.url}  (a Momentis loyalty simulator: customers become members, a paid order earns points, which come back by signed webhook to the customer's ${LOYALTY_TYPE} custom fields; every 100 points a reward, a single-use discount code for that customer, which a shopper then redeems at checkout)`,
      async connect(context) {
        // What `ctbridge setup` does for a Momentis destination with inbound webhooks.
        await setupTypes(context.commercetools, momentisInbound.snapshotFields!({ loyaltyType: LOYALTY_TYPE } as never), false);
        const url = `${context.url}/v1/inbound/${NAME}`;
        simulator.setWebhook({ url, secret });
        context.note(`  two-way: Momentis webhooks (balance, tier, rewards) → ${url} → customer custom fields loyaltyPoints, loyaltyTier, loyaltyRewards`);
      },
      async act({ commercetools, placeOrder, line, label, final }) {
        // One reward per step keeps the feed readable; at the end, one is waited for if the run redeemed none.
        const waitUntil = final && redemptions.length === 0 ? performance.now() + FINAL_WAIT_MS : 0;
        for (;;) {
          const ready = await rewardReady(simulator, commercetools, new Set(redemptions.map((r) => r.rewardId)));
          if (ready) {
            const redemption: Redemption = { ...ready };
            redemptions.push(redemption);
            try {
              redemption.order = await placeOrder(ready.customerId, { discountCodes: [ready.code] });
              line('checkout', `${label(ready.customerId, 'customer')} redeems a Momentis reward: order ${redemption.order.orderNumber} placed with ${ready.code}`);
            } catch (error) {
              redemption.refused = (error as Error).message;
              line('checkout', `${label(ready.customerId, 'customer')} could not order with ${ready.code}: ${redemption.refused}`);
            }
            return;
          }
          if (performance.now() >= waitUntil) return;
          await sleep(250);
        }
      },
      check: (context) => check(simulator, redemptions, context),
      stop: () => simulator.close(),
    };
  },
};

/** An available reward, not tried yet, whose discount code ctbridge has made active in commercetools. */
async function rewardReady(momentis: MomentisSimulator, commercetools: CommercetoolsClient, tried: ReadonlySet<string>): Promise<Omit<Redemption, 'order' | 'refused'> | undefined> {
  for (const [customerId, member] of momentis.members) {
    for (const reward of member.loyalty.rewards) {
      if (reward.status !== 'available' || tried.has(reward.id)) continue;
      const found = await commercetools.api
        .discountCodes()
        .withKey({ key: `${REWARD_KEY_PREFIX}${reward.id}` })
        .get()
        .execute()
        .then(
          (response) => response.body,
          (error: { statusCode?: number }) => {
            if (error.statusCode === 404) return undefined;
            throw error;
          },
        );
      if (found?.isActive) return { rewardId: reward.id, customerId, code: found.code };
    }
  }
  return undefined;
}

/**
 * Each member whose loyalty Momentis changed: its balance on the commercetools customer. Webhooks still in flight when
 * ctbridge stopped are the simulator's to retry, so a lagging balance is reported in the summary, not as a mismatch.
 */
async function check(momentis: MomentisSimulator, redemptions: readonly Redemption[], { commercetools, shop, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
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

  // Every order placed with a reward's code is reported to Momentis exactly once (ctbridge has drained by now);
  // the code's deactivation follows Momentis' webhook, which may still be on its way, so it is counted, not required.
  const placed = redemptions.filter((redemption) => redemption.order);
  const mismatches: string[] = [];
  for (const { rewardId, customerId, order } of placed) {
    const reported = momentis.ledger.filter((entry) => entry.type === 'redeem' && entry.rewardId === rewardId).length;
    if (reported !== 1) mismatches.push(`momentis: the reward redeemed by ${label(customerId, 'customer')} in order ${order!.orderNumber} was reported to Momentis ${reported} times, not once`);
  }
  const keys = placed.map((redemption) => `${REWARD_KEY_PREFIX}${redemption.rewardId}`);
  const codes = keys.length === 0 ? [] : (await commercetools.api.discountCodes().get({ queryArgs: { where: `key in (${keys.map(quotePredicateString).join(', ')})`, limit: 500 } }).execute()).body.results;
  const deactivated = codes.filter((code) => !code.isActive).length;
  const refused = redemptions.length - placed.length;
  const checkout = `${placed.length} rewards redeemed at checkout, ${placed.length - mismatches.length}/${placed.length} reported to Momentis once, ${deactivated}/${placed.length} codes deactivated${refused > 0 ? `, ${refused} refused at checkout` : ''}`;
  return {
    matching: current,
    total: changed.length,
    mismatches,
    summary: `${momentis.members.size} members; ledger: ${count('accrue')} accruals, ${count('reverse')} reversals (${momentis.ledger.filter((entry) => entry.type === 'reverse' && entry.points !== 0).length} taking points back; the others' orders had earned none), ${count('redeem')} redemptions; ${rewards} rewards issued; ${checkout}; ${delivered}/${momentis.webhooks.length} webhooks delivered; ${holding} customers (${holdingSeeded} seeded) hold loyaltyPoints in commercetools, ${current}/${changed.length} equal to their Momentis balance`,
  };
}
