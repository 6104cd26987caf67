// Ometria throughput (issue 14): records delivered per second to the strict Ometria simulator at its 4 requests a
// second (so at most 400 records a second: 100 per push), as a share of that ceiling, with every record accounted
// for; and Ometria calls per commercetools message on a bursty workload. ctbridge runs in this process
// (startRuntime, SQLite in a temp dir) with an ometria destination (the default mappings); the naive baseline is a
// per-message handler pushing each message's contact as it comes, 16 at a time, waiting a second after a 429. Both
// see the same CustomerCreated messages (carrying the customer, so nothing is read from commercetools).
// Run alone: `node bench/ometria.ts`; `npm run bench` runs it as scenario 10 with --json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { configSchema } from '../src/config/schema.ts';
import { startRuntime } from '../src/runtime.ts';
import { startOmetriaSimulator, type OmetriaSimulator } from '../src/sandbox/ometria/simulator.ts';
import { BenchCustomers, inParallel } from './bench-customers.ts';

const REQUESTS_PER_SECOND = 4;
const RECORDS_PER_PUSH = 100;
const CONTACTS = 8_000; // about 20 s at the ceiling
const NAIVE_SECONDS = 15; // the naive handler gets this long (at 4 records a second it would take over half an hour)
const BURST = { customers: 40, updates: 25 };
const INGEST_TOKEN = 'bench-ometria-ingest-token-0123';
const API_KEY = 'bench-ometria-key';

export interface OmetriaFigures {
  /** Records delivered per second over the whole seconds of the run, ctbridge and naive. */
  ctbridgeRate: number;
  naiveRate: number;
  /** The ceiling: requests per second × records per push. */
  ceiling: number;
  /** ctbridge's backlog run: contacts that reached Ometria of those posted, and dead letters left (must be 0). */
  ctbridgeDelivered: number;
  contacts: number;
  ctbridgeDeadLetters: number;
  /** Share of calls answered 429. */
  ctbridge429: number;
  naive429: number;
  /** Ometria calls (pushes and error-list reads) per commercetools message, bursty workload. */
  ctbridgeCallsPerMessage: number;
  naiveCallsPerMessage: number;
}

/** The bench's commercetools: each customer at its latest version, as the messages announce them. */
const customers = new BenchCustomers({ stores: [{ typeId: 'store', key: 'uk' }] });

/**
 * Records accepted per second over the whole seconds between the first push and the last (the first and the last
 * second are partial and left out), counted from the simulator's push log.
 */
function sustainedRate(sim: OmetriaSimulator): number {
  const accepted = sim.pushes.filter((push) => push.status === 200);
  if (accepted.length === 0) return Number.NaN;
  const perSecond = new Map<number, number>();
  for (const push of accepted) perSecond.set(Math.floor(push.at / 1000), (perSecond.get(Math.floor(push.at / 1000)) ?? 0) + push.records);
  const seconds = [...perSecond.keys()].sort((a, b) => a - b);
  const first = seconds[0]!;
  const last = seconds.at(-1)!;
  if (last - first < 2) return Number.NaN;
  let total = 0;
  for (let second = first + 1; second < last; second += 1) total += perSecond.get(second) ?? 0;
  return total / (last - first - 1);
}

