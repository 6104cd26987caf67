// The soak (`npm run bench` scenario 9, or alone: `node bench/soak.ts [--seconds 60] [--json]`): ctbridge as an
// operator runs it, with its default server settings, under normal traffic and attack at once. Legitimate clients
// post CustomerCreated Messages at a steady rate (the load generator, a process of its own); at the same time this
// process fuzzes the ingest endpoint with a valid credential (mutated, forged, oversized, empty and binary
// bodies), holds slow connections open without one (headers a byte at a time, 1 MiB bodies a byte at a time) and
// floods connections with padded headers and a body that never completes. It reports what matters: every
// acknowledged legitimate message delivered to the sink, no 5xx (nor dropped connection) for a legitimate
// client, and ctbridge's peak RSS.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommercetoolsEndpoint } from './emulator-process.ts';
import { forkPeer, type Peer } from './ipc.ts';
import type { RunResult } from './loadgen.ts';
import { INGEST_TOKEN, peakRssMb, startCtbridge, type SystemUnderTest } from './processes.ts';
import { Random } from '../src/sandbox/seed.ts';
import { createdMessage, customerId } from './workload.ts';

export interface SoakFigures {
  seconds: number;
  /** Legitimate messages posted, acknowledged (2xx), and of those delivered to the sink. */
  legitimatePosted: number;
  legitimateAcked: number;
  legitimateDelivered: number;
  /** Legitimate requests answered 5xx, and those whose connection failed without an answer. */
  legitimate5xx: number;
  legitimateDropped: number;
  legitimateStatuses: Record<string, number>;
  fuzzRequests: number;
  fuzzStatuses: Record<string, number>;
  /** Attack connections opened, and how many of them ctbridge closed (timeouts, connection limit; refused ones not counted). */
  attackConnections: number;
  attackClosedByServer: number;
  peakRssMb: number;
  /** Whether /healthz answered 200 at the end. */
  healthyAtEnd: boolean;
  /** Whether the ctbridge process was still running at the end (it must never exit). */
  survived: boolean;
}

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
};

const LEGITIMATE_PER_SECOND = 250;
/** Pool indexes of the legitimate customers start here; the fuzzer's messages use other ids. */
const LEGITIMATE_FROM = 0;
const SLOW_HEADER_CONNECTIONS = 300;
const SLOW_BODY_CONNECTIONS = 16;
const FLOOD_CONNECTIONS = 3_000;
const TRICKLE_MS = 1_000;
const FUZZ_CONCURRENCY = 4;
const DELIVERY_WAIT_MS = 120_000;

const progress = (text: string) => process.stderr.write(`[soak] ${text}\n`);

// ---------------------------------------------------------------------------------------------------------------
// The fuzzer: bodies an attacker or a broken producer with a valid credential might post.

function fuzzBody(random: Random, index: number): Buffer | string {
  const id = `f0220000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;
  const base = () => ({ ...createdMessage(1_000_000 + index), id, resource: { typeId: 'customer', id: `fuzz-${index}` } });
  const kind = random.int(0, 11);
  switch (kind) {
    case 0:
      return randomBytes(random.int(0, 1_999));
    case 1:
      return '';
    case 2: // an array far over any sensible number of elements per body
      return JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ i })));
    case 3: // lone surrogates in the ids
      return JSON.stringify({ ...base(), id: `lone-\ud800-${index}`, resource: { typeId: 'customer', id: `\udbff${index}` } });
    case 4: // a forged version far ahead of anything real
      return JSON.stringify({ ...base(), resourceVersion: 9_007_199_254_740_991 });
    case 5: // deep nesting
      return `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
    case 6: // unknown notification type full of personal data
      return JSON.stringify({ ...base(), notificationType: 'Surprise', email: 'leak@example.com', phone: '+4915112345678' });
    case 7: // Pub/Sub push with undecodable data
      return JSON.stringify({ message: { data: randomBytes(64).toString('base64'), messageId: id }, subscription: 'projects/p/subscriptions/s' });
    case 8: // a long string that once made redaction quadratic
      return JSON.stringify({ ...base(), type: 'Surprise', note: 'a@'.repeat(200_000) });
    case 9: // a truncated body
      return JSON.stringify(base()).slice(0, random.int(0, 399));
    case 10: // wrong types everywhere
      return JSON.stringify({ notificationType: 7, id: null, resource: 'customer', resourceVersion: '1' });
    default: // a valid message about a fuzz customer
      return JSON.stringify(base());
  }
}

