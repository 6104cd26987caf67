// `npm run bench`: measures ctbridge against the naive per-message baseline on this machine, scenario by scenario
// (see bench/README.md), and prints one table: each ctbridge figure (median over runs) beside the naive figure from
// the same invocation, ctbridge's advantage, and the bar from the issue with pass/fail. Progress goes to stderr.
// Options: --runs N (default 3), --only 1,3 (scenario numbers; 10 is Ometria, 11 monday, 12 the support view, 13 backfill, 14 Momentis), --profile (CPU-profile every ctbridge run).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BurstResult, CommercetoolsEndpoint } from './emulator-process.ts';
import type { MappingFigures } from './mapping.ts';
import type { IntercomFigures } from './intercom.ts';
import type { MondayFigures } from './monday.ts';
import type { OmetriaFigures } from './ometria.ts';
import type { BackfillFigures } from './backfill.ts';
import type { SoakFigures } from './soak.ts';
import type { SupportViewFigures } from './support-view.ts';
import type { MomentisFigures } from './momentis.ts';
import { forkPeer, type Peer } from './ipc.ts';
import type { BodySpec, RunResult } from './loadgen.ts';
import { cpuSeconds, peakRssMb, startCtbridge, startNaive, type SystemUnderTest } from './processes.ts';
import { formatProfile, summarizeProfile } from './profile.ts';
import type { SinkStats } from './sink-process.ts';

// ---------------------------------------------------------------------------------------------------------------
// Parameters

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
};
const RUNS = Math.max(1, Number(option('--runs') ?? 3));
const ONLY = new Set((option('--only') ?? '1,2,3,4,5,7,8,9,10,11,12,14').split(',').map(Number));
/** Scenarios 7 (mapping throughput), 8 (Intercom) and 9 (the soak) run in processes of their own, without the system-under-test machinery. */
const MAPPING = 7;
const INTERCOM = 8;
const SOAK = 9;
const OMETRIA = 10;
const MONDAY = 11;
const SUPPORT_VIEW = 12;
const BACKFILL = 13;
const MOMENTIS = 14;
/** Complete one-minute budget windows the monday scenario measures over: the run takes about this + 1 minutes. */
const MONDAY_WINDOWS = 1;
const PROFILE = argv.includes('--profile');

// ctbridge runs stop sending after ctbridgeCapMs too, so a slow build cannot blow the time budget (the rate is
// then taken over what was acknowledged); the naive baseline is always time-capped.
const SINGLE = { messages: 30_000, concurrency: 64, ctbridgeCapMs: 6_000, naiveCapMs: 3_000 };
const BATCHED = { messages: 30_000, perRequest: 100, concurrency: 16, ctbridgeCapMs: 6_000, naiveCapMs: 1_000 };
const END_TO_END = { records: 10_000, concurrency: 64, ctbridgeCapMs: 10_000, naiveCapMs: 3_000 };
const LATENCY = { ratePerSecond: 1_000, seconds: 8, ctbridgeDrainMs: 4_000, naiveDrainMs: 2_000 };
const BURST = { customers: 40, updates: 25, parallel: 4, ctbridgeWaitMs: 20_000 };
/**
 * Customers the bulk emulator holds, for the naive handler's fetches: every one the latency scenario posts about,
 * and more than the naive handler gets through in any of its time-capped runs. ctbridge never fetches them (the
 * Messages carry the customer), so the scenarios that post more than this are unaffected.
 */
const EMULATED_CUSTOMERS = Math.max(END_TO_END.records, LATENCY.ratePerSecond * LATENCY.seconds);

/** The whole bench stays under 5 minutes: each scenario gets a share of what is left and repeats only while it fits. */
const BUDGET_MS = 285_000;
const BUDGET_SHARE: Record<number, number> = { 1: 0.17, 2: 0.17, 3: 0.19, 4: 0.3, 5: 0.17 };

const BARS = {
  single: 10_000,
  batched: 50_000,
  syncs: 3_000,
  p99: 250,
  calls: 0.2,
  rss: 250,
  ordersMapped: 50_000,
  mappingRatio: 5,
  intercomShare: 0.95,
  ometriaShare: 0.95,
  mondayShare: 0.9,
  supportViewP95Ms: 150,
  backfillRate: 2_000,
  backfillLiveP99Ratio: 2,
};

// ---------------------------------------------------------------------------------------------------------------
// Output helpers

