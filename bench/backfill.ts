// Backfill throughput (issue 16): 20,000 orders and 5,000 customers read from the commercetools emulator into the
// http sink by a real `ctbridge start` (SQLite), with its peak RSS; and live latency while it runs — the p99 from a
// live message's acknowledgement to the sink receiving its record, for the same steady live load without a
// backfill and during one, in the same run. The naive baseline reads the same history page by page (offset paging,
// as a hand-written script would) and posts each record to the sink on its own, 16 at a time, for a few seconds.
// The emulator runs in this process, the sink (bench/sink-process.ts, which notes when each correlation id arrives)
// and ctbridge in their own, so the emulator's work never delays when the sink sees a record.
// Run alone: `node bench/backfill.ts`; `npm run bench` runs it as scenario 12 with --json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCommercetoolsClient } from '../src/commercetools/client.ts';
import { emulatorCredentials, startEmulator } from '../src/sandbox/emulator.ts';
import { HISTORY_RECORDS, seedHistory } from '../src/sandbox/history.ts';
import { epochNow, forkPeer, type Peer } from './ipc.ts';
import { freePort, peakRssMb } from './processes.ts';
import type { SinkStats } from './sink-process.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CUSTOMERS = 5_000;
const ORDERS = 20_000;
const TOTAL = CUSTOMERS + ORDERS;
/** The steady live load: customers created, each message carrying the customer (nothing read from commercetools). */
const LIVE_PER_SECOND = 50;
const QUIET_SECONDS = 6;
const NAIVE_SECONDS = 5;
const NAIVE_CONCURRENCY = 16;
const INGEST_TOKEN = 'bench-backfill-ingest-token-0123';
const ADMIN_TOKEN = 'bench-backfill-admin-token-0123';

export interface BackfillFigures {
  /** Resources per second from the backfill's start to its end (every record in the sink). */
  ctbridgeRate: number;
  naiveRate: number;
  /** Peak RSS of the ctbridge process over the whole run (MB). */
  rssMb: number;
  /** Live p99 (ms) without a backfill, and during one. */
  liveP99Quiet: number;
  liveP99During: number;
  liveMessagesQuiet: number;
  liveMessagesDuring: number;
  /** Records of the history in the sink at the end (must be TOTAL). */
  delivered: number;
  total: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Posts live customer messages at a steady rate until `until()` says stop; returns each one's latency to the sink. */
async function liveLoad(url: string, sink: Peer, prefix: string, until: () => boolean): Promise<number[]> {
  const posted = new Map<string, number>();
  let index = 0;
  const interval = 1000 / LIVE_PER_SECOND;
  const start = performance.now();
  const pending: Array<Promise<unknown>> = [];
  while (!until()) {
    const id = `${prefix}-${index}`;
    index += 1;
    const customer = { id, version: 1, email: `${id}@live.example`, firstName: 'Live' };
    const body = { notificationType: 'Message', projectKey: 'bench', id: `msg-${id}`, version: 1, sequenceNumber: 1, resource: { typeId: 'customer', id }, resourceVersion: 1, type: 'CustomerCreated', customer, createdAt: new Date().toISOString(), lastModifiedAt: new Date().toISOString() };
    posted.set(id, epochNow());
    pending.push(fetch(`${url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}`, 'x-correlation-id': id }, body: JSON.stringify(body) }).then((r) => r.arrayBuffer()));
    const next = start + index * interval;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  }
  await Promise.all(pending);
  // Every live record reaches the sink; its latency is from the post to the sink receiving the request carrying it.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const arrivals = await sink.call<Map<string, number>>('arrivals');
    const latencies = [...posted].flatMap(([id, at]) => (arrivals.has(id) ? [arrivals.get(id)! - at] : []));
    if (latencies.length === posted.size || Date.now() > deadline) return latencies;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The naive script: offset pages of 500 (no sort: as it comes), each resource posted to the sink on its own. */
