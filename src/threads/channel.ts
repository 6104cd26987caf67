// The messages between the main thread and one of its own threads (start.ts starts them): the lifecycle every
// thread shares (`ready` or `failed` once it has opened what it needs, `stop` → `stopped`), the thread's side of
// it (runThread), and the main thread's record of the requests waiting for the thread's answer (PendingRequests).
import { parentPort } from 'node:worker_threads';
import { releaseCompileCache } from './compile-cache.ts';

export type Lifecycle = { type: 'ready' } | { type: 'failed'; message?: string } | { type: 'stopped' };
export type StopRequest = { type: 'stop' };

/** What a thread runs once it is open: its answer to each message of the main thread, and how it stops. */
export interface ThreadBody<To> {
  onMessage(message: To): void;
  /** Finishes the thread's work and closes what it opened; the thread says `stopped` once this settles. */
  stop(): Promise<void>;
}

/**
 * Inside a thread: opens what the thread needs (`open`, given the way to answer the main thread), says `ready`
 * (or `failed`, with the reason), and serves the main thread's messages until it is told to stop.
 */
export async function runThread<To extends { type: string }, From extends { type: string }>(
  open: (reply: (message: From) => void) => Promise<ThreadBody<To>> | ThreadBody<To>,
): Promise<void> {
  if (!parentPort) throw new Error('runThread runs inside a worker thread');
  const port = parentPort;
  try {
    const body = await open((message) => port.postMessage(message));
    // The thread's code is loaded: what Node's compile cache keeps of it is no longer needed.
    releaseCompileCache();
    port.on('message', (message: To | StopRequest) => {
      if (message.type === 'stop') void body.stop().finally(() => port.postMessage({ type: 'stopped' } satisfies Lifecycle));
      else body.onMessage(message as To);
    });
    port.postMessage({ type: 'ready' } satisfies Lifecycle);
  } catch (error) {
    port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies Lifecycle);
  }
}

type Outcome<T> = { value: T } | { error: Error };

/** The main thread's requests to a thread, by id, each waiting for the thread's answer. */
export class PendingRequests<T> {
  #nextId = 0;
  readonly #waiting = new Map<number, { resolve: (value: T) => void; reject: (error: Error) => void }>();

  /** A new request: its id (to send with it) and the promise of its answer. */
  add(): { id: number; answer: Promise<T> } {
    const id = this.#nextId++;
    const answer = new Promise<T>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
    return { id, answer };
  }

  settle(id: number, outcome: Outcome<T>): void {
    const waiting = this.#waiting.get(id);
    this.#waiting.delete(id);
    if (!waiting) return;
    if ('error' in outcome) waiting.reject(outcome.error);
    else waiting.resolve(outcome.value);
  }

  /** Every request still waiting gets `outcome` (the thread has died). */
  settleAll(outcome: Outcome<T>): void {
    for (const id of [...this.#waiting.keys()]) this.settle(id, outcome);
  }
}
