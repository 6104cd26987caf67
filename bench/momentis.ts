// Momentis loyalty latency (issue 20): seconds from an order's payment message (OrderPaymentStateChanged to Paid)
// reaching ctbridge to the new balance written on the commercetools customer, at 100 orders a second. The path:
// ingest → the loyalty event (its order read from commercetools for `$subject`) → an accrual at the Momentis
// simulator → its signed webhook back to ctbridge → the snapshot written to the customer's loyalty custom fields.
// One order per customer, so each customer's first write is that order's balance. ctbridge runs in this process
// (startRuntime, SQLite in a temp dir) beside the commercetools emulator and the simulator, which share its event
// loop; the time of each write is taken where ctbridge's commercetools writer returns. There is no naive
// baseline: nothing else turns a payment into points on the customer. Run alone: `node bench/momentis.ts`;
// `npm run bench -- --only 14` runs it as scenario 14 with --json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createCommercetoolsClient } from '../src/commercetools/client.ts';
import { setupTypes } from '../src/commercetools/writeback.ts';
import { configSchema } from '../src/config/schema.ts';
import { momentisInbound } from '../src/destinations/momentis/inbound.ts';
import { startRuntime } from '../src/runtime.ts';
import { emulatorCredentials, startEmulator } from '../src/sandbox/emulator.ts';
import { startMomentisSimulator } from '../src/sandbox/momentis/simulator.ts';

const ORDERS = 500;
const RATE = 100;
const INGEST_TOKEN = 'bench-momentis-ingest-token-0123';
const API_KEY = 'mk_bench_0123456789abcdef';
const SECRET = 'whsec_bench_0123456789abcdef';

export interface MomentisFigures {
  orders: number;
  rate: number;
  /** Payment message to balance on the customer, seconds. */
  p50: number;
  p99: number;
  /** Payment message to the accrual booked at Momentis (the outbound half), seconds. */
  accrualP50: number;
  accrualP99: number;
  /** Orders whose balance never arrived within the wait. */
  missing: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function measureMomentis(log: (text: string) => void = () => {}): Promise<MomentisFigures> {
  const emulator = await startEmulator();
  const client = createCommercetoolsClient(emulatorCredentials(emulator));
  const simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-momentis-'));
  try {
    log(`seeding ${ORDERS} customers with an order each`);
    await client.api.stores().post({ body: { key: 'eu-store', name: { en: 'EU' } } }).execute();
    await setupTypes(client, momentisInbound.snapshotFields!({ loyaltyType: 'ctbridge-loyalty' } as never), false);
    const orders: Array<{ orderId: string; customerId: string }> = [];
    for (let i = 0; i < ORDERS; i += 1) {
      const customer = (await client.api.customers().post({ body: { email: `bench.${i}@example.com`, password: 'bench-password' } }).execute()).body.customer;
      const order = (await client.api.orders().importOrder().post({ body: { customerId: customer.id, customerEmail: customer.email, store: { typeId: 'store', key: 'eu-store' }, totalPrice: { currencyCode: 'EUR', centAmount: 1_000 + i }, lineItems: [], orderState: 'Open' } }).execute()).body;
      orders.push({ orderId: order.id, customerId: customer.id });
    }
    const config = configSchema.parse({
      commercetools: { ...emulatorCredentials(emulator), scopes: [] },
      server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
      store: `sqlite:${join(dir, 'ctbridge.db')}`,
      pii: { vault: { keys: { k1: Buffer.alloc(32, 3).toString('base64') }, activeKey: 'k1' } },
      destinations: [{ name: 'momentis', type: 'momentis', baseUrl: simulator.url, auth: { apiKey: API_KEY }, cartAbandonment: { enabled: false }, inbound: { auth: { type: 'momentis', secret: SECRET } } }],
    });
    const written = new Map<string, number>();
    const runtime = await startRuntime({
      config,
      logger: pino({ level: 'silent' }),
      listen: true,
      wrapWriter: (writer) => ({
        ...writer,
        read: (typeId, id) => writer.read(typeId, id),
        async update(typeId, id, version, actions) {
          const updated = await writer.update(typeId, id, version, actions);
          if (!written.has(id)) written.set(id, performance.now());
          return updated;
        },
      }),
    });
    simulator.setWebhook({ url: `${runtime.url}/v1/inbound/momentis`, secret: SECRET, retryDelayMs: 200 });
    try {
      log(`posting ${ORDERS} payment messages at ${RATE} a second`);
      const sentAt = new Map<string, number>();
      const sentWall = new Map<string, number>();
      const start = performance.now();
      const posts: Array<Promise<unknown>> = [];
      for (let i = 0; i < orders.length; i += 1) {
        // Paced by the schedule: message i leaves at i / RATE seconds.
        const due = start + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const { orderId, customerId } = orders[i]!;
        const at = new Date().toISOString();
        const body = { notificationType: 'Message', projectKey: emulator.projectKey, id: `bench-${orderId}`, version: 1, sequenceNumber: 2, resource: { typeId: 'order', id: orderId }, resourceVersion: 2, resourceUserProvidedIdentifiers: {}, createdAt: at, lastModifiedAt: at, type: 'OrderPaymentStateChanged', paymentState: 'Paid', oldPaymentState: 'Pending' };
        sentAt.set(customerId, performance.now());
        sentWall.set(customerId, Date.now());
        posts.push(fetch(`${runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` }, body: JSON.stringify(body) }).then((r) => r.arrayBuffer()));
      }
      await Promise.all(posts);
      // Every balance, or a minute without a new one.
      let last = written.size;
      let movedAt = performance.now();
      while (written.size < orders.length && performance.now() - movedAt < 60_000) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (written.size !== last) {
          last = written.size;
          movedAt = performance.now();
        }
      }
      const seconds = orders.flatMap(({ customerId }) => (written.has(customerId) ? [(written.get(customerId)! - sentAt.get(customerId)!) / 1000] : []));
      const accruals = simulator.ledger.map((entry) => (entry.createdAt - sentWall.get(entry.externalId)!) / 1000);
      const figures = { orders: ORDERS, rate: RATE, p50: percentile(seconds, 50), p99: percentile(seconds, 99), accrualP50: percentile(accruals, 50), accrualP99: percentile(accruals, 99), missing: orders.length - seconds.length };
      log(`p50 ${figures.p50.toFixed(3)} s, p99 ${figures.p99.toFixed(3)} s (accrual booked: p50 ${figures.accrualP50.toFixed(3)} s, p99 ${figures.accrualP99.toFixed(3)} s), ${figures.missing} missing`);
      return figures;
    } finally {
      await runtime.stop();
    }
  } finally {
    await simulator.close();
    await client.close();
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await measureMomentis((text) => process.stderr.write(`momentis: ${text}\n`));
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(figures));
  else console.log(figures);
}