const startedAt = performance.now();
const LOAD_AT_START = loadAverage();
function progress(text: string): void {
  process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${text}\n`);
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : n > 0 ? '∞' : '-');
const dec = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : n > 0 ? '∞' : '-');

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// Bench processes

interface Env {
  dir: string;
  sink: Peer;
  sinkUrl: string;
  loadgen: Peer;
  bulkEmulator: Peer;
  burstEmulator: Peer;
  bulk: CommercetoolsEndpoint;
  burst: CommercetoolsEndpoint;
  profileDir: string | undefined;
}

type Kind = SystemUnderTest['kind'];

/** One measured run of one system: its figures, and what the run cost around it. */
interface Run {
  /** What the run measured, by name; cpuUs (CPU µs of the system under test per acknowledged message) always. */
  figures: Record<string, number>;
  note: string;
  rssMb: number;
  /** ctbridge's own account of its memory at the end of the run. */
  memory: string;
  cpuShare: number;
  /** 1-minute load average of the machine when the run started. */
  load: number;
  sinkCpuShare: number;
  loadgenCpuShare: number;
}

let runCounter = 0;
let currentScenario = 0;

/** Starts a fresh system (a new ctbridge store per run), runs `body` against it, and stops it. */
async function measure(env: Env, kind: Kind, commercetools: CommercetoolsEndpoint, body: (sut: SystemUnderTest) => Promise<{ figures: Record<string, number>; note: string; acked: number; loadgen?: RunResult }>): Promise<Run> {
  runCounter += 1;
  const load = loadAverage();
  await env.sink.call('reset');
  const sut =
    kind === 'ctbridge'
      ? await startCtbridge({ dir: env.dir, name: `s${currentScenario}-run${runCounter}`, commercetools, sinkUrl: env.sinkUrl, profileDir: env.profileDir })
      : await startNaive({ commercetools, sinkUrl: env.sinkUrl });
  try {
    const cpuBefore = cpuSeconds(sut.pid);
    const wallBefore = performance.now();
    const result = await body(sut);
    const wallSeconds = (performance.now() - wallBefore) / 1000;
    const cpu = cpuSeconds(sut.pid) - cpuBefore;
    const sinkStats = await env.sink.call<SinkStats>('stats');
    const memory = await sut.memory();
    return {
      figures: { ...result.figures, cpuUs: (1e6 * cpu) / result.acked },
      note: result.note,
      rssMb: peakRssMb(sut.pid),
      memory,
      cpuShare: cpu / wallSeconds,
      load,
      sinkCpuShare: sinkStats.cpuMs / sinkStats.wallMs,
      loadgenCpuShare: result.loadgen ? result.loadgen.cpuMs / result.loadgen.wallMs : Number.NaN,
    };
  } finally {
    await sut.stop();
  }
}

async function prepare(env: Env, sut: SystemUnderTest, bodies: BodySpec, correlationPrefix: string): Promise<{ requests: number; messages: number }> {
  return env.loadgen.call('prepare', { target: { port: sut.port, path: sut.path, headers: sut.headers }, bodies, correlationPrefix });
}

const seconds = (r: RunResult, until = r.lastAckAt) => (until - r.firstSendAt) / 1000;
const statusNote = (r: RunResult) => (r.failed > 0 ? `, ${int(r.failed)} requests failed (${JSON.stringify(r.statuses)})` : '');

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

interface Scenario {
  number: number;
  title: string;
  /** Naive runs (the baseline's figure is exact after one run for some scenarios). */
  naiveRuns: number;
  run(env: Env, kind: Kind, index: number): Promise<Run>;
  /** How a run is described in the progress line. */
  describe(run: Run): string;
}

const scenarios: Scenario[] = [
  {
    number: 1,
    title: 'durable ingest, single-message posts',
    naiveRuns: RUNS,
    run: (env, kind) =>
      measure(env, kind, env.bulk, async (sut) => {
        await prepare(env, sut, { kind: 'created', from: 0, count: SINGLE.messages, perRequest: 1 }, 's1-');
        const r = await env.loadgen.call<RunResult>('closed', { concurrency: SINGLE.concurrency, maxDurationMs: kind === 'ctbridge' ? SINGLE.ctbridgeCapMs : SINGLE.naiveCapMs });
        return {
          figures: { rate: r.messagesAcked / seconds(r) },
          note: `${int(r.messagesAcked)} acked in ${dec(seconds(r), 2)} s, ack p50 ${dec(r.ackMsP50)} ms / p99 ${dec(r.ackMsP99)} ms${statusNote(r)}`,
          acked: r.messagesAcked,
          loadgen: r,
        };
      }),
    describe: (run) => `${int(run.figures.rate!)} msg/s`,
  },
  {
    number: 2,
    title: 'durable ingest, 100-message batches',
    naiveRuns: RUNS,
    run: (env, kind) =>
      measure(env, kind, env.bulk, async (sut) => {
        await prepare(env, sut, { kind: 'created', from: 0, count: BATCHED.messages, perRequest: BATCHED.perRequest }, 's2-');
        const r = await env.loadgen.call<RunResult>('closed', { concurrency: BATCHED.concurrency, maxDurationMs: kind === 'ctbridge' ? BATCHED.ctbridgeCapMs : BATCHED.naiveCapMs });
        return {
          figures: { rate: r.messagesAcked / seconds(r) },
          note: `${int(r.messagesAcked)} acked in ${dec(seconds(r), 2)} s, batch ack p50 ${dec(r.ackMsP50)} ms / p99 ${dec(r.ackMsP99)} ms${statusNote(r)}`,
          acked: r.messagesAcked,
          loadgen: r,
        };
      }),
    describe: (run) => `${int(run.figures.rate!)} msg/s`,
  },
  {
    number: 3,
    title: 'end-to-end record syncs into the sink',
    naiveRuns: RUNS,
    run: (env, kind) =>
      measure(env, kind, env.bulk, async (sut) => {
        const n = END_TO_END.records;
        await prepare(env, sut, { kind: 'created', from: 0, count: n, perRequest: 1 }, 's3-');
        const reached = env.sink.call<number | null>('waitRecords', { count: n, timeoutMs: END_TO_END.ctbridgeCapMs }).catch(() => null);
        const r = await env.loadgen.call<RunResult>('closed', { concurrency: END_TO_END.concurrency, maxDurationMs: kind === 'ctbridge' ? END_TO_END.ctbridgeCapMs : END_TO_END.naiveCapMs });
        // The naive handler posts before it answers: once its (time-capped) run ends, everything it will send is in.
        if (r.messagesAcked >= n) await reached;
        else await sleep(500);
        const stats = await env.sink.call<SinkStats>('stats');
        const elapsed = seconds(r, stats.lastArrivalAt);
        return {
          figures: { rate: stats.records / elapsed },
          note: `${int(stats.records)} records at the sink ${dec(elapsed, 2)} s after the first post (ingest took ${dec(seconds(r), 2)} s), ${int(stats.requests)} sink requests${statusNote(r)}`,
          acked: r.messagesAcked,
          loadgen: r,
        };
      }),
    describe: (run) => `${int(run.figures.rate!)} records/s`,
  },
  {
    number: 4,
    title: `ingest-to-delivered latency at ${LATENCY.ratePerSecond.toLocaleString('en-US')} msg/s`,
    naiveRuns: RUNS,
    run: (env, kind, index) =>
      measure(env, kind, env.bulk, async (sut) => {
        const n = LATENCY.ratePerSecond * LATENCY.seconds;
        const prefix = `s4-${kind}-${index}-`;
        await prepare(env, sut, { kind: 'created', from: 0, count: n, perRequest: 1 }, prefix);
        const drainMs = kind === 'ctbridge' ? LATENCY.ctbridgeDrainMs : LATENCY.naiveDrainMs;
        const delivered = env.sink.call('waitRecords', { count: n, timeoutMs: LATENCY.seconds * 1000 + drainMs + 500 }).catch(() => null);
        const r = await env.loadgen.call<RunResult>('open', { ratePerSecond: LATENCY.ratePerSecond, maxConnections: 512, maxWaitAfterMs: drainMs });
        await delivered;
        const arrivals = await env.sink.call<Map<string, number>>('arrivals');
        const latencies: number[] = [];
        let missing = 0;
        for (let i = 0; i < n; i += 1) {
          const arrived = arrivals.get(`${prefix}${i}`);
          if (arrived === undefined) missing += 1;
          latencies.push(arrived === undefined ? Number.POSITIVE_INFINITY : arrived - r.sendTimes[i]!);
        }
        latencies.sort((a, b) => a - b);
        const sendSeconds = seconds(r, r.firstSendAt + (n - 1) * (1000 / LATENCY.ratePerSecond));
        return {
          figures: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1)! },
          note: `${int(n)} messages over ${dec(sendSeconds)} s; ack p50 ${dec(r.ackMsP50)} ms / p99 ${dec(r.ackMsP99)} ms${missing > 0 ? `; ${int(missing)} not delivered within ${drainMs / 1000} s after the last post (counted as ∞)` : ''}${statusNote(r)}`,
          acked: r.messagesAcked,
          loadgen: r,
        };
      }),
    describe: (run) => `p50 ${dec(run.figures.p50!)} ms, p99 ${dec(run.figures.p99!)} ms, max ${dec(run.figures.max!)} ms`,
  },
  {
    number: 5,
    title: `destination calls per message, bursts (${BURST.customers} customers x ${BURST.updates} updates)`,
    naiveRuns: 1,
    run: (env, kind, index) =>
      measure(env, kind, env.burst, async (sut) => {
        const before = await env.burstEmulator.call<{ burst: number }>('apiRequests');
        const target = { url: `http://127.0.0.1:${sut.port}${sut.path}`, headers: sut.headers };
        const b = await env.burstEmulator.call<BurstResult>('runBurst', { ...target, updates: BURST.updates, parallel: BURST.parallel, correlationPrefix: `s5-${kind}-${index}-` });
        const apiDuringBurst = (await env.burstEmulator.call<{ burst: number }>('apiRequests')).burst - before.burst - b.messages;
        // ctbridge works after acknowledging; the naive handler is done with a message when it answers.
        const settled = kind === 'ctbridge' ? ((await env.sink.call<number | null>('waitVersions', { versions: b.finalVersions, timeoutMs: BURST.ctbridgeWaitMs })) ?? Number.NaN) : Number.NaN;
        // Anything still to come (a re-run of a key dirtied while in flight) has had time to show up.
        await sleep(kind === 'ctbridge' ? 1_000 : 300);
        const stats = await env.sink.call<SinkStats>('stats');
        const fetches = (await env.burstEmulator.call<{ burst: number }>('apiRequests')).burst - before.burst - b.messages;
        const failed = b.failed > 0 ? `, ${int(b.failed)} posts failed` : '';
        return {
          figures: { calls: stats.requests / b.acked, items: stats.items / b.acked },
          note:
            `${int(b.messages)} messages posted as the edits happened, over ${dec((b.lastAckAt - b.firstSendAt) / 1000, 2)} s → ${int(stats.requests)} sink requests carrying ${int(stats.items)} records, ` +
            `${int(fetches)} commercetools API reads (${int(apiDuringBurst)} while the bursts ran)` +
            (Number.isNaN(settled) ? '' : `, all final versions at the sink ${dec((settled - b.firstSendAt) / 1000, 2)} s after the first post`) +
            failed,
          acked: b.acked,
        };
      }),
    describe: (run) => `${dec(run.figures.calls!, 3)} calls/message (${dec(run.figures.items!, 3)} records sent per message)`,
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Main

