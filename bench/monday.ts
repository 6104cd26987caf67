// monday throughput (issue 15): item upserts per second against the strict monday simulator with the real
// complexity budget (a personal token's 10,000,000 points per one-minute window), as a share of what that budget
// allows (each upsert is at least one mutation of MUTATION_COST and its selection), and monday requests per
// commercetools message on a bursty workload — ctbridge beside a naive handler that makes one mutation per
// message (a lookup the first time it meets a customer, then create_item or change_multiple_column_values; it
// waits out a complexity refusal and tries again), in the same run. ctbridge runs in this process (startRuntime,
// SQLite in a temp dir) with a monday destination; both systems see the same CustomerCreated messages (carrying
// the customer, so nothing is read from commercetools). The throughput runs of both take whole budget windows:
// ctbridge's and the naive handler's run at the same time, each against a simulator of its own (the budget, not
// the CPU, is what limits them), and the bursty workload runs beside them against simulators of its own. The
// share is taken over the complete windows of a run (not the first, in which the backlog is posted, nor the last,
// partial one): `--windows N` (default 2) of them, so a run takes about N + 1 minutes (`npm run bench` asks for
// one).
// Run alone: `npx node bench/monday.ts`; `--json` prints the figures as JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { configSchema } from '../src/config/schema.ts';
import { startRuntime } from '../src/runtime.ts';
import type { SimBoard } from '../src/sandbox/monday/account.ts';
import { MONDAY_API_VERSION, MUTATION_COST, startMondaySimulator, type MondaySimulator } from '../src/sandbox/monday/simulator.ts';
import { BenchCustomers, inParallel } from './bench-customers.ts';

const argv = process.argv.slice(2);
const WINDOWS = Math.max(1, Number(argv[argv.indexOf('--windows') + 1] ?? 2) || 2);
const BUDGET_PER_MINUTE = 10_000_000;
const WINDOW_MS = 60_000;
/** What one upsert costs at least: one mutation with an id selected. */
const COST_PER_UPSERT = MUTATION_COST + 2;
const ALLOWED_PER_WINDOW = Math.floor(BUDGET_PER_MINUTE / COST_PER_UPSERT);
/** More customers than the measured windows allow, so the backlog never runs dry while measured. */
const CUSTOMERS = ALLOWED_PER_WINDOW * (WINDOWS + 2);
const BURST = { customers: 40, updates: 25 };
const INGEST_TOKEN = 'bench-monday-ingest-token-0123';
const TOKEN = 'bench-monday-token';

export interface MondayFigures {
  /** Item upserts per second over complete budget windows, and what the budget allows per second. */
  ctbridgeRate: number;
  naiveRate: number;
  allowedPerSecond: number;
  windows: number;
  /** Requests refused for the complexity budget, per request. */
  ctbridgeRefused: number;
  naiveRefused: number;
  /** monday requests per commercetools message on the bursty workload. */
  ctbridgeRequestsPerMessage: number;
  naiveRequestsPerMessage: number;
  ctbridgeDeadLetters: number;
}

/** The bench's commercetools: each customer at its latest version, as the messages announce them. */
const customers = new BenchCustomers();

async function simulator(): Promise<{ sim: MondaySimulator; board: SimBoard }> {
  const sim = await startMondaySimulator({ token: TOKEN, budgetPerMinute: BUDGET_PER_MINUTE });
  const board = sim.account.createBoard({ name: 'Accounts', columns: [{ id: 'ext_id', type: 'text' }, { id: 'email', type: 'email' }] });
  return { sim, board };
}

/**
 * Items created per second over the run's complete budget windows: the creations are counted per window of the
 * simulator's budget, and the first (the backlog being posted) and the last (partial) are left out.
 */
