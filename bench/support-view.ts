// Support view response time (issue 18): p95 of GET /v1/support/customers/{id} for a customer with 20 orders (two
// stores, payments, deliveries, returns) against the commercetools emulator, with the view's cache off so every
// request reads commercetools live. ctbridge runs in this process (startRuntime, SQLite in a temp dir, audit log
// written per lookup) and is asked over HTTP, one request at a time. The naive baseline reads the same customer the
// way a hand-written desk integration does — the customer, the list of its orders, then each order with its
// payments one request after another — and builds the same view with the same code, in-process (no HTTP hop, no
// audit write: the comparison flatters the baseline). The emulator shares this process's event loop with both.
// Run alone: `node bench/support-view.ts`; `npm run bench` runs it as scenario 12 with --json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createCommercetoolsClient } from '../src/commercetools/client.ts';
import { configSchema } from '../src/config/schema.ts';
import { startRuntime } from '../src/runtime.ts';
import { generateApiKey } from '../src/server/api-clients.ts';
import { emulatorCredentials, startEmulator } from '../src/sandbox/emulator.ts';
import { seedShop } from '../src/sandbox/seed.ts';
import { seedServiceHistory } from '../src/sandbox/service-history.ts';
import { customerProfile, orderView } from '../src/support/normalize.ts';

const ORDERS = 20;
const WARM_UP = 20;
const REQUESTS = 200;

export interface SupportViewFigures {
  orders: number;
  requests: number;
  ctbridgeP50: number;
  ctbridgeP95: number;
  naiveP50: number;
  naiveP95: number;
  /** commercetools API requests per view. */
  ctbridgeApiRequests: number;
  naiveApiRequests: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function timed(times: number[], work: () => Promise<void>): Promise<void> {
  const start = performance.now();
  await work();
  times.push(performance.now() - start);
}

export async function measureSupportView(log: (text: string) => void = () => {}): Promise<SupportViewFigures> {
  const emulator = await startEmulator();
  const client = createCommercetoolsClient(emulatorCredentials(emulator));
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-support-'));
  const key = generateApiKey();
  try {
    log('seeding the emulator: a shop, and a customer with 20 orders in two stores');
    await seedShop(client, { customers: 20, ordersPerCustomer: 2 });
    const history = await seedServiceHistory(client.api, { orders: ORDERS });
    const config = configSchema.parse({
      commercetools: emulatorCredentials(emulator),
      server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: 'bench-support-ingest-token-0123' } } },
      store: `sqlite:${join(dir, 'ctbridge.db')}`,
      destinations: [],
      api: {
        clients: [{ name: 'bench-desk', keyHash: key.keyHash, role: 'agent' }],
        roles: { agent: { support: { customFields: ['loyaltyTier'], markets: { 'uk-store': { phone: 'mask', address: 'mask' } } } } },
        // Every request reads commercetools: the figure is the live read, not the cache.
        support: { cacheMs: 0, rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } },
      },
    });
    const runtime = await startRuntime({ config, logger: pino({ level: 'silent' }), work: false });
    try {
      const url = `${runtime.url}/v1/support/customers/${history.customer.id}`;
      const ctbridgeView = async () => {
        const response = await fetch(url, { headers: { 'x-api-key': key.key } });
        const body = (await response.json()) as { orders?: unknown[] };
        if (response.status !== 200 || body.orders?.length !== ORDERS) throw new Error(`the support view answered ${response.status} with ${body.orders?.length} orders`);
      };
      const api = client.api;
      const naiveView = async () => {
        const customer = (await api.customers().withId({ ID: history.customer.id }).get().execute()).body;
        const list = (await api.orders().get({ queryArgs: { where: `customerId = "${customer.id}"`, limit: 100 } }).execute()).body.results;
        const orders = [];
        for (const { id } of list) orders.push((await api.orders().withId({ ID: id }).get({ queryArgs: { expand: ['paymentInfo.payments[*]'] } }).execute()).body);
        const links = { projectKey: emulator.projectKey, backOffice: {} };
        const locales = { requested: undefined, storeLanguages: new Map<string, string[]>() };
        const view = { customer: customerProfile(customer as unknown as Record<string, unknown>, [], links), orders: orders.map((o) => orderView(o as unknown as Record<string, unknown>, locales, links)) };
        if (view.orders.length !== ORDERS) throw new Error(`the naive view has ${view.orders.length} orders`);
      };

      const figures = { ctbridge: [] as number[], naive: [] as number[] };
      const apiRequests = { ctbridge: 0, naive: 0 };
      for (const [name, view] of [['ctbridge', ctbridgeView], ['naive', naiveView]] as const) {
        for (let i = 0; i < WARM_UP; i += 1) await view();
        const before = emulator.apiRequests;
        for (let i = 0; i < REQUESTS; i += 1) await timed(figures[name], view);
        apiRequests[name] = (emulator.apiRequests - before) / REQUESTS;
        log(`${name}: p95 ${percentile(figures[name], 95).toFixed(1)} ms over ${REQUESTS} views, ${apiRequests[name].toFixed(1)} commercetools requests each`);
      }
      return {
        orders: ORDERS,
        requests: REQUESTS,
        ctbridgeP50: percentile(figures.ctbridge, 50),
        ctbridgeP95: percentile(figures.ctbridge, 95),
        naiveP50: percentile(figures.naive, 50),
        naiveP95: percentile(figures.naive, 95),
        ctbridgeApiRequests: apiRequests.ctbridge,
        naiveApiRequests: apiRequests.naive,
      };
    } finally {
      await runtime.stop();
    }
  } finally {
    await client.close();
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await measureSupportView((text) => process.stderr.write(`support view: ${text}\n`));
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(figures));
  else console.log(figures);
}
