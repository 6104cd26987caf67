// Intercom throughput (issue 4): contact syncs per second against the strict Intercom simulator limited to 10,000
// calls a minute, as a share of that limit, and destination calls per commercetools message on a bursty workload.
// ctbridge runs in this process (startRuntime, SQLite in a temp dir) with an intercom destination; the naive
// baseline is a per-message handler calling the SDK for each message as it comes, 16 at a time, waiting for the
// window to reset when it gets a 429. Both see the same CustomerCreated messages (carrying the customer, so
// nothing is read from commercetools).
// Run alone: `node bench/intercom.ts`; `npm run bench` runs it as scenario 8 with --json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type * as IntercomSdk from 'intercom-client';
import pino from 'pino';
import { configSchema } from '../src/config/schema.ts';
import { startRuntime } from '../src/runtime.ts';
import { startIntercomSimulator, type IntercomSimulator } from '../src/sandbox/intercom/simulator.ts';
import { BenchCustomers, inParallel } from './bench-customers.ts';

const LIMIT_PER_MINUTE = 10_000;
const CONTACTS = 5_000; // about 30 s at the limit: two whole windows at least
const BURST = { customers: 40, updates: 25 };
const INGEST_TOKEN = 'bench-intercom-ingest-token-0123';
const TOKEN = 'bench-intercom-token';

export interface IntercomFigures {
  /** Contact syncs per second from the first contact to the last, ctbridge and naive. */
  ctbridgeRate: number;
  naiveRate: number;
  /** Share of calls answered 429. */
  ctbridge429: number;
  naive429: number;
  /** Intercom calls per commercetools message on the bursty workload. */
  ctbridgeCallsPerMessage: number;
  naiveCallsPerMessage: number;
  limitPerSecond: number;
  /** ctbridge's backlog run: contacts that reached Intercom of those posted, and dead letters left (must be 0). */
  ctbridgeDelivered: number;
  contacts: number;
  ctbridgeDeadLetters: number;
}

/** The bench's commercetools: each customer at its latest version, as the messages announce them. */
const customers = new BenchCustomers();

/**
 * Contacts created per second over the complete 10-second windows of the run: Intercom counts calls per window,
 * so a burst at a window's start can exceed the per-minute rate for a few seconds; whole windows show what is
 * sustained. The first and the last window are partial and left out.
 */
