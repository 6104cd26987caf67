// The sandbox's support view: a customer with a service history (service-history.ts) to look up, an API client
// with a fresh key for this run (the configuration holds only its digest), and the lines of the banner that show
// how to try it with curl.
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import { generateApiKey } from '../server/api-clients.ts';
import { seedServiceHistory, type ServiceHistory } from './service-history.ts';

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
      roles: { agent: { description: 'a service desk agent', support: { customFields: ['loyaltyTier', 'preferredChannel'], markets: { 'uk-store': { phone: 'mask', address: 'mask' } } } } },
    },
    banner: (url) => [
      `  support view            curl -H 'X-Api-Key: ${key.key}' '${url}/v1/support/customers?email=${encodeURIComponent(history.customer.email)}'`,
      `                          (also /v1/support/orders/${history.orders[0]!.orderNumber}; the API's description: ${url}/v1/openapi.json)`,
    ],
  };
}