interface Collected {
  scenario: Scenario;
  ctbridge: Run[];
  naive: Run[];
  /** Fewer runs than asked for, because the time budget ran out. */
  cutShort: boolean;
}

async function setUp(): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-'));
  const profileDir = PROFILE ? join(dir, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir);
  progress(`starting the sink, the load generator and two commercetools emulators (work dir ${dir})`);
  const [sink, loadgen, bulkEmulator, burstEmulator] = await Promise.all(
    ['sink-process.ts', 'loadgen.ts', 'emulator-process.ts', 'emulator-process.ts'].map((file) => forkPeer(join(import.meta.dirname, file))),
  );
  const sinkUrl = await sink!.call<string>('start');
  progress(`seeding the bulk emulator with ${int(EMULATED_CUSTOMERS)} customers and the burst emulator with ${BURST.customers}`);
  const [bulk, burst] = await Promise.all([
    bulkEmulator!.call<CommercetoolsEndpoint>('startBulk', { customers: EMULATED_CUSTOMERS }),
    burstEmulator!.call<CommercetoolsEndpoint>('startBurst', { customers: BURST.customers }),
  ]);
  return { dir, sink: sink!, sinkUrl, loadgen: loadgen!, bulkEmulator: bulkEmulator!, burstEmulator: burstEmulator!, bulk, burst, profileDir };
}