async function sustainedRate(sim: MondaySimulator, board: SimBoard, done: () => boolean): Promise<number> {
  const perWindow = new Map<number, number>();
  let seen = 0;
  const windowsSeen = new Set<number>();
  while (!done() && windowsSeen.size < WINDOWS + 2) {
    const count = sim.account.itemsOf(board.id).length;
    const { windowStart } = sim.budget();
    if (count > seen) {
      perWindow.set(windowStart, (perWindow.get(windowStart) ?? 0) + count - seen);
      windowsSeen.add(windowStart);
      seen = count;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const whole = [...perWindow.entries()].sort(([a], [b]) => a - b).slice(1, 1 + WINDOWS).map(([, n]) => n);
  return whole.length === 0 ? Number.NaN : whole.reduce((sum, n) => sum + n, 0) / whole.length / (WINDOW_MS / 1000);
}

async function runCtbridge(): Promise<{ rate: number; refused: number; deadLetters: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-monday-'));
  const { sim, board } = await simulator();
  const runtime = await startCtbridge(sim, board, join(dir, 'bench.db'));
  try {
    const messages = Array.from({ length: CUSTOMERS }, (_, i) => customers.message(`c-${i}`, 1, `c${i}@example.com`));
    for (let i = 0; i < messages.length; i += 100) await runtime.post(messages.slice(i, i + 100));
    const rate = await sustainedRate(sim, board, () => sim.account.itemsOf(board.id).length >= CUSTOMERS);
    const deadLetters = (await runtime.runtime.store.db.selectFrom('dead_letters').select('id').execute()).length;
    return { rate, refused: sim.stats.budgetExhausted / sim.stats.calls, deadLetters };
  } finally {
    await runtime.runtime.stop();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startCtbridge(sim: MondaySimulator, board: SimBoard, file: string) {
  const config = configSchema.parse({
    commercetools: { projectKey: 'bench', authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: 'id', clientSecret: 'secret' },
    server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
    store: `sqlite:${file}`,
    destinations: [
      {
        name: 'crm',
        type: 'monday',
        token: TOKEN,
        endpoint: sim.url,
        apiVersion: MONDAY_API_VERSION,
        boards: { customer: { board: board.id, externalIdColumn: 'ext_id', columns: { email: 'email' } } },
        records: { customer: { fields: { name: { template: '{{firstName}} {{lastName}}' }, email: 'email' } } },
      },
    ],
  });
  const runtime = await startRuntime({ config, logger: pino({ level: 'error' }), fetcher: customers.fetcher, listen: true });
  const post = (body: unknown) => fetch(`${runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` }, body: JSON.stringify(body) });
  return { runtime, post };
}

/** The naive handler: one message at a time per worker, one mutation per message, waiting out complexity refusals. */
function naiveHandler(sim: MondaySimulator, board: SimBoard) {
  const ids = new Map<string, string>();
  const call = async (query: string, variables: Record<string, unknown>): Promise<Record<string, unknown>> => {
    for (;;) {
      const response = await fetch(sim.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: TOKEN, 'api-version': MONDAY_API_VERSION }, body: JSON.stringify({ query, variables }) });
      const body = (await response.json()) as { data?: Record<string, unknown>; errors?: Array<{ extensions?: { code?: string; retry_in_seconds?: number } }> };
      const refused = body.errors?.find((e) => e.extensions?.code === 'COMPLEXITY_BUDGET_EXHAUSTED');
      if (refused) {
        await new Promise((resolve) => setTimeout(resolve, (refused.extensions?.retry_in_seconds ?? 1) * 1000));
        continue;
      }
      if (!body.data || body.errors) throw new Error(`monday answered ${JSON.stringify(body.errors)}`);
      return body.data;
    }
  };
  return async (message: Record<string, unknown>): Promise<void> => {
    const customer = message.customer as { id: string; email: string; firstName: string; lastName: string };
    const values = JSON.stringify({ ext_id: customer.id, email: { email: customer.email, text: customer.email } });
    let id = ids.get(customer.id);
    if (!id) {
      const found = await call('query ($b: ID!, $q: [ItemsPageByColumnValuesQuery!]) { items_page_by_column_values(board_id: $b, columns: $q, limit: 1) { items { id } } }', { b: board.id, q: [{ column_id: 'ext_id', column_values: [customer.id] }] });
      id = (found.items_page_by_column_values as { items: Array<{ id: string }> }).items[0]?.id;
    }
    if (id) await call('mutation ($b: ID!, $i: ID, $v: JSON!) { change_multiple_column_values(board_id: $b, item_id: $i, column_values: $v) { id } }', { b: board.id, i: id, v: JSON.stringify({ name: `${customer.firstName} ${customer.lastName}`, email: { email: customer.email, text: customer.email } }) });
    else {
      const created = await call('mutation ($b: ID!, $n: String!, $v: JSON) { create_item(board_id: $b, item_name: $n, column_values: $v) { id } }', { b: board.id, n: `${customer.firstName} ${customer.lastName}`, v: values });
      ids.set(customer.id, (created.create_item as { id: string }).id);
    }
  };
}