async function naiveBackfill(commercetools: ReturnType<typeof createCommercetoolsClient>, sinkUrl: string): Promise<number> {
  const end = Date.now() + NAIVE_SECONDS * 1000;
  let sent = 0;
  const started = Date.now();
  for (let offset = 0; Date.now() < end; offset += 500) {
    const page = (await commercetools.api.orders().get({ queryArgs: { limit: 500, offset } }).execute()).body.results;
    if (page.length === 0) break;
    let next = 0;
    await Promise.all(
      Array.from({ length: NAIVE_CONCURRENCY }, async () => {
        while (next < page.length && Date.now() < end) {
          const order = page[next++]!;
          const response = await fetch(`${sinkUrl}/records`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `naive:order:${order.id}:${order.version}` },
            body: JSON.stringify({ recordType: 'naive-order', id: order.id, version: order.version, fields: { orderNumber: order.orderNumber, state: order.orderState, total: order.totalPrice.centAmount, customerId: order.customerId } }),
          });
          await response.arrayBuffer();
          sent += 1;
        }
      }),
    );
  }
  return sent / ((Date.now() - started) / 1000);
}

async function main(): Promise<BackfillFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-backfill-'));
  const emulator = await startEmulator({ projectKey: 'bench-backfill' });
  const sink = await forkPeer(new URL('./sink-process.ts', import.meta.url).pathname);
  const sinkUrl = await sink.call<string>('start');
  const log = (text: string) => process.stderr.write(`backfill bench: ${text}\n`);
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await seedHistory(emulator, { customers: CUSTOMERS, orders: ORDERS });
    const port = await freePort();
    const configPath = join(dir, 'ctbridge.yaml');
    writeFileSync(
      configPath,
      stringify({
        commercetools: emulatorCredentials(emulator),
        server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
        store: `sqlite:${join(dir, 'ctbridge.db')}`,
        destinations: [{ name: 'sink', type: 'http', url: `${sinkUrl}/records`, batchSize: 100, records: HISTORY_RECORDS }],
      }),
    );
    child = spawn(process.execPath, ['bin/ctbridge.js', 'start', '--config', configPath], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000)));
    const url = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; ; ) {
      if (child.exitCode !== null) throw new Error(`ctbridge exited with ${child.exitCode}:\n${output}`);
      if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) break;
      if (Date.now() > deadline) throw new Error(`ctbridge did not become ready within 30 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // Live latency without a backfill.
    const quietEnd = Date.now() + QUIET_SECONDS * 1000;
    const quiet = await liveLoad(url, sink, 'quiet', () => Date.now() > quietEnd);
    log(`live p99 without a backfill ${percentile(quiet, 99)} ms over ${quiet.length} messages`);

    // The backfill, with the same live load beside it until it is done.
    const admin = (path: string, init: RequestInit = {}) => fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } });
    const created = (await (await admin('/v1/backfills', { method: 'POST', body: JSON.stringify({ destination: 'sink', records: ['order', 'customer'] }) })).json()) as { id: string };
    let state = 'running';
    const watch = (async () => {
      while (state === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 100));
        state = ((await (await admin(`/v1/backfills/${created.id}`)).json()) as { state: string }).state;
      }
    })();
    const during = await liveLoad(url, sink, 'during', () => state !== 'running');
    await watch;
    const done = (await (await admin(`/v1/backfills/${created.id}`)).json()) as { read: number; createdAt: string; finishedAt: string };
    const seconds = (Date.parse(done.finishedAt) - Date.parse(done.createdAt)) / 1000;
    const rssMb = peakRssMb(child.pid!);
    const delivered = (await sink.call<SinkStats>('stats')).records - quiet.length - during.length;
    log(`backfill ${done.read} resources in ${seconds.toFixed(1)} s; live p99 during it ${percentile(during, 99)} ms over ${during.length} messages; peak RSS ${rssMb.toFixed(0)} MB`);

    const naiveRate = await naiveBackfill(createCommercetoolsClient(emulatorCredentials(emulator)), sinkUrl);
    log(`naive ${naiveRate.toFixed(0)} resources/s`);
    return { ctbridgeRate: done.read / seconds, naiveRate, rssMb, liveP99Quiet: percentile(quiet, 99), liveP99During: percentile(during, 99), liveMessagesQuiet: quiet.length, liveMessagesDuring: during.length, delivered, total: TOTAL };
  } finally {
    child?.kill('SIGTERM');
    await sink.close();
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const figures = await main();
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(figures)}\n`);
else console.log(figures);