async function main(): Promise<void> {
  const env = await setUp();
  const collected: Collected[] = [];
  try {
    const selected = scenarios.filter((s) => ONLY.has(s.number));
    for (const [position, scenario] of selected.entries()) {
      currentScenario = scenario.number;
      const entry: Collected = { scenario, ctbridge: [], naive: [], cutShort: false };
      collected.push(entry);
      const scenarioStart = performance.now();
      const shares = selected.slice(position).reduce((sum, s) => sum + BUDGET_SHARE[s.number]!, 0);
      const allotted = ((BUDGET_MS - (scenarioStart - startedAt)) * BUDGET_SHARE[scenario.number]!) / shares;
      let lastRound = 0;
      // Interleaved, so that a noisy moment on the machine does not hit one system only.
      for (let index = 0; index < Math.max(RUNS, scenario.naiveRuns); index += 1) {
        const roundStart = performance.now();
        if (index > 0 && roundStart - scenarioStart + lastRound > allotted) {
          entry.cutShort = true;
          progress(`${scenario.number}. stopping after ${index} round(s) to stay within the time budget (the machine is slow right now)`);
          break;
        }
        for (const kind of ['ctbridge', 'naive'] as const) {
          const runs = kind === 'ctbridge' ? RUNS : scenario.naiveRuns;
          if (index >= runs) continue;
          const run = await scenario.run(env, kind, index);
          entry[kind].push(run);
          progress(`${scenario.number}. ${scenario.title} — ${kind} run ${index + 1}/${runs}: ${scenario.describe(run)} (${run.note}; peak RSS ${int(run.rssMb)} MB)`);
        }
        lastRound = performance.now() - roundStart;
      }
    }
    const mapping: MappingFigures[] = [];
    if (ONLY.has(MAPPING)) {
      for (let index = 0; index < RUNS; index += 1) {
        const figures = JSON.parse(execFileSync(process.execPath, [new URL('./mapping.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8' })) as MappingFigures;
        mapping.push(figures);
        progress(`7. order mapping — run ${index + 1}/${RUNS}: ${int(figures.declarative)} orders/s declarative, ${int(figures.jsonata)} orders/s as one JSONata expression`);
      }
    }
    let intercom: IntercomFigures | undefined;
    if (ONLY.has(INTERCOM)) {
      // One run (about a minute): the figure is a share of a fixed limit, steady from run to run.
      intercom = JSON.parse(execFileSync(process.execPath, [new URL('./intercom.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as IntercomFigures;
      progress(`8. Intercom — ${int(intercom.ctbridgeRate)} contact syncs/s (naive ${int(intercom.naiveRate)}), limit ${int(intercom.limitPerSecond)}/s; bursty ${dec(intercom.ctbridgeCallsPerMessage, 3)} calls/message (naive ${dec(intercom.naiveCallsPerMessage, 3)})`);
    }
    let ometria: OmetriaFigures | undefined;
    if (ONLY.has(OMETRIA)) {
      // One run (about a minute): the figure is a share of a fixed ceiling.
      ometria = JSON.parse(execFileSync(process.execPath, [new URL('./ometria.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as OmetriaFigures;
      progress(`10. Ometria — ${int(ometria.ctbridgeRate)} records/s (naive ${dec(ometria.naiveRate, 1)}), ceiling ${int(ometria.ceiling)}/s; bursty ${dec(ometria.ctbridgeCallsPerMessage, 3)} calls/message (naive ${dec(ometria.naiveCallsPerMessage, 3)})`);
    }
    let monday: MondayFigures | undefined;
    if (ONLY.has(MONDAY)) {
      // One run (about two minutes: the backlog's window, the measured one, the start of the next): the
      // figure is a share of a fixed complexity budget, and both systems run in it at once.
      progress(`11. monday — about ${MONDAY_WINDOWS + 1} minutes (whole budget windows of a minute)`);
      monday = JSON.parse(execFileSync(process.execPath, [new URL('./monday.ts', import.meta.url).pathname, '--json', '--windows', String(MONDAY_WINDOWS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as MondayFigures;
      progress(`11. monday — ${dec(monday.ctbridgeRate, 2)} item upserts/s (naive ${dec(monday.naiveRate, 2)}), the budget allows ${dec(monday.allowedPerSecond, 2)}/s; bursty ${dec(monday.ctbridgeRequestsPerMessage, 3)} requests/message (naive ${dec(monday.naiveRequestsPerMessage, 3)})`);
    }
    let supportView: SupportViewFigures | undefined;
    if (ONLY.has(SUPPORT_VIEW)) {
      // One run of 200 views each (some seconds): a response-time percentile against the emulator.
      supportView = JSON.parse(execFileSync(process.execPath, [new URL('./support-view.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as SupportViewFigures;
      progress(`12. support view — p95 ${dec(supportView.ctbridgeP95)} ms (naive ${dec(supportView.naiveP95)} ms) for a customer with ${supportView.orders} orders; ${dec(supportView.ctbridgeApiRequests)} commercetools requests per view (naive ${dec(supportView.naiveApiRequests)})`);
    }
    let backfill: BackfillFigures | undefined;
    if (ONLY.has(BACKFILL)) {
      // One run (about half a minute): the backfill's rate and the live p99 beside it are measured together.
      backfill = JSON.parse(execFileSync(process.execPath, [new URL('./backfill.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as BackfillFigures;
      progress(`13. backfill — ${int(backfill.ctbridgeRate)} resources/s (naive ${int(backfill.naiveRate)}); live p99 ${int(backfill.liveP99Quiet)} ms without, ${int(backfill.liveP99During)} ms during; peak RSS ${int(backfill.rssMb)} MB`);
    }
    let momentis: MomentisFigures | undefined;
    if (ONLY.has(MOMENTIS)) {
      // One run (under a minute): 500 payment messages at 100 a second, each to its balance on the customer.
      momentis = JSON.parse(execFileSync(process.execPath, [new URL('./momentis.ts', import.meta.url).pathname, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as MomentisFigures;
      progress(`14. Momentis — payment message to balance on the customer: p50 ${dec(momentis.p50, 2)} s, p99 ${dec(momentis.p99, 2)} s at ${momentis.rate} orders/s (accrual booked: p50 ${dec(momentis.accrualP50, 2)} s); ${momentis.missing} missing`);
    }
    let soak: SoakFigures | undefined;
    if (ONLY.has(SOAK)) {
      // One run of a minute: it asks whether anything breaks, not how fast.
      progress('9. soak — 60 s of legitimate traffic beside a fuzzer and slow/many-connection attacks');
      soak = JSON.parse(execFileSync(process.execPath, [new URL('./soak.ts', import.meta.url).pathname, '--json', '--seconds', '60'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as SoakFigures;
      progress(`9. soak — ${soak.legitimateDelivered} of ${soak.legitimateAcked} acknowledged legitimate messages delivered; legitimate answers ${JSON.stringify(soak.legitimateStatuses)}; fuzzer ${JSON.stringify(soak.fuzzStatuses)}; ${soak.attackConnections} attack connections, ${soak.attackClosedByServer} closed by ctbridge; peak RSS ${int(soak.peakRssMb)} MB${soak.survived ? '' : '; ctbridge EXITED'}`);
    }
    report(collected, mapping, intercom, soak, ometria, monday, supportView, backfill, momentis);
    if (env.profileDir) reportProfiles(env.profileDir);
  } finally {
    await Promise.all([env.sink, env.loadgen, env.bulkEmulator, env.burstEmulator].map((peer) => peer.close()));
    // The profiles are kept for a closer look (e.g. in Chrome DevTools); everything else goes.
    if (env.profileDir) {
      for (const file of readdirSync(env.dir)) if (join(env.dir, file) !== env.profileDir) rmSync(join(env.dir, file), { force: true });
    } else {
      rmSync(env.dir, { recursive: true, force: true });
    }
  }
}

function report(collected: Collected[], mapping: MappingFigures[], intercom: IntercomFigures | undefined, soak: SoakFigures | undefined, ometria: OmetriaFigures | undefined, monday: MondayFigures | undefined, supportView: SupportViewFigures | undefined, backfill: BackfillFigures | undefined, momentis?: MomentisFigures): void {
  const find = (n: number) => collected.find((c) => c.scenario.number === n);
  const med = (runs: Run[] | undefined, figure: string) => median((runs ?? []).map((r) => r.figures[figure] ?? Number.NaN));
  type Row = { figure: string; ct: number; naive: number; format: (n: number) => string; better: 'higher' | 'lower'; bar?: { op: '≥' | '≤'; value: number } };
  const rows: Row[] = [];
  const add = (n: number, figure: string, label: string, format: (v: number) => string, better: Row['better'], bar?: Row['bar']) => {
    const c = find(n);
    if (c) rows.push({ figure: label, ct: med(c.ctbridge, figure), naive: med(c.naive, figure), format, better, ...(bar && { bar }) });
  };
  add(1, 'rate', '1. durable ingest, single posts, c=64 (msg/s)', int, 'higher', { op: '≥', value: BARS.single });
  add(1, 'cpuUs', '   CPU per message, single posts (µs)', int, 'lower');
  add(2, 'rate', `2. durable ingest, ${BATCHED.perRequest}-msg batches, c=${BATCHED.concurrency} (msg/s)`, int, 'higher', { op: '≥', value: BARS.batched });
  add(2, 'cpuUs', '   CPU per message, batches (µs)', int, 'lower');
  add(3, 'rate', '3. end-to-end record syncs into the sink (/s)', int, 'higher', { op: '≥', value: BARS.syncs });
  add(3, 'cpuUs', '   CPU per message, end to end (µs)', int, 'lower');
  add(4, 'p50', `4. p50 ingest-to-delivered @ ${LATENCY.ratePerSecond}/s (ms)`, (v) => dec(v), 'lower');
  add(4, 'p99', `   p99 ingest-to-delivered @ ${LATENCY.ratePerSecond}/s (ms)`, (v) => dec(v), 'lower', { op: '≤', value: BARS.p99 });
  add(5, 'calls', '5. destination calls per message, bursty', (v) => dec(v, 3), 'lower', { op: '≤', value: BARS.calls });
  add(5, 'items', '   records sent per message, bursty', (v) => dec(v, 3), 'lower');
  if (mapping.length > 0) {
    const fields = mapping[0]!.fields;
    rows.push({ figure: `7. orders mapped, ${fields}-field order mapping, one core (orders/s; "naive": as one JSONata expression)`, ct: median(mapping.map((m) => m.declarative)), naive: median(mapping.map((m) => m.jsonata)), format: int, better: 'higher', bar: { op: '≥', value: BARS.ordersMapped } });
    rows.push({ figure: '   declarative mapping ÷ JSONata-only, per run (x)', ct: median(mapping.map((m) => m.declarative / m.jsonata)), naive: 1, format: (v) => dec(v, 1), better: 'higher', bar: { op: '≥', value: BARS.mappingRatio } });
  }
  if (intercom) {
    rows.push({ figure: `8. Intercom contact syncs, share of a ${int(intercom.limitPerSecond * 60)}/min limit (1 run)`, ct: intercom.ctbridgeRate / intercom.limitPerSecond, naive: intercom.naiveRate / intercom.limitPerSecond, format: (v) => dec(v, 3), better: 'higher', bar: { op: '≥', value: BARS.intercomShare } });
    rows.push({ figure: '   Intercom calls answered 429 (share)', ct: intercom.ctbridge429, naive: intercom.naive429, format: (v) => dec(v, 4), better: 'lower' });
    rows.push({ figure: '   Intercom backlog: contacts delivered', ct: intercom.ctbridgeDelivered, naive: Number.NaN, format: int, better: 'higher', bar: { op: '≥', value: intercom.contacts } });
    rows.push({ figure: '   Intercom backlog: dead letters', ct: intercom.ctbridgeDeadLetters, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: 0 } });
    rows.push({ figure: '   Intercom calls per message, bursty', ct: intercom.ctbridgeCallsPerMessage, naive: intercom.naiveCallsPerMessage, format: (v) => dec(v, 3), better: 'lower' });
  }
  if (ometria) {
    rows.push({ figure: `10. Ometria records delivered, share of the ${int(ometria.ceiling)}/s ceiling (4 pushes/s × 100; 1 run)`, ct: ometria.ctbridgeRate / ometria.ceiling, naive: ometria.naiveRate / ometria.ceiling, format: (v) => dec(v, 3), better: 'higher', bar: { op: '≥', value: BARS.ometriaShare } });
    rows.push({ figure: '   Ometria backlog: contacts delivered', ct: ometria.ctbridgeDelivered, naive: Number.NaN, format: int, better: 'higher', bar: { op: '≥', value: ometria.contacts } });
    rows.push({ figure: '   Ometria backlog: dead letters', ct: ometria.ctbridgeDeadLetters, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: 0 } });
    rows.push({ figure: '   Ometria calls answered 429 (share)', ct: ometria.ctbridge429, naive: ometria.naive429, format: (v) => dec(v, 4), better: 'lower' });
    rows.push({ figure: '   Ometria calls per message, bursty', ct: ometria.ctbridgeCallsPerMessage, naive: ometria.naiveCallsPerMessage, format: (v) => dec(v, 3), better: 'lower' });
  }
  if (monday) {
    rows.push({ figure: `11. monday item upserts, share of the ${int(monday.allowedPerSecond * 60)}/min the complexity budget allows (${monday.windows} whole window; 1 run)`, ct: monday.ctbridgeRate / monday.allowedPerSecond, naive: monday.naiveRate / monday.allowedPerSecond, format: (v) => dec(v, 3), better: 'higher', bar: { op: '≥', value: BARS.mondayShare } });
    rows.push({ figure: '   monday requests refused for the budget (share)', ct: monday.ctbridgeRefused, naive: monday.naiveRefused, format: (v) => dec(v, 4), better: 'lower' });
    rows.push({ figure: '   monday backlog: dead letters', ct: monday.ctbridgeDeadLetters, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: 0 } });
    rows.push({ figure: '   monday requests per message, bursty', ct: monday.ctbridgeRequestsPerMessage, naive: monday.naiveRequestsPerMessage, format: (v) => dec(v, 3), better: 'lower' });
  }
  if (supportView) {
    rows.push({ figure: `12. support view p95, customer with ${supportView.orders} orders, live reads against the emulator (ms; 1 run of ${supportView.requests})`, ct: supportView.ctbridgeP95, naive: supportView.naiveP95, format: (v) => dec(v), better: 'lower', bar: { op: '≤', value: BARS.supportViewP95Ms } });
    rows.push({ figure: '    support view p50 (ms)', ct: supportView.ctbridgeP50, naive: supportView.naiveP50, format: (v) => dec(v), better: 'lower' });
    rows.push({ figure: '    commercetools requests per view', ct: supportView.ctbridgeApiRequests, naive: supportView.naiveApiRequests, format: (v) => dec(v, 1), better: 'lower' });
  }
  if (backfill) {
    rows.push({ figure: `13. backfill of ${int(backfill.total)} orders and customers into the sink (resources/s; naive: offset pages, one post per record; 1 run)`, ct: backfill.ctbridgeRate, naive: backfill.naiveRate, format: int, better: 'higher', bar: { op: '≥', value: BARS.backfillRate } });
    rows.push({ figure: '   backfill: records in the sink at the end', ct: backfill.delivered, naive: Number.NaN, format: int, better: 'higher', bar: { op: '≥', value: backfill.total } });
    rows.push({ figure: '   live p99 during the backfill ÷ without it, same run (x)', ct: backfill.liveP99During / backfill.liveP99Quiet, naive: Number.NaN, format: (v) => dec(v, 2), better: 'lower', bar: { op: '≤', value: BARS.backfillLiveP99Ratio } });
    rows.push({ figure: '   backfill: peak RSS of ctbridge (MB)', ct: backfill.rssMb, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: BARS.rss } });
  }
  if (momentis) {
    // No naive column: nothing else turns a payment into points on the customer.
    rows.push({ figure: `14. Momentis: payment message to the balance on the commercetools customer, p50 at ${momentis.rate} orders/s (s; 1 run of ${momentis.orders})`, ct: momentis.p50, naive: Number.NaN, format: (v) => dec(v, 2), better: 'lower' });
    rows.push({ figure: '    Momentis: the same, p99 (s)', ct: momentis.p99, naive: Number.NaN, format: (v) => dec(v, 2), better: 'lower' });
    rows.push({ figure: '    Momentis: payment message to the accrual booked at Momentis, p50 (s)', ct: momentis.accrualP50, naive: Number.NaN, format: (v) => dec(v, 2), better: 'lower' });
    rows.push({ figure: '    Momentis: balances that never arrived', ct: momentis.missing, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: 0 } });
  }
  if (soak) {
    // No naive column: the soak asks whether ctbridge holds, not how it compares.
    rows.push({ figure: `9. soak ${soak.seconds} s under attack: acknowledged legitimate messages delivered (share)`, ct: soak.survived ? soak.legitimateDelivered / soak.legitimateAcked : 0, naive: Number.NaN, format: (v) => dec(v, 3), better: 'higher', bar: { op: '≥', value: 1 } });
    rows.push({ figure: '   legitimate requests answered 5xx or dropped', ct: soak.legitimate5xx + soak.legitimateDropped, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: 0 } });
    rows.push({ figure: '   peak RSS under attack (MB)', ct: soak.peakRssMb, naive: Number.NaN, format: int, better: 'lower', bar: { op: '≤', value: BARS.rss } });
  }
  if (collected.length > 0) {
    const all = (kind: Kind) => collected.flatMap((c) => c[kind]);
    rows.push({ figure: '6. peak RSS, max over all runs (MB)', ct: Math.max(...all('ctbridge').map((r) => r.rssMb)), naive: Math.max(...all('naive').map((r) => r.rssMb)), format: int, better: 'lower', bar: { op: '≤', value: BARS.rss } });
  }

  const table = rows.map((row) => {
    const advantage = row.better === 'higher' ? row.ct / row.naive : row.naive / row.ct;
    const pass = row.bar ? (row.bar.op === '≥' ? row.ct >= row.bar.value : row.ct <= row.bar.value) : undefined;
    return [
      row.figure,
      row.format(row.ct),
      row.format(row.naive),
      Number.isFinite(advantage) ? `${dec(advantage, advantage >= 10 ? 0 : 1)}x` : 'n/a',
      row.bar ? `${row.bar.op} ${row.format(row.bar.value)}` : '',
      pass === undefined ? '' : pass ? 'pass' : 'FAIL',
    ];
  });
  const header = ['figure', 'ctbridge', 'naive', 'ctbridge advantage', 'bar', 'result'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('');
  const cut = collected.filter((c) => c.cutShort).map((c) => `${c.scenario.number} (${c.ctbridge.length} ctbridge, ${c.naive.length} naive)`);
  console.log(`ctbridge vs naive per-message baseline — medians of ${RUNS} runs each (the naive baseline's scenario 5: 1 run)${cut.length > 0 ? `; fewer runs, to stay within the time budget, for scenario ${cut.join(', ')}` : ''}`);
  console.log(`${new Date().toISOString()}, ${availableParallelism()} cores, load average ${dec(LOAD_AT_START, 2)} at the start and ${dec(loadAverage(), 2)} at the end (values well above the core count mean other work competed for the CPU)`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  const misses = table.filter((r) => r[5] === 'FAIL').map((r) => r[0]!.replace(/^\d+\.\s*|^\s+/, '').trim());
  console.log('');
  console.log(
    misses.length === 0
      ? 'ctbridge meets every bar.'
      : `ctbridge MISSES ${misses.length} bar(s): ${misses.join('; ')}.\nWhere the time goes: npm run bench -- --profile --runs 1 --only <scenario numbers>`,
  );

  console.log('');
  console.log('Per run (ctbridge | naive); CPU shares are CPU seconds per wall second of the run (1.00 = one core):');
  for (const c of collected) {
    console.log(`  ${c.scenario.number}. ${c.scenario.title}`);
    for (const kind of ['ctbridge', 'naive'] as const) {
      c[kind].forEach((run, i) => {
        console.log(
          `     ${kind.padEnd(8)} #${i + 1}: ${c.scenario.describe(run)}; ${run.note}; peak RSS ${int(run.rssMb)} MB${run.memory ? ` (at the end: ${run.memory})` : ''}; ${kind} CPU ${int(run.figures.cpuUs!)} µs/message (one free core would take ${int(1e6 / run.figures.cpuUs!)} msg/s at that cost); CPU shares: ${kind} ${dec(run.cpuShare, 2)}, load generator ${Number.isNaN(run.loadgenCpuShare) ? 'n/a (the burst emulator posts)' : dec(run.loadgenCpuShare, 2)}, sink ${dec(run.sinkCpuShare, 2)}; load average ${dec(run.load, 2)}`,
        );
      });
    }
  }
}

function reportProfiles(dir: string): void {
  console.log('');
  console.log(`CPU profiles of the ctbridge runs (--profile), kept in ${dir}; one per thread (Node names them CPU.<date>.<time>.<pid>.<thread id>.<n>; thread 0 is the main thread); the first ~1.5 s of each is start-up (module loading):`);
  for (const run of readdirSync(dir).sort()) {
    for (const file of readdirSync(join(dir, run)).filter((f) => f.endsWith('.cpuprofile')).sort()) {
      console.log(formatProfile(`${run}/${file}`, summarizeProfile(join(dir, run, file))));
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