async function fuzz(url: string, until: number, random: Random): Promise<{ requests: number; statuses: Record<string, number> }> {
  const statuses: Record<string, number> = {};
  let requests = 0;
  const worker = async () => {
    while (Date.now() < until) {
      const index = requests++;
      const body = fuzzBody(random, index);
      const status = await fetch(`${url}/v1/ingest/commercetools`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, ...(random.chance(0.75) && { 'content-type': 'application/json' }) },
        body: typeof body === 'string' ? body : new Uint8Array(body),
      }).then(
        async (response) => {
          await response.arrayBuffer();
          return String(response.status);
        },
        () => 'connection failed',
      );
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: FUZZ_CONCURRENCY }, worker));
  return { requests, statuses };
}

// ---------------------------------------------------------------------------------------------------------------
// Slow and many connections, without a credential: each keeps its pressure up, reconnecting when ctbridge closes it.

interface AttackCounts {
  opened: number;
  closedByServer: number;
}

function holdConnections(port: number, count: number, until: number, counts: AttackCounts, behave: (socket: Socket) => (() => void) | undefined): Promise<void> {
  return new Promise((resolve) => {
    let live = 0;
    const open = () => {
      if (Date.now() >= until) {
        if (live === 0) resolve();
        return;
      }
      live += 1;
      counts.opened += 1;
      const socket = connect(port, '127.0.0.1');
      let tick: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      let ours = false;
      socket.on('connect', () => {
        tick = behave(socket);
        if (tick) timer = setInterval(() => (Date.now() >= until ? ((ours = true), socket.destroy()) : tick!()), TRICKLE_MS);
      });
      socket.on('data', () => undefined);
      let refused = false;
      socket.on('error', (error: NodeJS.ErrnoException) => (refused = error.code === 'ECONNREFUSED'));
      socket.on('close', () => {
        clearInterval(timer);
        live -= 1;
        if (!ours && !refused) counts.closedByServer += 1;
        // Reconnect, a little later so a refused flood does not spin (and much later when nothing listens).
        setTimeout(open, refused ? 1_000 : 50);
      });
      setTimeout(() => ((ours = true), socket.destroy()), Math.max(0, until - Date.now())).unref();
    };
    for (let i = 0; i < count; i += 1) setTimeout(open, i % 100);
  });
}

const slowHeaders = (socket: Socket) => {
  socket.write('POST /v1/ingest/commercetools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ');
  return () => socket.write('a');
};

const slowBody = (socket: Socket) => {
  socket.write('POST /v1/ingest/commercetools HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n[');
  return () => socket.write(' ');
};

const PADDING = `X-Pad: ${'p'.repeat(7_000)}\r\n`;
const flood = (socket: Socket) => {
  socket.write(`POST /v1/ingest/commercetools HTTP/1.1\r\nHost: 127.0.0.1\r\n${PADDING}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[`);
  return undefined;
};

// ---------------------------------------------------------------------------------------------------------------

