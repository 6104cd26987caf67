// Request/response over the IPC channel of a forked bench process: the bench (parent) calls named commands, the
// child serves them. Used by the load generator, the sink, the emulator and the naive handler processes.
import { fork, type ChildProcess } from 'node:child_process';

export interface Peer {
  readonly child: ChildProcess;
  readonly pid: number;
  call<T>(command: string, args?: unknown): Promise<T>;
  /** Asks the child to exit and waits for it. */
  close(): Promise<void>;
}

interface Reply {
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
  ready?: boolean;
}

/** Forks a bench module (run under the same Node binary) and resolves once it said it is ready. */
export function forkPeer(modulePath: string, options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Peer> {
  const child = fork(modulePath, [], {
    execArgv: options.execArgv ?? [],
    env: options.env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  return new Promise<Peer>((resolveReady, rejectReady) => {
    child.on('message', (message: Reply) => {
      if (message.ready) {
        resolveReady(peer);
        return;
      }
      const waiting = message.id === undefined ? undefined : pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id!);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(`${modulePath}: ${message.error ?? 'failed'}`));
    });
    child.once('exit', (code, signal) => {
      exited = true;
      const error = new Error(`${modulePath} exited (${signal ?? code})`);
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
      rejectReady(error);
    });
    const peer: Peer = {
      child,
      pid: child.pid ?? -1,
      call<T>(command: string, args?: unknown): Promise<T> {
        if (exited) return Promise.reject(new Error(`${modulePath} is not running`));
        const id = nextId++;
        return new Promise<T>((resolve, reject) => {
          pending.set(id, { resolve: (value) => resolve(value as T), reject });
          child.send({ id, command, args });
        });
      },
      async close() {
        if (exited) return;
        child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exit;
        clearTimeout(timer);
      },
    };
  });
}

type Handler = (args: never) => unknown;

/** In a forked child: serves the given commands until the parent disconnects. */
export function serve(handlers: Record<string, Handler>): void {
  const send = (message: Reply) => {
    if (process.connected) process.send!(message);
  };
  process.on('message', (message: { id: number; command: string; args: unknown }) => {
    const handler = handlers[message.command];
    if (!handler) {
      send({ id: message.id, ok: false, error: `unknown command ${message.command}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args as never))
      .then(
        (result) => send({ id: message.id, ok: true, result }),
        (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  send({ ready: true });
}

/** Wall-clock time in ms since the epoch with sub-millisecond resolution, comparable across the bench processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
