// What the HTTP layer alone allows on this machine: a bare Fastify server that reads each body, parses it as JSON
// and answers 202 — nothing normalised, stored or routed — driven by the benchmark's own load generator with
// the workloads of scenarios 1 and 2. ctbridge's ingest figures cannot exceed these, so they put the bars in
// context. `npm run bench:ceiling`; `node bench/http-ceiling.ts serve PORT` is the server it starts.
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import Fastify from 'fastify';
import { forkPeer } from './ipc.ts';
import type { RunResult } from './loadgen.ts';
import { freePort } from './processes.ts';

const PATH = '/v1/ingest/commercetools';

async function serve(port: number): Promise<void> {
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.post(PATH, async (request, reply) => {
    const body = JSON.parse((request.body as Buffer).toString('utf8')) as unknown;
    return reply.code(202).send({ accepted: Array.isArray(body) ? body.length : 1 });
  });
  await app.listen({ port, host: '127.0.0.1' });
  process.send?.('ready');
}

async function measure(): Promise<void> {
  const loadgen = await forkPeer(new URL('./loadgen.ts', import.meta.url).pathname);
  const workloads = [
    { title: 'single-message posts, c=64', perRequest: 1, concurrency: 64 },
    { title: '100-message batches, c=16', perRequest: 100, concurrency: 16 },
  ];
  console.log(`bare Fastify (parse + 202, nothing stored), ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(2)}; medians of 3 runs`);
  for (const workload of workloads) {
    const rates: number[] = [];
    for (let run = 0; run < 3; run += 1) {
      const port = await freePort();
      // Started as ctbridge starts (bin/ctbridge.js), with the same young-generation size.
      const server = spawn(process.execPath, ['--max-semi-space-size=4', new URL(import.meta.url).pathname, 'serve', String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise<void>((resolve) => server.once('message', () => resolve()));
      await loadgen.call('prepare', { target: { port, path: PATH, headers: {} }, bodies: { kind: 'created', from: 0, count: 30_000, perRequest: workload.perRequest }, correlationPrefix: 'c-' });
      const r = await loadgen.call<RunResult>('closed', { concurrency: workload.concurrency, maxDurationMs: 6_000 });
      rates.push(r.messagesAcked / ((r.lastAckAt - r.firstSendAt) / 1000));
      server.kill();
    }
    rates.sort((a, b) => a - b);
    console.log(`  ${workload.title}: ${Math.round(rates[1]!).toLocaleString('en-US')} msg/s (runs: ${rates.map((r) => Math.round(r).toLocaleString('en-US')).join(', ')})`);
  }
  await loadgen.close();
}

if (process.argv[2] === 'serve') await serve(Number(process.argv[3]));
else await measure();
