// Runs `ctbridge start` as a real child process for tests that must kill it (crash safety): writes the YAML
// configuration, starts `node bin/ctbridge.js start`, waits for /readyz, and kills or stops it, reporting how it
// exited. The child's output goes to a log file so a failing test can point at it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

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