export async function soak(seconds: number): Promise<SoakFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-soak-'));
  const peers: Peer[] = [];
  let sut: SystemUnderTest | undefined;
  try {
    const sink = await forkPeer(join(import.meta.dirname, 'sink-process.ts'));
    peers.push(sink);
    const sinkUrl = await sink.call<string>('start');
    const emulator = await forkPeer(join(import.meta.dirname, 'emulator-process.ts'));
    peers.push(emulator);
    const commercetools = await emulator.call<CommercetoolsEndpoint>('startBulk', { customers: 0 });
    sut = await startCtbridge({ dir, name: 'soak', commercetools, sinkUrl });
    const url = `http://127.0.0.1:${sut.port}`;
    const loadgen = await forkPeer(join(import.meta.dirname, 'loadgen.ts'));
    peers.push(loadgen);
    const legitimate = Math.round(LEGITIMATE_PER_SECOND * seconds);
    await loadgen.call('prepare', { target: { port: sut.port, path: sut.path, headers: sut.headers }, bodies: { kind: 'created', from: LEGITIMATE_FROM, count: legitimate, perRequest: 1 }, correlationPrefix: 'soak-' });

    progress(`${seconds} s: ${LEGITIMATE_PER_SECOND} legitimate messages/s, the fuzzer (${FUZZ_CONCURRENCY} at a time), ${SLOW_HEADER_CONNECTIONS} slow-header, ${SLOW_BODY_CONNECTIONS} slow-body and up to ${FLOOD_CONNECTIONS} flood connections`);
    const until = Date.now() + seconds * 1000;
    // Peak RSS is read while the process lives (a process that dies takes its /proc entry with it).
    const pid = sut.pid;
    let peak = 0;
    let survived = true;
    const watch = setInterval(() => {
      try {
        peak = Math.max(peak, peakRssMb(pid));
      } catch {
        survived = false;
      }
    }, 500);
    const attacks: AttackCounts = { opened: 0, closedByServer: 0 };
    const random = new Random(Number(option('--seed') ?? 20261204));
    const [traffic, fuzzed] = await Promise.all([
      loadgen.call<RunResult>('open', { ratePerSecond: LEGITIMATE_PER_SECOND, maxConnections: 32, maxWaitAfterMs: 30_000 }),
      fuzz(url, until, random),
      holdConnections(sut.port, SLOW_HEADER_CONNECTIONS, until, attacks, slowHeaders),
      holdConnections(sut.port, SLOW_BODY_CONNECTIONS, until, attacks, slowBody),
      holdConnections(sut.port, FLOOD_CONNECTIONS, until, attacks, flood),
    ]);
    progress(`traffic done: ${traffic.messagesAcked} of ${legitimate} legitimate messages acknowledged; waiting for them at the sink`);

    // Which legitimate messages were acknowledged: the load generator answers per request, in prepared order.
    const acked = traffic.messagesAcked;
    const ids = Array.from({ length: legitimate }, (_, i) => customerId(LEGITIMATE_FROM + i));
    if (survived) await sink.call('waitIds', { ids, count: acked, timeoutMs: DELIVERY_WAIT_MS });
    const delivered = await sink.call<number>('countIds', { ids });
    const healthy = await fetch(`${url}/healthz`).then(
      (response) => response.status === 200,
      () => false,
    );
    clearInterval(watch);
    try {
      peak = Math.max(peak, peakRssMb(pid));
    } catch {
      survived = false;
    }
    const statuses = traffic.statuses;
    const fiveHundreds = Object.entries(statuses).filter(([status]) => status.startsWith('5')).reduce((sum, [, n]) => sum + n, 0);
    return {
      seconds,
      legitimatePosted: legitimate,
      legitimateAcked: acked,
      legitimateDelivered: delivered,
      legitimate5xx: fiveHundreds,
      legitimateDropped: statuses['0'] ?? 0,
      legitimateStatuses: statuses,
      fuzzRequests: fuzzed.requests,
      fuzzStatuses: fuzzed.statuses,
      attackConnections: attacks.opened,
      attackClosedByServer: attacks.closedByServer,
      peakRssMb: peak,
      healthyAtEnd: healthy,
      survived,
    };
  } finally {
    await sut?.stop();
    await Promise.all(peers.map((peer) => peer.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const figures = await soak(Number(option('--seconds') ?? 60));
  if (argv.includes('--json')) {
    console.log(JSON.stringify(figures));
  } else {
    console.log(`soak of ${figures.seconds} s against ctbridge with its default server settings:`);
    console.log(`  legitimate messages: ${figures.legitimatePosted} posted, ${figures.legitimateAcked} acknowledged, ${figures.legitimateDelivered} of those delivered (must be all)`);
    console.log(`  legitimate answers: ${JSON.stringify(figures.legitimateStatuses)}; 5xx: ${figures.legitimate5xx}, dropped connections: ${figures.legitimateDropped} (must be none)`);
    console.log(`  fuzzer: ${figures.fuzzRequests} requests, answers ${JSON.stringify(figures.fuzzStatuses)}`);
    console.log(`  attack connections: ${figures.attackConnections} opened, ${figures.attackClosedByServer} closed by ctbridge`);
    console.log(`  ctbridge peak RSS ${figures.peakRssMb.toFixed(0)} MB; ${figures.survived ? 'still running' : 'EXITED during the soak'}; /healthz at the end: ${figures.healthyAtEnd ? '200' : 'NOT 200'}`);
  }
}
