// The sandbox's support view and agent actions: a customer with a service history (service-history.ts) to look up
// and act on, an API client with a fresh key for this run (the configuration holds only its digest) whose agent role
// may also refund and cancel items up to a limit, the `actions:` block (a client of the emulator asking only for the
// scopes actions need), and the lines of the banner that show how to try both with curl.
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import { generateApiKey } from '../server/api-clients.ts';
import type { Emulator } from './emulator.ts';
import { seedServiceHistory, type ServiceHistory } from './service-history.ts';

/** The agent's refund allowance per order, in the history's currencies; above it a refund would wait for approval. */
const REFUND_LIMIT = '50.00';

export interface SupportDemo {
  history: ServiceHistory;
  /** The `api` block of the sandbox's configuration. */
  api: Record<string, unknown>;
  banner(url: string): string[];
}

export async function startSupportDemo(api: ByProjectKeyRequestBuilder, seed: number): Promise<SupportDemo> {
  const history = await seedServiceHistory(api, { seed, orders: 6 });
  const key = generateApiKey();
  return {
    history,
    api: {
      clients: [{ name: 'sandbox-desk', keyHash: key.keyHash, role: 'agent' }],
      roles: {
        agent: {
          description: 'a service desk agent',
          support: { customFields: ['loyaltyTier', 'preferredChannel'], markets: { 'uk-store': { phone: 'mask', address: 'mask' } } },
          actions: { allow: ['refund', 'cancel-items'], refundLimits: { EUR: REFUND_LIMIT, GBP: REFUND_LIMIT } },
        },
      },
    },
    banner: (url) => {
      // A paid order nothing was refunded on yet, so the example stays within the agent's limit.
      const refundable = history.orders.find((order) => !order.cancelled && !order.returned) ?? history.orders[0]!;
      const refund = JSON.stringify({ amount: { currencyCode: refundable.currencyCode, amount: '5.00' }, reason: 'goodwill' });
      return [
        `  support view            curl -H 'X-Api-Key: ${key.key}' '${url}/v1/support/customers?email=${encodeURIComponent(history.customer.email)}'`,
        `                          (also /v1/support/orders/${history.orders[0]!.orderNumber}; the API's description: ${url}/v1/openapi.json)`,
        `  agent actions           curl -H 'X-Api-Key: ${key.key}' -H 'Idempotency-Key: refund-1' -H 'Content-Type: application/json' -d '${refund}' ${url}/v1/actions/orders/${refundable.id}/refunds`,
        `                          (a Refund transaction on order ${refundable.orderNumber}'s payment; the same key again gives the same answer; ?dryRun=true shows the checks first; up to ${REFUND_LIMIT} an order)`,
      ];
    },
  };
}

/** The sandbox's `actions:` block: the emulator's client, asking only for the scopes actions need. */
export function sandboxActions(emulator: Pick<Emulator, 'projectKey' | 'clientId' | 'clientSecret'>): Record<string, unknown> {
  const project = emulator.projectKey;
  return { commercetools: { clientId: emulator.clientId, clientSecret: emulator.clientSecret, scopes: [`manage_orders:${project}`, `manage_payments:${project}`, `view_states:${project}`] } };
}