async function runNaive(): Promise<{ rate: number; refused: number }> {
  const { sim, board } = await simulator();
  let finished = false;
  try {
    const messages = Array.from({ length: CUSTOMERS }, (_, i) => customers.message(`n-${i}`, 1, `n${i}@example.com`));
    const working = inParallel(messages, 16, naiveHandler(sim, board), () => finished);
    const rate = await sustainedRate(sim, board, () => sim.account.itemsOf(board.id).length >= CUSTOMERS);
    finished = true;
    await working;
    return { rate, refused: sim.stats.budgetExhausted / sim.stats.calls };
  } finally {
    await sim.close();
  }
}

/** Requests per message while 40 customers are edited 25 times each, posted as the edits happen. */
async function bursty(): Promise<{ ctbridge: number; naive: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-monday-burst-'));
  const ct = await simulator();
  const runtime = await startCtbridge(ct.sim, ct.board, join(dir, 'bench.db'));
  const naive = await simulator();
  const handle = naiveHandler(naive.sim, naive.board);
  try {
    const created = Array.from({ length: BURST.customers }, (_, i) => customers.message(`b-${i}`, 1, `b${i}@example.com`));
    await runtime.post(created);
    await inParallel(created, 16, handle);
    const settled = (sim: MondaySimulator, board: SimBoard, version: number) => sim.account.itemsOf(board.id).length === BURST.customers && sim.account.itemsOf(board.id).every((item) => item.name === `F${version} Bench`);
    while (!settled(ct.sim, ct.board, 1)) await new Promise((resolve) => setTimeout(resolve, 20));
    const ctBefore = ct.sim.stats.calls;
    const naiveBefore = naive.sim.stats.calls;
    let posted = 0;
    for (let update = 2; update <= BURST.updates + 1; update += 1) {
      const round = Array.from({ length: BURST.customers }, (_, i) => customers.message(`b-${i}`, update, `b${i}@example.com`));
      await runtime.post(round);
      await inParallel(round, 16, handle);
      posted += BURST.customers;
    }
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !settled(ct.sim, ct.board, BURST.updates + 1)) await new Promise((resolve) => setTimeout(resolve, 20));
    return { ctbridge: (ct.sim.stats.calls - ctBefore) / posted, naive: (naive.sim.stats.calls - naiveBefore) / posted };
  } finally {
    await runtime.runtime.stop();
    await ct.sim.close();
    await naive.sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureMonday(): Promise<MondayFigures> {
  // All at once: each part has simulators of its own, and the budget windows, not the CPU, set how long it takes.
  const [burst, ctbridge, naive] = await Promise.all([bursty(), runCtbridge(), runNaive()]);
  return {
    ctbridgeRate: ctbridge.rate,
    naiveRate: naive.rate,
    allowedPerSecond: ALLOWED_PER_WINDOW / (WINDOW_MS / 1000),
    windows: WINDOWS,
    ctbridgeRefused: ctbridge.refused,
    naiveRefused: naive.refused,
    ctbridgeRequestsPerMessage: burst.ctbridge,
    naiveRequestsPerMessage: burst.naive,
    ctbridgeDeadLetters: ctbridge.deadLetters,
  };
}

if (import.meta.main) {
  const figures = await measureMonday();
  if (argv.includes('--json')) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(`monday simulator with a budget of ${BUDGET_PER_MINUTE.toLocaleString('en')} complexity points a minute: ${figures.allowedPerSecond.toFixed(2)} item upserts/s at ${COST_PER_UPSERT.toLocaleString('en')} points each`);
    console.log(`  item upserts/s over ${figures.windows} complete window(s)   ctbridge ${figures.ctbridgeRate.toFixed(2)} (${pct(figures.ctbridgeRate / figures.allowedPerSecond)} of what the budget allows; bar ≥ 90%)   naive ${figures.naiveRate.toFixed(2)} (${pct(figures.naiveRate / figures.allowedPerSecond)})   ratio ${(figures.ctbridgeRate / figures.naiveRate).toFixed(2)}x`);
    console.log(`  requests refused for the budget   ctbridge ${pct(figures.ctbridgeRefused)}   naive ${pct(figures.naiveRefused)};   ctbridge dead letters ${figures.ctbridgeDeadLetters}`);
    console.log(`  monday requests per commercetools message, bursty   ctbridge ${figures.ctbridgeRequestsPerMessage.toFixed(3)}   naive ${figures.naiveRequestsPerMessage.toFixed(3)}   (${(figures.naiveRequestsPerMessage / figures.ctbridgeRequestsPerMessage).toFixed(1)}x fewer)`);
  }
}