async function sustainedRate(sim: IntercomSimulator, n: number, limitMs: number): Promise<number> {
  const started = Date.now();
  const createdAt: number[] = [];
  let seen = 0;
  while (Date.now() - started < limitMs && seen < n) {
    const size = sim.workspace.contacts.size;
    for (; seen < size; seen += 1) createdAt.push(Date.now());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const windows = new Map<number, number>();
  for (const at of createdAt) windows.set(Math.floor(at / 10_000), (windows.get(Math.floor(at / 10_000)) ?? 0) + 1);
  const whole = [...windows.entries()].sort(([a], [b]) => a - b).slice(1, -1).map(([, count]) => count);
  return whole.length === 0 ? Number.NaN : whole.reduce((sum, count) => sum + count, 0) / whole.length / 10;
}

async function runCtbridge(): Promise<{ rate: number; share429: number; callsPerMessage: number; delivered: number; deadLetters: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-intercom-'));
  const sim = await startIntercomSimulator({ token: TOKEN, limitPerMinute: LIMIT_PER_MINUTE });
  const config = configSchema.parse({
    commercetools: { projectKey: 'bench', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
    server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
    store: `sqlite:${join(dir, 'bench.db')}`,
    destinations: [{ name: 'intercom', type: 'intercom', token: TOKEN, baseUrl: sim.url, limitPerMinute: LIMIT_PER_MINUTE, records: { customer: { fields: { email: 'email', name: { template: '{{firstName}} {{lastName}}' } } } } }],
  });
  const runtime = await startRuntime({ config, logger: pino({ level: 'warn' }), fetcher: customers.fetcher, listen: true });
  const post = (body: unknown) => fetch(`${runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` }, body: JSON.stringify(body) });
  try {
    const messages = Array.from({ length: CONTACTS }, (_, i) => customers.message(`c-${i}`, 1, `c${i}@example.com`));
    for (let i = 0; i < messages.length; i += 100) await post(messages.slice(i, i + 100));
    const rate = await sustainedRate(sim, CONTACTS, 120_000);
    const share429 = sim.stats.rateLimited / sim.stats.calls;
    const delivered = sim.workspace.contacts.size;
    const deadLetters = (await runtime.store.db.selectFrom('dead_letters').select('id').execute()).length;

    // Bursty: 40 customers edited 25 times each, posted as the edits happen.
    const before = sim.stats.calls;
    let posted = 0;
    for (let update = 2; update <= BURST.updates + 1; update += 1) {
      await post(Array.from({ length: BURST.customers }, (_, i) => customers.message(`c-${i}`, update, `c${i}@example.com`)));
      posted += BURST.customers;
    }
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && ![...sim.workspace.contacts.values()].filter((c) => c.external_id !== null && Number(c.external_id.slice(2)) < BURST.customers).every((c) => c.name === `F${BURST.updates + 1} Bench`)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { rate, share429, callsPerMessage: (sim.stats.calls - before) / posted, delivered, deadLetters };
  } finally {
    await runtime.stop();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runNaive(): Promise<{ rate: number; share429: number; callsPerMessage: number }> {
  const sim = await startIntercomSimulator({ token: TOKEN, limitPerMinute: LIMIT_PER_MINUTE });
  const { IntercomClient, IntercomError } = createRequire(import.meta.url)('intercom-client') as typeof IntercomSdk;
  const client = new IntercomClient({ token: TOKEN, baseUrl: sim.url, maxRetries: 0 });
  const ids = new Map<string, string>();
  /** One message, handled as it comes: create (or update) the contact, waiting out a 429 until the window resets. */
  const handle = async (message: Record<string, unknown>): Promise<void> => {
    const customer = message.customer as { id: string; email: string; firstName: string; lastName: string };
    for (;;) {
      try {
        const id = ids.get(customer.id);
        if (id) await client.contacts.update({ contact_id: id, name: `${customer.firstName} ${customer.lastName}` });
        else ids.set(customer.id, (await client.contacts.create({ role: 'user', external_id: customer.id, email: customer.email, name: `${customer.firstName} ${customer.lastName}` })).id);
        return;
      } catch (error) {
        if (!(error instanceof IntercomError) || error.statusCode !== 429) throw error;
        const reset = Number(error.rawResponse?.headers.get('x-ratelimit-reset')) * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.max(50, reset - Date.now())));
      }
    }
  };

  try {
    const messages = Array.from({ length: CONTACTS }, (_, i) => customers.message(`c-${i}`, 1, `c${i}@example.com`));
    const working = inParallel(messages, 16, handle);
    const rate = await sustainedRate(sim, CONTACTS, 120_000);
    await working;
    const share429 = sim.stats.rateLimited / sim.stats.calls;
    const before = sim.stats.calls;
    let posted = 0;
    for (let update = 2; update <= BURST.updates + 1; update += 1) {
      await inParallel(Array.from({ length: BURST.customers }, (_, i) => customers.message(`c-${i}`, update, `c${i}@example.com`)), 16, handle);
      posted += BURST.customers;
    }
    return { rate, share429, callsPerMessage: (sim.stats.calls - before) / posted };
  } finally {
    await sim.close();
  }
}

export async function measureIntercom(): Promise<IntercomFigures> {
  const ctbridge = await runCtbridge();
  const naive = await runNaive();
  return {
    ctbridgeRate: ctbridge.rate,
    naiveRate: naive.rate,
    ctbridge429: ctbridge.share429,
    naive429: naive.share429,
    ctbridgeCallsPerMessage: ctbridge.callsPerMessage,
    naiveCallsPerMessage: naive.callsPerMessage,
    limitPerSecond: LIMIT_PER_MINUTE / 60,
    ctbridgeDelivered: ctbridge.delivered,
    contacts: CONTACTS,
    ctbridgeDeadLetters: ctbridge.deadLetters,
  };
}

if (import.meta.main) {
  const figures = await measureIntercom();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(`Intercom simulator limited to ${LIMIT_PER_MINUTE.toLocaleString('en')} calls/min (${figures.limitPerSecond.toFixed(1)}/s):`);
    console.log(`  contact syncs/s   ctbridge ${figures.ctbridgeRate.toFixed(1)} (${pct(figures.ctbridgeRate / figures.limitPerSecond)} of the limit, ${pct(figures.ctbridge429)} of calls 429)   naive ${figures.naiveRate.toFixed(1)} (${pct(figures.naiveRate / figures.limitPerSecond)}, ${pct(figures.naive429)} 429)`);
    console.log(`  backlog: ${figures.ctbridgeDelivered} of ${figures.contacts} contacts in Intercom, ${figures.ctbridgeDeadLetters} dead letters`);
    console.log(`  calls per message, bursty   ctbridge ${figures.ctbridgeCallsPerMessage.toFixed(3)}   naive ${figures.naiveCallsPerMessage.toFixed(3)}`);
  }
}
