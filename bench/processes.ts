// Starting and watching the two systems under test as child processes: ctbridge exactly as an operator runs it
// (`node bin/ctbridge.js start --config FILE`, SQLite in a temp file, a fresh store per run) and the naive handler.
// Also reads a child's peak RSS (VmHWM) and CPU time from /proc.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { CommercetoolsEndpoint } from './emulator-process.ts';
import { forkPeer } from './ipc.ts';
import { CUSTOMER_FIELDS } from './workload.ts';

export const INGEST_TOKEN = 'bench-ingest-token-0123456789abcdef';
const REPO = join(import.meta.dirname, '..');

export interface SystemUnderTest {
  kind: 'ctbridge' | 'naive';
  pid: number;
  port: number;
  /** Where messages are posted, and the headers they need. */
  path: string;
  headers: Record<string, string>;
  /** What the process says about its own memory right now (ctbridge: from /metrics), for the report. */
  memory(): Promise<string>;
  stop(): Promise<void>;
}

/** Peak resident set size of a process so far, in MB (VmHWM). */
export function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at state; utime and stime are fields 14, 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface CtbridgeOptions {
  dir: string;
  name: string;
  commercetools: CommercetoolsEndpoint;
  sinkUrl: string;
  /** Write a V8 CPU profile (.cpuprofile) into this directory when the process exits. */
  profileDir?: string | undefined;
}

export async function startCtbridge(options: CtbridgeOptions): Promise<SystemUnderTest> {
  const port = await freePort();
  const configPath = join(options.dir, `${options.name}.yaml`);
  const { projectKey, authUrl, apiUrl, clientId, clientSecret } = options.commercetools;
  const config = {
    commercetools: { projectKey, authUrl, apiUrl, clientId, clientSecret },
    server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } } },
    store: `sqlite:${join(options.dir, `${options.name}.db`)}`,
    destinations: [{ name: 'sink', type: 'http', url: `${options.sinkUrl}/records`, batchSize: 100, records: { customer: { fields: CUSTOMER_FIELDS } } }],
  };
  writeFileSync(configPath, `# ctbridge benchmark run ${options.name}\n${stringify(config)}`);

  const env = { ...process.env };
  delete env.PORT;
  delete env.CTBRIDGE_CONFIG;
  // One directory per run: every thread writes its own profile there (a fixed file name would let them clash).
  const execArgv = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, options.name)}`] : [];
  const child = spawn(process.execPath, [...execArgv, 'bin/ctbridge.js', 'start', '--config', configPath], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve();
    }),
  );

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`ctbridge exited with ${exitCode} during start-up:\n${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ctbridge did not become ready within 30 s:\n${log}`);
    }
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    kind: 'ctbridge',
    pid: child.pid!,
    port,
    path: '/v1/ingest/commercetools',
    headers: { authorization: `Bearer ${INGEST_TOKEN}` },
    async memory() {
      const text = await fetch(`${url}/metrics`).then(
        (response) => response.text(),
        () => '',
      );
      const mb = (name: string) => {
        const match = new RegExp(`^ctbridge_${name} (\\S+)$`, 'm').exec(text);
        return match ? `${Math.round(Number(match[1]) / 2 ** 20)} MB` : '?';
      };
      const threads = [...text.matchAll(/^ctbridge_thread_heap_bytes\{thread="([^"]+)",kind="total"\} (\S+)$/gm)].map(([, thread, bytes]) => `${thread} ${Math.round(Number(bytes) / 2 ** 20)} MB`);
      return `V8 heap used ${mb('nodejs_heap_size_used_bytes')} of ${mb('nodejs_heap_size_total_bytes')}, per thread: ${threads.join(', ') || '?'}; external ${mb('nodejs_external_memory_bytes')}, RSS now ${mb('process_resident_memory_bytes')}`;
    },
    async stop() {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      if (exitCode !== 0) process.stderr.write(`warning: ctbridge exited with ${exitCode}; last output:\n${log}\n`);
    },
  };
}

export async function startNaive(options: { commercetools: CommercetoolsEndpoint; sinkUrl: string }): Promise<SystemUnderTest> {
  const peer = await forkPeer(join(import.meta.dirname, 'naive-handler.ts'));
  const url = await peer.call<string>('start', options);
  return {
    kind: 'naive',
    pid: peer.pid,
    port: Number(new URL(url).port),
    path: '/',
    headers: {},
    memory: () => Promise.resolve(''),
    stop: () => peer.close(),
  };
}
