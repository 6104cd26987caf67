// commercetools for the benchmark, in its own process: two emulators (src/sandbox/emulator.ts). "bulk" holds the
// customer pool the throughput scenarios post CustomerCreated Messages about (the naive handler fetches them; ctbridge
// takes them from the Messages). "burst" holds customers that each run edits in bursts through its API, posting
// each edit's Message (which does not carry the customer, so ctbridge fetches the latest state from here) to the
// system under test right away. The bench runs each emulator in a process of its own.
import { randomUUID } from 'node:crypto';
import type { Customer } from '@commercetools/platform-sdk';
import { startEmulator, type Emulator } from '../src/sandbox/emulator.ts';
import { Random, customerDraft, randomPerson } from '../src/sandbox/seed.ts';
import { epochNow, serve } from './ipc.ts';
import { BULK_PROJECT_KEY, BURST_PROJECT_KEY, poolCustomer } from './workload.ts';

export interface CommercetoolsEndpoint {
  projectKey: string;
  authUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
}

export interface BurstResult {
  messages: number;
  /** Messages the target answered 2xx. */
  acked: number;
  failed: number;
  firstSendAt: number;
  lastAckAt: number;
  /** The version each customer ended at. */
  finalVersions: Record<string, number>;
}

let bulk: Emulator | undefined;
let burst: Emulator | undefined;
let burstApi: (<T>(url: string, payload: unknown) => Promise<T>) | undefined;
let burstCustomers: Customer[] = [];
const random = new Random(11);

function endpoint(emulator: Emulator): CommercetoolsEndpoint {
  const { projectKey, authUrl, apiUrl, clientId, clientSecret } = emulator;
  return { projectKey, authUrl, apiUrl, clientId, clientSecret };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await task(items[index]!);
      }
    }),
  );
  return results;
}

/** The Message commercetools emits for one name change (the shape src/sandbox/changes.ts produces). */
function nameMessage(after: Customer, field: 'firstName' | 'lastName'): Record<string, unknown> {
  return {
    notificationType: 'Message',
    projectKey: BURST_PROJECT_KEY,
    id: randomUUID(),
    version: 1,
    sequenceNumber: after.version - 1,
    resource: { typeId: 'customer', id: after.id },
    resourceVersion: after.version,
    resourceUserProvidedIdentifiers: after.key ? { key: after.key } : {},
    type: field === 'firstName' ? 'CustomerFirstNameSet' : 'CustomerLastNameSet',
    [field]: after[field],
    createdAt: after.lastModifiedAt,
    lastModifiedAt: after.lastModifiedAt,
  };
}

serve({
  async startBulk(args: { customers: number }): Promise<CommercetoolsEndpoint> {
    bulk = await startEmulator({ projectKey: BULK_PROJECT_KEY });
    const project = bulk.mock.project(BULK_PROJECT_KEY);
    for (let index = 0; index < args.customers; index += 1) await project.unsafeAdd('customer', poolCustomer(index) as unknown as Customer);
    return endpoint(bulk);
  },

  /** Creates `customers` customers through the emulator's API. */
  async startBurst(args: { customers: number }): Promise<CommercetoolsEndpoint> {
    burst = await startEmulator({ projectKey: BURST_PROJECT_KEY });
    const app = burst.mock.app;
    const basic = Buffer.from(`${burst.clientId}:${burst.clientSecret}`).toString('base64');
    const auth = await app.inject({ method: 'POST', url: '/oauth/token', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials' });
    const headers = { authorization: `Bearer ${auth.json<{ access_token: string }>().access_token}`, 'content-type': 'application/json' };
    burstApi = async <T>(url: string, payload: unknown): Promise<T> => {
      const response = await app.inject({ method: 'POST', url: `/${BURST_PROJECT_KEY}${url}`, headers, payload: payload as Record<string, unknown> });
      if (response.statusCode >= 300) throw new Error(`emulator answered ${response.statusCode} to POST ${url}: ${response.body}`);
      return response.json();
    };
    // Without a customer group: this project has none (the seed creates them, this emulator is not seeded), and
    // commercetools refuses a draft that names a missing one. The scenario edits names only.
    const drafts = Array.from({ length: args.customers }, (_, index) => {
      const { customerGroup: _group, ...draft } = customerDraft(random, 90_000 + index).draft;
      return draft;
    });
    burstCustomers = await mapLimit(drafts, 8, async (draft) => (await burstApi!<{ customer: Customer }>('/customers', draft)).customer);
    return endpoint(burst);
  },

  /**
   * Edits every burst customer `updates` times in a row (one name field per edit, `parallel` customers at a time)
   * and posts each edit's Message to the target as soon as the edit is made, without waiting for the answer: a
   * customer's burst reaches the target while it is still being edited. Edits go through the emulator's HTTP API
   * (routing, auth, validation, versioning) injected in-process, which costs a fifth of the CPU of the same requests
   * over sockets through the SDK.
   */
  async runBurst(args: { url: string; headers: Record<string, string>; updates: number; parallel: number; correlationPrefix: string }): Promise<BurstResult> {
    const posts: Array<Promise<void>> = [];
    const result: BurstResult = { messages: 0, acked: 0, failed: 0, firstSendAt: Number.NaN, lastAckAt: Number.NaN, finalVersions: {} };
    const post = (message: Record<string, unknown>) => {
      const index = result.messages++;
      const sentAt = epochNow();
      if (Number.isNaN(result.firstSendAt)) result.firstSendAt = sentAt;
      const headers = { 'content-type': 'application/json', 'x-correlation-id': `${args.correlationPrefix}${index}`, ...args.headers };
      posts.push(
        fetch(args.url, { method: 'POST', headers, body: JSON.stringify(message) }).then(
          async (response) => {
            await response.arrayBuffer();
            if (response.ok) result.acked += 1;
            else result.failed += 1;
            result.lastAckAt = epochNow();
          },
          () => {
            result.failed += 1;
          },
        ),
      );
    };
    burstCustomers = await mapLimit(burstCustomers, args.parallel, async (customer) => {
      let current = customer;
      for (let i = 0; i < args.updates; i += 1) {
        const field = i % 2 === 0 ? 'firstName' : 'lastName';
        const value = `${randomPerson(random, 'DE')[field]} ${current.version}`;
        const action = field === 'firstName' ? { action: 'setFirstName', firstName: value } : { action: 'setLastName', lastName: value };
        current = await burstApi!<Customer>(`/customers/${current.id}`, { version: current.version, actions: [action] });
        post(nameMessage(current, field));
      }
      result.finalVersions[current.id] = current.version;
      return current;
    });
    await Promise.all(posts);
    return result;
  },

  /** API requests (not OAuth) each emulator has received so far. */
  apiRequests(): { bulk: number; burst: number } {
    return { bulk: bulk?.apiRequests ?? 0, burst: burst?.apiRequests ?? 0 };
  },
});
