// Runs ctbridge as a real child process. For tests that must kill it (crash safety): writes the YAML
// configuration, starts `node bin/ctbridge.js start`, waits for /readyz, and kills or stops it, reporting how it
// exited; the child's output goes to a log file so a failing test can point at it. For tests of the operator's
// commands (backfill, reconcile): runs a command to its end with its output captured, against a commercetools
// emulator and an http sink started for the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../../src/sandbox/emulator.ts';
import { startSink, type Sink } from '../../src/sandbox/sink.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Children still running when the test process exits (a test that timed out) are killed rather than orphaned.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildCtbridge {
  pid: number;
  /** Resolves when the process has exited, with its status or the signal that ended it. */
  exited: Promise<ChildExit>;
  /** Sends the signal and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<ChildExit>;
}

/**
 * A TCP port on 127.0.0.1 that is free now (the server cannot report port 0 back to a parent). It is taken from
 * below the ephemeral range, so that while the child is down between restarts no outgoing connection of this
 * machine can be given it as its local port and make the next start fail with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  let ephemeralFloor = 32_768;
  try {
    ephemeralFloor = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralFloor;
  } catch {
    // Not Linux: keep the usual floor.
  }
  const low = 10_000;
  const high = Math.max(low + 1_000, ephemeralFloor) - 1;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export function writeConfig(path: string, config: unknown): void {
  writeFileSync(path, stringify(config));
}

/** Writes the configuration as `ctbridge.yaml` in a new temporary folder named from `prefix`; returns its path. */
export function writeTempConfig(prefix: string, config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), prefix)), 'ctbridge.yaml');
  writeConfig(path, config);
  return path;
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `ctbridge ARGS` to its end, its output captured (not a terminal), without blocking this process's event
 * loop: the emulator and sink the command talks to live here.
 */
export function runCtbridge(args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ctbridge.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `test` with a commercetools emulator of the project and an http sink, both closed afterwards whatever happens. */
export async function withEmulatorAndSink(projectKey: string, test: (emulator: Emulator, sink: Sink) => Promise<void>): Promise<void> {
  const emulator = await startEmulator({ projectKey });
  let sink: Sink | undefined;
  try {
    sink = await startSink();
    await test(emulator, sink);
  } finally {
    await sink?.close();
    await emulator.close();
  }
}

/**
 * Starts `ctbridge start --config FILE` (or another command: `['backfill', '--destination', 'sink']`); stdout and
 * stderr are appended to `logFile`.
 */
export function spawnCtbridge(configPath: string, logFile: string, env: Record<string, string> = {}, command: readonly string[] = ['start']): ChildCtbridge {
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, ['bin/ctbridge.js', command[0]!, '--config', configPath, ...command.slice(1)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  running.add(child);
  const exited = new Promise<ChildExit>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    pid: child.pid ?? -1,
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Polls GET /readyz until it answers 200. Fails at once when the child exits first, and after `limitMs`
 * (a bound so a broken start-up fails the test instead of hanging it; not a timing assertion).
 */
export async function waitForReady(baseUrl: string, child: ChildCtbridge, limitMs = 30_000): Promise<void> {
  let exit: ChildExit | undefined;
  void child.exited.then((e) => (exit = e));
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (exit) throw new Error(`ctbridge exited before it was ready (code ${exit.code}, signal ${exit.signal})`);
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`ctbridge at ${baseUrl} was not ready within ${limitMs} ms`);
}
