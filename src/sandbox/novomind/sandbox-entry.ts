// novomind in the sandbox: the novomind simulator (an installation with the preset's paths, the v2 media type,
// OAuth2 password grant with tokens that live two minutes, so a longer run sees them replaced), a destination with the
// preset's default mappings (customers; shipment, cancellation, refund and return changes as status notes) and
// its payload log on, and at the end a check that every customer is a novomind customer with their e-mail (a
// deleted one gone) and how many status notes arrived.
import { randomBytes } from 'node:crypto';
import type { SandboxCheckContext, SandboxDestinationCheck, SandboxDestinationEntry, StartedSandboxDestination } from '../destination-entry.ts';
import { startNovomindSimulator, type NovomindSimulator } from './simulator.ts';

const NAME = 'novomind';

export const novomindSandbox: SandboxDestinationEntry = {
  name: NAME,
  async start(): Promise<StartedSandboxDestination> {
    const client = { clientId: 'ctbridge-sandbox', clientSecret: randomBytes(24).toString('base64url') };
    const user = { username: 'sandbox-integration', password: randomBytes(24).toString('base64url') };
    const simulator = await startNovomindSimulator({ clients: [client], users: [user], tokenLifetimeSeconds: 120 });
    return {
      // No records: or events: the preset's default mappings apply.
      destination: {
        name: NAME,
        type: 'novomind',
        baseUrl: simulator.url,
        auth: { oauth2: { ...client, ...user } },
        pii: { phone: 'mask' },
        payloadLog: { enabled: true, retentionDays: 7 },
      },
      banner: `${simulator.url}/iMail/api/rest  (a novomind iAGENT simulator, v2 media type, OAuth2: customers become novomind customers, order status changes status notes; \`ctbridge payloads --record ID\` shows the calls)`,
      check: (context) => check(simulator, context),
      stop: () => simulator.close(),
    };
  },
};

async function check(novomind: NovomindSimulator, { commercetools, customerIds: ids, label }: SandboxCheckContext): Promise<SandboxDestinationCheck> {
  const current = await commercetools.fetchByIds('customer', ids);
  const byExternalId = new Map([...novomind.customers.values()].map((customer) => [customer.externalId as string, customer]));
  const mismatches: string[] = [];
  let matching = 0;
  for (const id of ids) {
    const resource = current.get(id);
    const customer = byExternalId.get(id);
    const who = label(id, 'customer');
    if (!resource) {
      if (customer) mismatches.push(`${who}: deleted in commercetools but still a novomind customer`);
      else matching += 1;
      continue;
    }
    const email = typeof resource.email === 'string' ? resource.email.trim().toLowerCase() : undefined;
    if (!customer) mismatches.push(`${who}: not a novomind customer`);
    else if (customer.email !== email) mismatches.push(`${who}: the novomind customer has another e-mail`);
    else matching += 1;
  }
  const kinds = new Map<string, number>();
  for (const note of novomind.notes) kinds.set(String(note.body.kind), (kinds.get(String(note.body.kind)) ?? 0) + 1);
  const notes = [...kinds].map(([kind, count]) => `${count} ${kind}`).join(', ') || 'none';
  return {
    matching,
    total: ids.length,
    mismatches,
    summary: `${matching}/${ids.length} customers are novomind customers as commercetools has them; status notes: ${notes}; ${novomind.stats.tokensIssued} OAuth2 tokens issued, ${novomind.stats.refused401} calls refused for an expired token`,
  };
}