async function waitFor(check: () => boolean, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function runCtbridge(): Promise<{ rate: number; delivered: number; deadLetters: number; share429: number; callsPerMessage: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-ometria-'));
  const sim = await startOmetriaSimulator({ apiKey: API_KEY, requestsPerSecond: REQUESTS_PER_SECOND });
  const config = configSchema.parse({
    commercetools: { projectKey: 'bench', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
    server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
    store: `sqlite:${join(dir, 'bench.db')}`,
    destinations: [{ name: 'ometria', type: 'ometria', apiKey: API_KEY, baseUrl: sim.url, stores: ['uk'], currencies: ['GBP'] }],
  });
  const runtime = await startRuntime({ config, logger: pino({ level: 'warn' }), fetcher: customers.fetcher, listen: true });
  const post = (body: unknown) => fetch(`${runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` }, body: JSON.stringify(body) });
  try {
    const messages = Array.from({ length: CONTACTS }, (_, i) => customers.message(`c-${i}`, 1, `c${i}@example.com`));
    for (let i = 0; i < messages.length; i += 500) await post(messages.slice(i, i + 500));
    await waitFor(() => sim.records.contact.size >= CONTACTS, 120_000);
    const rate = sustainedRate(sim);
    if (process.env.OMETRIA_BENCH_DEBUG) {
      const ok = sim.pushes.filter((p) => p.status === 200);
      console.error(ok.map((p) => `${p.records}@${p.at - ok[0]!.at}`).join(' '));
    }
    const delivered = sim.records.contact.size;
    const deadLetters = (await runtime.store.db.selectFrom('dead_letters').select('id').execute()).length;
    const share429 = sim.stats.rateLimited / sim.stats.calls;

    // Bursty: 40 customers edited 25 times each, posted as the edits happen.
    const before = sim.stats.calls;
    let posted = 0;
    for (let update = 2; update <= BURST.updates + 1; update += 1) {
      await post(Array.from({ length: BURST.customers }, (_, i) => customers.message(`c-${i}`, update, `c${i}@example.com`)));
      posted += BURST.customers;
    }
    const last = `F${BURST.updates + 1}`;
    await waitFor(() => Array.from({ length: BURST.customers }, (_, i) => sim.contact(`c-${i}`)).every((c) => c?.firstname === last), 30_000);
    return { rate, delivered, deadLetters, share429, callsPerMessage: (sim.stats.calls - before) / posted };
  } finally {
    await runtime.stop();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runNaive(): Promise<{ rate: number; share429: number; callsPerMessage: number }> {
  const sim = await startOmetriaSimulator({ apiKey: API_KEY, requestsPerSecond: REQUESTS_PER_SECOND });
  /** One message as it comes: its contact pushed alone, a 429 waited out for a second and tried again. */
  const handle = async (message: Record<string, unknown>): Promise<void> => {
    const customer = message.customer as { id: string; email: string; firstName: string; lastName: string };
    const body = JSON.stringify([{ '@type': 'contact', '@collection': 'commercetools', id: customer.id, customer_id: customer.id, email: customer.email, firstname: customer.firstName, lastname: customer.lastName }]);
    for (;;) {
      const response = await fetch(`${sim.url}/v2/push`, { method: 'POST', headers: { 'x-ometria-auth': API_KEY, 'content-type': 'application/json' }, body });
      await response.arrayBuffer();
      if (response.status !== 429) return;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  };

  try {
    const messages = Array.from({ length: CONTACTS }, (_, i) => customers.message(`c-${i}`, 1, `c${i}@example.com`));
    const until = Date.now() + NAIVE_SECONDS * 1000;
    await inParallel(messages, 16, handle, () => Date.now() >= until);
    const rate = sustainedRate(sim);
    const share429 = sim.stats.rateLimited / sim.stats.calls;
    const before = sim.stats.calls;
    let posted = 0;
    for (let update = 2; update <= 3; update += 1) {
      // Two rounds of the burst are enough: each message costs the naive handler the same.
      await inParallel(Array.from({ length: BURST.customers }, (_, i) => customers.message(`c-${i}`, update, `c${i}@example.com`)), 16, handle);
      posted += BURST.customers;
    }
    return { rate, share429, callsPerMessage: (sim.stats.calls - before) / posted };
  } finally {
    await sim.close();
  }
}

export async function measureOmetria(): Promise<OmetriaFigures> {
  const ctbridge = await runCtbridge();
  const naive = await runNaive();
  return {
    ctbridgeRate: ctbridge.rate,
    naiveRate: naive.rate,
    ceiling: REQUESTS_PER_SECOND * RECORDS_PER_PUSH,
    ctbridgeDelivered: ctbridge.delivered,
    contacts: CONTACTS,
    ctbridgeDeadLetters: ctbridge.deadLetters,
    ctbridge429: ctbridge.share429,
    naive429: naive.share429,
    ctbridgeCallsPerMessage: ctbridge.callsPerMessage,
    naiveCallsPerMessage: naive.callsPerMessage,
  };
}

if (import.meta.main) {
  const figures = await measureOmetria();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(`Ometria simulator at ${REQUESTS_PER_SECOND} requests/s (ceiling ${figures.ceiling} records/s):`);
    console.log(`  records/s   ctbridge ${figures.ctbridgeRate.toFixed(1)} (${pct(figures.ctbridgeRate / figures.ceiling)} of the ceiling, ${pct(figures.ctbridge429)} of calls 429)   naive ${figures.naiveRate.toFixed(1)} (${pct(figures.naiveRate / figures.ceiling)}, ${pct(figures.naive429)} 429)`);
    console.log(`  backlog: ${figures.ctbridgeDelivered} of ${figures.contacts} contacts in Ometria, ${figures.ctbridgeDeadLetters} dead letters`);
    console.log(`  Ometria calls per message, bursty   ctbridge ${figures.ctbridgeCallsPerMessage.toFixed(3)}   naive ${figures.naiveCallsPerMessage.toFixed(3)}`);
  }
}
